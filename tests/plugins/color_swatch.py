"""A test-only plugin, loaded like a user's node folder ($AUTOLUME_NODES): one wire type (color), one
parameter type (a hex color) and two node types, all in this one file and nowhere else."""

from __future__ import annotations

import re
from typing import Any

from autolume_graph.node import CookContext, Node
from autolume_graph.params import Input, Output, Param, ParamError, ParamKind, finite_number
from autolume_graph.roles import Role
from autolume_graph.types import WireType

COLOR = WireType("color", "an RGB triple in 0..1")


def _hex(param: Param, value: Any) -> str:
    """"#rrggbb" text as is, a number as that grey, an RGB triple (a color wire) as its hex."""
    if isinstance(value, str):
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ParamError(f"expected #rrggbb, got {value!r}")
        return value.lower()
    channels = value if isinstance(value, (tuple, list)) and len(value) == 3 else (value,) * 3
    return "#" + "".join(f"{round(min(max(float(finite_number(c)), 0.0), 1.0) * 255):02x}" for c in channels)


HEX_COLOR = ParamKind("hex color", _hex, COLOR, osc_type="str", osc_text=True, widget="text")


def HexColor(default: str, *, doc: str = "") -> Param:
    return Param(HEX_COLOR, default, doc)


def rgb(hex_color: str) -> tuple[float, float, float]:
    return tuple(int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))


class Swatch(Node):
    """Puts its color on a color wire; the color parameter takes a color wire too."""

    params = {"color": HexColor("#ff8000", doc="the color")}
    outputs = {"rgb": Output(COLOR, "the color as RGB")}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"rgb": rgb(params["color"])}


class SwatchSink(Node):
    """Keeps the last color it was given; a sink, so it pulls on its input each frame."""

    roles = frozenset({Role.SINK})
    inputs = {"rgb": Input(COLOR, "the color to keep")}

    def reset(self) -> None:
        self.received: tuple[float, float, float] | None = None

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.received = inputs.get("rgb")
        return {}
