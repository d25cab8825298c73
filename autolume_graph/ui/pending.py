"""Work submitted to the render thread, resolved on the UI thread.

The UI never waits on a future: each UI frame `poll` hands finished results to their callbacks,
so callbacks may touch Dear PyGui, and a refused command's reason reaches the status bar (work
that went through clears an earlier refusal there).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from autolume_graph.commands import Command
from autolume_graph.runtime import Runtime
from autolume_graph.ui.status import StatusBar

Work = Command | Callable[[Runtime], Any]
OnResult = Callable[[Any], None]
OnError = Callable[[BaseException], None]


def reason(exc: BaseException) -> str:
    """The first line of an exception's message (or its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Pending:
    """Futures of submitted work; the status bar shows the reason of each failure without its own handler."""

    def __init__(self, runtime: Runtime, status: StatusBar) -> None:
        self.runtime = runtime
        self.status = status
        self._waiting: list[tuple[Future, OnResult | None, OnError | None]] = []

    def submit(self, work: Work, on_result: OnResult | None = None, on_error: OnError | None = None) -> Future:
        future = self.runtime.submit(work)
        self._waiting.append((future, on_result, on_error))
        return future

    def report(self, message: str) -> None:
        """An error line in the status bar."""
        self.status.error(message)

    def inform(self, message: str) -> None:
        """A confirmation line in the status bar."""
        self.status.inform(message)

    def poll(self) -> None:
        """Run the callbacks of finished work (on the calling, UI, thread)."""
        finished = [entry for entry in self._waiting if entry[0].done()]
        if not finished:
            return
        self._waiting = [entry for entry in self._waiting if entry not in finished]
        for future, on_result, on_error in finished:
            error = future.exception()
            if error is None:
                self.status.succeeded()
                if on_result is not None:
                    on_result(future.result())
            elif on_error is not None:
                on_error(error)
            else:
                self.report(reason(error))
