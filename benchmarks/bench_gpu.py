"""GPU figures in one run: StyleGAN2 and StyleGAN3-T at 256/512/1024 px, eager vs CUDA graphs, float32
vs float16, with and without readback to host memory; accuracy of each fast path; the end-to-end
default graph; memory over 10,000 frames. StyleGAN3's activation runs as the literal definition or as one
fused Triton kernel per layer (rows `literal` / `fused`), and alone in a table of its own (with the fused
kernel's tiling). StyleGAN2's layers run as plain PyTorch or with their elementwise work in fused Triton
kernels (rows `plain layers` / `fused layers`), and their kernels per frame are counted both ways.
Run by benchmarks/gpu.sh on a CUDA machine.
`--compile` adds, for StyleGAN2, the synthesis compiled by `torch.compile` (inductor fuses the
elementwise passes between convolutions) inside our CUDA graphs: a trial, not a product path yet.

    python benchmarks/bench_gpu.py [--seconds 2] [--sizes 256 512 1024] [--soak-frames 10000] [--compile]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolume_graph.gan import filtered_lrelu
from autolume_graph.gan.accel import SynthesisRunner
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.kernels import stylegan2_dispatch
from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.stylegan2 import make_settings, set_fast_path
from autolume_graph.gan.stylegan3 import build_from_record
from autolume_graph.outputs.frames import FrameConverter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the random StyleGAN3 builder
from sg3_random import random_record  # noqa: E402


def build(family: str, size: int) -> torch.nn.Module:
    if family == "stylegan2":
        return make_random_model(make_settings(size), seed=size)
    return build_from_record(random_record(size, "T", seed=size))


DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def ws_bank(model: torch.nn.Module, n: int = 64) -> list[torch.Tensor]:
    with torch.inference_mode():
        z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(0)).to(DEVICE)
        return [model.mapping(z[i:i + 1], psi=0.7) for i in range(n)]


def fps(model, bank, precision: str, graphs: bool, readback: str, seconds: float) -> float:
    """Frames per second of synthesis (+ readback: none | serial (wait each frame) | pipelined)."""
    runner = SynthesisRunner(use_graphs=graphs)
    converter = FrameConverter()
    for w in bank[:3]:
        runner(model, w, precision)
    sync()
    frames, pending = 0, None
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        image = runner(model, bank[frames % len(bank)], precision)
        if readback == "serial":
            converter.convert(image).wait()
        elif readback == "pipelined":
            if pending is not None:
                pending.wait()
            pending = converter.convert(image)
        frames += 1
    if pending is not None:
        pending.wait()
    sync()
    return frames / (time.perf_counter() - start)


def accuracy(model, w: torch.Tensor, precision: str, graphs: bool, reference: torch.Tensor) -> str:
    runner = SynthesisRunner(use_graphs=graphs)
    runner(model, w, precision)
    out = runner(model, w, precision)  # the second call replays the captured graph
    diff = (out.float().cpu() - reference).abs().max().item()
    to8 = lambda x: (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # noqa: E731
    same = (to8(out.float().cpu()) == to8(reference)).float().mean().item()
    return f"max|diff| {diff:.2e}, uint8 equal {100 * same:.2f}%"


class _Compiled(torch.nn.Module):
    """`model` with its synthesis compiled, for `SynthesisRunner` (which calls `model.synthesis`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.mapping = model.mapping
        self.synthesis = torch.compile(model.synthesis, dynamic=False)


def table(families: list[str], sizes: list[int], seconds: float,
          compiled: bool = False) -> dict[tuple[str, int], torch.nn.Module]:
    models = {}
    print(f"{'model':<22}{'variant':<44}{'no readback':>12}{'serial rb':>11}{'pipelined':>11}"
          "   accuracy vs CPU float32")
    for family in families:
        for size in sizes:
            model = build(family, size)
            bank_cpu = None
            if size == sizes[0]:
                with torch.inference_mode():
                    bank_cpu = model.mapping(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(1)))
                    reference = model.synthesis(bank_cpu)
            model = model.to(DEVICE)
            bank = ws_bank(model)
            variants = [("eager float32", "float32", False), ("graphs float32", "float32", True),
                        ("graphs float16", "float16", True), ("graphs float16 channels_last", "float16", True)]
            if family == "stylegan3":  # the activation plain (literal) against fused (one Triton kernel a layer)
                variants = [(f"{mode} {precision}, {kernel} lrelu", precision, mode == "graphs")
                            for mode, precision in (("eager", "float32"), ("graphs", "float32"), ("graphs", "float16"))
                            for kernel in ("literal", "fused")] + [("graphs float16, polyphase lrelu", "float16", True)]
            else:  # plain layers against fused ones; then every derived constant rebuilt per frame, channels_last
                variants = [(f"{mode} {precision}, {layers} layers", precision, mode == "graphs")
                            for mode, precision in (("eager", "float32"), ("eager", "float16"), ("graphs", "float32"),
                                                    ("graphs", "float16")) for layers in ("plain", "fused")]
                variants += [("graphs float16 uncached, fused layers", "float16", True),
                             ("graphs float16 channels_last, fused layers", "float16", True)]
                if compiled:  # inductor fuses the plain layers' elementwise passes itself
                    variants.append(("graphs float16 compiled, plain layers", "float16", True))
            for label, precision, graphs in variants:
                filtered_lrelu.CUDA_USES_LITERAL = "polyphase" not in label
                filtered_lrelu.CUDA_USES_FUSED = "fused" in label
                stylegan2_dispatch.CUDA_USES_FUSED = "plain" not in label
                model.set_channels_last("channels_last" in label)
                if family == "stylegan2":
                    set_fast_path(model, "uncached" not in label)
                try:
                    start = time.perf_counter()
                    runnable = _Compiled(model) if "compiled" in label else model
                    rates = [fps(runnable, bank, precision, graphs, readback, seconds)
                             for readback in ("none", "serial", "pipelined")]
                    acc = "" if bank_cpu is None else accuracy(runnable, bank_cpu.to(DEVICE), precision, graphs,
                                                               reference)
                    if "compiled" in label:
                        acc += f" (compile and measure: {time.perf_counter() - start:.0f} s)"
                    if family == "stylegan3":  # what ran, should the fused kernel have fallen back
                        acc += " [{}: {}]".format(*filtered_lrelu.activation_kernel(DEVICE))
                    else:
                        acc += " [{}: {}]".format(*stylegan2_dispatch.kernel_choice(DEVICE))
                    row = "".join(f"{r:11.1f} " for r in rates)
                    print(f"{family + f' {size}px':<22}{label:<44}{row}  {acc}", flush=True)
                except Exception as exc:  # one failing variant must not cost the rest of the run
                    print(f"{family + f' {size}px':<22}{label:<44} FAILED: {type(exc).__name__}: {exc}", flush=True)
            filtered_lrelu.CUDA_USES_LITERAL = filtered_lrelu.CUDA_USES_FUSED = True
            stylegan2_dispatch.CUDA_USES_FUSED = True
            models[(family, size)] = model
    return models


def _ms(run, repeats: int = 20) -> float:
    """Median milliseconds of run() on the GPU (after a warm-up that compiles)."""
    for _ in range(3):
        run()
    times = []
    for _ in range(repeats):
        if DEVICE == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            run()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def _layer_activations(layer: torch.nn.Module, x: torch.Tensor, max_block: int) -> dict[str, Callable[[], Any]]:
    """One layer's activation on x as the literal definition and as the fused kernel (tiles up to max_block)."""
    from autolume_graph.gan.kernels.filtered_lrelu_tiles import FusedFilteredLReLU

    up, down, padding, gain, slope, clamp = layer.act.literal_args
    k = layer.conv_kernel - 1
    fused = FusedFilteredLReLU(layer.up_filter, layer.down_filter, up, down, padding,
                               (layer.in_size[0] + k, layer.in_size[1] + k), gain, slope, clamp,
                               max_block=max_block).to(DEVICE)
    bias = layer.bias.detach().to(DEVICE)

    def literal(dtype: torch.dtype) -> torch.Tensor:
        cast = [None if f is None else f.to(DEVICE, dtype) for f in (layer.up_filter, layer.down_filter)]
        return filtered_lrelu.filtered_lrelu_reference(x.to(dtype), *cast, bias.to(dtype), *layer.act.literal_args)

    return {"literal": lambda: literal(x.dtype), "fused": lambda: fused(x, bias),
            "float64": lambda: literal(torch.float64)}


def activation_table(sizes: list[int]) -> None:
    """StyleGAN3-T/R activations alone, summed over a network's layers: literal against fused, the fused
    kernel's tiling (largest block side) and warps, and its worst error against the definition in float64."""
    from autolume_graph.gan import kernels
    from autolume_graph.gan.kernels import triton_filtered_lrelu

    support = kernels.available(DEVICE)
    if not support.available:
        print(f"activation table skipped: {support.reason}")
        return
    print(f"activations alone ({support.reason}): ms per frame summed over the layers, batch 1")
    tilings = [(64, 4), (64, 8), (32, 4)]  # (max_block, num_warps); the first is the default
    for config, size in [("T", size) for size in sizes] + [("R", min(sizes))]:  # R's widest layers: 256 px
        model = build_from_record(random_record(size, config, seed=size))
        gen = torch.Generator().manual_seed(0)
        for dtype in (torch.float32, torch.float16):
            cells, worst = {}, 0.0
            for max_block, warps in tilings:
                triton_filtered_lrelu.NUM_WARPS = warps
                label = f"fused/{max_block}/{warps}w"
                try:
                    total = 0.0
                    for layer in model.synthesis.layers():
                        shape = [s + layer.conv_kernel - 1 for s in reversed(layer.in_size)]
                        x = (torch.randn(1, layer.out_channels, *shape, generator=gen) * 2).to(DEVICE, dtype)
                        runs = _layer_activations(layer, x, max_block)
                        total += _ms(runs["fused"])
                        if (max_block, warps) == tilings[0]:
                            cells["literal"] = cells.get("literal", 0.0) + _ms(runs["literal"])
                            error = (runs["fused"]().double() - runs["float64"]()).abs().max().item()
                            worst = max(worst, error)
                    cells[label] = total
                except Exception as exc:  # one failing tiling must not cost the rest
                    cells[label] = f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0]
            triton_filtered_lrelu.NUM_WARPS = tilings[0][1]
            row = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in cells.items())
            print(f"{f'stylegan3-{config} {size}px {str(dtype)[6:]}':<30}{row}; fused max|err| {worst:.2e}",
                  flush=True)


def kernel_counts(models: dict) -> None:
    """Kernels one StyleGAN2 synthesis call launches (what a CUDA graph replays), plain layers against fused."""
    from bench_ops import count  # beside this script

    for (family, size), model in models.items():
        if family != "stylegan2":
            continue
        ws = ws_bank(model, 1)[0]
        cells = []
        for dtype in (torch.float32, torch.float16):
            for layers in ("plain", "fused"):
                stylegan2_dispatch.CUDA_USES_FUSED = layers == "fused"
                try:
                    cells.append(f"{str(dtype)[6:]} {layers} {count(model, ws, dtype)}")
                except Exception as exc:  # one failing count must not cost the rest of the run
                    cells.append(f"{str(dtype)[6:]} {layers} FAILED: {type(exc).__name__}: {exc}".splitlines()[0])
        stylegan2_dispatch.CUDA_USES_FUSED = True
        print(f"stylegan2 {size}px kernels per frame: {', '.join(cells)}", flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def end_to_end(models: dict, soak_frames: int) -> None:
    try:
        from autolume_graph.graphs.shipped import build_default

        from autolume_graph.bench import print_report, run_bench
        from autolume_graph.outputs.frames import FrameConverter as Converter
        from autolume_graph.runtime import Runtime
    except ImportError as exc:
        print(f"end-to-end skipped: {exc}")
        return
    folder = Path(tempfile.mkdtemp())
    for (family, size), model in models.items():
        if family != "stylegan2" or size < min(512, max(s for _, s in models)):
            continue
        path = save_model(model.cpu(), folder / f"sg2_{size}.safetensors")
        print_report(run_bench(str(path), frames=300, device=DEVICE), as_json=False)
        model.to(DEVICE)
    path = folder / f"sg2_{min(512, max(s for _, s in models))}.safetensors"
    if not path.exists() or soak_frames <= 0:
        return
    graph = build_default()
    graph.node("model").set_value("path", str(path))
    runtime = Runtime(graph, fps=0, device=DEVICE)
    for node in graph.nodes.values():
        node.prepare(DEVICE)
    converter = Converter()
    marks = {}
    start = time.perf_counter()
    for i in range(soak_frames):
        snap = runtime.step()
        image = next(iter(snap.published.values()), None)
        if image is not None:
            converter.convert(image).wait()
        if i in (min(500, soak_frames // 2), soak_frames - 1):
            sync()
            cuda = DEVICE == "cuda"
            marks[i] = (rss_mb(), torch.cuda.memory_allocated() / 2**20 if cuda else 0.0,
                        torch.cuda.memory_reserved() / 2**20 if cuda else 0.0)
    elapsed = time.perf_counter() - start
    (r0, a0, v0), (r1, a1, v1) = (marks[k] for k in sorted(marks))
    print(f"soak: default graph, StyleGAN2 512 px, {soak_frames} frames in {elapsed:.1f} s "
          f"({soak_frames / elapsed:.0f} fps incl. readback): RSS {r0:.0f} -> {r1:.0f} MB "
          f"({100 * (r1 / r0 - 1):+.2f}%), CUDA allocated {a0:.0f} -> {a1:.0f} MB, reserved {v0:.0f} -> {v1:.0f} MB")
    errors = {n.name: n.error for n in graph.nodes.values() if n.error}
    if errors:
        print(f"node errors: {errors}")
    runtime.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="measuring time per figure")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--soak-frames", type=int, default=10000)
    ap.add_argument("--families", nargs="+", default=["stylegan2", "stylegan3"], choices=["stylegan2", "stylegan3"])
    ap.add_argument("--dry-run", action="store_true", help="check the script on the CPU at tiny sizes")
    ap.add_argument("--compile", action="store_true", help="also time StyleGAN2 synthesis under torch.compile")
    args = ap.parse_args()
    global DEVICE
    if args.dry_run:
        DEVICE = "cpu"
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU dry run"
    print(f"{name}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
          f"pid {os.getpid()}; frames per second (batch 1, random weights)")
    models = table(args.families, args.sizes, args.seconds, args.compile)
    kernel_counts(models)
    if "stylegan3" in args.families:
        activation_table([size for size in args.sizes if size in (256, 1024)] or args.sizes[:1])
    end_to_end(models, args.soak_frames)


if __name__ == "__main__":
    np.random.seed(0)
    main()
