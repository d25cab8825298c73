"""Short "recent" lists (models, preset folders) kept as JSON files; a corrupt file reads as empty."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from autolume_graph.atomic import write_atomic

_lock = threading.Lock()


def read_recent(path: Path, limit: int) -> list[str]:
    """The entries of the list in `path`, newest first."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [str(p) for p in data if isinstance(p, str)][:limit] if isinstance(data, list) else []


def push_recent(path: Path, entry: str | Path, limit: int) -> None:
    """Put `entry` first in the list in `path` (atomic write)."""
    with _lock:
        entries = [str(entry)] + [p for p in read_recent(path, limit) if p != str(entry)]
        write_atomic(path, json.dumps(entries[:limit], indent=1).encode())
