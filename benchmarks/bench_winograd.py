"""Winograd F(4x4, 3x3) against the direct 3x3 convolution (oneDNN), per channel count and map size.

Prints the speed-up (direct ms / Winograd ms, medians of alternating runs) for square maps and equal
channels in and out, batch 1, float32 channels_last: the table `winograd.pays_off` is drawn from.
Each cell: with our C transforms / with the torch transforms (`winograd.C_TRANSFORMS = False`);
`*` marks the shapes `pays_off` picks for the C transforms.

    python benchmarks/bench_winograd.py [--channels 64 128 256 512] [--sizes 4 8 16 32 64 128]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
import torch.nn.functional as F
from bench_stylegan2 import interleaved_ms

from autolume_graph.gan import cpu_features, winograd
from autolume_graph.gan.kernels import cpu_winograd


def _with_transforms(c_side: bool, x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    winograd.C_TRANSFORMS = c_side
    try:
        return winograd.conv3x3(x, filters)
    finally:
        winograd.C_TRANSFORMS = True


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--max-macs", type=float, default=1e10, help="skip shapes costlier than this")
    args = parser.parse_args()
    transforms = winograd.transforms() if cpu_winograd.support(wait_s=120).available else cpu_winograd.support()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {cpu_features.describe()}, "
          f"C transforms: {transforms.reason}; direct ms / Winograd ms, C / torch transforms")
    print("channels " + " ".join(f"{size:>13d}" for size in args.sizes))
    gen = torch.Generator().manual_seed(0)
    for channels in args.channels:
        cells = []
        for size in args.sizes:
            macs = 9 * channels * channels * size * size
            if macs > args.max_macs:
                cells.append(f"{'-':>13s}")
                continue
            x = torch.randn(1, channels, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
            weight = torch.randn(channels, channels, 3, 3, generator=gen)
            filters = winograd.transform_weight(weight)
            rounds = int(min(30, max(4, 4e8 / macs)))
            ms = interleaved_ms({"direct": partial(F.conv2d, x, weight, padding=1),
                                 "C": partial(_with_transforms, True, x, filters),
                                 "torch": partial(_with_transforms, False, x, filters)}, rounds, run_length=2)
            mark = "*" if winograd.pays_off(channels, channels, size, size) else " "
            cells.append(f"{ms['direct'] / ms['C']:5.2f}{mark}/{ms['direct'] / ms['torch']:5.2f}")
        print(f"{channels:8d} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
