"""Wire types: what travels along a wire, and which output may feed which input.

The set is open: a layer declares its own wire types where its nodes live (the GAN layer's model,
latent, w and edits wires are in autolume_graph/gan/wires.py), and declaring one registers it.
The engine declares only the generic ones, on `PortType`.
"""

from __future__ import annotations

from dataclasses import dataclass

WIRE_TYPES: dict[str, WireType] = {}
"""Every declared wire type by name: the engine's, the GAN layer's, a user node file's."""


@dataclass(frozen=True)
class WireType:
    """One kind of value on a wire; it holds its own rule for what it accepts.

    `family`: wire types of one family convert into one another (numbers, like CHOP channels).
    `wildcard`: connects to and from every type (ANY).
    """

    name: str
    doc: str = ""
    family: str = ""
    wildcard: bool = False

    def __post_init__(self) -> None:
        known = WIRE_TYPES.setdefault(self.name, self)
        if known != self:
            raise ValueError(f"wire type {self.name!r} is already declared differently: {known}")

    def accepts(self, source: WireType) -> bool:
        """Whether an output of type `source` may feed an input of this type."""
        if self.wildcard or source.wildcard or source == self:
            return True
        return bool(self.family) and source.family == self.family


def wire_type(name: str) -> WireType:
    """The declared wire type called `name`."""
    try:
        return WIRE_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown wire type {name!r} (declared: {', '.join(sorted(WIRE_TYPES))})") from None


class PortType:
    """The engine's generic wire types; other layers declare theirs beside their nodes."""

    IMAGE = WireType("image", "a picture, [1, C, H, W] in [-1, 1]")
    FLOAT = WireType("float", "a number", family="number")
    INT = WireType("int", "a whole number", family="number")
    BOOL = WireType("bool", "on or off", family="number")
    TRIGGER = WireType("trigger", "fires for one cook", family="number")
    STRING = WireType("string", "text")
    ANY = WireType("any", "whatever the node makes of it", wildcard=True)


def can_connect(source: WireType, target: WireType) -> bool:
    """The target's rule decides (numbers convert into one another; every other type only into itself or ANY)."""
    return target.accepts(source)
