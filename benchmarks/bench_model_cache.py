"""First vs second load of a ~300 MB NVIDIA-layout StyleGAN2 training snapshot, side by side.

First load: hash the pickle, read it (the restricted reader), build the network, write the model
cache entry. Second load: hash the pickle, read the entry (`autolume_graph.gan.model_cache`). The
snapshot is written here from a seeded random network (no download): a dict with `G` and `G_ema`
as persistent modules, the layout of a real `network-snapshot-*.pkl` (the D part left None).
The file was just written, so both loads read it from the page cache, as a show's reload would.

    .venv/bin/python benchmarks/bench_model_cache.py [--resolution 1024] [--channel-base 65536] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_model_files  # noqa: E402  (the persistent-module pickle writer the tests use)

from autolume_graph.gan import model_cache  # noqa: E402
from autolume_graph.gan.default_model import make_random_model  # noqa: E402
from autolume_graph.gan.loader import load_model  # noqa: E402
from autolume_graph.gan.stylegan2 import make_settings  # noqa: E402


def write_snapshot(path: Path, resolution: int, channel_base: int) -> None:
    """A training snapshot pickle as NVIDIA's training loop writes it (persistent modules, torch storages)."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = test_model_files._reconstruct_persistent_obj
    test_model_files._reconstruct_persistent_obj.__module__ = persistence.__name__
    sys.modules.setdefault("torch_utils", types.ModuleType("torch_utils")).persistence = persistence
    sys.modules["torch_utils.persistence"] = persistence
    model = make_random_model(make_settings(resolution, channel_base=channel_base, channel_max=512), seed=1)
    snapshot = {"G": test_model_files._snapshot_generator(model), "D": None,
                "G_ema": test_model_files._snapshot_generator(model), "augment_pipe": None,
                "training_set_kwargs": {"resolution": resolution}}
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=4)


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--channel-base", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        os.environ[model_cache.FOLDER_ENV] = str(folder / "cache")
        pickle_path = folder / "network-snapshot.pkl"
        print(f"writing the snapshot ({args.resolution} px, channel base {args.channel_base})...", flush=True)
        write_snapshot(pickle_path, args.resolution, args.channel_base)
        first, second, uncached = [], [], []
        for _ in range(args.repeats):
            for entry in (folder / "cache").glob("*"):
                entry.unlink()
            first.append(_seconds(lambda: load_model(pickle_path)))
            second.append(_seconds(lambda: load_model(pickle_path)))
            uncached.append(_seconds(lambda: load_model(pickle_path, cache=False)))
        [entry] = (folder / "cache").glob("*")
        hashing = _seconds(lambda: model_cache.source_of(pickle_path, "G_ema"))  # the key: stat + SHA-256
        mib = 1 << 20
        print(f"pickle {pickle_path.stat().st_size / mib:.0f} MiB, cache entry {entry.stat().st_size / mib:.0f} MiB; "
              f"{torch.get_num_threads()} torch threads, CPU kernels {torch.backends.cpu.get_cpu_capability()}")
        print(f"  first load (read pickle + build + write entry): {statistics.median(first):6.2f} s"
              f"   (without the cache: {statistics.median(uncached):.2f} s)")
        print(f"  second load (cache hit):                        {statistics.median(second):6.2f} s"
              f"   (of which the key, SHA-256 of the pickle: {hashing:.2f} s)")
        print(f"  first / second: {statistics.median(first) / statistics.median(second):.1f}x "
              f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
