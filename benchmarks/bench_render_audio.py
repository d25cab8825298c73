"""Music-video sync: a generated 20 s click track rendered with `render --audio` at 30 fps, the MP4's
video and audio decoded, and how many frames after each click the picture reacts (must be < 1).

Run: python benchmarks/bench_render_audio.py [REFERENCE_DIR]  (default ../shared/reference)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from test_audio_file import click_track, write_wav  # noqa: E402
from test_render_audio import reactive_graph, sync_offsets  # noqa: E402

from autolume_graph.cli import main  # noqa: E402
from autolume_graph.serialize import save_graph  # noqa: E402

FPS = 30
SECONDS = 20.0


def run(reference: Path) -> None:
    import torch

    clicks = list(np.round(np.arange(0.37, SECONDS, 0.61), 3))  # every phase within a frame
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        write_wav(work / "song.wav", click_track(clicks, SECONDS))
        save_graph(reactive_graph(reference), work / "g.agraph")
        start = time.perf_counter()
        assert main(["render", str(work / "g.agraph"), "--audio", str(work / "song.wav"), "--fps", str(FPS),
                     "--out", str(work / "video.mp4"), "--device", "cpu"]) == 0
        took = time.perf_counter() - start
        offsets = np.array(sync_offsets(work / "video.mp4", FPS))
    print(f"CPU kernels {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} torch threads; "
          f"{SECONDS:.0f} s at {FPS} fps rendered in {took:.1f} s")
    print(f"{len(offsets)} of {len(clicks)} clicks found; the picture reacts min {offsets.min():.3f}, "
          f"median {np.median(offsets):.3f}, max {offsets.max():.3f} frames after the click; "
          f"within one frame: {bool(np.all((offsets >= 0) & (offsets <= 1)))}")


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "reference")
