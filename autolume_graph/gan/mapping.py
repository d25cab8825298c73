"""The mapping network z (and a class c) -> w shared by StyleGAN2 and StyleGAN3.

z is normalised by its second moment; a conditional network (c_dim > 0) also embeds the class
vector c through its linear `embed` layer, normalises that the same way and appends it to z, so
`fc0` takes z_dim + embed features. Then the `fcN` layers, a broadcast to `num_ws` copies and,
optionally, truncation toward the tracked average `w_avg`. Names (`embed`, `fc0`..., `w_avg`) equal
the pickle's.

`class_input` turns what a user gives (a class index, or a blend of classes) into the c the
network takes, saying why it differs from what was asked (a class out of range, a vector of
the wrong length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .layers import FullyConnectedLayer, attr, tensor
from .safe_pickle import ModelFileError, ModuleRecord


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square, so |z| does not matter, only its direction."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(torch.nn.Module):
    """z [B, z_dim] (+ c [B, c_dim]) -> ws [B, num_ws, w_dim]; `forward(z, c=None, psi=1.0, cutoff=None)`.

    Truncation: ws = w_avg + psi * (ws - w_avg), on the first `cutoff` ws only when cutoff is given.
    Unconditional networks (c_dim 0) ignore c; a conditional one given no c renders class 0.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, layers: list[dict[str, Any]], c_dim: int = 0,
                 embed: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.c_dim = c_dim
        self.num_layers = len(layers)
        if (c_dim > 0) != (embed is not None):
            raise ModelFileError(f"mapping network with c_dim {c_dim} {'lacks' if c_dim else 'has'} a class embedding")
        embed_features = 0
        if embed is not None:
            if embed["in_features"] != c_dim:
                raise ModelFileError(f"class embedding takes {embed['in_features']} values, c_dim is {c_dim}")
            self.embed = FullyConnectedLayer(**embed)
            embed_features = embed["out_features"]
        if layers and layers[0]["in_features"] != z_dim + embed_features:
            raise ModelFileError(f"mapping fc0 takes {layers[0]['in_features']} values, "
                                 f"z ({z_dim}) and class embedding ({embed_features}) make {z_dim + embed_features}")
        for idx, settings in enumerate(layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(**settings))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        """Constructor arguments read from a stored MappingNetwork (JSON-able)."""
        num_layers = int(attr(record, "num_layers"))
        layers = []
        for idx in range(num_layers):
            child = record.children.get(f"fc{idx}")
            if child is None:
                raise ModelFileError(f"mapping network has no layer fc{idx}")
            layers.append(FullyConnectedLayer.settings_from_record(child))
        settings = {
            "z_dim": int(attr(record, "z_dim")),
            "w_dim": int(tensor(record, "w_avg").shape[0]),
            "num_ws": int(attr(record, "num_ws")),
            "layers": layers,
        }
        c_dim = int(attr(record, "c_dim", 0))
        embed = record.children.get("embed")
        if c_dim or embed is not None:
            if embed is None:
                raise ModelFileError(f"conditional mapping network (c_dim {c_dim}) has no class embedding")
            settings.update(c_dim=c_dim, embed=FullyConnectedLayer.settings_from_record(embed))
        return settings

    def settings(self) -> dict[str, Any]:
        """The constructor arguments, for saving in our own model format."""
        fcs = [getattr(self, f"fc{idx}") for idx in range(self.num_layers)]
        settings = {"z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws,
                    "layers": [fc.settings() for fc in fcs]}
        if self.c_dim:
            settings.update(c_dim=self.c_dim, embed=self.embed.settings())
        return settings

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                cutoff: int | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim:
            if c is None:
                c = torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long, device=x.device), self.c_dim)
            y = normalize_2nd_moment(self.embed(c.to(device=x.device, dtype=torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            if cutoff is None:
                ws = self.w_avg.lerp(ws, psi)
            else:
                ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], psi)
        return ws


@dataclass(frozen=True)
class ClassInput:
    """The class vector a mapping is given: `weights` (c_dim values summing to 1; empty for an
    unconditional model) and `note`, why it is not exactly what was asked ("" when it is)."""

    weights: tuple[float, ...] = ()
    note: str = ""

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """c as [1, c_dim] float32, or None for an unconditional model."""
        if not self.weights:
            return None
        return torch.tensor([self.weights], dtype=torch.float32, device=device)


def class_input(c_dim: int, index: int = 0, blend: Any = None) -> ClassInput:
    """The c for a model with `c_dim` classes, from a class `index` or, when given, a `blend`.

    `blend` is a vector of class weights (negative ones count as 0, the rest are divided by their
    sum, so a one-hot vector is that class, as NVIDIA's tools give it, and a mix is the same mix of
    the classes' embeddings; a vector shorter than c_dim is padded with 0, a longer one cut), or a
    single number t, a position between classes (2.25: three quarters class 2, a quarter class 3),
    so one LFO or OSC value morphs through them. Out-of-range values are clipped, with the reason
    in `note`; ValueError for a blend that is not numbers.
    """
    if c_dim <= 0:
        asked = blend is not None or index != 0
        return ClassInput(note="unconditional model: class ignored" if asked else "")
    if blend is None:
        return _one_hot(c_dim, index)
    values = _numbers(blend)
    if values.ndim == 0:
        return _position(c_dim, float(values))
    return _weights(c_dim, values.reshape(-1), index)


def _one_hot(c_dim: int, index: int, note: str = "") -> ClassInput:
    clipped = min(max(int(index), 0), c_dim - 1)
    if clipped != index:
        note = f"class {index} is out of range 0..{c_dim - 1}: using {clipped}"
    weights = [0.0] * c_dim
    weights[clipped] = 1.0
    return ClassInput(tuple(weights), note)


def _position(c_dim: int, t: float) -> ClassInput:
    if not math.isfinite(t):
        return _one_hot(c_dim, 0, f"class position {t} is not finite: using class 0")
    clipped = min(max(t, 0.0), c_dim - 1.0)
    low = min(int(math.floor(clipped)), c_dim - 1)
    weights = [0.0] * c_dim
    weights[low] = 1.0 - (clipped - low)
    if clipped > low:
        weights[low + 1] = clipped - low
    note = f"class position {t:g} is out of range 0..{c_dim - 1}: using {clipped:g}" if clipped != t else ""
    return ClassInput(tuple(weights), note)


def _weights(c_dim: int, values: np.ndarray, index: int) -> ClassInput:
    notes = []
    if len(values) != c_dim:
        notes.append(f"{len(values)} class weights for {c_dim} classes: "
                     + ("padded with 0" if len(values) < c_dim else f"the last {len(values) - c_dim} cut"))
        values = np.pad(values, (0, max(c_dim - len(values), 0)))[:c_dim]
    if not np.isfinite(values).all():
        notes.append("non-finite class weights taken as 0")
    values = np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
    total = float(values.sum())
    if total <= 0:
        fallback = _one_hot(c_dim, index)
        notes.append(f"no positive class weight: using class {fallback.weights.index(1.0)}")
        return ClassInput(fallback.weights, "; ".join(notes))
    return ClassInput(tuple(float(v) for v in values / total), "; ".join(notes))


def _numbers(blend: Any) -> np.ndarray:
    if torch.is_tensor(blend):
        blend = blend.detach().to("cpu", torch.float64).numpy()
    try:
        values = np.asarray(blend, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"class weights must be numbers, got {type(blend).__name__}") from None
    if values.size == 0:
        raise ValueError("class weights are empty")
    return values
