"""Render one image from a seed the way NVIDIA's tools do, and write it as PNG, JPEG or raw float32.

The arguments are checked before any work (a seed outside NumPy's seed range, a psi that is not a
finite number, an unknown noise mode, an output suffix we cannot write), and a picture that comes
out NaN or inf (a psi far from 1 overflows the synthesis) is refused rather than written black.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from autolume_graph.atomic import remove_stale_temps, write_with
from autolume_graph.errors import UserError

from .model import NOISE_MODES, StyleGANModel

SEED_MAX = 2**32 - 1  # numpy.random.RandomState takes seeds in [0, 2**32)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
SUFFIXES = (*IMAGE_FORMATS, ".npy")


class GenerateError(UserError, ValueError):
    """An argument `render_seed` or `save_image` cannot use, or a picture that is not finite."""


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """NVIDIA's convention: `numpy.random.RandomState(seed).randn(1, z_dim)`, as float32."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)


def check_render_args(seed: int, psi: float, noise_mode: str) -> None:
    """GenerateError naming the first argument `render_seed` cannot use."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise GenerateError(f"seed {seed!r}: expected an integer from 0 to {SEED_MAX}")
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi):
        raise GenerateError(f"psi {psi!r}: expected a finite number")
    if noise_mode not in NOISE_MODES:
        raise GenerateError(f"noise mode {noise_mode!r}: expected one of {', '.join(NOISE_MODES)}")


@torch.inference_mode()
def render_seed(model: StyleGANModel, seed: int, psi: float = 1.0, noise_mode: str = "const",
                device: str | torch.device = "cpu", c: torch.Tensor | None = None) -> torch.Tensor:
    """Image [1, C, H, W] float32 on `device`, nominal range [-1, 1], for `seed` (and class vector `c` of a
    conditional model); GenerateError for bad arguments or a picture that is not finite."""
    check_render_args(seed, psi, noise_mode)
    z = seed_to_z(seed, model.z_dim).to(device)
    with torch.inference_mode():
        image = model.synthesis(model.mapping(z, c=c, psi=psi), noise_mode=noise_mode)
    if not torch.isfinite(image).all():
        raise GenerateError(f"psi {psi:g}: the picture is not finite (NaN or inf); use a psi nearer 1")
    return image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] in [-1, 1] -> HWC uint8 by `(x * 127.5 + 128).clamp(0, 255)` and truncation."""
    return (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def check_output(path: str | Path) -> Path:
    """`path` if `save_image` can write its suffix, else GenerateError (checked before rendering)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise GenerateError(f"{path}: output must end in {', '.join(SUFFIXES)}")
    return path


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write `.png`/`.jpg`/`.jpeg` (uint8) or `.npy` (raw float32 CHW) through a temporary file renamed
    at the end (a killed writer's leftovers beside it are removed first); another suffix is a GenerateError."""
    path = check_output(path)
    remove_stale_temps(path.parent)
    image_format = IMAGE_FORMATS.get(path.suffix.lower())

    def write(temp: Path) -> None:
        if image_format is None:
            with open(temp, "wb") as f:
                np.save(f, image[0].detach().to("cpu", torch.float32).numpy())
            return
        pixels = to_uint8(image)
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(temp, format=image_format)

    return write_with(path, write)
