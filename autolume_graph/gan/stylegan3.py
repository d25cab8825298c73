"""StyleGAN3 (Alias-Free GAN, configs T and R) in plain torch, loaded from a pickle's record.

The synthesis network starts from Fourier features whose rotation/translation follow w (and a user
transform), then runs alias-free layers: modulated conv, then a filtered leaky ReLU at a raised
sampling rate (`filtered_lrelu`). Every setting (sizes, factors, padding, clamps) comes from the
stored layer attributes and the low-pass filters are the stored buffers, so any resolution loads.
Parameter and buffer names equal the pickle's; see `model.StyleGANModel` for the call contract.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import pointwise, winograd
from .accel import to_device
from .filtered_lrelu import FilteredLReLU
from .layers import FullyConnectedLayer, attr, derived, unit_styles
from .mapping import MappingNetwork
from .model import LayerInfo, StyleGANModel, build_checked, exact_float32
from .safe_pickle import ModelFileError, ModuleRecord
from .synthesis_call import SynthesisCall

INPUT_NAME = "input"
LAYER_NAME = re.compile(r"L\d+_\d+_\d+")
# On the CPU: 3x3 convolutions by Winograd's F(4x4, 3x3) where `winograd.pays_off`, with the normalised
# weight and its transform kept between frames; False: the direct convolution, for the side-by-side benchmark.
CPU_WINOGRAD = True


def transform_matrix(tx: float, ty: float, rotate_deg: float) -> np.ndarray:
    """The input transform for translate (tx, ty) and rotate: inv(m), m as in NVIDIA's visualizer."""
    a = math.radians(rotate_deg)
    m = np.array([[math.cos(a), math.sin(a), tx], [-math.sin(a), math.cos(a), ty], [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)


class SynthesisInput(torch.nn.Module):
    """Fourier features on a grid, rotated/translated by w through `affine`, then a 1x1 mix."""

    def __init__(self, w_dim: int, channels: int, size: list[int], sampling_rate: float, bandwidth: float,
                 affine: dict[str, Any]) -> None:
        super().__init__()
        self.channels, self.size = channels, [int(s) for s in size]
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        self.affine = FullyConnectedLayer(**affine)
        self.weight = torch.nn.Parameter(torch.zeros(channels, channels))
        self.register_buffer("transform", torch.eye(3, device="cpu"))  # CPU: see the grids below
        self.register_buffer("freqs", torch.zeros(channels, 2))
        self.register_buffer("phases", torch.zeros(channels))
        # Sample positions in the image plane: pixel centres at 1 / sampling_rate spacing. On the CPU even
        # for a meta-device skeleton (`model.build_checked`): meta arithmetic would import most of torch.
        w, h = self.size
        self.register_buffer("grid_x", (torch.arange(w, device="cpu") - (w - 1) / 2) / self.sampling_rate,
                             persistent=False)
        self.register_buffer("grid_y", (torch.arange(h, device="cpu") - (h - 1) / 2) / self.sampling_rate,
                             persistent=False)

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        return {
            "w_dim": int(attr(record, "w_dim")),
            "channels": int(attr(record, "channels")),
            "size": [int(s) for s in np.broadcast_to(np.asarray(attr(record, "size")), [2])],
            "sampling_rate": float(attr(record, "sampling_rate")),
            "bandwidth": float(attr(record, "bandwidth")),
            "affine": FullyConnectedLayer.settings_from_record(_child(record, "affine")),
        }

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        # w decides a rotation (t0, t1 normalised) and a translation (t2, t3), applied after the user's.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        b = t.shape[0]
        m_r = torch.eye(3, device=w.device).repeat(b, 1, 1)
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).repeat(b, 1, 1)
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.to(torch.float32).unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs @ transforms[:, :2, 2:]).squeeze(2)  # [B, C]
        freqs = self.freqs @ transforms[:, :2, :2]  # [B, C, 2]
        # Fade out frequencies that the sampling rate cannot carry.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth))
        amplitudes = amplitudes.clamp(0, 1)
        x = (self.grid_x.view(1, 1, -1, 1) * freqs[:, None, None, :, 0]
             + self.grid_y.view(1, -1, 1, 1) * freqs[:, None, None, :, 1]
             + phases[:, None, None, :])  # [B, H, W, C]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)  # NCHW view of channels_last memory


class SynthesisLayer(torch.nn.Module):
    """Modulated conv (demodulated unless toRGB), then bias + filtered leaky ReLU."""

    def __init__(self, name: str, is_torgb: bool, in_channels: int, out_channels: int, in_size: list[int],
                 out_size: list[int], conv_kernel: int, conv_clamp: float | None, up_factor: int,
                 up_taps: int, down_factor: int, down_taps: int, down_radial: bool, padding: list[int],
                 affine: dict[str, Any]) -> None:
        super().__init__()
        self.name, self.is_torgb = name, is_torgb
        self.in_channels, self.out_channels, self.conv_kernel = in_channels, out_channels, conv_kernel
        self.in_size, self.out_size = list(in_size), list(out_size)
        self.conv_clamp, self.padding = conv_clamp, list(padding)
        self.up_factor, self.down_factor = up_factor, down_factor
        self.affine = FullyConnectedLayer(**affine)
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, conv_kernel, conv_kernel))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", torch.zeros(up_taps) if up_taps > 1 else None)
        down_shape = (down_taps, down_taps) if down_radial else (down_taps,)
        self.register_buffer("down_filter", torch.zeros(down_shape) if down_taps > 1 else None)
        # A meta-device skeleton (`model.build_checked`) has no filter values to precompute from.
        self.act: FilteredLReLU | None = None if self.weight.is_meta else self._make_activation()
        # The activation precomputes from the filters: rebuild it whenever weights are loaded.
        self.register_load_state_dict_post_hook(lambda module, _keys: module._rebuild_activation())
        winograd.transforms()  # the CPU kernels' builds start while the model loads (see stylegan2.SynthesisLayer)

    @staticmethod
    def settings_from_record(name: str, record: ModuleRecord) -> dict[str, Any]:
        def pair(key: str) -> list[int]:
            return [int(s) for s in np.broadcast_to(np.asarray(attr(record, key)), [2])]

        clamp = attr(record, "conv_clamp", None)
        return {
            "name": name,
            "is_torgb": bool(attr(record, "is_torgb")),
            "in_channels": int(attr(record, "in_channels")),
            "out_channels": int(attr(record, "out_channels")),
            "in_size": pair("in_size"),
            "out_size": pair("out_size"),
            "conv_kernel": int(attr(record, "conv_kernel")),
            "conv_clamp": None if clamp is None else float(clamp),
            "up_factor": int(attr(record, "up_factor")),
            "up_taps": int(attr(record, "up_taps")),
            "down_factor": int(attr(record, "down_factor")),
            "down_taps": int(attr(record, "down_taps")),
            "down_radial": bool(attr(record, "down_radial")),
            "padding": [int(p) for p in attr(record, "padding")],
            "affine": FullyConnectedLayer.settings_from_record(_child(record, "affine")),
        }

    def _make_activation(self) -> FilteredLReLU:
        k = self.conv_kernel - 1  # the conv pads by k, so its output is k larger than in_size
        act = FilteredLReLU(
            self.up_filter, self.down_filter, self.up_factor, self.down_factor, self.padding,
            (self.in_size[0] + k, self.in_size[1] + k), self.out_channels,
            gain=1.0 if self.is_torgb else math.sqrt(2), slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp)
        return act.to(self.weight.device)

    def _rebuild_activation(self) -> None:
        self.act = self._make_activation()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # [B, in_channels]
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        else:  # the reference's normalisation, after scaling to 1 so that huge styles cannot overflow the squares
            styles = unit_styles(styles)
            styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
        gains = (styles * self.magnitude_ema.rsqrt()).view(*styles.shape, 1, 1)
        pad = self.conv_kernel - 1
        if self._uses_winograd(x):
            filters = winograd.kept_filters(self, (self.weight,), self._weight)
            wsq = derived(self, "wsq", (self.weight,), lambda: self._weight().square().sum(dim=[2, 3]).t())
            x = winograd.conv3x3(x, filters, pad, gains.view(gains.shape[:2]))  # its filters stay cached
        else:
            weight = self._weight()
            wsq = None if self.is_torgb else weight.square().sum(dim=[2, 3]).t()
            # Modulating the input or the weight is the same sum: the input keeps one batched conv for many
            # samples; for one, the weight is fewer numbers to scale wherever the map outnumbers O x k x k.
            if self.conv_kernel == 1 and pointwise.pays_off(x, weight, gains):
                x = pointwise.conv1x1(x, weight, gains.view(gains.shape[:2]))
            elif x.shape[0] == 1 and weight[:, 0].numel() < x.shape[2] * x.shape[3]:
                x = F.conv2d(x, weight * gains.view(1, -1, 1, 1), padding=pad)
            else:
                x = F.conv2d(x * gains, weight, padding=pad)
        dcoefs = None if self.is_torgb else (styles.square() @ wsq + 1e-8).rsqrt()
        # the demodulation rides on the activation's first pass
        return self.act(x, self.bias, dcoefs, channels_last=self._next_reads_pixels(x))

    def _weight(self) -> torch.Tensor:
        """The weight, pre-normalised (as the reference does, for fp16 range) unless toRGB."""
        if self.is_torgb:
            return self.weight
        return self.weight * self.weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()

    def _uses_winograd(self, x: torch.Tensor) -> bool:
        k = self.conv_kernel - 1
        return self._winograd_runs(x, self.in_channels, self.out_channels, x.shape[2] + k, x.shape[3] + k)

    def _winograd_runs(self, x: torch.Tensor, in_channels: int, out_channels: int, height: int, width: int) -> bool:
        return CPU_WINOGRAD and x.device.type == "cpu" and x.dtype == torch.float32 and self.conv_kernel == 3 \
            and winograd.pays_off(in_channels, out_channels, height, width)

    def _next_reads_pixels(self, x: torch.Tensor) -> bool:
        """Whether the next layer (of this one's kernel size: StyleGAN3's layers share it) runs our Winograd
        transforms, which read channels-last pixels: then the activation writes them so, instead of planes
        the transforms would transpose first (a StyleGAN3-T 256 px frame x1.09, bit-identical). Planes for
        1x1 layers (StyleGAN3-R measured slower with pixels: oneDNN takes its small maps as planes)."""
        k = self.conv_kernel - 1
        return not self.is_torgb and self._winograd_runs(x, self.out_channels, self.out_channels,
                                                         self.out_size[1] + k, self.out_size[0] + k)


class SynthesisNetwork(torch.nn.Module):
    """ws [B, num_ws, w_dim] -> image: input, then the layers, each on its own w, then output_scale."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, num_ws: int, output_scale: float,
                 input: dict[str, Any], layers: list[dict[str, Any]]) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws, self.output_scale = num_ws, output_scale
        if len(layers) + 1 != num_ws:
            raise ModelFileError(f"synthesis uses {len(layers) + 1} ws but num_ws is {num_ws}")
        self.input = SynthesisInput(**input)
        self.layer_names = [settings["name"] for settings in layers]
        for settings in layers:
            setattr(self, settings["name"], SynthesisLayer(**settings))
        self._info = [LayerInfo(INPUT_NAME, self.input.size[0], self.input.channels)] + [
            LayerInfo(layer.name, layer.out_size[0], layer.out_channels)
            for layer in self.layers() if not layer.is_torgb]
        self._names = {info.name for info in self._info}

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        names = [str(name) for name in attr(record, "layer_names")]
        if not all(LAYER_NAME.fullmatch(name) for name in names):
            raise ModelFileError("layer names are not StyleGAN3's (L<index>_<size>_<channels>)")
        settings = {
            "w_dim": int(attr(record, "w_dim")),
            "img_resolution": int(attr(record, "img_resolution")),
            "img_channels": int(attr(record, "img_channels")),
            "num_ws": int(attr(record, "num_ws")),
            "output_scale": float(attr(record, "output_scale")),
            "input": SynthesisInput.settings_from_record(_child(record, "input")),
            "layers": [SynthesisLayer.settings_from_record(name, _child(record, name)) for name in names],
        }
        # Each layer takes the size the one before gives and the last gives the image, so no stored size can
        # be out of step with the rest of the network (sizes themselves are bounded by `model.check_settings`).
        layers = settings["layers"]
        sizes = [[settings["input"]["size"]] * 2] + [[layer["in_size"], layer["out_size"]] for layer in layers]
        chained = all(sizes[i][-1] == sizes[i + 1][0] for i in range(len(sizes) - 1))
        if not chained or sizes[-1][-1] != [settings["img_resolution"]] * 2:
            raise ModelFileError("layer sizes do not chain from the input to the image resolution")
        return settings

    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self, name) for name in self.layer_names]

    def layer_info(self) -> list[LayerInfo]:
        return list(self._info)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noise_scale: float = 1.0,
        noise_seed: int | None = None,
        layer_noise_scale: dict[str, float] | None = None,
        layer_edits: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
        capture: str | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The noise arguments are checked for the common contract; StyleGAN3 has no noise inputs."""
        call = SynthesisCall.start(self._names, ws.device, noise_mode, noise_scale, noise_seed, layer_noise_scale,
                                   layer_edits, capture)
        ws = ws.to(torch.float32)
        with exact_float32():
            x = call.finish(INPUT_NAME, self.input(ws[:, 0]))
            for idx, name in enumerate(self.layer_names, start=1):
                x = call.finish(name, getattr(self, name)(x, ws[:, idx]))
        if self.output_scale != 1:
            x = x * self.output_scale
        return call.result(x)


class StyleGAN3(StyleGANModel):
    """The StyleGAN3 generator: `mapping` + `synthesis`, names as in NVIDIA's pickles."""

    family = "stylegan3"
    live_buffers = ("synthesis.input.transform",)  # set every frame by `set_transform`

    def __init__(self, mapping: dict[str, Any], synthesis: dict[str, Any]) -> None:
        super().__init__()
        self.mapping = MappingNetwork(**mapping)
        self.c_dim = self.mapping.c_dim
        self.synthesis = SynthesisNetwork(**synthesis)
        self.z_dim, self.w_dim = self.mapping.z_dim, self.mapping.w_dim
        self.num_ws = self.synthesis.num_ws
        self.img_resolution, self.img_channels = self.synthesis.img_resolution, self.synthesis.img_channels
        self._settings = {"mapping": mapping, "synthesis": synthesis}
        if self.mapping.num_ws != self.num_ws:
            raise ModelFileError(f"mapping makes {self.mapping.num_ws} ws, synthesis needs {self.num_ws}")

    def settings(self) -> dict[str, Any]:
        return self._settings

    def set_transform(self, tx: float, ty: float, rotate_deg: float) -> None:
        """Translate/rotate the picture by setting the input's transform (cheap; fine every frame)."""
        transform = self.synthesis.input.transform
        transform.copy_(to_device(torch.from_numpy(transform_matrix(tx, ty, rotate_deg)), transform.device))


def build_from_settings(settings: dict[str, Any]) -> StyleGAN3:
    """The network structure described by `StyleGAN3.settings()`, weights zero."""
    return StyleGAN3(settings["mapping"], settings["synthesis"])


def build_from_record(record: ModuleRecord) -> StyleGAN3:
    """A StyleGAN3 generator from a pickle's generator record, weights loaded and checked by name."""
    settings = {
        "mapping": MappingNetwork.settings_from_record(_child(record, "mapping")),
        "synthesis": SynthesisNetwork.settings_from_record(_child(record, "synthesis")),
    }
    return build_checked(build_from_settings, settings, record.state_dict()).eval().requires_grad_(False)


def _child(record: ModuleRecord, name: str) -> ModuleRecord:
    found = record.children.get(name)
    if found is None:
        raise ModelFileError(f"{record.class_name} has no submodule {name!r}")
    return found
