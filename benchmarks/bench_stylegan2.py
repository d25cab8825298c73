"""Milliseconds per frame at batch 1: default model and sg2_64_tiny, contiguous vs channels_last,
synthesis only (ws fixed) vs mapping + synthesis. CUDA too when present.

    python benchmarks/bench_stylegan2.py [--frames N] [--reference DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from autolume_graph.gan.default_model import default_model_path
from autolume_graph.gan.loader import load_model


def _ms_per_frame(fn, frames: int, sync) -> float:
    """Median frame time: robust to other processes sharing the CPU."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(frames):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@torch.inference_mode()
def bench(name: str, path: Path, device: str, frames: int) -> None:
    model = load_model(path, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    ws = model.mapping(z, psi=0.7)
    for channels_last in (False, True):
        model.set_channels_last(channels_last)
        layout = "channels_last" if channels_last else "contiguous"
        synth = _ms_per_frame(lambda: model.synthesis(ws), frames, sync)
        full = _ms_per_frame(lambda: model(z, psi=0.7), frames, sync)
        print(f"{name:14s} {device:4s} {layout:13s} synthesis {synth:8.2f} ms   mapping+synthesis {full:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--reference", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "reference")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    models = [("default-256", default_model_path())]
    if (args.reference / "sg2_64_tiny.pkl").exists():
        models.append(("sg2_64_tiny", args.reference / "sg2_64_tiny.pkl"))
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for name, path in models:
            bench(name, path, device, args.frames)


if __name__ == "__main__":
    main()
