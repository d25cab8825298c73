"""The embedded default model: a small 256 px StyleGAN2 made from a fixed seed, cached on disk.

No weights ship with the code; they are drawn from numpy's legacy RandomState (a stream that never
changes between versions) and given the traits of a trained network so every knob shows something:
biases off zero, non-zero noise strengths, coarse layers weighted over fine ones in the RGB skips
(soft colour fields with some texture rather than pixel noise), and `w_avg` the mean mapping output
so truncation pulls toward a typical picture. The file is written once in our safe format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..cache_folder import cache_dir
from .layers import ACTIVATION_GAINS, bias_act
from .safe_format import SUFFIX, save_model
from .stylegan2 import StyleGAN2, build_from_settings, make_settings

SEED = 20240611
VERSION = 1
RESOLUTION = 256
SETTINGS = make_settings(RESOLUTION, mapping_layers=8, channel_base=4096, channel_max=128)


def default_model_file() -> Path:
    """Where the default model is cached; it may not exist yet (see `default_model_path`)."""
    return cache_dir() / f"default_sg2_{RESOLUTION}_v{VERSION}{SUFFIX}"


def default_model_path() -> Path:
    """The cached default model file, made on first use (atomic; racing processes write equal bytes)."""
    path = default_model_file()
    if not path.exists():
        save_model(make_default_model(), path)
    return path


def _draw(rng: np.random.RandomState, shape: tuple[int, ...], scale: float = 1.0, shift: float = 0.0
          ) -> torch.Tensor:
    return torch.from_numpy((rng.standard_normal(shape) * scale + shift).astype(np.float32))


def make_default_model() -> StyleGAN2:
    """Build the default generator deterministically (same weights, hence same file bytes, every run)."""
    return make_random_model(SETTINGS, SEED)


def make_random_model(settings: dict, seed: int) -> StyleGAN2:
    """A StyleGAN2 of `settings` with seeded weights shaped like a trained network's (see module doc)."""
    model = build_from_settings(settings).eval().requires_grad_(False)
    rng = np.random.RandomState(seed)
    tensors = {}
    for name, value in model.state_dict().items():
        shape = tuple(value.shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "resample_filter":
            taps = np.array([1.0, 3.0, 3.0, 1.0])
            tensors[name] = torch.from_numpy(np.outer(taps, taps) / np.outer(taps, taps).sum()).float()
        elif name.startswith("mapping.fc"):
            lr = model.mapping.fc0.bias_gain
            tensors[name] = _draw(rng, shape, 1 / lr) if leaf == "weight" else _draw(rng, shape, 0.1 / lr)
        elif ".affine." in name:
            tensors[name] = _draw(rng, shape, 2.0) if leaf == "weight" else _draw(rng, shape, 0.1, 1.0)
        elif leaf == "noise_strength":
            tensors[name] = torch.tensor(0.15, dtype=torch.float32)
        elif ".torgb." in name and leaf == "weight":
            res = int(name.split(".")[1][1:])
            tensors[name] = _draw(rng, shape, 0.4 * (16 / res) ** 0.75 if res > 16 else 0.4)
        elif leaf == "bias":
            tensors[name] = _draw(rng, shape, 0.2)
        else:  # const, conv weights, noise_const, w_avg (replaced below)
            tensors[name] = _draw(rng, shape)
    model.load_state_dict(tensors)
    model.mapping.w_avg.copy_(_mean_w(model, rng))
    return model


def _mean_w(model: StyleGAN2, rng: np.random.RandomState) -> torch.Tensor:
    """Mean mapping output over 4096 z in float64, rounded to 1e-5 so thread count cannot change bytes."""
    mapping = model.mapping
    x = torch.from_numpy(rng.standard_normal((4096, mapping.z_dim)))
    x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for idx in range(mapping.num_layers):
        fc = getattr(mapping, f"fc{idx}")
        x = bias_act(x @ (fc.weight.double() * fc.weight_gain).T, fc.bias.double() * fc.bias_gain,
                     fc.activation, ACTIVATION_GAINS[fc.activation])
    return torch.from_numpy(np.round(x.mean(dim=0).numpy(), 5)).float()
