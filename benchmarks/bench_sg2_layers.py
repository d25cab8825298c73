"""Where a StyleGAN2 frame's time goes on the CPU: each synthesis layer's median, for a random network of
NVIDIA's config (channels 32768 / resolution, at most 512), and the frame's.

    python benchmarks/bench_sg2_layers.py [--size 256] [--frames 10]

Threads our C kernels run on are fixed per process when they build: compare torch's OpenMP team with our
own pool by running it once with `AUTOLUME_CPU_POOL=own` in front, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch

from autolume_graph.bench import KERNEL_LABELS, build_cpu_kernels, kernel_report
from autolume_graph.gan import stylegan2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=10, help="timed frames after two warm-up frames")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = stylegan2.build_from_settings(stylegan2.make_settings(args.size)).eval().requires_grad_(False)
    stylegan2.set_fast_path(model, True)
    build_cpu_kernels()  # their first build, before anything is timed
    spent: dict[str, list[float]] = defaultdict(list)
    started: dict[str, float] = {}
    for name, module in model.synthesis.named_modules():
        if isinstance(module, (stylegan2.SynthesisLayer, stylegan2.ToRGBLayer)):
            module.register_forward_pre_hook(lambda _m, _i, name=name: started.__setitem__(name, time.perf_counter()))
            module.register_forward_hook(
                lambda _m, _i, _o, name=name: spent[name].append(time.perf_counter() - started[name]))
    frames = []
    with torch.no_grad():
        ws = model.mapping(torch.randn(1, 512), None)
        for _ in range(args.frames + 2):
            start = time.perf_counter()
            model.synthesis(ws)
            frames.append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for key, line in kernel_report("cpu").items():
        print(f"  {KERNEL_LABELS[key]}: {line}")
    print(f"StyleGAN2 {args.size} px frame: median {statistics.median(frames[2:]) * 1000:.0f} ms "
          f"(first {frames[0] * 1000:.0f} ms)")
    for name, times in spent.items():
        print(f"  {name:14s} {statistics.median(times[2:]) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
