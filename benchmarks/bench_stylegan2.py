"""Milliseconds per frame at batch 1 of the default model and sg2_64_tiny: the plain fused StyleGAN2
formulation (baseline, NVIDIA's structure; float32 channels_last, and contiguous) against our fast
path (and the fast path without Winograd convolutions), with and without re-running the mapping
network, side by side in one process.

Runs are interleaved (a few frames of baseline, of fast, of baseline, ...) and reported as medians,
so a neighbour process loading the CPU slows both alike. `--baseline` times the plain formulation alone.

    python benchmarks/bench_stylegan2.py [--frames N] [--reference DIR] [--baseline] [--threads N] [MODEL ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from autolume_graph.gan.default_model import default_model_path
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.stylegan2 import set_fast_path


def interleaved_ms(fns: dict[str, Callable[[], object]], frames: int, sync: Callable[[], None] = lambda: None,
                   run_length: int = 5) -> dict[str, float]:
    """Median frame time of each variant, the variants taking turns in short runs.

    Alternating every single frame would time each variant inside the other's allocation pattern
    (glibc re-tunes its mmap threshold, large buffers fault in again): 20-30% off a steady stream.
    The first frame of each run is therefore not counted.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    while min(len(t) for t in times.values()) < frames:
        for name, fn in fns.items():
            for i in range(run_length + 1):
                sync()
                start = time.perf_counter()
                fn()
                sync()
                if i:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def bench(name: str, path: Path, device: str, frames: int, baseline_only: bool) -> None:
    """Two instances of the model, one per formulation, loaded outside inference mode as the model
    store does: the fast path caches derived weights keyed on their version counters, which
    inference-mode tensors lack."""
    models = {"baseline": set_fast_path(load_model(path, device), False)}
    if not baseline_only:
        models["contiguous"] = set_fast_path(load_model(path, device), False).set_channels_last(False)
        models["direct"] = load_model(path, device)
        models["direct"].synthesis.winograd = False
        models["fast"] = load_model(path, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    z = torch.randn(1, models["baseline"].z_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def variant(model: torch.nn.Module, full: bool) -> Callable[[], object]:
        ws = model.mapping(z, psi=0.7)

        @torch.inference_mode()
        def run() -> object:
            return model.synthesis(model.mapping(z, psi=0.7) if full else ws)
        return run

    for full, what in ((False, "synthesis"), (True, "mapping+synthesis")):
        ms = interleaved_ms({k: variant(m, full) for k, m in models.items()}, frames, sync)
        line = f"{name:12s} {device:4s} {what:18s} baseline {ms['baseline']:7.2f} ms"
        if not baseline_only:
            line += (f" (contiguous {ms['contiguous']:7.2f} ms)   fast {ms['fast']:7.2f} ms"
                     f" (direct convs only {ms['direct']:7.2f} ms)   x{ms['baseline'] / ms['fast']:.2f}")
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--reference", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "reference")
    parser.add_argument("--baseline", action="store_true", help="time only the plain fused formulation")
    parser.add_argument("models", nargs="*", type=Path, help="more model files to time (pickles, .agm)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.frames} interleaved frames")
    models = [("default-256", default_model_path())]
    if (args.reference / "sg2_64_tiny.pkl").exists():
        models.append(("sg2_64_tiny", args.reference / "sg2_64_tiny.pkl"))
    models += [(path.stem, path) for path in args.models]
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for name, path in models:
            bench(name, path, device, args.frames, args.baseline)


if __name__ == "__main__":
    main()
