"""Port types and the rule for which output may feed which input."""

from __future__ import annotations

from enum import Enum


class PortType(str, Enum):
    """What travels along a wire."""

    MODEL = "model"
    Z = "z"
    W = "w"
    IMAGE = "image"
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    TRIGGER = "trigger"
    VECTORS = "vectors"
    EDITS = "edits"
    STRING = "string"
    ANY = "any"


_NUMERIC = {PortType.FLOAT, PortType.INT, PortType.BOOL, PortType.TRIGGER}


def can_connect(source: PortType, target: PortType) -> bool:
    """Numbers convert into one another (like CHOP channels); every other type only into itself or ANY."""
    if target is PortType.ANY or source is PortType.ANY or source is target:
        return True
    return source in _NUMERIC and target in _NUMERIC
