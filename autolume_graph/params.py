"""Parameter declarations: one place that says type, default, range, unit and doc.

The editor draws widgets from these, the OSC layer derives addresses, ranges and
coercion from them, the serializer keys values by their names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from autolume_graph.types import PortType


class ParamError(ValueError):
    """A value that a parameter cannot take; the message is one line."""


GENERIC_LIMIT = 1.0e6
"""The hard bound of a number parameter that declares none: finite float32 work, whatever comes in."""


class ParamType(str, Enum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    TRIGGER = "trigger"
    CHOICE = "choice"
    STRING = "string"
    PATH = "path"
    DATA = "data"


_PORT_OF = {
    ParamType.FLOAT: PortType.FLOAT,
    ParamType.INT: PortType.INT,
    ParamType.BOOL: PortType.BOOL,
    ParamType.TRIGGER: PortType.TRIGGER,
    ParamType.CHOICE: PortType.STRING,
    ParamType.STRING: PortType.STRING,
    ParamType.PATH: PortType.STRING,
    ParamType.DATA: PortType.ANY,
}


@dataclass(frozen=True)
class Param:
    """A declared parameter. `min`/`max` are the UI range; `clip` says whether values outside are clipped.

    `limit` is the hard range that holds everywhere (editor, OSC, MIDI, wires, files) for parameters
    that go past their UI range (`clip=False`); without one they are held to +-GENERIC_LIMIT. A
    parameter whose value costs work (counts, kernel sizes) must declare a limit it can afford.
    `writes` marks a parameter that names a file to write or triggers a write: like every path, it
    is not bound to OSC unless the user binds it.
    """

    type: ParamType
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    unit: str = ""
    clip: bool = True
    choices: tuple[str, ...] = ()
    resets: bool = False
    file_kind: str = ""
    limit: tuple[float, float] | None = None
    writes: bool = False

    @property
    def port_type(self) -> PortType:
        return _PORT_OF[self.type]

    @property
    def osc_addressable(self) -> bool:
        return self.type is not ParamType.DATA

    @property
    def bound_by_default(self) -> bool:
        """Whether the default OSC binding is on: never for paths or parameters that write files."""
        return self.osc_addressable and self.type is not ParamType.PATH and not self.writes

    @property
    def hard_range(self) -> tuple[float, float]:
        """The range a number is clipped to wherever it comes from."""
        if self.clip and self.min is not None and self.max is not None:
            return float(self.min), float(self.max)
        low, high = self.limit if self.limit is not None else (-GENERIC_LIMIT, GENERIC_LIMIT)
        if self.clip:
            low = low if self.min is None else max(low, float(self.min))
            high = high if self.max is None else min(high, float(self.max))
        return float(low), float(high)

    def coerce(self, value: Any) -> Any:
        """Convert `value` to this parameter's type, clipped where the range says so."""
        if self.type is ParamType.DATA:
            return value
        if isinstance(value, np.generic):
            value = value.item()
        if self.type in (ParamType.STRING, ParamType.PATH):
            if not isinstance(value, str):
                raise ParamError(f"expected text, got {type(value).__name__}")
            return value
        if self.type is ParamType.CHOICE:
            if isinstance(value, str) and value in self.choices:
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return self.choices[min(max(int(round(value)), 0), len(self.choices) - 1)]
            raise ParamError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, str) or not isinstance(value, (int, float, bool)):
            raise ParamError(f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ParamError("expected a finite number")
        if self.type in (ParamType.BOOL, ParamType.TRIGGER):
            return bool(value >= 0.5) if not isinstance(value, bool) else value
        low, high = self.hard_range
        number = min(max(float(value), low), high)
        return int(round(number)) if self.type is ParamType.INT else number


def Float(default: float, min: float | None = None, max: float | None = None, *, doc: str = "",
          unit: str = "", clip: bool = True, resets: bool = False, limit: tuple[float, float] | None = None
          ) -> Param:
    return Param(ParamType.FLOAT, float(default), doc, min, max, unit, clip, resets=resets, limit=limit)


def Int(default: int, min: int | None = None, max: int | None = None, *, doc: str = "",
        unit: str = "", clip: bool = True, resets: bool = False, limit: tuple[float, float] | None = None
        ) -> Param:
    return Param(ParamType.INT, int(default), doc, min, max, unit, clip, resets=resets, limit=limit)


def Bool(default: bool, *, doc: str = "", resets: bool = False, writes: bool = False) -> Param:
    return Param(ParamType.BOOL, bool(default), doc, 0, 1, resets=resets, writes=writes)


def Trigger(*, doc: str = "", writes: bool = False) -> Param:
    """Fires for one cook when set true, then reads false again; `writes`: it writes a file when it fires."""
    return Param(ParamType.TRIGGER, False, doc, 0, 1, writes=writes)


def Choice(default: str, choices: tuple[str, ...], *, doc: str = "", resets: bool = False) -> Param:
    return Param(ParamType.CHOICE, default, doc, 0, len(choices) - 1, choices=choices, resets=resets)


def String(default: str = "", *, doc: str = "", resets: bool = False, writes: bool = False) -> Param:
    return Param(ParamType.STRING, default, doc, resets=resets, writes=writes)


def FilePath(default: str = "", *, kind: str, doc: str = "", resets: bool = False, writes: bool = False) -> Param:
    return Param(ParamType.PATH, default, doc, resets=resets, file_kind=kind, writes=writes)


def Data(default: Any = None, *, doc: str = "", resets: bool = False) -> Param:
    """Structured state that is saved with the graph but not addressable over OSC (keyframes, vectors)."""
    return Param(ParamType.DATA, default, doc, resets=resets)


@dataclass
class Binding:
    """How an OSC address drives a parameter: the address and a mapping expression in `x`."""

    enabled: bool = False
    address: str = ""
    mapping: str = "x"

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "address": self.address, "mapping": self.mapping}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binding:
        return cls(bool(data.get("enabled", False)), str(data.get("address", "")), str(data.get("mapping", "x")))


@dataclass(frozen=True)
class Input:
    """A declared input port."""

    type: PortType
    doc: str = ""


@dataclass(frozen=True)
class Output:
    """A declared output port."""

    type: PortType
    doc: str = ""


def params_doc(params: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """Declarations as plain data, for `autolume-graph nodes`, OSCQuery and the docs."""
    return {
        name: {k: v for k, v in {
            "type": p.type.value, "default": p.default, "min": p.min, "max": p.max, "unit": p.unit,
            "clip": p.clip, "choices": list(p.choices) or None, "doc": p.doc,
            "limit": list(p.hard_range) if p.type in (ParamType.FLOAT, ParamType.INT) and not p.clip else None,
        }.items() if v not in (None, "")}
        for name, p in params.items()
    }


__all__ = ["Binding", "Bool", "Choice", "Data", "FilePath", "Float", "Input", "Int", "Output", "Param",
           "ParamError", "ParamType", "String", "Trigger", "params_doc"]
