"""Shared fixtures: where the reference test vectors live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _reference_dir() -> Path | None:
    env = os.environ.get("AUTOLUME_REFERENCE")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "reference")
    return next((p for p in candidates if (p / "README.md").exists()), None)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """`../shared/reference` (or $AUTOLUME_REFERENCE); skipped where absent, fatal under CI."""
    found = _reference_dir()
    if found is None:
        if os.environ.get("AUTOLUME_REQUIRE_REFERENCE") == "1":
            pytest.fail("reference vectors not found beside the repo nor in $AUTOLUME_REFERENCE")
        pytest.skip("reference vectors not found (../shared/reference or $AUTOLUME_REFERENCE)")
    return found
