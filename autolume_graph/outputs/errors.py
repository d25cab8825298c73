"""The one error type every output sink reports, so nodes can show it as a single line."""

from __future__ import annotations


class OutputError(RuntimeError):
    """An output (NDI, recorder, snapshot) could not do its job; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, for exceptions raised by libraries we wrap."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
