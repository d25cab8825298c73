"""Color: grade the picture (levels, then saturation, hue, contrast, brightness) on the device.

Saturation, hue, contrast and brightness are all affine maps of RGB, so they fold into one 3x3 matrix
and offset, built on the host when a parameter changes (copied without the host waiting for the GPU, so
an LFO on hue costs no stall) and applied as one 3x3 matrix product per pixel. At the
defaults the node returns its input tensor itself: no work, and no change downstream.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from autolume_graph.gan.accel import to_device
from autolume_graph.image_ops import from_unit, to_unit, wired_image
from autolume_graph.node import CookContext, Node
from autolume_graph.params import Float, Input, Output
from autolume_graph.types import PortType

LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709: the grey a colour desaturates to
MIN_RANGE = 1e-4  # in_white at or below in_black: a threshold at in_black, not a division by zero
_LEVELS = {"in_black": 0.0, "in_white": 1.0, "gamma": 1.0, "out_black": 0.0, "out_white": 1.0}


def colour_matrix(saturation: float, hue: float, contrast: float, brightness: float) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) of unit-space RGB -> RGB: saturation about luma, hue (degrees) about the grey
    axis, contrast about mid-grey, then brightness added."""
    desaturate = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), LUMA)
    c, s = math.cos(math.radians(hue)), math.sin(math.radians(hue))
    cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3.0)
    rotate = c * np.eye(3) + (1.0 - c) / 3.0 * np.ones((3, 3)) + s * cross  # Rodrigues about (1, 1, 1)
    matrix = contrast * rotate @ desaturate
    return matrix, np.full(3, 0.5 - 0.5 * contrast + brightness)


def levels(unit: torch.Tensor, p: dict[str, Any]) -> torch.Tensor:
    """Input black/white to 0/1 (clipped), gamma on the midtones (above 1 brightens), then to output black/white."""
    span = max(p["in_white"] - p["in_black"], MIN_RANGE)
    x = ((unit - p["in_black"]) / span).clamp(0.0, 1.0)
    if p["gamma"] != 1.0:
        x = x.pow(1.0 / p["gamma"])
    return x * (p["out_white"] - p["out_black"]) + p["out_black"]


class Color(Node):
    """Brightness, contrast, saturation, hue rotation and levels; the input itself at the defaults."""

    category = "image"
    inputs = {"image": Input(PortType.IMAGE, "image to grade")}
    outputs = {"image": Output(PortType.IMAGE, "the graded image, nominal [-1, 1]")}
    params = {
        "brightness": Float(0.0, -1.0, 1.0, doc="added to every channel, in 0..1 units"),
        "contrast": Float(1.0, 0.0, 4.0, doc="factor about mid-grey; 0 is flat grey"),
        "saturation": Float(1.0, 0.0, 4.0, doc="0: grey (Rec. 709 luma); 1: as is; above 1: more colour"),
        "hue": Float(0.0, -180.0, 180.0, unit="deg", doc="rotation about the grey axis; 120 takes red to green"),
        "in_black": Float(0.0, 0.0, 1.0, doc="levels: input level that becomes black"),
        "in_white": Float(1.0, 0.0, 1.0, doc="levels: input level that becomes white"),
        "gamma": Float(1.0, 0.1, 10.0, doc="levels: midtone gamma; above 1 brightens"),
        "out_black": Float(0.0, 0.0, 1.0, doc="levels: output level of black"),
        "out_white": Float(1.0, 0.0, 1.0, doc="levels: output level of white"),
    }

    def reset(self) -> None:
        self._matrix: tuple[tuple, torch.Tensor, torch.Tensor] | None = None  # (key, weight, bias) on the device

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        image = wired_image(inputs)
        key = (image, *(params[name] for name in self.params))
        return self.cached_outputs(key, lambda: {"image": self._grade(image, params)})

    def _grade(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        grade = (params["saturation"], params["hue"] % 360.0, params["contrast"], params["brightness"])
        grades = grade != (1.0, 0.0, 1.0, 0.0)
        levelled = any(params[name] != value for name, value in _LEVELS.items())
        if not (grades or levelled):
            return image
        unit = to_unit(image.float())
        if levelled:
            unit = levels(unit, params)
        if grades:
            weight, bias = self._weights(grade, image.device)
            unit = (weight @ unit.flatten(2) + bias).view_as(unit)  # a matmul: float32, never TF32 by default
        return from_unit(unit)

    def _weights(self, grade: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The matrix and offset of `grade` on `device`, rebuilt only when the grade or device changes."""
        key = (grade, device)
        if self._matrix is None or self._matrix[0] != key:
            matrix, offset = colour_matrix(*grade)
            weight = to_device(torch.tensor(matrix, dtype=torch.float32), device)
            self._matrix = (key, weight, to_device(torch.tensor(offset, dtype=torch.float32).view(3, 1), device))
        return self._matrix[1], self._matrix[2]
