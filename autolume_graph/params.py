"""Parameter declarations: one place that says type, default, range, unit and doc.

The editor draws widgets from these, the OSC layer derives addresses, ranges and
coercion from them, the serializer keys values by their names. Parameter types are open:
a ParamKind carries a type's coercion, wire type, OSCQuery type and editor widget kind, so
a new one is a ParamKind plus a constructor in the file of the nodes that use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from autolume_graph.types import PortType, WireType


class ParamError(ValueError):
    """A value that a parameter cannot take; the message is one line."""


GENERIC_LIMIT = 1.0e6
"""The hard bound of a number parameter that declares none: finite float32 work, whatever comes in."""


Coerce = Callable[["Param", Any], Any]


@dataclass(frozen=True, eq=False)
class ParamKind:
    """One parameter type, declared once with what every layer needs of it.

    `coerce(param, value)` converts a value (raising ParamError); `wire` is the wire type of the port
    a parameter of this kind exposes; `osc_type` is its OSCQuery value type ("float", "int", "bool",
    "str", "trigger"; "" for none: not addressable over OSC); `osc_text`: a text OSC argument is the
    value itself, not mapped; `widget` names the editor widget kind the UI builds ("" for none);
    `bound_by_default`: whether OSC binds it unless the user says so; `number`: a ranged number
    (`hard_range` holds, docs list its limit). Declaring a kind registers it in PARAM_TYPES.
    """

    name: str
    coerce: Coerce
    wire: WireType
    osc_type: str = ""
    osc_text: bool = False
    widget: str = ""
    bound_by_default: bool = True
    number: bool = False

    def __post_init__(self) -> None:
        PARAM_TYPES[self.name] = self


PARAM_TYPES: dict[str, ParamKind] = {}
"""Every declared parameter type by name: the engine's below and any a node file declares."""


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _unchanged(param: Param, value: Any) -> Any:
    return value


def _text(param: Param, value: Any) -> str:
    value = _plain(value)
    if not isinstance(value, str):
        raise ParamError(f"expected text, got {type(value).__name__}")
    return value


def _choice(param: Param, value: Any) -> str:
    value = _plain(value)
    if isinstance(value, str) and value in param.choices:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return param.choices[min(max(int(round(value)), 0), len(param.choices) - 1)]
    raise ParamError(f"expected one of {', '.join(param.choices)}, got {value!r}")


def finite_number(value: Any) -> float | int | bool:
    """`value` as a finite Python number (numpy scalars unwrapped), else ParamError."""
    value = _plain(value)
    if isinstance(value, str) or not isinstance(value, (int, float, bool)):
        raise ParamError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ParamError("expected a finite number")
    return value


def _switch(param: Param, value: Any) -> bool:
    value = finite_number(value)
    return bool(value >= 0.5) if not isinstance(value, bool) else value


def _clipped(param: Param, value: Any) -> float:
    low, high = param.hard_range
    return min(max(float(finite_number(value)), low), high)


def _whole(param: Param, value: Any) -> int:
    return int(round(_clipped(param, value)))


class ParamType:
    """The engine's parameter types; a node file may declare more (a ParamKind and a constructor)."""

    FLOAT = ParamKind("float", _clipped, PortType.FLOAT, "float", widget="float", number=True)
    INT = ParamKind("int", _whole, PortType.INT, "int", widget="int", number=True)
    BOOL = ParamKind("bool", _switch, PortType.BOOL, "bool", widget="checkbox")
    TRIGGER = ParamKind("trigger", _switch, PortType.TRIGGER, "trigger", widget="button")
    CHOICE = ParamKind("choice", _choice, PortType.STRING, "str", osc_text=True, widget="combo")
    STRING = ParamKind("string", _text, PortType.STRING, "str", osc_text=True, widget="text")
    PATH = ParamKind("path", _text, PortType.STRING, "str", osc_text=True, widget="file", bound_by_default=False)
    DEVICE = ParamKind("device", _text, PortType.STRING, "str", osc_text=True, widget="device", bound_by_default=False)
    DATA = ParamKind("data", _unchanged, PortType.ANY)


@dataclass(frozen=True)
class Param:
    """A declared parameter. `min`/`max` are the UI range; `clip` says whether values outside are clipped.

    `limit` is the hard range that holds everywhere (editor, OSC, MIDI, wires, files) for parameters
    that go past their UI range (`clip=False`); without one they are held to +-GENERIC_LIMIT. A
    parameter whose value costs work (counts, kernel sizes) must declare a limit it can afford.
    `writes` marks a parameter that names a file to write or triggers a write: like every path, it
    is not bound to OSC unless the user binds it. `every_write`: setting it to the value it already
    holds still counts as a change (a performer resending a seed to jump back to it).
    """

    type: ParamKind
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    unit: str = ""
    clip: bool = True
    choices: tuple[str, ...] = ()
    resets: bool = False
    file_kind: str = ""
    device_kind: str = ""
    limit: tuple[float, float] | None = None
    writes: bool = False
    every_write: bool = False

    @property
    def port_type(self) -> WireType:
        return self.type.wire

    @property
    def osc_addressable(self) -> bool:
        return bool(self.type.osc_type)

    @property
    def bound_by_default(self) -> bool:
        """Whether the default OSC binding is on: never for paths or parameters that write files."""
        return self.osc_addressable and self.type.bound_by_default and not self.writes

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
        return self.type.coerce(self, value)


def Float(default: float, min: float | None = None, max: float | None = None, *, doc: str = "",
          unit: str = "", clip: bool = True, resets: bool = False, limit: tuple[float, float] | None = None,
          every_write: bool = False) -> Param:
    return Param(ParamType.FLOAT, float(default), doc, min, max, unit, clip, resets=resets, limit=limit,
                 every_write=every_write)


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


def DeviceName(default: str = "", *, kind: str, doc: str = "", resets: bool = False) -> Param:
    """The name of a device of `kind` (an audio input, a MIDI port); the editor lists what
    autolume_graph/device_lists.py finds, a name typed by hand or read from a file is kept as it is."""
    return Param(ParamType.DEVICE, default, doc, resets=resets, device_kind=kind)


def Data(default: Any = None, *, doc: str = "", resets: bool = False) -> Param:
    """Structured state that is saved with the graph but not addressable over OSC (keyframes, vectors)."""
    return Param(ParamType.DATA, default, doc, resets=resets)


MAX_ADDRESS = 256
_ADDRESS_RESERVED = set(" #*,?[]{}")  # OSC pattern and type-tag characters, and spaces


def address_problem(address: str) -> str | None:
    """Why `address` cannot be an OSC address a parameter listens on, or None when it can."""
    if not address.startswith("/"):
        return f"OSC address {address!r} must start with /"
    if len(address) > MAX_ADDRESS:
        return f"OSC address is longer than {MAX_ADDRESS} characters"
    bad = sorted(set(address) & _ADDRESS_RESERVED) or [c for c in address if not c.isprintable()][:1]
    if bad:
        return f"OSC address {address!r} may not contain {bad[0]!r}"
    if "//" in address or address.endswith("/"):
        return f"OSC address {address!r} has an empty part"
    return None


@dataclass
class Binding:
    """How an OSC address drives a parameter: the address and a mapping expression in `x`."""

    enabled: bool = False
    address: str = ""
    mapping: str = "x"

    def problem(self) -> str | None:
        """Why this binding cannot listen (its address), or None; a disabled one listens on nothing."""
        return address_problem(self.address) if self.enabled else None

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "address": self.address, "mapping": self.mapping}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binding:
        return cls(bool(data.get("enabled", False)), str(data.get("address", "")), str(data.get("mapping", "x")))


MIDI_KINDS = ("cc", "note", "pitch bend", "aftertouch", "poly aftertouch", "program")
"""The MIDI messages a parameter or a MIDIIn node follows; "pitch bend", "aftertouch" and "program" have no number."""
MIDI_NUMBERED = ("cc", "note", "poly aftertouch")
MAX_PORT_NAME = 256


@dataclass(frozen=True)
class MidiBinding:
    """How a MIDI control drives a parameter: the port ("" = the first one), the channel (0 = any, 1-16), the
    message kind and number, and a mapping in `x`, the control's value as 0..1 (the parameter's range holds)."""

    port: str = ""
    channel: int = 0
    kind: str = "cc"
    number: int = 0
    mapping: str = "x"

    def problem(self) -> str | None:
        """Why this binding cannot listen, or None."""
        if self.kind not in MIDI_KINDS:
            return f"MIDI kind {self.kind!r} is not one of {', '.join(MIDI_KINDS)}"
        if not 0 <= self.channel <= 16:
            return f"MIDI channel {self.channel} is not 0 (any) to 16"
        if not 0 <= self.number <= 127:
            return f"MIDI number {self.number} is not 0 to 127"
        if len(self.port) > MAX_PORT_NAME or not self.port.isprintable():
            return "MIDI port name is too long or not printable"
        return None

    @property
    def label(self) -> str:
        """E.g. "cc 7 ch 1 on knobs" (the editor's line and the monitor's)."""
        number = f" {self.number}" if self.kind in MIDI_NUMBERED else ""
        channel = f" ch {self.channel}" if self.channel else " any ch"
        return f"{self.kind}{number}{channel} on {self.port or 'first port'}"

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "channel": self.channel, "kind": self.kind, "number": self.number,
                "mapping": self.mapping}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MidiBinding:
        """Read a saved binding; a field of the wrong type raises ParamError (the loader drops the binding)."""
        fields = {"port": str, "channel": int, "kind": str, "number": int, "mapping": str}
        values = {name: data.get(name, default) for name, default in cls().to_dict().items()}
        for name, kind in fields.items():
            if type(values[name]) is not kind:
                raise ParamError(f"MIDI binding {name} must be {kind.__name__}, got {values[name]!r}")
        return cls(**values)


def midi_bindable(param: Param) -> bool:
    """Whether a MIDI control can drive `param`: a number, a switch, a trigger or a choice (not text)."""
    return param.type.number or param.type in (ParamType.BOOL, ParamType.TRIGGER, ParamType.CHOICE)


@dataclass(frozen=True)
class Input:
    """A declared input port."""

    type: PortType
    doc: str = ""


@dataclass(frozen=True)
class Output:
    """A declared output port. `in_place`: the node updates the same object in place, so each return of it
    is a change (the engine cannot see one by identity)."""

    type: PortType
    doc: str = ""
    in_place: bool = False


def params_doc(params: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """Declarations as plain data, for `autolume-graph nodes`, OSCQuery and the docs."""
    return {
        name: {k: v for k, v in {
            "type": p.type.name, "default": p.default, "min": p.min, "max": p.max, "unit": p.unit,
            "clip": p.clip, "choices": list(p.choices) or None, "doc": p.doc,
            "limit": list(p.hard_range) if p.type.number and not p.clip else None,
        }.items() if v not in (None, "")}
        for name, p in params.items()
    }


__all__ = ["Binding", "Bool", "Choice", "Data", "FilePath", "Float", "Input", "Int", "MidiBinding", "Output",
           "Param", "ParamError", "ParamKind", "ParamType", "String", "Trigger", "params_doc"]
