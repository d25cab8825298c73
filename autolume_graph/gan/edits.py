"""What travels on an EDITS wire: per-layer feature-map edits, noise overrides and a layer view.

LayerTransform nodes build these when their parameters change (never per frame) and chain
them; Generate hands them to the synthesis network, which applies each edit by a dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Edit = Callable[[torch.Tensor], torch.Tensor]


def _compose(first: Edit, second: Edit) -> Edit:
    return lambda x: second(first(x))


@dataclass(frozen=True)
class LayerEdits:
    """Edits keyed by layer name; `view` names a layer whose activation replaces the picture."""

    edits: dict[str, Edit] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    view: str | None = None
    view_channel: int = 0
    view_normalize: str = "minmax"

    def then(self, other: LayerEdits) -> LayerEdits:
        """These edits followed by `other`'s; stacked edits on one layer run in chain order."""
        edits = dict(self.edits)
        for name, edit in other.edits.items():
            edits[name] = _compose(edits[name], edit) if name in edits else edit
        view = other.view or self.view
        source = other if other.view else self
        return LayerEdits(edits, {**self.noise, **other.noise}, view, source.view_channel, source.view_normalize)


def activation_to_image(activation: torch.Tensor, channel: int, normalize: str,
                        size: tuple[int, int]) -> torch.Tensor:
    """Show a feature map as an RGB image in [-1, 1]: three channels from `channel` (or one as grey),
    enlarged (nearest) to the picture's `size` (height, width), so a layer view fits where the picture goes."""
    x = activation[:1].detach().float()
    c = x.shape[1]
    start = max(0, min(channel, c - 1))
    picked = x[:, start:start + 3] if c - start >= 3 else x[:, start:start + 1].expand(-1, 3, -1, -1)
    if normalize == "minmax":
        lo = picked.amin(dim=(2, 3), keepdim=True)
        hi = picked.amax(dim=(2, 3), keepdim=True)
        picked = (picked - lo) / (hi - lo).clamp_min(1e-8) * 2 - 1
    elif normalize == "std":
        picked = (picked - picked.mean(dim=(2, 3), keepdim=True)) / picked.std(dim=(2, 3), keepdim=True).clamp_min(
            1e-8) / 3
    if tuple(picked.shape[-2:]) != tuple(size):
        picked = torch.nn.functional.interpolate(picked, size=tuple(size), mode="nearest")
    return picked.contiguous()
