# Sourced by test.sh and quickstart.sh: creates the virtual environment on
# first use and (re)installs tfunsup3d[test] (plus the extras asked for) when
# pyproject.toml is newer than the last install of that set. Sets VENV.
#
# Environment: TFUNSUP3D_VENV (default .venv) is the virtual environment;
# PYTHON (default python3, >= 3.10) creates it; TFUNSUP3D_EXTRAS (e.g.
# demo,app) adds pyproject extras to the same environment: demo (--detect's
# mtcnn, MP4), app (tfunsup3d-app), tensorboard, browser (what the browser
# test needs besides Debian's chromium), all (demo, app, tensorboard).
VENV="${TFUNSUP3D_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
_who="$(basename "$0")"

_extras="test"
IFS=',' read -r -a _wanted <<< "${TFUNSUP3D_EXTRAS:-}"
for _extra in ${_wanted[@]+"${_wanted[@]}"}; do
  _extra="${_extra// /}"
  case "$_extra" in
    "") ;;
    demo|app|tensorboard|browser|all) _extras="$_extras,$_extra" ;;
    *)
      echo "$_who: error: TFUNSUP3D_EXTRAS: unknown extra '$_extra' (known:" \
        "demo, app, tensorboard, browser, all)" >&2
      exit 2 ;;
  esac
done

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "$_who: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --upgrade pip
fi
# The install is editable, so the environment runs the checkout it was
# installed from: the stamp records that checkout, and an environment shared
# by two checkouts is re-pointed (with a note) at the one running now.
_stamp="$VENV/.tfunsup3d-installed-${_extras//,/-}"
_here="$(pwd -P)"
_there="$(cat "$_stamp" 2>/dev/null || true)"
if [[ "$_there" != "$_here" || pyproject.toml -nt "$_stamp" ]]; then
  if [[ -n "$_there" && "$_there" != "$_here" ]]; then
    echo "$_who: note: $VENV ran the checkout $_there; re-pointing it at $_here" >&2
  fi
  echo "$_who: installing tfunsup3d[$_extras] into $VENV" >&2
  "$VENV/bin/python" -m pip install -e ".[$_extras]"
  echo "$_here" > "$_stamp"
fi
