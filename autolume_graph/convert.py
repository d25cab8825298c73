"""`autolume-graph convert SOURCE TARGET`: any model file we read, written as our safe format.

Big pickles take a while (a 300 MB snapshot: seconds per phase), so for files from `PROGRESS_FROM`
bytes each phase prints one line on stderr with what it works on: reading (the file's size), the
network built (its size), writing.
Bad input is a ModelFileError / UserError, which the CLI prints as one line with exit status 2; an
existing TARGET is never replaced.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autolume_graph.errors import UserError

PROGRESS_FROM = 32 << 20  # smaller files convert in about a second: no progress lines


def _size(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MB"


class _Progress:
    """Phase lines on stderr, each stamped with the seconds since the command started; silent when not `shown`."""

    def __init__(self, shown: bool) -> None:
        self.start = time.monotonic()
        self.shown = shown

    def phase(self, text: str) -> None:
        if self.shown:
            print(f"convert: [{time.monotonic() - self.start:5.1f} s] {text}", file=sys.stderr, flush=True)


def cmd_convert(args: argparse.Namespace) -> int:
    """Read `args.source` (as `load_model` does: nothing in it runs), write `args.target` in our format."""
    from autolume_graph.gan.loader import load_model
    from autolume_graph.gan.safe_format import SUFFIX, save_model

    source, target = Path(args.source), Path(args.target)
    if target.suffix != SUFFIX:
        raise UserError(f"{target}: our model files end in {SUFFIX}")
    if target.exists():
        raise UserError(f"{target}: exists; convert never replaces a file (remove it or pick another name)")
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such folder")
    size = source.stat().st_size if source.is_file() else 0
    progress = _Progress(size >= PROGRESS_FROM)
    progress.phase(f"reading {source} ({_size(size)})")
    model = load_model(source, network=args.network, cache=False)  # the file written is the copy
    if model.load_note:
        print(f"autolume-graph: note: {model.load_note}", file=sys.stderr)
    weights = sum(t.numel() * 4 for t in model.state_dict().values())
    height, width = model.img_size
    progress.phase(f"built {model.family} {width}x{height}, {_size(weights)} of float32 weights")
    written = save_model(model, target, overwrite=False)  # a file that appeared meanwhile is not replaced either
    progress.phase(f"wrote {written} ({_size(written.stat().st_size)})")
    print(written)
    return 0
