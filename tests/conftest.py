"""Shared fixtures: where the reference test vectors live."""

from __future__ import annotations

import os
import subprocess
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


@pytest.fixture(autouse=True)
def _own_workspace(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes recordings, vectors, presets and mixes into a folder of its own, never the repo, and
    has a model cache of its own (no test loads what an earlier one converted)."""
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path_factory.mktemp("workspace")))
    monkeypatch.setenv("AUTOLUME_MODEL_CACHE", str(tmp_path_factory.mktemp("model_cache")))


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 200 KiB tmpfs to fill (needs root); skipped with the reason where mount fails."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill: {' '.join(result.stderr.split())}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def ndi():
    """The NDI runtime, or the test skips with the reason it cannot load here."""
    from autolume_graph.outputs.errors import OutputError
    from autolume_graph.outputs.ndi import load_runtime

    try:
        return load_runtime()
    except OutputError as exc:
        pytest.skip(str(exc))
