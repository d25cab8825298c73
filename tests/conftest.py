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


def _missing(reason: str) -> None:
    """A real part this machine lacks: skipped with the reason, fatal under CI (which installs it)."""
    if os.environ.get("AUTOLUME_CI") == "1":
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def jack_server():
    """A real JACK server on its dummy driver (no sound card needed): 48 kHz, 256-frame periods, named for this
    run and made the default for the process ($JACK_DEFAULT_SERVER), so PortAudio and RtMidi clients reach it.

    Yields the server's name; stopped at the end of the session."""
    import shutil
    import time

    jackd = shutil.which("jackd")
    if jackd is None:
        _missing("jackd not found (Debian: apt install jackd2)")
    name = f"autolume-test-{os.getpid()}"
    process = subprocess.Popen([jackd, "--no-realtime", "-S", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ.setdefault("JACK_NO_START_SERVER", "1")  # a client never starts a server of its own
    try:
        import jack  # JACK-Client: only to see the server answer

        deadline = time.monotonic() + 10.0
        while True:
            try:
                jack.Client("autolume-test-probe", no_start_server=True, servername=name).close()
                break
            except jack.JackOpenError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _, err = process.communicate(timeout=5) if process.poll() is not None else ("", "timed out")
                    _missing(f"jackd did not start: {' '.join((err or '').split())[:300]}")
                time.sleep(0.1)
        yield name
    finally:
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def receiver():
    """A UDP socket on 127.0.0.1 (any free port) for what the nodes send out over OSC."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    yield sock
    sock.close()
