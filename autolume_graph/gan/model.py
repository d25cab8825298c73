"""The one model interface nodes talk to, whatever the StyleGAN family.

Contract for a family implementation (StyleGAN2 here, StyleGAN3 in `stylegan3.py`):

* Subclass `StyleGANModel` and register two submodules named `mapping` and `synthesis`, so that
  parameter and buffer names equal the network pickle's (`mapping.fc0.weight`, `synthesis.b4.const`,
  ...) and `load_state_dict` works by name. Set `family`, `z_dim`, `w_dim`, `num_ws`,
  `img_resolution`, `img_channels`.
* `model.mapping(z, psi=1.0, cutoff=None) -> ws [B, num_ws, w_dim]` float32 (`mapping.MappingNetwork`
  is shared by both families).
* `model.synthesis(ws, noise_mode="const", noise_scale=1.0, noise_seed=None, layer_noise_scale=None,
  layer_edits=None, capture=None)`:
    - returns the image [B, img_channels, H, W] float32, nominal range [-1, 1], not clamped;
    - when `capture` names a layer of `layer_names()`, returns the tuple `(image, activation)` where
      `activation` is that layer's output feature map [B, C, h, w] exactly as the next layer consumes
      it (after that layer's edit, if any). It is not a copy: treat it as read-only. An unknown name
      raises KeyError before any work is done;
    - `noise_mode`: "const" (each layer's stored `noise_const`), "random" (fresh N(0,1) per call,
      reproducible when `noise_seed` is an int), "none" (no noise). Families without noise inputs
      (StyleGAN3) accept and ignore all noise arguments;
    - the noise of every layer is multiplied by `noise_scale`, except layers named in
      `layer_noise_scale`, whose value replaces `noise_scale`;
    - `layer_edits[name](x) -> x'` is applied to layer `name`'s output feature map inside the forward
      loop (a dict lookup per layer, no hooks). It must keep the shape unless the caller accepts the
      next layer failing.
* `synthesis.channels_last` (bool attribute, default False) selects the memory format of feature
  maps; see `set_channels_last`.
* `live_buffers` names the buffers a family writes every frame as controls (StyleGAN3's input
  transform): CUDA graphs read them as they are at replay, while a write to any other tensor
  (a weight, ModelMix's crossfade) means recapturing (see `accel.WeightsVersion`).
* `layer_info()` lists the feature-map layers in forward order (name, resolution, channels).
* `settings()` returns a JSON-able dict from which the family module's
  `build_from_settings(settings) -> StyleGANModel` rebuilds the same structure (weights not included);
  the family module also provides `build_from_record(record) -> StyleGANModel` with weights loaded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from .safe_pickle import ModelFileError


@dataclass(frozen=True)
class LayerInfo:
    """A feature-map layer: its name for edits/capture, output resolution and channel count."""

    name: str
    resolution: int
    channels: int


NOISE_MODES = ("const", "random", "none")


class StyleGANModel(torch.nn.Module):
    """Base of every family's generator; see the module docstring for the full contract."""

    family: str
    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    live_buffers: tuple[str, ...] = ()

    def layer_info(self) -> list[LayerInfo]:
        """The feature-map layers in forward order."""
        return self.synthesis.layer_info()

    def layer_names(self) -> list[str]:
        """Names accepted by `capture`, `layer_edits` and `layer_noise_scale`, in forward order."""
        return [info.name for info in self.layer_info()]

    def settings(self) -> dict[str, Any]:
        """JSON-able structure description; `build_from_settings` of the family rebuilds it."""
        raise NotImplementedError

    def set_channels_last(self, enabled: bool) -> StyleGANModel:
        """Ask `synthesis` to run feature maps channels_last (measured 20-35% faster on CPU).

        Sets `synthesis.channels_last`; a family's synthesis reads that flag or ignores it.
        """
        self.synthesis.channels_last = enabled
        return self

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        """z [B, z_dim] -> image [B, C, H, W], the common one-call path."""
        return self.synthesis(self.mapping(z, psi=psi), noise_mode=noise_mode)


def exact_float32() -> contextlib.AbstractContextManager:
    """cuDNN's default TF32 convolutions miss NVIDIA's float32 images by > 1e-3: keep full float32."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                       allow_tf32=False)


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy tensors by name; any missing, extra or mis-shaped tensor is a ModelFileError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    if missing:
        raise ModelFileError(f"missing tensor {missing[0]}" + (f" (+{len(missing) - 1} more)" if missing[1:]
                                                               else ""))
    extra = sorted(set(tensors) - set(own))
    if extra:
        raise ModelFileError(f"unexpected tensor {extra[0]}")
    for name, value in own.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise ModelFileError(f"tensor {name} has shape {tuple(tensors[name].shape)}, "
                                 f"expected {tuple(value.shape)}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
