"""Ctrl+C (SIGINT) and SIGTERM as an orderly stop, and the exit status each one ends a command with.

Why: a signal's default action either kills the process at once (SIGTERM: outputs unfinished, a
video without its index) or raises KeyboardInterrupt at an arbitrary point of a frame. Outside a
show (`interrupting`) both signals raise `Stopped` in the main thread, so every `finally` runs and
outputs are discarded by their owners. During a show (`StopRequest`) a signal only asks the frame
loop to stop after its current frame; the show then finishes its outputs as on a normal end. A
second signal while stopping ends the process at once (outputs may then be unfinished; their
temporary files are removed on the next start).

Exit status of `run`: 0 on a normal end and on SIGTERM (an orderly stop asked for by a supervisor),
130 on SIGINT (128 + 2, the shell's convention for Ctrl+C). Other commands stopped by a signal end
with 130 (SIGINT) or 143 (SIGTERM): their work is incomplete.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], object] | int | None


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM outside a show. A KeyboardInterrupt, so that whatever
    lets Ctrl+C through (`except Exception`, the runtime's `except KeyboardInterrupt: raise`) lets it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupted_status(signum: int) -> int:
    """128 + the signal number: how a command that did not finish its work ends."""
    return 128 + signum


def show_status(signum: int | None) -> int:
    """How `run` ends: 0 on a normal end or SIGTERM, 130 on SIGINT."""
    return interrupted_status(signum) if signum == signal.SIGINT else 0


@contextmanager
def _handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """`handler` for SIGINT and SIGTERM while inside; the previous ones after. Only the main thread can
    install handlers: elsewhere (a command run from a test thread) the signals keep theirs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Handler] = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def interrupting() -> AbstractContextManager[None]:
    """While inside, SIGINT and SIGTERM raise `Stopped` in the main thread."""
    return _handlers(_raise_stopped)


class StopRequest:
    """While `active`, SIGINT and SIGTERM set `requested` and record `signum`. Until `defer` they also
    raise `Stopped` (nothing to finish yet: preparing may wait minutes on a model); after it, the frame
    loop sees the request between frames. A second signal ends the process at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signum: int | None = None
        self._deferred = False

    def active(self) -> AbstractContextManager[None]:
        return _handlers(self._handle)

    def defer(self) -> None:
        """From now on a signal only sets `requested`."""
        self._deferred = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():  # asked again while stopping: the user will not wait
            os._exit(interrupted_status(signum))
        self.signum = signum
        self.requested.set()
        if not self._deferred:
            raise Stopped(signum)
