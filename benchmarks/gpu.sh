#!/usr/bin/env bash
# GPU figures in one run (under 8 minutes on an H100/H200): see benchmarks/bench_gpu.py.
# On a machine that has torch with CUDA but not our other dependencies, carry wheels in .whl/
# (python-osc, for the OSC probe of the end-to-end bench); everything else degrades gracefully.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py "$@"
