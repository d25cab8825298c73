"""Render one image from a seed the way NVIDIA's tools do, and write it as PNG or raw float32."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .model import StyleGANModel


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """NVIDIA's convention: `numpy.random.RandomState(seed).randn(1, z_dim)`, as float32."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)


@torch.inference_mode()
def render_seed(model: StyleGANModel, seed: int, psi: float = 1.0, noise_mode: str = "const",
                device: str | torch.device = "cpu") -> torch.Tensor:
    """Image [1, C, H, W] float32 on `device`, nominal range [-1, 1], for `seed`."""
    z = seed_to_z(seed, model.z_dim).to(device)
    return model.synthesis(model.mapping(z, psi=psi), noise_mode=noise_mode)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] in [-1, 1] -> HWC uint8 by `(x * 127.5 + 128).clamp(0, 255)` and truncation."""
    return (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write `.png` (uint8) or `.npy` (raw float32 CHW) atomically; other suffixes are a ValueError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise ValueError(f"{path}: output must end in .png or .npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if suffix == ".png":
                pixels = to_uint8(image)
                Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(f, format="PNG")
            else:
                np.save(f, image[0].detach().to("cpu", torch.float32).numpy())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an image is an ordinary readable file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
