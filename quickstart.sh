#!/usr/bin/env bash
# Sets up the Python environment (first run only) and runs the quickstart:
# a synthetic data set with ground-truth depth, a small Unsup3D trained on
# CPU, and its test (depth metrics, decompositions). Extra arguments go to
# tfunsup3d-quickstart, e.g. ./quickstart.sh --num_epochs=2
#
# Environment: TFUNSUP3D_VENV (default .venv) is the virtual environment;
# PYTHON (default python3, >= 3.10) creates it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV="${TFUNSUP3D_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "quickstart.sh: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --upgrade pip
fi
stamp="$VENV/.tfunsup3d-installed-test"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "quickstart.sh: installing tfunsup3d[test] into $VENV" >&2
  "$VENV/bin/python" -m pip install -e '.[test]'
  touch "$stamp"
fi

exec "$VENV/bin/tfunsup3d-quickstart" --config=configs/quickstart.yml "$@"
