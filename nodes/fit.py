"""Fit: shape the picture for the screen it goes to (a 1920x1080 projector from a square generator)."""

from __future__ import annotations

from typing import Any

import torch

from autolume_graph.image_ops import RESAMPLING, from_unit, resize, size_text, wired_image
from autolume_graph.node import CookContext, Node, NodeStatus
from autolume_graph.params import Choice, Float, Input, Int, Output, Param
from autolume_graph.types import PortType

MAX_SIDE = 8192  # a side's bound: an 8192x8192 float image is 800 MB, the most one output may cost


def _side(default: int, doc: str) -> Param:
    return Int(default, 16, MAX_SIDE, unit="px", doc=doc)


def _channel(name: str) -> Param:
    return Float(0.0, 0.0, 1.0, doc=f"contain: {name} of the bars, 0..1")


def cover_crop(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, rows, columns) of the centred part of an h x w image that has the target's aspect."""
    if w * height > h * width:  # wider than the target: keep the full height
        cols = max(1, min(w, round(h * width / height)))
        return 0, (w - cols) // 2, h, cols
    rows = max(1, min(h, round(w * height / width)))
    return (h - rows) // 2, 0, rows, w


def contain_size(h: int, w: int, height: int, width: int) -> tuple[int, int]:
    """(rows, columns) of an h x w image scaled to lie inside the target, aspect kept."""
    scale = min(height / h, width / w)
    return max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))


class Fit(Node):
    """Scales the image to an exact output size: contain (letterbox), cover (crop) or stretch."""

    category = "image"
    inputs = {"image": Input(PortType.IMAGE, "image to fit")}
    outputs = {"image": Output(PortType.IMAGE, "[1, 3, height, width], on the input's device")}
    params = {
        "width": _side(1920, "output width"),
        "height": _side(1080, "output height"),
        "mode": Choice("contain", ("contain", "cover", "stretch"),
                       doc="contain: all of the picture, bars around it; cover: fill, crop the overflow; "
                           "stretch: fill, aspect not kept"),
        "resampling": Choice("bilinear", RESAMPLING,
                             doc="bilinear (antialiased when shrinking) or area (box average when shrinking)"),
        "r": _channel("red"),
        "g": _channel("green"),
        "b": _channel("blue"),
    }

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        image = wired_image(inputs)
        key = (image, *(params[name] for name in self.params))
        return self.cached_outputs(key, lambda: {"image": self._fit(image, params)})

    def _fit(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        height, width, mode, how = params["height"], params["width"], params["mode"], params["resampling"]
        h, w = image.shape[-2:]
        self.status = NodeStatus.of(f"{size_text(image)} -> {width}x{height} {mode}")
        if mode == "stretch" or (h, w) == (height, width):  # resize hands back an image of that size itself
            return resize(image, height, width, how)
        if mode == "cover":
            top, left, rows, cols = cover_crop(h, w, height, width)
            return resize(image[..., top:top + rows, left:left + cols], height, width, how)
        rows, cols = contain_size(h, w, height, width)
        out = torch.empty((1, 3, height, width), dtype=torch.float32, device=image.device)
        for channel, name in enumerate("rgb"):  # a scalar fill: no host-to-device copy
            out[:, channel].fill_(from_unit(params[name]))
        top, left = (height - rows) // 2, (width - cols) // 2
        out[..., top:top + rows, left:left + cols] = resize(image, rows, cols, how)
        return out
