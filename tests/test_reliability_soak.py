"""Promise 6: `autolume-graph run` with random OSC parameter changes: no exception, RSS growth under 5%.
1,500 frames here ($AUTOLUME_SOAK_FRAMES); `benchmarks/soak.py` runs the same code for 20,000."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from soak import soak  # noqa: E402

FRAMES = int(os.environ.get("AUTOLUME_SOAK_FRAMES", "1500"))


def test_soak_with_random_osc_changes(reference_dir: Path) -> None:
    result = soak(reference_dir, FRAMES)
    assert result["returncode"] == 0, result["stderr"]
    assert "Traceback" not in result["stderr"] and "error" not in result["stderr"].lower(), result["stderr"]
    assert result["growth"] < 0.05, result
