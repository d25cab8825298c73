"""A throwaway GAN family, for tests only: one 3x3 conv on a learned constant scaled by w.

It shows what a family is: this one file registers detection (a generator record of the made-up
class `TinyGenerator`), construction, the settings our safetensors format saves, the block names
mixing crossfades (`layer`, stating no resolution) and that Generate has no input transform to set.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from autolume_graph.gan.family import Family, register_family
from autolume_graph.gan.mapping import MappingNetwork
from autolume_graph.gan.model import LayerInfo, StyleGANModel, build_checked
from autolume_graph.gan.safe_pickle import ModuleRecord
from autolume_graph.gan.synthesis_call import SynthesisCall

RECORD_CLASS = "TinyGenerator"
SYNTHESIS_KEYS = ("w_dim", "channels", "resolution", "img_channels")


class TinyLayer(torch.nn.Module):
    """The one block: a learned constant and the conv that turns it into RGB."""

    def __init__(self, channels: int, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.const = torch.nn.Parameter(torch.zeros(channels, resolution, resolution))
        self.conv = torch.nn.Conv2d(channels, img_channels, 3, padding=1)


class TinySynthesis(torch.nn.Module):
    """ws [B, 1, w_dim] -> image: the constant's channels scaled by w, then one conv to RGB."""

    def __init__(self, w_dim: int, channels: int, resolution: int, img_channels: int) -> None:
        super().__init__()
        self.w_dim, self.channels, self.img_resolution, self.img_channels = w_dim, channels, resolution, img_channels
        self.num_ws = 1
        self.channels_last = False
        self.layer = TinyLayer(channels, resolution, img_channels)
        self._info = [LayerInfo("layer", resolution, img_channels)]

    def layer_info(self) -> list[LayerInfo]:
        return list(self._info)

    def forward(self, ws: torch.Tensor, **options: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        call = SynthesisCall.start([info.name for info in self._info], ws.device, **options)
        ws = ws.to(torch.float32)
        x = self.layer.const.unsqueeze(0) * ws[:, 0, :self.channels, None, None]
        return call.result(call.finish("layer", self.layer.conv(x)))


class TinyGAN(StyleGANModel):
    """The tiny generator: the shared mapping network + `TinySynthesis`."""

    family = "tiny"

    def __init__(self, mapping: dict[str, Any], synthesis: dict[str, Any]) -> None:
        super().__init__()
        self.mapping = MappingNetwork(**mapping)
        self.synthesis = TinySynthesis(**synthesis)
        self.z_dim, self.w_dim, self.num_ws = self.mapping.z_dim, self.mapping.w_dim, self.synthesis.num_ws
        self.img_resolution, self.img_channels = self.synthesis.img_resolution, self.synthesis.img_channels
        self._settings = {"mapping": mapping, "synthesis": synthesis}

    def settings(self) -> dict[str, Any]:
        return self._settings


def build_from_settings(settings: dict[str, Any]) -> TinyGAN:
    return TinyGAN(settings["mapping"], settings["synthesis"])


def build_from_record(record: ModuleRecord) -> TinyGAN:
    synthesis = record.children["synthesis"]
    settings = {"mapping": MappingNetwork.settings_from_record(record.children["mapping"]),
                "synthesis": {key: int(synthesis.attrs[key]) for key in SYNTHESIS_KEYS}}
    return build_checked(build_from_settings, settings, record.state_dict()).eval().requires_grad_(False)


def make_settings(z_dim: int = 8, channels: int = 4, resolution: int = 8) -> dict[str, Any]:
    """Settings of a fresh tiny generator (w_dim = z_dim, at least `channels`)."""
    fc = {"in_features": z_dim, "out_features": z_dim, "activation": "lrelu", "weight_gain": z_dim ** -0.5,
          "bias_gain": 1.0, "bias": True}
    return {"mapping": {"z_dim": z_dim, "w_dim": z_dim, "num_ws": 1, "layers": [fc]},
            "synthesis": {"w_dim": z_dim, "channels": channels, "resolution": resolution, "img_channels": 3}}


def make_random(seed: int) -> TinyGAN:
    """A tiny generator with seeded random weights."""
    model = build_from_settings(make_settings()).eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point() and tensor.ndim:
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return model


TINY = register_family(Family(
    name="tiny",
    title="Tiny",
    build_from_record=build_from_record,
    build_from_settings=build_from_settings,
    blocks=re.compile(r"layer"),
    recognises=lambda record: record.class_name == RECORD_CLASS,
))
