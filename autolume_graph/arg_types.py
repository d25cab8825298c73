"""Argument types for the command line: each turns a mistaken value into one line, before any work starts.

argparse calls a type with the text given; an `argparse.ArgumentTypeError` becomes
`autolume-graph CMD: argument --NAME: <reason>` and exit status 2 (see `cli.OneLineParser`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

PORT_MAX = 65535


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def integer_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An integer from `low` to `high` (None: no upper bound); `what` names the range in the message."""

    def parse(text: str) -> int:
        value = _integer(text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not {what}")
        return value

    return parse


def number_in(low: float, high: float, what: str, low_open: bool = False) -> Callable[[str], float]:
    """A finite number from `low` to `high` (`low_open`: above `low`); `what` names the range."""

    def parse(text: str) -> float:
        value = _number(text)
        if value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value

    return parse


def finite(text: str) -> float:
    """Any finite number (nan and inf refused)."""
    return _number(text)


def allow_list(text: str) -> str:
    """`CIDR[,CIDR...]` as given, once every part is a network or an address."""
    from autolume_graph.osc.allow import parse_allow

    try:
        parse_allow(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seed(text: str) -> int:
    """A seed NumPy's RandomState takes (imported here: it brings torch, which only `generate` needs)."""
    from autolume_graph.gan.generate import SEED_MAX

    return integer_in(0, SEED_MAX, f"a seed (0 to {SEED_MAX})")(text)


def live_rate(text: str) -> float:
    """A frame rate for a show: 0 (unlimited) up to the runtime's bound."""
    from autolume_graph.runtime import MAX_FPS

    return number_in(0.0, MAX_FPS, f"a frame rate (0: unlimited, else up to {MAX_FPS:g})")(text)


def rate(text: str) -> float:
    """A frame rate for a video: above 0, up to the runtime's bound."""
    from autolume_graph.runtime import MAX_FPS

    return number_in(0.0, MAX_FPS, f"a frame rate (above 0, up to {MAX_FPS:g})", low_open=True)(text)


port = integer_in(0, PORT_MAX, f"a port (0 to {PORT_MAX}; 0: any free one)")
count = integer_in(0, None, "a count (0 or more)")
positive_count = integer_in(1, None, "a count (1 or more)")
duration = number_in(0.0, math.inf, "a duration in seconds (above 0)", low_open=True)
