"""The mapping network z -> w shared by StyleGAN2 and StyleGAN3.

z is normalised by its second moment, passed through `fcN` layers, broadcast to `num_ws` copies and
optionally truncated toward the tracked average `w_avg`. Names (`fc0`..., `w_avg`) equal the pickle's.
"""

from __future__ import annotations

from typing import Any

import torch

from .layers import FullyConnectedLayer, attr, tensor
from .safe_pickle import ModelFileError, ModuleRecord


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square, so |z| does not matter, only its direction."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(torch.nn.Module):
    """z [B, z_dim] -> ws [B, num_ws, w_dim]; `forward(z, psi=1.0, cutoff=None)`.

    Truncation: ws = w_avg + psi * (ws - w_avg), on the first `cutoff` ws only when cutoff is given.
    Unconditional networks only (c_dim 0).
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, layers: list[dict[str, Any]]) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = len(layers)
        for idx, settings in enumerate(layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(**settings))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        """Constructor arguments read from a stored MappingNetwork (JSON-able)."""
        if int(attr(record, "c_dim", 0)) != 0 or "embed" in record.children:
            raise ModelFileError("conditional networks (c_dim > 0) are not supported")
        num_layers = int(attr(record, "num_layers"))
        layers = []
        for idx in range(num_layers):
            child = record.children.get(f"fc{idx}")
            if child is None:
                raise ModelFileError(f"mapping network has no layer fc{idx}")
            layers.append(FullyConnectedLayer.settings_from_record(child))
        return {
            "z_dim": int(attr(record, "z_dim")),
            "w_dim": int(tensor(record, "w_avg").shape[0]),
            "num_ws": int(attr(record, "num_ws")),
            "layers": layers,
        }

    def settings(self) -> dict[str, Any]:
        """The constructor arguments, for saving in our own model format."""
        fcs = [getattr(self, f"fc{idx}") for idx in range(self.num_layers)]
        return {"z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws,
                "layers": [fc.settings() for fc in fcs]}

    def forward(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32))
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            if cutoff is None:
                ws = self.w_avg.lerp(ws, psi)
            else:
                ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws
