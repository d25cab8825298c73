"""The start and end every family's synthesis forward shares: checked options, edits and capture.

`model.StyleGANModel` states the call contract (noise modes, per-layer noise, `layer_edits`,
`capture`); `SynthesisCall.start` checks a call against it before any work is done and holds
what the layers read, `finish` applies a layer's edit and captures its output, and `result` gives
the contiguous image (with the captured activation when asked). A family subclasses it to carry
options of its own (StyleGAN2's fast-path switches).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import torch

from .model import NOISE_MODES


@dataclass
class SynthesisCall:
    """The checked options of one synthesis call, handed to the family's layers."""

    noise_mode: str
    noise_scale: float
    layer_noise_scale: dict[str, float]
    edits: dict[str, Callable[[torch.Tensor], torch.Tensor]]
    capture: str | None
    generator: torch.Generator | None  # random noise of a seeded call, else None (a fresh draw)
    captured: torch.Tensor | None = None

    @classmethod
    def start(cls, layer_names: Collection[str], device: torch.device, noise_mode: str = "const",
              noise_scale: float = 1.0, noise_seed: int | None = None,
              layer_noise_scale: dict[str, float] | None = None,
              layer_edits: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
              capture: str | None = None, **options: Any) -> SynthesisCall:
        """The call's options, or ValueError (noise mode) / KeyError (capture) before any work."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")
        if capture is not None and capture not in layer_names:
            raise KeyError(f"no layer named {capture!r}")
        generator = None
        if noise_mode == "random" and noise_seed is not None:
            generator = torch.Generator(device=device).manual_seed(int(noise_seed))
        return cls(noise_mode, float(noise_scale), layer_noise_scale or {}, layer_edits or {}, capture, generator,
                   **options)

    def finish(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Layer `name`'s output after its edit; captured when it is the layer asked for."""
        edit = self.edits.get(name)
        if edit is not None:
            x = edit(x)
        if name == self.capture:
            self.captured = x
        return x

    def result(self, image: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The contiguous image, paired with the captured activation when the call named a layer."""
        image = image.contiguous()
        return (image, self.captured) if self.capture is not None else image
