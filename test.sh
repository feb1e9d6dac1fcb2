#!/usr/bin/env bash
# Sets up the Python environment (first run only) and runs the test suite.
#
#   ./test.sh                        # every test not marked slow
#   ./test.sh -k flags               # extra arguments go to pytest
#   ./test.sh tests/test_config.py   # a path replaces the default `tests`
#   ./test.sh -m slow                # the slow tests (the last -m wins)
#
# Environment: TFUNSUP3D_VENV (default .venv) is the virtual environment;
# PYTHON (default python3, >= 3.10) creates it; TFUNSUP3D_TEST_WORKERS
# (default 2) is the number of pytest-xdist worker processes, each taking
# whole test files (0: run in this process).
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
  -n "${TFUNSUP3D_TEST_WORKERS:-2}" --dist loadfile \
  ${paths[@]+"${paths[@]}"} "$@"
