"""Feedback: trails. Each frame the previous output is moved (zoom, rotate, translate), decayed toward
black and combined with the input, so the picture smears, spirals and echoes.

It keeps one previous frame (its last output) and forgets it when the size or device changes. The
moves run through the layer-transform affine (`gan.layer_ops`), so pixels that move in from outside
are black. Everything is per frame: a higher fps makes trails shorter in seconds.
"""

from __future__ import annotations

from typing import Any

import torch

from autolume_graph.gan.layer_ops import Edit, OpSpec, build_edit
from autolume_graph.image_ops import from_unit, to_unit, wired_image
from autolume_graph.node import CookContext, Node
from autolume_graph.params import Choice, Float, Input, Output
from autolume_graph.types import PortType

_MOVES = ("zoom", "rotate", "translate_x", "translate_y")


def move(zoom: float, rotate: float, x: float, y: float) -> Edit:
    """The per-frame move of the previous frame: zoom about the centre, rotate, then translate."""
    return build_edit([OpSpec("scale", zoom), OpSpec("rotate", rotate), OpSpec("translate", 0.0, x, y)])


class Feedback(Node):
    """Trails: out = max(input, decay * moved previous) or mix(input, moved previous, decay)."""

    category = "image"
    inputs = {"image": Input(PortType.IMAGE, "image to leave trails")}
    outputs = {"image": Output(PortType.IMAGE, "the input over its own decaying, moving past")}
    params = {
        "mode": Choice("max", ("max", "mix"),
                       doc="max: the brighter of input and decayed past (light trails); "
                           "mix: input blended with the past by decay (smear)"),
        "decay": Float(0.9, 0.0, 1.0, doc="how much of the previous frame stays each frame; 0: no trails"),
        "zoom": Float(1.0, 0.5, 2.0, clip=False, limit=(0.01, 100.0),
                      doc="scale of the previous frame each frame; above 1 trails fly outward"),
        "rotate": Float(0.0, -30.0, 30.0, unit="deg", clip=False, limit=(-360.0, 360.0),
                        doc="rotation of the previous frame each frame, counter-clockwise"),
        "translate_x": Float(0.0, -0.2, 0.2, clip=False, limit=(-1.0, 1.0),
                             doc="shift of the previous frame each frame, fraction of the width, + right"),
        "translate_y": Float(0.0, -0.2, 0.2, clip=False, limit=(-1.0, 1.0),
                             doc="shift of the previous frame each frame, fraction of the height, + down"),
    }

    def reset(self) -> None:
        self._previous: torch.Tensor | None = None  # the last output: the one frame kept
        self._move: tuple[tuple, Edit] = ((), build_edit(()))

    def animating(self, params: dict[str, Any]) -> bool:
        return params["decay"] > 0.0

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        image = wired_image(inputs)
        decay, previous = params["decay"], self._previous
        if decay == 0.0:
            self._previous = None
            return {"image": image}
        if previous is None or previous.shape != image.shape or previous.device != image.device:
            self._previous = image.float().clone()  # its own copy: upstream may reuse its buffer
            return {"image": self._previous}
        past = self._moved(params)(to_unit(previous))
        now = to_unit(image.float())
        if params["mode"] == "max":
            out = torch.maximum(now, past * decay)
        else:
            out = torch.lerp(now, past, decay)
        self._previous = from_unit(out)
        return {"image": self._previous}

    def _moved(self, params: dict[str, Any]) -> Edit:
        """The move callable, rebuilt only when a move parameter changes."""
        key = tuple(params[name] for name in _MOVES)
        if self._move[0] != key:
            self._move = (key, move(*key))
        return self._move[1]
