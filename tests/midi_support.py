"""A real MIDI controller for the MIDI tests: a python-rtmidi virtual output port on the test's JACK server."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

_names = itertools.count()


class Controller:
    """A JACK MIDI output port other clients read from, as a hardware controller's port would be."""

    def __init__(self, client: str | None = None, port: str = "knobs") -> None:
        import rtmidi

        self.client = client or f"agtest{os.getpid()}x{next(_names)}"
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, self.client)
        self.out.open_virtual_port(port)
        self.name = f"{self.client}:{port}"

    def send(self, *data: int) -> None:
        self.out.send_message(list(data))

    def cc(self, number: int, value: int, channel: int = 1) -> None:
        self.send(0xB0 | (channel - 1), number, value)

    def note(self, note: int, velocity: int, channel: int = 1) -> None:
        self.send((0x90 if velocity else 0x80) | (channel - 1), note, velocity)

    def close(self) -> None:
        """Unplug (once: rtmidi crashes on a second delete)."""
        out, self.out = self.out, None
        if out is not None:
            out.close_port()
            out.delete()


def step_until(step: Callable[[], object], done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Make frames until `done()` (a generous bound: ports open within a poll, messages within a period)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step()
        if done():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")
