"""The one model interface nodes talk to, whatever the StyleGAN family.

Contract for a family implementation (StyleGAN2 here, StyleGAN3 in `stylegan3.py`):

* Subclass `StyleGANModel` and register two submodules named `mapping` and `synthesis`, so that
  parameter and buffer names equal the network pickle's (`mapping.fc0.weight`, `synthesis.b4.const`,
  ...) and `load_state_dict` works by name. Set `family`, `z_dim`, `w_dim`, `num_ws`,
  `img_resolution`, `img_channels`.
* `model.mapping(z, c=None, psi=1.0, cutoff=None) -> ws [B, num_ws, w_dim]` float32 (`c`: a conditional
  network's class vector [B, c_dim]; ignored where `c_dim` is 0) (`mapping.MappingNetwork`
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
* `layer_info()` lists the feature-map layers in forward order (name, resolution, channels, noise).
* `settings()` returns a JSON-able dict from which the family's `build_from_settings(settings) ->
  StyleGANModel` rebuilds the same structure (weights not included); the family also provides
  `build_from_record(record) -> StyleGANModel` with weights loaded. Both are declared, with the rest
  the loader, the safe format, mixing and the nodes need, in one `family.Family` registered by one
  module in `families/`; `synthesis_call.SynthesisCall` is the shared start and end of a forward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .safe_pickle import ModelFileError


@dataclass(frozen=True)
class LayerInfo:
    """A feature-map layer: its name for edits/capture, output resolution, channel count, and whether
    it adds noise (so `layer_noise_scale` means something for it)."""

    name: str
    resolution: int
    channels: int
    noise: bool = False


NOISE_MODES = ("const", "random", "none")


class StyleGANModel(torch.nn.Module):
    """Base of every family's generator; see the module docstring for the full contract."""

    family: str
    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int  # the largest block's resolution (its name: b64); the picture is `img_size`
    img_channels: int
    c_dim: int = 0  # number of classes a conditional network's mapping takes (0: unconditional)
    live_buffers: tuple[str, ...] = ()
    load_note: str = ""  # set by the loader: why another network than the one asked for is shown

    @property
    def img_size(self) -> tuple[int, int]:
        """The picture's (height, width): square unless the family's synthesis says otherwise."""
        return getattr(self.synthesis, "img_size", (self.img_resolution, self.img_resolution))

    @property
    def size_label(self) -> str:
        """The picture's size as shown to people: "64 px" when square, else width x height ("64x48 px")."""
        height, width = self.img_size
        return f"{width} px" if height == width else f"{width}x{height} px"

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


# Bounds on every integer a family's settings hold, by key, wherever it appears; an integer under a key
# in neither table is refused, so a new dimension cannot go unbounded. Numbers under SCALAR_KEYS (gains,
# clamps, rates) need only be finite. Resolutions up to 4096 px; sizes leave room for
# StyleGAN3's margins.
DIMENSION_LIMITS: dict[str, tuple[int, int]] = {
    "img_resolution": (4, 4096), "resolution": (4, 4096), "size": (1, 4096 + 512), "in_size": (1, 4096 + 512),
    "out_size": (1, 4096 + 512), "img_channels": (1, 4), "channels": (1, 4096), "in_channels": (0, 4096),
    "out_channels": (1, 4096), "in_features": (1, 4096), "out_features": (1, 4096), "z_dim": (1, 4096),
    "w_dim": (1, 4096), "num_ws": (1, 64), "kernel_size": (1, 15), "conv_kernel": (1, 15), "filter_size": (1, 64),
    "up": (1, 16), "up_factor": (1, 16), "down_factor": (1, 16), "up_taps": (1, 256), "down_taps": (1, 256),
    "padding": (-1024, 1024), "num_conv": (0, 64), "num_torgb": (0, 64),
    "init_res": (1, 16), "c_dim": (0, 4096),  # Autolume's non-square start [h0, w0]; a conditional net's classes
}
SCALAR_KEYS = {"weight_gain", "bias_gain", "act_gain", "conv_clamp", "sampling_rate", "bandwidth", "output_scale"}
MAX_LIST = 256  # layers, blocks, mapping layers
MAX_FEATURE_ELEMENTS = 1 << 30  # one layer's largest feature map, channels x h x w (4 GiB of float32)
_CHANNEL_KEYS = ("channels", "in_channels", "out_channels")
_SIZE_KEYS = {"resolution": None, "size": None, "out_size": None, "in_size": "up_factor"}  # -> upsampling inside


def check_settings(settings: Any, where: str = "settings", aspect: tuple[float, float] = (1.0, 1.0)) -> None:
    """Every dimension within `DIMENSION_LIMITS`, floats finite, each layer's feature map bounded.

    Runs on the JSON-able settings a family reads from a file, before anything is allocated. An
    `init_res` [h0, w0] (Autolume's non-square start) makes every map below it h0/4 x w0/4 times
    its resolution (`aspect`), and the bound counts that.
    """
    if isinstance(settings, list):
        if len(settings) > MAX_LIST:
            raise ModelFileError(f"{where} has {len(settings)} entries (at most {MAX_LIST})")
        for idx, item in enumerate(settings):
            check_settings(item, f"{where}[{idx}]", aspect)
        return
    if not isinstance(settings, dict):
        return
    init_res = settings.get("init_res")
    if isinstance(init_res, list) and len(init_res) == 2 and all(type(v) is int for v in init_res):
        aspect = (init_res[0] / 4, init_res[1] / 4)
    for key, value in settings.items():
        values = value if isinstance(value, list) and all(type(v) is int for v in value) else [value]
        for item in values:
            if type(item) is int and key not in SCALAR_KEYS:
                low, high = DIMENSION_LIMITS.get(key, (None, None))
                if low is None:
                    raise ModelFileError(f"{where}.{key} is a dimension without a bound")
                if not low <= item <= high:
                    raise ModelFileError(f"{where}.{key} is {item}, outside {low}..{high}")
            elif isinstance(item, float) and not math.isfinite(item):
                raise ModelFileError(f"{where}.{key} is {item}")
            elif isinstance(item, (dict, list)):
                check_settings(item, f"{where}.{key}", aspect)
    channels = max((settings[k] for k in _CHANNEL_KEYS if type(settings.get(k)) is int), default=1)
    size = max((max(_as_list(settings[key])) * settings.get(factor, 1) if factor else max(_as_list(settings[key]))
                for key, factor in _SIZE_KEYS.items() if key in settings), default=1)
    height, width = math.ceil(size * aspect[0]), math.ceil(size * aspect[1])
    if channels * height * width > MAX_FEATURE_ELEMENTS:
        raise ModelFileError(f"{where}: a feature map of {channels} x {height} x {width} is over "
                             f"{MAX_FEATURE_ELEMENTS} elements")


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def build_checked(build: Callable[[dict[str, Any]], StyleGANModel], settings: dict[str, Any],
                  tensors: dict[str, torch.Tensor]) -> StyleGANModel:
    """`build(settings)` with `tensors` loaded, allocating only once settings and tensors agree.

    The settings are bounded first (`check_settings`), then the network is built on the meta device
    (no memory) and its tensors compared with the file's by name and shape. Only then is it built for
    real: it holds exactly the file's tensors, whose size the reader has already bounded.
    """
    check_settings(settings)
    with torch.device("meta"):
        skeleton = build(settings)
    check_shapes({k: v.shape for k, v in skeleton.state_dict().items()}, tensors)
    model = build(settings)
    load_weights(model, tensors)
    return model


def check_shapes(expected: dict[str, torch.Size], tensors: dict[str, torch.Tensor]) -> None:
    """Any missing, extra or mis-shaped tensor is a ModelFileError."""
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ModelFileError(f"missing tensor {missing[0]}" + (f" (+{len(missing) - 1} more)" if missing[1:]
                                                               else ""))
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelFileError(f"unexpected tensor {extra[0]}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != tuple(shape):
            raise ModelFileError(f"tensor {name} has shape {tuple(tensors[name].shape)}, expected {tuple(shape)}")


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy tensors by name into the model (converting in the copy, no second set); shapes must match."""
    check_shapes({k: v.shape for k, v in model.state_dict().items()}, tensors)
    model.load_state_dict(tensors)
