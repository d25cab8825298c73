"""The program's cache folder: the default model, converted models, built CPU kernels, recent files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$AUTOLUME_CACHE`, else `~/.cache/autolume-graph` (created)."""
    path = Path(os.environ.get("AUTOLUME_CACHE") or Path.home() / ".cache" / "autolume-graph")
    path.mkdir(parents=True, exist_ok=True)
    return path
