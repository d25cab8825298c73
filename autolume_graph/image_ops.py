"""Image helpers shared by the picture nodes (Fit, Blend, Color, Feedback), all on the image's device.

Images on wires are [1, C, H, W] float in nominal [-1, 1] (what Generate makes). Colour maths reads
better in [0, 1] ("unit" space: 0 is black, 1 is white), so the nodes convert in and out here, in one
place, and resize here, so every node resamples the same way.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from autolume_graph.node import NodeError

Pixels = TypeVar("Pixels", torch.Tensor, float)

RESAMPLING = ("bilinear", "area")
"""bilinear (antialiased when shrinking) or area (box average when shrinking in both axes, else bilinear)."""


def rgb_image(value: Any, name: str = "image") -> torch.Tensor:
    """`value` as a [1, 3, H, W] float image: itself, or a one-channel image repeated as grey (no copy);
    else NodeError."""
    if not torch.is_tensor(value) or value.dim() != 4 or value.shape[0] != 1 or value.shape[1] not in (1, 3):
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise NodeError(f"{name} needs an image [1, 3, H, W], got {shape}")
    if not value.is_floating_point():
        raise NodeError(f"{name} needs a floating-point image, got {value.dtype}")
    return value if value.shape[1] == 3 else value.expand(-1, 3, -1, -1)


def wired_image(inputs: dict[str, Any], port: str = "image") -> torch.Tensor:
    """The image on input `port` as `rgb_image` gives it; NodeError when nothing is wired there."""
    if inputs.get(port) is None:
        raise NodeError("connect an image" + ("" if port == "image" else f" to {port}"))
    return rgb_image(inputs[port], port)


def to_unit(image: Pixels) -> Pixels:
    """[-1, 1] -> [0, 1], unclipped."""
    return image * 0.5 + 0.5


def from_unit(unit: Pixels) -> Pixels:
    """[0, 1] -> [-1, 1], unclipped (a tensor, or one value such as a background colour)."""
    return unit * 2.0 - 1.0


def size_text(image: torch.Tensor) -> str:
    """The image's size as the user writes it: width x height."""
    return f"{image.shape[-1]}x{image.shape[-2]}"


def resize(image: torch.Tensor, height: int, width: int, resampling: str = "bilinear") -> torch.Tensor:
    """`image` resampled to height x width (float32), or `image` itself when it already is that size."""
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    if resampling not in RESAMPLING:
        raise ValueError(f"unknown resampling {resampling!r} ({', '.join(RESAMPLING)})")
    image = image.float()
    if resampling == "area" and height <= h and width <= w:
        return F.interpolate(image, size=(height, width), mode="area")
    shrinking = height < h or width < w
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)
