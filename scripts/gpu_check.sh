#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py says what it runs): on a bare CUDA machine with PyTorch,
#   bash scripts/gpu_check.sh [--wheels .whl] [--out DIR] [--budget SECONDS]
# and anywhere, on the CPU with tiny sizes (part of the tests):
#   bash scripts/gpu_check.sh --dry-run [--out DIR]
# The wheels come from scripts/gpu_wheels.sh, run beforehand on a machine with a network.
set -euo pipefail
cd "$(dirname "$0")/.."
# The checkout's own environment when there is one (make's .venv), else the machine's python3.
python="${SPLATFILM_PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ] && [[ " $* " == *" --dry-run "* ]]; then python=.venv/bin/python; else python=python3; fi
fi
export SPLATFILM_PYTHON="$python"
exec "$python" scripts/gpu_check.py "$@"
