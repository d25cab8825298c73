"""Milliseconds per StyleGAN3 frame (batch 1, float32): our previous CPU path vs the new one, side by side.

    python benchmarks/bench_stylegan3.py [--reference DIR] [--rounds N] [--sizes 256] [--configs T R]
                                         [--device cpu|cuda] [--literal]

Networks: the tiny reference pickles (T and R, 64 px) when found, and random-weight StyleGAN3 of each
`--configs` and `--sizes` built from a seed (`tests/sg3_random.random_record`). For each, the whole frame
(synthesis from a fixed w) runs `--rounds` times in each of two paths, interleaved (previous, new,
previous, new, ...) so that load on a shared machine falls on both alike; medians are printed.

- previous: polyphase convolutions for the activation's upsampling, direct 3x3 convolutions
  (`filtered_lrelu.CPU_BANDED = CPU_FUSED = False`, `stylegan3.CPU_WINOGRAD = False`);
- new (the default): the fused C activation (`kernels/cpu_filtered_lrelu.c`, banded-matrix upsampling
  where it is not built) and Winograd 3x3 convolutions where they pay.

NVIDIA's own code does not run here, so the comparison is with our previous path. `--literal` adds a
third column: the activation by its definition (`filtered_lrelu_reference`), NVIDIA's CPU formulation.
On CUDA neither switch applies, so both columns time the same path there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from autolume_graph.gan import cpu_features, filtered_lrelu, stylegan3
from autolume_graph.gan.filtered_lrelu import filtered_lrelu_reference
from autolume_graph.gan.kernels import cpu_filtered_lrelu
from autolume_graph.gan.safe_pickle import read_generator
from autolume_graph.gan.stylegan3 import StyleGAN3, SynthesisLayer, build_from_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the random StyleGAN3 builder
from sg3_random import random_record  # noqa: E402


class _LiteralActivation(torch.nn.Module):
    """The layer's activation computed by the definition, for the side-by-side timing."""

    def __init__(self, layer: SynthesisLayer):
        super().__init__()
        self.layer = [layer]  # not a submodule: avoid a cycle

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        layer = self.layer[0]
        return filtered_lrelu_reference(
            x, layer.up_filter, layer.down_filter, bias, layer.up_factor, layer.down_factor, layer.padding,
            gain=1.0 if layer.is_torgb else 2**0.5, slope=1.0 if layer.is_torgb else 0.2, clamp=layer.conv_clamp)


def _use(new: bool) -> None:
    filtered_lrelu.CPU_BANDED = filtered_lrelu.CPU_FUSED = stylegan3.CPU_WINOGRAD = new


def _literal(model: StyleGAN3, on: bool, saved: list[torch.nn.Module]) -> None:
    layers = model.synthesis.layers()
    if on:
        saved[:] = [layer.act for layer in layers]
        for layer in layers:
            layer.act = _LiteralActivation(layer)
    else:
        for layer, act in zip(layers, saved, strict=True):
            layer.act = act


def _bench(name: str, model: StyleGAN3, device: str, rounds: int, literal: bool) -> None:
    model = model.to(device)
    ws = model.mapping(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(0)).to(device))
    sync = torch.cuda.synchronize if ws.is_cuda else (lambda: None)
    saved: list[torch.nn.Module] = []
    paths: dict[str, Callable[[], None]] = {"previous": lambda: _use(False), "new": lambda: _use(True)}
    if literal:
        paths["literal"] = lambda: (_use(False), _literal(model, True, saved))
    times: dict[str, list[float]] = {key: [] for key in paths}
    images: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for round_ in range(rounds + 1):  # round 0 warms up (and builds the cached Winograd filters)
            for key, select in paths.items():
                select()
                start = time.perf_counter()
                images[key] = model.synthesis(ws)
                sync()
                if round_:
                    times[key].append((time.perf_counter() - start) * 1e3)
                if key == "literal":
                    _literal(model, False, saved)
    _use(True)
    med = {key: statistics.median(t) for key, t in times.items()}
    diff = (images["new"] - images["previous"]).abs().max().item()
    extra = f"   literal {med['literal']:9.1f} ms (x{med['literal'] / med['new']:.2f})" if literal else ""
    print(f"{name:<26} {device:<4} previous {med['previous']:9.1f} ms   new {med['new']:9.1f} ms   "
          f"x{med['previous'] / med['new']:.2f}{extra}   max |new - previous| {diff:.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "reference")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256])
    parser.add_argument("--configs", nargs="*", default=["T", "R"], choices=["T", "R"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--literal", action="store_true", help="also time the literal activation")
    args = parser.parse_args()
    cpu_filtered_lrelu.support(wait_s=120)  # the C kernel's first build, before any timing
    kernel, why = filtered_lrelu.activation_kernel(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"CPU {cpu_features.describe()}; activation {kernel} ({why}); "
          f"medians of {args.rounds} interleaved rounds, ms per frame")
    for pkl in ("sg3t_64_tiny", "sg3r_64_tiny"):
        path = args.reference / f"{pkl}.pkl"
        if path.exists():
            _bench(pkl, build_from_record(read_generator(path).record), args.device, args.rounds, args.literal)
    for config in args.configs:
        for size in args.sizes:
            model = build_from_record(random_record(size, config, seed=1))
            _bench(f"random StyleGAN3-{config} {size}px", model, args.device, args.rounds, args.literal)


if __name__ == "__main__":
    main()
