"""Milliseconds per StyleGAN3 frame (batch 1): our fast filtered activation vs the literal one.

    python benchmarks/bench_stylegan3.py [--reference DIR] [--iters N] [--sizes 256] [--device cpu|cuda]

Networks: the tiny reference pickles (T and R, 64 px) when found, and random-weight StyleGAN3-T of
each `--sizes` resolution built from a seed (`tests/sg3_random.random_record`). For each, the whole frame
(synthesis from a fixed w) is timed twice: with our polyphase/strided activation and with the
literal zero-stuffing one (`filtered_lrelu_reference`), printed side by side. On CUDA the activation
itself picks the literal form (faster there), so both columns then time the same path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from autolume_graph.gan.filtered_lrelu import filtered_lrelu_reference
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


def _time_frame(model: StyleGAN3, ws: torch.Tensor, iters: int) -> float:
    sync = torch.cuda.synchronize if ws.is_cuda else (lambda: None)
    with torch.no_grad():
        model.synthesis(ws)  # warm-up
        sync()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model.synthesis(ws)
            sync()
            times.append(time.perf_counter() - start)
    return min(times) * 1e3


def _bench(name: str, model: StyleGAN3, device: str, iters: int) -> None:
    model = model.to(device)
    ws = model.mapping(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(0)).to(device))
    fast = _time_frame(model, ws, iters)
    layers = model.synthesis.layers()
    fast_acts = [layer.act for layer in layers]
    for layer in layers:
        layer.act = _LiteralActivation(layer)
    literal = _time_frame(model, ws, max(1, iters // 2))
    for layer, act in zip(layers, fast_acts, strict=True):
        layer.act = act
    print(f"{name:<28} {device:<5} fast {fast:9.1f} ms/frame   literal {literal:9.1f} ms/frame   "
          f"x{literal / fast:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "reference")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[256])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    for pkl in ("sg3t_64_tiny", "sg3r_64_tiny"):
        path = args.reference / f"{pkl}.pkl"
        if path.exists():
            _bench(pkl, build_from_record(read_generator(path)), args.device, args.iters)
    for size in args.sizes:
        model = build_from_record(random_record(size, "T", seed=1))
        _bench(f"random StyleGAN3-T {size}px", model, args.device, args.iters)


if __name__ == "__main__":
    main()
