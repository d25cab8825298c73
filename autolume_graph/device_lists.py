"""What devices of each kind this machine has (audio inputs, MIDI ports), for choosers in the editor.

A layer registers a lister for its kind where its nodes live; `available` calls it off the render thread
(the editor asks when a chooser opens) and turns any failure into an empty list and the reason, so a
missing driver or server never breaks the editor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Lister = Callable[[], list[str]]
_LISTERS: dict[str, Lister] = {}


@dataclass(frozen=True)
class DeviceList:
    names: tuple[str, ...]
    problem: str = ""  # why the list is empty or partial ("" when it is not)


def register(kind: str, lister: Lister) -> None:
    """Declare how to list the devices of `kind` (a DeviceName parameter's `kind`)."""
    _LISTERS[kind] = lister


def available(kind: str) -> DeviceList:
    """The devices of `kind` found now; a lister that fails gives none and its one-line reason."""
    lister = _LISTERS.get(kind)
    if lister is None:
        return DeviceList((), f"no device list for {kind!r}")
    try:
        return DeviceList(tuple(lister()))
    except Exception as exc:  # noqa: BLE001 - a driver's failure is shown, never raised into the editor
        text = str(exc).strip().splitlines()
        return DeviceList((), text[0] if text else type(exc).__name__)
