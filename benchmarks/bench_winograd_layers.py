"""Winograd's ways of running one layer shape on the CPU, side by side: direct oneDNN, our C transforms
with our product fused chunk by chunk, with our product over whole blocks, and around torch.bmm.

A shape is IN,OUT,SIZE[,UP] (input map SIZE x SIZE, batch 1, float32 channels_last); UP 2 is
StyleGAN2's up-sampling layer, whose direct form is the transposed convolution + 4x4 filter and whose
Winograd form is four 3x3 phases (`winograd.up2_phases`). Medians of alternating runs; the ratios are
direct ms / each way's ms; `*` marks what the code picks here (`pays_off`, the fused limit, the
product `winograd.products` measured).

    python benchmarks/bench_winograd_layers.py 128,128,256 181,128,276 256,256,128 512,512,64 256,128,128,2
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
import torch.nn.functional as F
from bench_stylegan2 import interleaved_ms

from autolume_graph.bench import build_cpu_kernels
from autolume_graph.gan import cpu_features, winograd
from autolume_graph.gan.cpu_features import Support
from autolume_graph.gan.kernels import cpu_winograd
from autolume_graph.gan.stylegan2 import fir_filter

WAYS = ("fused", "blocks", "torch.bmm")


def _run(way: str, x: torch.Tensor, filters: dict[str, object], up: int) -> torch.Tensor:
    saved = cpu_winograd.FUSED_CACHE_SHARE
    cpu_winograd.FUSED_CACHE_SHARE = saved if way == "fused" else 1 << 40
    try:
        return winograd.conv3x3(x, filters["torch.bmm" if way == "torch.bmm" else "ours"], 1, up=up)
    finally:
        cpu_winograd.FUSED_CACHE_SHARE = saved


def _filters(weight: torch.Tensor) -> dict[str, object]:
    """The transformed filters for our product and for torch.bmm, whichever this CPU chose."""
    chosen = winograd.products
    made = {}
    try:
        for name, ours in (("ours", True), ("torch.bmm", False)):
            winograd.products = lambda ours=ours: Support(ours, "benchmark")
            made[name] = winograd.transform_weight(weight)
    finally:
        winograd.products = chosen
    return made


def _direct(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, up: int) -> torch.Tensor:
    if up == 1:
        return F.conv2d(x, weight, padding=1)
    return fir_filter(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), f, 4, 1, 1)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="+", help="IN,OUT,SIZE[,UP]")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    build_cpu_kernels()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {cpu_features.describe()}, "
          f"last-level cache {cpu_features.last_level_cache_bytes() >> 20} MB; product: {winograd.products().reason}")
    gen = torch.Generator().manual_seed(0)
    f = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    f /= f.sum()
    for shape in args.shapes:
        cin, cout, size, up = ([int(v) for v in shape.split(",")] + [1])[:4]
        x = torch.randn(1, cin, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(cout, cin, 3, 3, generator=gen)
        filters = _filters(weight if up == 1 else winograd.up2_phases(weight, f, 1))
        runs = {"direct": partial(_direct, x, weight, f, up)}
        runs.update({way: partial(_run, way, x, filters, up) for way in WAYS})
        ms = interleaved_ms(runs, args.rounds, run_length=1)
        fused = 4 * filters["ours"].strips.numel() <= \
            cpu_features.last_level_cache_bytes() // cpu_winograd.FUSED_CACHE_SHARE
        picked = "direct" if not winograd.pays_off(cin, cout, size, size, up) else (
            ("fused" if fused else "blocks") if winograd.products().available else "torch.bmm")
        cells = "  ".join(f"{way} {ms[way]:7.1f} ms x{ms['direct'] / ms[way]:4.2f}{'*' if way == picked else ' '}"
                          for way in runs)
        print(f"{shape:>16s}  {cells}", flush=True)


if __name__ == "__main__":
    main()
