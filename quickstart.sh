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

source scripts/venv.sh

exec "$VENV/bin/tfunsup3d-quickstart" --config=configs/quickstart.yml "$@"
