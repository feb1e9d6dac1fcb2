# Sourced by test.sh and quickstart.sh: creates the virtual environment on
# first use and (re)installs tfunsup3d[test] when pyproject.toml is newer than
# the last install. Sets VENV.
#
# Environment: TFUNSUP3D_VENV (default .venv) is the virtual environment;
# PYTHON (default python3, >= 3.10) creates it.
VENV="${TFUNSUP3D_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
_who="$(basename "$0")"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "$_who: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --upgrade pip
fi
_stamp="$VENV/.tfunsup3d-installed-test"
if [[ ! -f "$_stamp" || pyproject.toml -nt "$_stamp" ]]; then
  echo "$_who: installing tfunsup3d[test] into $VENV" >&2
  "$VENV/bin/python" -m pip install -e '.[test]'
  touch "$_stamp"
fi
