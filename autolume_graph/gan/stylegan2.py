"""StyleGAN2 generator (Karras et al. 2020) that renders NVIDIA network pickles exactly.

Structure and names follow the pickle (`synthesis.b{res}.conv0/conv1/torgb/skip`, `const`,
`noise_const`, `noise_strength`, `resample_filter`), so weights load by name. Everything that
changes arithmetic (gains, clamps, architecture, activations, filter) is read from the record's
stored attributes. CPU inference is float32 (the fp16 layers of training snapshots run in float32).

Up-sampling follows upfirdn2d semantics: zero-insertion by 2, FIR with the stored 4x4 filter times
4, in plain torch as a transposed convolution followed by (or fused with) the filter.

Non-square pictures (Autolume's `custom_stylegan2`): the synthesis settings carry `init_res` =
[h0, w0], the size of the 4 px block's map; block `b<res>` then works on maps of res*h0/4 x
res*w0/4 (`map_size`), and the picture is (img_resolution*h0/4, img_resolution*w0/4). Block names
and resolutions stay powers of two. NVIDIA's square networks are `init_res` [4, 4].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import winograd
from .kernels import autograd_needed, cpu_fir, stylegan2_dispatch
from .layers import (
    ACTIVATION_GAINS,
    ACTIVATION_SLOPES,
    LRELU_SLOPE,
    FullyConnectedLayer,
    attr,
    autocast_dtype,
    bias_act,
    check_activation,
    derived,
    tensor,
    unit_styles,
)
from .mapping import MappingNetwork
from .model import LayerInfo, StyleGANModel, build_checked, exact_float32
from .safe_pickle import ModelFileError, ModuleRecord
from .synthesis_call import SynthesisCall

ARCHITECTURES = ("orig", "skip", "resnet")
SQUARE = (4, 4)  # the init_res of NVIDIA's networks (no attribute in their files)


def map_size(resolution: int, init_res: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the feature maps of block `b<resolution>`: init_res scaled by resolution / 4."""
    return resolution * init_res[0] // 4, resolution * init_res[1] // 4


def check_init_res(value: Any) -> tuple[int, int]:
    """A file's or settings' `init_res` as (h0, w0), or a ModelFileError saying what it is instead."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value):
        raise ModelFileError(f"init_res {value!r} is not two positive integers [h0, w0]")
    return int(value[0]), int(value[1])


def upsample_kernel(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """The depthwise transposed-conv weight [C, 1, k, k] of `upsample2x`."""
    return (f * 4).to(dtype)[None, None].expand(channels, 1, *f.shape)


def fir_kernel(f: torch.Tensor, gain: float, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """The depthwise conv weight [C, 1, k, k] of `fir_filter` (f flipped: conv2d correlates)."""
    return (f.flip([0, 1]) * gain).to(dtype)[None, None].expand(channels, 1, *f.shape)


def upsample2x(x: torch.Tensor, f: torch.Tensor, kernel: torch.Tensor | None = None) -> torch.Tensor:
    """upfirdn2d(x, f, up=2) with gain 4: zero-insert, true convolution with f, same-centred crop.

    For a 4-tap filter this is a depthwise transposed convolution with stride 2, cropped by 1.
    `kernel` is `upsample_kernel(f, ...)` when the caller keeps it between frames.
    """
    c = x.shape[1]
    if kernel is None:
        kernel = upsample_kernel(f, c, x.dtype)
    pad = (f.shape[-1] - 2) // 2
    return F.conv_transpose2d(x, kernel, stride=2, padding=pad, groups=c)


def fir_filter(x: torch.Tensor, f: torch.Tensor, gain: float, pad0: int, pad1: int,
               kernel: torch.Tensor | None = None) -> torch.Tensor:
    """Depthwise true convolution of every channel with f * gain after padding pad0 before, pad1 after."""
    c = x.shape[1]
    if kernel is None:
        kernel = fir_kernel(f, gain, c, x.dtype)
    if pad0 == pad1 and pad0 >= 0:
        return F.conv2d(x, kernel, padding=pad0, groups=c)
    return F.conv2d(F.pad(x, [pad0, pad1, pad0, pad1]), kernel, groups=c)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    fir: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample modulated (and demodulated) convolution as one grouped convolution.

    weight [O, I, k, k] is scaled by styles [B, I] per sample, normalised per output channel when
    demodulating, and the batch folds into conv groups. `up=2` is a transposed convolution (a true
    convolution of the zero-inserted input) followed by the FIR resample filter (`fir`: its
    `fir_kernel` when the caller keeps it between frames).
    """
    batch, in_ch = x.shape[:2]
    out_ch, _, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_ch, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if up == 1:
        grouped = w.reshape(batch * out_ch, in_ch, kh, kw)
    else:
        grouped = w.transpose(1, 2).reshape(batch * in_ch, out_ch, kh, kw)
    return grouped_conv2d(x, grouped, up, padding, resample_filter, fir)


def grouped_conv2d(
    x: torch.Tensor,
    grouped: torch.Tensor,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    fir: torch.Tensor | None = None,
) -> torch.Tensor:
    """The convolution of `modulated_conv2d` with its per-sample weight made: the batch folds into conv
    groups. `grouped` is [B*O, I, k, k], or for `up=2` the transposed convolution's [B*I, O, k, k]."""
    batch, in_ch, height, width = x.shape
    kh = grouped.shape[-2]
    if batch > 1:
        x = x.reshape(1, batch * in_ch, height, width)
    if up == 1:
        x = F.conv2d(x, grouped, padding=padding, groups=batch)
    else:
        x = F.conv_transpose2d(x, grouped, stride=up, groups=batch)
        # The transposed conv yields up*H + k - up samples; pad so the FIR lands where upfirdn2d's
        # "zero-insert, pad, filter, then conv" would put it.
        taps = resample_filter.shape[-1]
        pad0 = padding + (taps + up - 1) // 2 - kh + 1
        pad1 = taps - 1 - kh + up - pad0
        x = fir_filter(x, resample_filter, up * up, pad0, pad1, fir)
    return x.reshape(batch, -1, *x.shape[2:]) if batch > 1 else x


@dataclass
class _Pass(SynthesisCall):
    """A synthesis call with StyleGAN2's fast-path switches, handed down the blocks."""

    cache: bool = True  # keep constants derived from the weights between frames
    reorder: bool = True  # the CPU's reordered float32 formulation (`SynthesisLayer._fast_forward`)
    winograd: bool = True


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise + bias + activation with gain and clamp."""

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel_size: int, resolution: int,
                 up: int, use_noise: bool, activation: str, act_gain: float, conv_clamp: float | None,
                 padding: int, filter_size: int, affine: dict[str, Any],
                 init_res: tuple[int, int] = SQUARE) -> None:
        super().__init__()
        self.name = name
        self.out_channels = out_channels
        self.resolution = resolution
        self.size = map_size(resolution, init_res)
        self.up = up
        self.use_noise = use_noise
        self.activation = check_activation(activation)
        self.act_gain = act_gain
        self.conv_clamp = conv_clamp
        self.padding = padding
        self.affine = FullyConnectedLayer(**affine)
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", torch.zeros(filter_size, filter_size))
        if use_noise:
            self.register_buffer("noise_const", torch.zeros(self.size))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        # The CPU kernels' builds (threads of their own) start while the model loads, so that the first
        # frame already takes the path every later frame takes: the same pixels from the first frame on.
        winograd.transforms()
        cpu_fir.support()

    @staticmethod
    def settings_from_record(name: str, record: ModuleRecord) -> dict[str, Any]:
        weight = tensor(record, "weight")
        activation = check_activation(str(attr(record, "activation", "lrelu")))
        return {
            "name": name,
            "in_channels": int(weight.shape[1]),
            "out_channels": int(weight.shape[0]),
            "kernel_size": int(weight.shape[-1]),
            "resolution": int(attr(record, "resolution")),
            "up": int(attr(record, "up", 1)),
            "use_noise": bool(attr(record, "use_noise", True)),
            "activation": activation,
            "act_gain": float(attr(record, "act_gain", ACTIVATION_GAINS[activation])),
            "conv_clamp": _optional_float(attr(record, "conv_clamp", None)),
            "padding": int(attr(record, "padding")),
            "filter_size": int(tensor(record, "resample_filter").shape[-1]),
            "affine": FullyConnectedLayer.settings_from_record(_child(record, "affine")),
        }

    def forward(self, x: torch.Tensor, w: torch.Tensor, run: _Pass, gain: float = 1.0) -> torch.Tensor:
        if run.reorder and self.act_gain * gain > 0 and x.dtype == torch.float32:
            return self._fast_forward(x, w, run, gain)
        if stylegan2_dispatch.uses_fused(x):
            try:
                return self._fused_forward(x, w, run, gain)
            except Exception as exc:  # a GPU or toolchain Triton cannot compile for: the picture goes on
                stylegan2_dispatch.record_failure(exc)
        styles = self.affine(w)
        # Under autocast x comes out of the convolution in half precision; noise and bias join it in
        # that dtype so the feature maps stay half between layers (float32 ones would double the
        # memory traffic of every elementwise pass and cost a cast before each convolution).
        fir = None
        if run.cache and self.up > 1:  # the filter runs on the up-convolution's output: autocast's dtype
            fir = self._fir(self.out_channels, autocast_dtype(x.device.type) or x.dtype, _layout(x))
        x = modulated_conv2d(x, self.weight, styles, True, self.up, self.padding, self.resample_filter, fir)
        if self.use_noise and run.noise_mode != "none":
            scale = run.layer_noise_scale.get(self.name, run.noise_scale)
            if scale != 0:
                if run.noise_mode == "random":
                    shape = (x.shape[0], 1, *self.size)
                    x = x + self._scaled_noise(torch.randn(shape, generator=run.generator, device=x.device,
                                                           dtype=x.dtype), scale, x.dtype)
                else:
                    x = x + self._const_noise(scale, x.dtype, run.cache)
        bias = derived(self, "bias", (self.bias,), lambda: self.bias.to(x.dtype), extra=x.dtype) if run.cache \
            else self.bias.to(x.dtype)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, bias, self.activation, self.act_gain * gain, clamp)

    def _fused_forward(self, x: torch.Tensor, w: torch.Tensor, run: _Pass, gain: float) -> torch.Tensor:
        """`forward`'s arithmetic in two Triton launches besides the convolution: the per-sample modulated,
        demodulated weight made in the convolution's layout and dtype, and one in-place epilogue (noise,
        bias, activation, gain, clamp) computed in float32."""
        from .kernels import triton_stylegan2

        dtype = autocast_dtype(x.device.type) or x.dtype
        weight = triton_stylegan2.modulate(self.weight, self.affine(w), True, dtype, transposed=self.up > 1)
        fir = self._fir(self.out_channels, dtype, _layout(x)) if run.cache and self.up > 1 else None
        x = grouped_conv2d(x.to(dtype), weight, self.up, self.padding, self.resample_filter, fir)
        if not triton_stylegan2.fits(x):
            x = x.contiguous()
        scale = run.layer_noise_scale.get(self.name, run.noise_scale) if self.use_noise else 0
        noise = None
        if run.noise_mode == "random" and scale != 0:
            noise = torch.randn((x.shape[0], 1, *self.size), generator=run.generator, device=x.device, dtype=x.dtype)
        elif run.noise_mode == "const" and scale != 0:
            noise = self.noise_const
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return triton_stylegan2.epilogue(x, self.bias, noise, self.noise_strength if noise is not None else None,
                                         scale, self.activation, self.act_gain * gain, LRELU_SLOPE, clamp)

    def _scaled_noise(self, noise: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
        return (noise * (self.noise_strength if scale == 1 else self.noise_strength * scale)).to(dtype)

    def _const_noise(self, scale: float, dtype: torch.dtype, cache: bool) -> torch.Tensor:
        """The stored noise, scaled, in the feature maps' dtype; kept between frames when `cache`."""
        if not cache:
            return self._scaled_noise(self.noise_const, scale, dtype)
        return derived(self, "noise", (self.noise_const, self.noise_strength),
                       lambda: self._scaled_noise(self.noise_const, scale, dtype), extra=(scale, dtype))

    def _fir(self, channels: int, dtype: torch.dtype, layout: torch.memory_format) -> torch.Tensor:
        """The resample filter as the depthwise conv weight of `fir_filter`, in the layout conv2d wants
        (no copy per call), kept between frames."""
        f = self.resample_filter
        return derived(self, "fir", (f,), lambda: fir_kernel(f, self.up ** 2, channels, dtype).contiguous(
            memory_format=layout), extra=(channels, dtype, layout))

    def _fast_forward(self, x: torch.Tensor, w: torch.Tensor, run: _Pass, gain: float) -> torch.Tensor:
        """Same arithmetic as `forward`, reordered so that constants are computed once per weight version.

        Demodulation is a matmul of the cached per-(out, in) squared weight sums with styles^2. Where
        the weight has more elements per input channel than the input map (the small, wide layers),
        the weight stays constant and the styles scale the input instead ("non-fused"); elsewhere the
        per-frame weight is cheaper. Where Winograd's F(4x4, 3x3) pays (`winograd.pays_off`), the
        constant weight's transform is cached and the convolution takes 4x fewer multiply-adds; an
        up-sampling layer runs as four phases of 3x3 on its input map, the filter folded in.
        The activation gain (> 0, so it commutes with lrelu/relu) is folded into the demodulation,
        and bias plus constant noise are one cached map added in place.
        """
        g = self.act_gain * gain
        # Always channels_last here: mkldnn and the native kernels round differently, and models
        # whose weights are equal must render bit-identically whatever `channels_last` says.
        x = x.contiguous(memory_format=torch.channels_last)
        styles = unit_styles(self.affine(w))
        weight = self.weight
        out_ch, _, kh, kw = weight.shape
        wsq = derived(self, "wsq", (weight,), lambda: weight.square().sum(dim=[2, 3]).T.contiguous())
        dg = (styles.square() @ wsq + 1e-8).rsqrt() * g
        filters = self._winograd_filters() if run.winograd and winograd.pays_off(
            x.shape[1], out_ch, x.shape[2], x.shape[3], self.up) else None
        random_noise, noise_scale = self._noise(run, g, x)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None and self.conv_clamp >= 0 else None
        fir_taps = self._fir_taps(x, dg) if self.up > 1 and filters is None else None
        if filters is not None or fir_taps is not None:  # the finish rides on the pass that writes the output
            noise = random_noise if noise_scale == 0 else derived(
                self, "noise", (self.noise_const, self.noise_strength),
                lambda: self.noise_const * (self.noise_strength * (noise_scale * g)), extra=(g, noise_scale))
            finish = dict(bias=self.bias * g, noise=noise, slope=ACTIVATION_SLOPES[self.activation], clamp=clamp)
        if filters is not None:  # the styles scale the input inside the transform
            return winograd.conv3x3(x, filters, gains=styles, scale=dg, up=self.up, **finish)
        if out_ch * kh * kw >= x.shape[2] * x.shape[3]:
            # One fixed layout, so that equal weights give bit-equal images whatever their strides;
            # channels_last like x, or every convolution would convert the weight again.
            shared = derived(self, "weight", (weight,), lambda: weight.contiguous(memory_format=torch.channels_last))
            x = self._conv(x * styles[:, :, None, None], shared, x.shape[0], filtered=fir_taps is None)
            scale = dg  # still to apply
        else:
            x = self._conv(x, weight * styles[:, None, :, None, None] * dg[:, :, None, None, None],
                           x.shape[0], filtered=fir_taps is None)
            scale = None
        if fir_taps is not None:
            return cpu_fir.fir_finish(x, fir_taps, *self._fir_pads(), scale=scale, **finish)
        if scale is not None:
            x.mul_(scale[:, :, None, None])
        if random_noise is not None:
            x.add_(random_noise)
        x.add_(self._offset(g, noise_scale, _layout(x)))
        if self.activation == "lrelu":
            F.leaky_relu_(x, LRELU_SLOPE)
        elif self.activation == "relu":
            F.relu_(x)
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        return x

    def _winograd_filters(self) -> torch.Tensor | winograd.cpu_gemm.Packed | None:
        """The transformed filters of this layer's 3x3 convolution (an up-sampling one as its four
        phases, `winograd.up2_phases`), kept between weight versions; None where Winograd cannot run it."""
        weight = self.weight
        if weight.shape[-2:] != (3, 3) or self.up not in (1, 2) or (self.up == 1 and self.padding != 1):
            return None
        if self.up == 1:
            return winograd.kept_filters(self, (weight,), lambda: weight)
        return winograd.kept_filters(self, (weight, self.resample_filter), lambda: winograd.up2_phases(
            weight, self.resample_filter, self._fir_pads()[0]))

    def _fir_taps(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The resample filter (times up^2) as the separable taps of our C filter-and-finish pass for x,
        kept between frames; None where that pass does not run (not the CPU, not built, not separable,
        gradients wanted)."""
        f = self.resample_filter
        if x.device.type != "cpu" or not cpu_fir.support().available \
                or autograd_needed(x, scale, f, self.weight, self.bias):
            return None
        return derived(self, "fir_taps", (f,), lambda: cpu_fir.separable(f, self.up ** 2), extra=self.up)

    def _fir_pads(self) -> tuple[int, int]:
        """The padding before and after of the filter that follows the transposed convolution."""
        taps, kh = self.resample_filter.shape[-1], self.weight.shape[-1]
        pad0 = self.padding + (taps + self.up - 1) // 2 - kh + 1
        return pad0, taps - 1 - kh + self.up - pad0

    def _noise(self, run: _Pass, g: float, x: torch.Tensor) -> tuple[torch.Tensor | None, float]:
        """This frame's random noise term (already scaled), or the scale of the constant noise (0: none)."""
        scale = run.layer_noise_scale.get(self.name, run.noise_scale) if self.use_noise else 0
        if run.noise_mode == "random" and scale != 0:
            noise = torch.randn((x.shape[0], 1, *self.size), generator=run.generator, device=x.device, dtype=x.dtype)
            return noise * (self.noise_strength * (scale * g)), 0
        return None, (0 if run.noise_mode == "none" else scale)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, batch: int, filtered: bool = True) -> torch.Tensor:
        """Convolution (+ up-sampling) with `weight` [O, I, k, k] shared, or [B, O, I, k, k] per sample;
        an up-sampling one's resample filter left to the caller unless `filtered`.

        The transposed convolution gets its weight as [I, O, k, k] channels_last: a contiguous weight
        runs mkldnn's slow path against a channels_last input (2.3x slower at 32 -> 16 channels,
        128 px). One layout whatever the input's also keeps channels_last and contiguous feature maps
        rendering bit-identically (ModelMix's exact ends).
        """
        shared = weight.ndim == 4
        if not shared:
            if batch > 1:
                x = x.reshape(1, -1, *x.shape[2:])
            weight = weight.reshape(-1, *weight.shape[2:])
        groups = 1 if shared else batch
        if self.up == 1:
            y = F.conv2d(x, weight, padding=self.padding, groups=groups)
        else:
            def transposed() -> torch.Tensor:
                out_ch = weight.shape[0] // groups
                wt = weight.reshape(groups, out_ch, *weight.shape[1:]).transpose(1, 2)
                return wt.reshape(-1, out_ch, *weight.shape[2:]).contiguous(memory_format=torch.channels_last)

            wt = derived(self, "wt", (weight,), transposed) if shared else transposed()
            y = F.conv_transpose2d(x, wt, stride=self.up, groups=groups)
            if filtered:
                y = fir_filter(y, self.resample_filter, self.up ** 2, *self._fir_pads(),
                               self._fir(y.shape[1], y.dtype, torch.channels_last))
        return y.reshape(batch, -1, *y.shape[2:]) if groups > 1 else y

    def _offset(self, g: float, noise_scale: float, layout: torch.memory_format) -> torch.Tensor:
        """g * (bias + noise_const * noise_strength * noise_scale), as [1, O, 1, 1] or [1, O, H, W]."""
        def build() -> torch.Tensor:
            offset = self.bias.reshape(1, -1, 1, 1)
            if noise_scale != 0:
                offset = offset + self.noise_const * (self.noise_strength * noise_scale)
                offset = offset.contiguous(memory_format=layout)
            return offset * g

        sources = (self.bias, self.noise_const, self.noise_strength) if self.use_noise else (self.bias,)
        return derived(self, "offset", sources, build, extra=(g, noise_scale, layout))


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 conv without demodulation to image channels, + bias, clamped."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, weight_gain: float,
                 conv_clamp: float | None, affine: dict[str, Any]) -> None:
        super().__init__()
        self.weight_gain = weight_gain
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(**affine)
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        weight = tensor(record, "weight")
        return {
            "in_channels": int(weight.shape[1]),
            "out_channels": int(weight.shape[0]),
            "kernel_size": int(weight.shape[-1]),
            "weight_gain": float(attr(record, "weight_gain")),
            "conv_clamp": _optional_float(attr(record, "conv_clamp", None)),
            "affine": FullyConnectedLayer.settings_from_record(_child(record, "affine")),
        }

    def forward(self, x: torch.Tensor, w: torch.Tensor, img: torch.Tensor | None = None) -> torch.Tensor:
        """The picture so far (`img`, up-sampled from the block before, or None) plus this layer's RGB."""
        if stylegan2_dispatch.uses_fused(x):
            try:
                return self._fused_forward(x, w, img)
            except Exception as exc:  # a GPU or toolchain Triton cannot compile for: the picture goes on
                stylegan2_dispatch.record_failure(exc)
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, False, padding=self.padding)
        y = bias_act(x, self.bias, clamp=self.conv_clamp)
        return y if img is None else img + y

    def _fused_forward(self, x: torch.Tensor, w: torch.Tensor, img: torch.Tensor | None) -> torch.Tensor:
        """`forward` as two Triton launches besides the 1x1 convolution: the modulated weight, and bias,
        clamp and the add to `img` in one pass."""
        from .kernels import triton_stylegan2

        dtype = autocast_dtype(x.device.type) or x.dtype
        weight = triton_stylegan2.modulate(self.weight, self.affine(w), False, dtype, gain=self.weight_gain)
        y = grouped_conv2d(x.to(dtype), weight, padding=self.padding)
        if not triton_stylegan2.fits(y):
            y = y.contiguous()
        if img is not None and not triton_stylegan2.fits(y, img):  # another layout or dtype: add apart
            return img + triton_stylegan2.epilogue(y, self.bias, clamp=self.conv_clamp)
        return triton_stylegan2.epilogue(y, self.bias, clamp=self.conv_clamp, skip=img)


class SkipLayer(torch.nn.Module):
    """The resnet architecture's 1x1 conv + 2x up-sampling shortcut (NVIDIA's `skip` Conv2dLayer)."""

    def __init__(self, in_channels: int, out_channels: int, weight_gain: float, act_gain: float,
                 conv_clamp: float | None, filter_size: int) -> None:
        super().__init__()
        self.weight_gain = weight_gain
        self.act_gain = act_gain
        self.conv_clamp = conv_clamp
        self.weight = torch.nn.Parameter(torch.zeros(out_channels, in_channels, 1, 1))
        self.register_buffer("resample_filter", torch.zeros(filter_size, filter_size))

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        weight = tensor(record, "weight")
        if weight.shape[-1] != 1 or int(attr(record, "up", 2)) != 2 or int(attr(record, "down", 1)) != 1:
            raise ModelFileError("resnet skip layer is not a 1x1 conv with 2x up-sampling")
        if record.params.get("bias") is not None or attr(record, "activation", "linear") != "linear":
            raise ModelFileError("resnet skip layer with bias or activation is not supported")
        return {
            "in_channels": int(weight.shape[1]),
            "out_channels": int(weight.shape[0]),
            "weight_gain": float(attr(record, "weight_gain")),
            "act_gain": float(attr(record, "act_gain", 1.0)),
            "conv_clamp": _optional_float(attr(record, "conv_clamp", None)),
            "filter_size": int(tensor(record, "resample_filter").shape[-1]),
        }

    def forward(self, x: torch.Tensor, gain: float, cache: bool = True) -> torch.Tensor:
        if cache:
            weight = derived(self, "weight", (self.weight,), lambda: self.weight * self.weight_gain)
            f = self.resample_filter
            kernel = derived(self, "up", (f,), lambda: upsample_kernel(f, weight.shape[0], x.dtype).contiguous(),
                             extra=x.dtype)
        else:
            weight, kernel = self.weight * self.weight_gain, None
        x = upsample2x(F.conv2d(x, weight), self.resample_filter, kernel)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, None, gain=self.act_gain * gain, clamp=clamp)


class SynthesisBlock(torch.nn.Module):
    """One resolution: [const |] conv0 (up) -> conv1 -> toRGB, per architecture orig/skip/resnet."""

    def __init__(self, resolution: int, in_channels: int, out_channels: int, architecture: str,
                 is_last: bool, num_conv: int, num_torgb: int, filter_size: int,
                 conv0: dict[str, Any] | None, conv1: dict[str, Any], torgb: dict[str, Any] | None,
                 skip: dict[str, Any] | None, init_res: tuple[int, int] = SQUARE) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ModelFileError(f"unknown architecture {architecture!r}")
        self.resolution = resolution
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.architecture = architecture
        self.is_last = is_last
        self.num_conv = num_conv
        self.num_torgb = num_torgb
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.zeros(out_channels, *map_size(resolution, init_res)))
        self.register_buffer("resample_filter", torch.zeros(filter_size, filter_size))
        self.conv0 = SynthesisLayer(**conv0, init_res=init_res) if conv0 is not None else None
        self.conv1 = SynthesisLayer(**conv1, init_res=init_res)
        self.torgb = ToRGBLayer(**torgb) if torgb is not None else None
        self.skip = SkipLayer(**skip) if skip is not None else None

    @staticmethod
    def settings_from_record(name: str, record: ModuleRecord) -> dict[str, Any]:
        kids = record.children
        conv1 = _child(record, "conv1")
        return {
            "resolution": int(attr(record, "resolution")),
            "in_channels": int(attr(record, "in_channels")),
            "out_channels": int(tensor(conv1, "weight").shape[0]),
            "architecture": str(attr(record, "architecture", "skip")),
            "is_last": bool(attr(record, "is_last")),
            "num_conv": int(attr(record, "num_conv")),
            "num_torgb": int(attr(record, "num_torgb")),
            "filter_size": int(tensor(record, "resample_filter").shape[-1]),
            "conv0": SynthesisLayer.settings_from_record(f"{name}.conv0", kids["conv0"]) if "conv0" in kids
            else None,
            "conv1": SynthesisLayer.settings_from_record(f"{name}.conv1", conv1),
            "torgb": ToRGBLayer.settings_from_record(kids["torgb"]) if "torgb" in kids else None,
            "skip": SkipLayer.settings_from_record(kids["skip"]) if "skip" in kids else None,
        }

    def layers(self) -> list[SynthesisLayer]:
        return [conv for conv in (self.conv0, self.conv1) if conv is not None]

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                run: _Pass, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        if self.architecture == "resnet" and self.conv0 is not None:
            y = self.skip(x, gain=math.sqrt(0.5), cache=run.cache)
            x = run.finish(self.conv0.name, self.conv0(x, ws[:, 0], run))
            x = run.finish(self.conv1.name, y + self.conv1(x, ws[:, 1], run, gain=math.sqrt(0.5)))
        else:
            for idx, conv in enumerate(self.layers()):
                x = run.finish(conv.name, conv(x, ws[:, idx], run))
        if img is not None:
            f = self.resample_filter
            kernel = derived(self, "up", (f,), lambda: upsample_kernel(f, img.shape[1], img.dtype).contiguous(),
                             extra=(img.shape[1], img.dtype)) if run.cache else None
            img = upsample2x(img, f, kernel)
        if self.torgb is not None:
            img = self.torgb(x, ws[:, self.num_conv], img)
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """ws [B, num_ws, w_dim] -> image; see `model.StyleGANModel` for the call contract."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, num_ws: int,
                 blocks: list[dict[str, Any]], init_res: list[int] | tuple[int, int] = SQUARE) -> None:
        super().__init__()
        init_res = check_init_res(init_res)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_size = map_size(img_resolution, init_res)  # the picture's (height, width)
        self.img_channels = img_channels
        self.num_ws = num_ws
        self.channels_last = False
        self.fast = True  # False: the plain fused formulation, every derived tensor rebuilt per frame
        self.winograd = True  # False: the fast path with direct convolutions only (for benchmarks)
        self.block_names = [f"b{settings['resolution']}" for settings in blocks]
        for name, settings in zip(self.block_names, blocks, strict=True):
            setattr(self, name, SynthesisBlock(**settings, init_res=init_res))
        self._info = [LayerInfo(conv.name, conv.resolution, conv.out_channels, conv.use_noise)
                      for block in self.blocks() for conv in block.layers()]
        self._names = {info.name for info in self._info}
        used = sum(block.num_conv for block in self.blocks()) + self.blocks()[-1].num_torgb
        if used != num_ws:
            raise ModelFileError(f"synthesis uses {used} ws but num_ws is {num_ws}")

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        resolutions = [int(res) for res in attr(record, "block_resolutions")]
        img_resolution = int(attr(record, "img_resolution"))
        if resolutions != [4 << i for i in range(len(resolutions))] or resolutions[-1:] != [img_resolution]:
            raise ModelFileError(f"block resolutions {resolutions[:12]} do not double from 4 to {img_resolution}")
        blocks = [SynthesisBlock.settings_from_record(f"b{res}", _child(record, f"b{res}")) for res in resolutions]
        for res, block in zip(resolutions, blocks, strict=True):
            if {block["resolution"]} | {block[k]["resolution"] for k in ("conv0", "conv1") if block[k]} != {res}:
                raise ModelFileError(f"block b{res} holds layers of another resolution")
        return {
            "w_dim": int(attr(record, "w_dim")),
            "img_resolution": img_resolution,
            "img_channels": int(attr(record, "img_channels")),
            "num_ws": int(attr(record, "num_ws")),
            "blocks": blocks,
            "init_res": list(check_init_res(attr(record, "init_res", list(SQUARE)))),
        }

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, name) for name in self.block_names]

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
        # The reordered formulation pays in float32 on the CPU only (on CUDA it cost 293 -> 230 fps at
        # 512 px); everywhere else the plain one runs, with its constants cached unless `fast` is off.
        reorder = self.fast and ws.device.type == "cpu" and autocast_dtype("cpu") is None
        run = _Pass.start(self._names, ws.device, noise_mode, noise_scale, noise_seed, layer_noise_scale, layer_edits,
                          capture, cache=self.fast, reorder=reorder, winograd=self.winograd)
        ws = ws.to(autocast_dtype(ws.device.type) or torch.float32)  # cast once, not in every affine layer
        x = img = None
        w_idx = 0
        with exact_float32():
            for block in self.blocks():
                x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb], run,
                               self.channels_last)
                w_idx += block.num_conv
        return run.result(img)


class StyleGAN2(StyleGANModel):
    """The StyleGAN2 generator: `mapping` + `synthesis`, names as in NVIDIA's pickles."""

    family = "stylegan2"

    def __init__(self, mapping: dict[str, Any], synthesis: dict[str, Any]) -> None:
        super().__init__()
        self.mapping = MappingNetwork(**mapping)
        self.c_dim = self.mapping.c_dim
        self.synthesis = SynthesisNetwork(**synthesis)
        self.z_dim = self.mapping.z_dim
        self.w_dim = self.mapping.w_dim
        self.num_ws = self.synthesis.num_ws
        self.img_resolution = self.synthesis.img_resolution
        self.img_channels = self.synthesis.img_channels
        self._settings = {"mapping": mapping, "synthesis": synthesis}
        if self.mapping.num_ws != self.num_ws:
            raise ModelFileError(f"mapping makes {self.mapping.num_ws} ws, synthesis needs {self.num_ws}")

    def settings(self) -> dict[str, Any]:
        return self._settings


def set_fast_path(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Switch the fast path on or off: constants derived from the weights kept between frames, and on
    the CPU in float32 the reordered formulation (off: the baseline for benchmarks)."""
    for module in model.modules():
        if isinstance(module, (SynthesisNetwork, FullyConnectedLayer)):
            module.fast = enabled
    return model


def build_from_settings(settings: dict[str, Any]) -> StyleGAN2:
    """The network structure described by `StyleGAN2.settings()`, weights zero."""
    return StyleGAN2(settings["mapping"], settings["synthesis"])


def build_from_record(record: ModuleRecord) -> StyleGAN2:
    """A StyleGAN2 generator from a pickle's generator record, weights loaded and checked by name."""
    settings = {
        "mapping": MappingNetwork.settings_from_record(_child(record, "mapping")),
        "synthesis": SynthesisNetwork.settings_from_record(_child(record, "synthesis")),
    }
    return build_checked(build_from_settings, settings, record.state_dict()).eval().requires_grad_(False)


def make_settings(img_resolution: int, *, z_dim: int = 512, w_dim: int = 512, mapping_layers: int = 8,
                  channel_base: int = 32768, channel_max: int = 512, architecture: str = "skip",
                  conv_clamp: float | None = 256, lr_multiplier: float = 0.01,
                  img_channels: int = 3, init_res: tuple[int, int] = SQUARE) -> dict[str, Any]:
    """Settings of a fresh StyleGAN2 laid out like NVIDIA's config (channels = base / res, capped);
    `init_res` [h0, w0] other than [4, 4] makes Autolume's non-square layout."""
    log2 = int(math.log2(img_resolution))
    resolutions = [2 ** i for i in range(2, log2 + 1)]
    channels = {res: min(channel_base // res, channel_max) for res in resolutions}
    lrelu_gain = ACTIVATION_GAINS["lrelu"]

    def affine(out: int) -> dict[str, Any]:
        return {"in_features": w_dim, "out_features": out, "activation": "linear",
                "weight_gain": 1 / math.sqrt(w_dim), "bias_gain": 1.0, "bias": True}

    def conv(name: str, cin: int, cout: int, res: int, up: int) -> dict[str, Any]:
        return {"name": name, "in_channels": cin, "out_channels": cout, "kernel_size": 3, "resolution": res,
                "up": up, "use_noise": True, "activation": "lrelu", "act_gain": lrelu_gain,
                "conv_clamp": conv_clamp, "padding": 1, "filter_size": 4, "affine": affine(cin)}

    blocks = []
    for res in resolutions:
        cin = channels[res // 2] if res > 4 else 0
        cout = channels[res]
        is_last = res == img_resolution
        has_rgb = is_last or architecture == "skip"
        blocks.append({
            "resolution": res, "in_channels": cin, "out_channels": cout, "architecture": architecture,
            "is_last": is_last, "num_conv": 1 if cin == 0 else 2, "num_torgb": int(has_rgb),
            "filter_size": 4,
            "conv0": conv(f"b{res}.conv0", cin, cout, res, 2) if cin else None,
            "conv1": conv(f"b{res}.conv1", cout, cout, res, 1),
            "torgb": {"in_channels": cout, "out_channels": img_channels, "kernel_size": 1,
                      "weight_gain": 1 / math.sqrt(cout), "conv_clamp": conv_clamp, "affine": affine(cout)}
            if has_rgb else None,
            "skip": {"in_channels": cin, "out_channels": cout, "weight_gain": 1 / math.sqrt(cin),
                     "act_gain": 1.0, "conv_clamp": conv_clamp, "filter_size": 4}
            if architecture == "resnet" and cin else None,
        })
    num_ws = sum(block["num_conv"] for block in blocks) + blocks[-1]["num_torgb"]
    fc = {"activation": "lrelu", "weight_gain": lr_multiplier / math.sqrt(w_dim), "bias_gain": lr_multiplier,
          "bias": True}
    layers = [{"in_features": z_dim if i == 0 else w_dim, "out_features": w_dim, **fc}
              for i in range(mapping_layers)]
    layers[0]["weight_gain"] = lr_multiplier / math.sqrt(z_dim)
    return {
        "mapping": {"z_dim": z_dim, "w_dim": w_dim, "num_ws": num_ws, "layers": layers},
        "synthesis": {"w_dim": w_dim, "img_resolution": img_resolution, "img_channels": img_channels,
                      "num_ws": num_ws, "blocks": blocks, "init_res": list(check_init_res(init_res))},
    }


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format `x` is in, as conv2d will see it."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 \
        else torch.contiguous_format


def _child(record: ModuleRecord, name: str) -> ModuleRecord:
    found = record.children.get(name)
    if found is None:
        raise ModelFileError(f"{record.class_name} has no submodule {name!r}")
    return found


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
