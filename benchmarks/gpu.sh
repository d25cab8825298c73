#!/usr/bin/env bash
# GPU figures in one run (estimated 9 minutes on an H100/H200 with Triton's first compiles; not yet timed): see
# benchmarks/bench_gpu.py. StyleGAN3 rows compare its activation literal against fused (Triton, which ships
# with CUDA builds of torch); `--families stylegan3 --sizes 256 1024 --soak-frames 0` runs only those.
# StyleGAN2 rows compare its layers plain against fused (Triton: modulation/demodulation, the conv epilogue);
# `--families stylegan2 --sizes 512 1024 --soak-frames 0` runs only those.
# On a machine that has torch with CUDA but not our other dependencies, carry wheels in .whl/
# (python-osc, for the OSC probe of the end-to-end bench); everything else degrades gracefully.
# With the reference vectors in .ref/ (README.md and sg2_64_tiny.pkl copied from ../shared/reference,
# which does not travel to a device machine), the CUDA tests (tests/test_gpu.py) run first.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d .ref ] && export AUTOLUME_REFERENCE="$PWD/.ref"
if [ -n "${AUTOLUME_REFERENCE:-}" ] || [ -d ../shared/reference ]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "from autolume_graph.gan.filtered_lrelu import activation_kernel as k; print('StyleGAN3 activation: {} ({})'.format(*k('cuda')))"
python3 -c "from autolume_graph.gan.kernels.stylegan2_dispatch import kernel_choice as k; print('StyleGAN2 layers: {} ({})'.format(*k('cuda')))"
python3 benchmarks/bench_ops.py --size 512
PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py "$@"
