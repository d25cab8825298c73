"""Live audio from an input device, for AudioIn: what arrived since the last frame, as an AudioSpan.

The PortAudio stream runs in a capture process (capture_process.py says why) whose callback writes
each block into a SharedRing with its arrival time. A supervisor thread here opens, watches and
replaces that process: a bad device name, a device that vanishes or a server that dies becomes a
one-line `problem` and a retry, never a wait on the render thread. The render thread only copies
from the ring (at most the last MAX_SPAN_S seconds), and gets silence while there is no stream.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autolume_graph import device_lists
from autolume_graph.audio.file_source import AudioSpan
from autolume_graph.audio.shared_ring import SharedRing

KIND = "audio in"  # the DeviceName kind of input devices
MAX_SPAN_S = 0.5  # the most audio one frame hands on (a stalled frame skips the rest)
STALL_S = 1.0  # a stream that delivers nothing for this long is taken for dead (its server stopped)
RETRY_S = (1.0, 2.0, 4.0, 8.0)  # waits before each retry after a failure, the last one repeated
ANSWER_S = 10.0  # a capture process that says nothing for this long is killed
SILENCE_RATE = 48000  # the rate of the silence sent before any stream opened
_ONE_AT_A_TIME = threading.Lock()
"""Held while a capture process starts, lists or ends: a JACK client opening while another leaves the
server could stall (seen on jackd2's dummy driver), so one comes only once the last has gone."""


@dataclass(frozen=True)
class Wanted:
    """What the node asks for; any change (a rescan included) opens the stream afresh."""

    device: str = ""
    block: int = 0  # frames per callback, 0: the host's own
    enabled: bool = True
    rescans: int = 0


@dataclass(frozen=True)
class Opened:
    """What the capture process opened: the device's stable name, rate, channels, and blocks asked for."""

    device: str
    rate: int
    channels: int
    block: int


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autolume_graph.audio.capture_process", *args]


def _environment() -> dict[str, str]:
    """The parent's environment, with this package importable wherever the child starts."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(_command(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=_environment(), start_new_session=True)


def _answer(process: subprocess.Popen, timeout: float) -> dict:
    """The process's one JSON line, or {"error": ...} when it says nothing in `timeout` (it is then killed)."""
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), name="audio-in-answer",
                     daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        return {"error": f"the audio device did not answer in {timeout:g} s"}
    try:
        return json.loads(line) if line else {"error": "the capture process ended without a word"}
    except ValueError:
        return {"error": "the capture process sent something unreadable"}


def list_inputs() -> list[str]:
    """The input-capable devices, by stable name ("system (JACK Audio Connection Kit)"), scanned afresh."""
    with _ONE_AT_A_TIME:
        process = _spawn("--list")
        try:
            answer = _answer(process, ANSWER_S)
        finally:
            process.stdin.close()
            process.wait(timeout=5)
    if "error" in answer:
        raise RuntimeError(answer["error"])
    if not answer["devices"]:
        raise LookupError("no audio input found (is the audio server, e.g. JACK, running?)")
    return list(answer["devices"])


device_lists.register(KIND, list_inputs)


class LiveSource:
    """One input stream, kept open as `want` says; `take` and `want` never block."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._wanted = Wanted(enabled=False)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ring: SharedRing | None = None  # swapped whole by the supervisor; the render thread reads it once
        self.opened: Opened | None = None
        self.problem = ""  # why no audio comes ("" while it does)
        self._reading: SharedRing | None = None
        self._read = 0
        self.last_read = (0, 0)  # the frames [start, end) of the ring the last `take` handed on

    # --- the render thread ---------------------------------------------------------------------------
    def want(self, wanted: Wanted) -> None:
        """Ask for a stream (or none: `enabled` off); the supervisor acts on a change."""
        if wanted == self._wanted:
            return
        with self._changed:
            self._wanted = wanted
            self._changed.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name="audio-in", daemon=True)
            self._thread.start()

    def take(self, channel: int, seconds: float) -> AudioSpan:
        """The samples that arrived since the last take (channel 1..N, 0: the mix of all), at most MAX_SPAN_S;
        `seconds` of silence while no stream delivers."""
        ring = self._ring
        if ring is None:
            rate = self.opened.rate if self.opened else SILENCE_RATE
            count = int(round(min(max(seconds, 0.0), MAX_SPAN_S) * rate))
            self._reading = None
            return AudioSpan(np.zeros(count, np.float32), rate, 0.0)
        restarted = ring is not self._reading
        written = ring.written
        start = max(0 if restarted else self._read, written - int(MAX_SPAN_S * ring.rate))
        frames = ring.read(start, written)
        samples = frames.mean(axis=1) if channel <= 0 else frames[:, min(channel, ring.channels) - 1]
        self._reading, self._read, self.last_read = ring, written, (start, written)
        return AudioSpan(np.ascontiguousarray(samples, np.float32), ring.rate, written / ring.rate, restarted)

    def arrival(self, count: int) -> float | None:
        """When (time.monotonic) the block holding frame `count` of the current stream arrived."""
        ring = self._ring
        return ring.arrival(count) if ring is not None else None

    def block_frames(self) -> int:
        """The frames of the latest block delivered (0 before any)."""
        ring = self._ring
        return ring.block_frames() if ring is not None else 0

    def dropouts(self) -> int:
        """How often the host lost input on the current stream (a machine too busy for its audio)."""
        ring = self._ring
        return ring.dropouts if ring is not None else 0

    def close(self) -> None:
        """Let the stream go (the supervisor ends its process off this thread)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # --- the supervisor thread -----------------------------------------------------------------------
    def _supervise(self) -> None:
        process: subprocess.Popen | None = None
        running: Wanted | None = None
        retries, retry_at = 0, 0.0
        seen, seen_at = -1, 0.0
        while True:
            with self._changed:
                self._changed.wait_for(lambda held=running: self._closed or self._wanted != held, timeout=0.25)
                closed, wanted = self._closed, self._wanted
            now = time.monotonic()
            if process is not None and (closed or wanted != running):
                self._let_go(process)
                process = None
            if closed:
                return
            if wanted != running:
                running, retries, retry_at = wanted, 0, 0.0
                if not wanted.enabled:
                    self.problem, self.opened = "", None
            if process is None and wanted.enabled and now >= retry_at:
                process = self._open(wanted)
                seen, seen_at = -1, now
                if process is None:
                    retry_at = now + RETRY_S[min(retries, len(RETRY_S) - 1)]
                    retries += 1
                continue
            if process is None:
                continue
            ring = self._ring
            written = ring.written if ring is not None else -1
            if written != seen:
                seen, seen_at, retries = written, now, 0
                self.problem = ""
            elif now - seen_at > STALL_S or process.poll() is not None:
                device = self.opened.device if self.opened else wanted.device or "the default input"
                self.problem = f"no audio from {device} for {now - seen_at:.0f} s (did its server stop?)"
                self._let_go(process)
                process = None
                retry_at = now + RETRY_S[min(retries, len(RETRY_S) - 1)]
                retries += 1

    def _open(self, wanted: Wanted) -> subprocess.Popen | None:
        """A capture process streaming `wanted`, its ring attached; None (and `problem` set) when it fails."""
        with _ONE_AT_A_TIME:
            process = _spawn("--open", wanted.device, "--block", str(wanted.block))
            answer = _answer(process, ANSWER_S)
        if "ring" not in answer:
            self._let_go(process)
            self.problem = answer.get("error", "the capture process said something unexpected")
            return None
        path = Path(answer["ring"])
        try:
            ring = SharedRing.attach(path)
        except OSError as exc:
            self._let_go(process)
            self.problem = f"cannot read the captured audio ({exc})"
            return None
        finally:
            path.unlink(missing_ok=True)
        self.opened = Opened(answer["device"], answer["rate"], answer["channels"], answer["block"])
        self._ring = ring
        return process

    def _let_go(self, process: subprocess.Popen) -> None:
        """End a capture process: its stdin closes (it leaves the server and exits), killed if it has not in 2 s."""
        self._ring = None
        with _ONE_AT_A_TIME:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)
