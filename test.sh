#!/usr/bin/env bash
# Sets up the Python environment (first run only) and runs the test suite.
#
#   ./test.sh                        # every test not marked slow
#   ./test.sh -k flags               # extra arguments go to pytest
#   ./test.sh tests/test_config.py   # a path replaces the default `tests`
#   ./test.sh -m slow                # the slow tests (the last -m wins)
#
# Environment: TFUNSUP3D_VENV (default .venv) is the virtual environment;
# PYTHON (default python3, >= 3.10) creates it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

source scripts/venv.sh

paths=(tests)
for arg in "$@"; do
  if [[ "$arg" != -* && -e "$arg" ]]; then
    paths=()
    break
  fi
done
exec "$VENV/bin/python" -m pytest -m "not slow" -q -p no:cacheprovider \
  ${paths[@]+"${paths[@]}"} "$@"
