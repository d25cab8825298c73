"""What travels on a latent wire (gan/wires.py): a point in latent space, possibly a weighted blend of several.

Latent nodes (seed, vector, loops) produce it; the Mapping node turns it into per-layer w.
Each term says whether it goes through the mapping network (`project`) or is used as w
directly (`project=False`: z broadcast to every layer, or a loaded per-layer w, kind "w").
Blending in w after mapping lets keyframes with different Project flags share one loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LatentTerm:
    """coef * (mapping(value) if project else value broadcast to every layer)."""

    coef: float
    value: torch.Tensor  # [1, z_dim] for kind "z", [1, num_ws, w_dim] for kind "w"
    kind: str = "z"
    project: bool = True


@dataclass(frozen=True)
class Latent:
    """A latent on a latent wire: the weighted sum of its terms' w."""

    terms: tuple[LatentTerm, ...]

    @classmethod
    def of(cls, value: np.ndarray | torch.Tensor, kind: str = "z", project: bool = True) -> Latent:
        """One latent from an array: (z_dim,) or (1, z_dim) for z, (num_ws, w_dim) or (1, num_ws, w_dim) for w."""
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32) if not torch.is_tensor(value) else value)
        tensor = tensor.to(torch.float32)
        if kind == "z":
            tensor = tensor.reshape(1, -1)
        elif tensor.ndim == 2:
            tensor = tensor.unsqueeze(0)
        return cls((LatentTerm(1.0, tensor, kind, project and kind == "z"),))
