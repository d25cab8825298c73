"""Blend: mix two image wires, as a VJ mixes two decks (two generator chains crossfaded live)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from autolume_graph.image_ops import from_unit, resize, rgb_image, size_text, to_unit, wired_image
from autolume_graph.node import CookContext, Node, NodeStatus
from autolume_graph.params import Choice, Float, Input, Output
from autolume_graph.types import PortType

# each mode on unit-space pixels (0 black, 1 white): what b does to a at full amount
_MODES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "crossfade": lambda a, b: b,
    "add": torch.add,
    "multiply": torch.mul,
    "screen": lambda a, b: 1.0 - (1.0 - a) * (1.0 - b),
    "difference": lambda a, b: (a - b).abs(),
}


class Blend(Node):
    """out = a + amount * (mode(a, b) - a); b is resized to a's size when they differ."""

    category = "image"
    inputs = {
        "a": Input(PortType.IMAGE, "the base image; its size is the output's"),
        "b": Input(PortType.IMAGE, "the image mixed in (resized to a's size)"),
    }
    outputs = {"image": Output(PortType.IMAGE, "a blended with b, a's size, on a's device")}
    params = {
        "mode": Choice("crossfade", tuple(_MODES),
                       doc="crossfade: b over a; add, multiply, screen, difference: b applied to a"),
        "amount": Float(0.5, 0.0, 1.0, doc="0: a alone; 1: the mode at full strength (crossfade: b alone)"),
    }

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        a = wired_image(inputs, "a")
        b = None if inputs.get("b") is None else rgb_image(inputs["b"], "b")
        mode, amount = params["mode"], params["amount"]
        return self.cached_outputs((a, b, mode, amount), lambda: {"image": self._blend(a, b, mode, amount)})

    def _blend(self, a: torch.Tensor, b: torch.Tensor | None, mode: str, amount: float) -> torch.Tensor:
        if b is None:
            self.status = NodeStatus.of("b not connected: a passes through")
            return a
        resized = b.shape[-2:] != a.shape[-2:]
        self.status = NodeStatus.of(f"b resized {size_text(b)} -> {size_text(a)}" if resized else "")
        if amount == 0.0:
            return a
        b = resize(b.to(a.device), a.shape[-2], a.shape[-1])
        if mode == "crossfade" and amount == 1.0:
            return b
        ua = to_unit(a.float())
        return from_unit(torch.lerp(ua, _MODES[mode](ua, to_unit(b.float())), amount))
