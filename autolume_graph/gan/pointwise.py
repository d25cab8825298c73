"""Modulated 1x1 convolutions (StyleGAN3-R's layers) by our matrix product on the CPU, where measured faster.

A 1x1 convolution is one matrix product per sample: (pixels x in-channels) times (in x out). Over
channels-last pixels our product (`kernels.cpu_gemm`) ran them at 99-107 GFLOP/s on a 2-core AVX2 EPYC,
the weight modulated and packed per frame and planar maps transposed first; oneDNN's convolution ran
the same at 61-91 GFLOP/s on 148-276 px maps and 114 on 84 px maps. Whether ours runs is measured once
per process on a `TRIAL_LAYER` (oneDNN on AVX-512 machines may well win), and only from `MIN_PIXELS`.
The result is channels-last, which the activation takes as it is.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from . import trial
from .cpu_features import Support
from .kernels import autograd_needed, cpu_gemm, cpu_winograd

MIN_PIXELS = 128 * 128  # smaller maps: oneDNN (at 84 px it ran 114 GFLOP/s against our 106)
TRIAL_LAYER = (512, 128)  # channels in and out, map side (at 256 channels the two came within 10%, either first)
TRIAL_ROUNDS = 2


def pays_off(x: torch.Tensor, *operands: torch.Tensor) -> bool:
    """Whether `conv1x1` runs this map: float32 on the CPU, no gradient wanted, big enough, and ours measured faster."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[2] * x.shape[3] >= MIN_PIXELS \
        and not autograd_needed(x, *operands) and support().available


def support() -> Support:
    """Whether our product runs the 1x1 convolutions here, with the trial's figures or why not."""
    for needed in (cpu_gemm.support(), cpu_winograd.support()):  # the product, and the transpose
        if not needed.available:
            return Support(False, f"oneDNN (ours not built: {needed.reason})")
    return _measured()


@functools.cache
def _measured() -> Support:
    channels, side = TRIAL_LAYER
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.no_grad():
        x = torch.randn(1, channels, side, side, generator=gen)
        weight = torch.randn(channels, channels, 1, 1, generator=gen)
        gains = torch.rand(1, channels, generator=gen) + 0.5
        return trial.ours_if_faster(lambda: conv1x1(x, weight, gains), "oneDNN",
                                    lambda: F.conv2d(x, weight * gains.view(1, -1, 1, 1)), TRIAL_ROUNDS,
                                    f"{channels}-channel {side} px layer")


def conv1x1(x: torch.Tensor, weight: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """`F.conv2d(x * gains, weight)` for x [B, I, H, W] float32 (planes or channels-last), weight [O, I, 1, 1],
    gains [B, I]; the result [B, O, H, W] channels-last (a view of the product's rows, which are padded to
    whole strips of columns)."""
    batch, channels, height, width = x.shape
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = cpu_winograd.channels_last_copy(x.contiguous())
    pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
    modulated = weight[:, :, 0, 0].unsqueeze(0) * gains.unsqueeze(1)  # [B, O, I]
    packed = cpu_gemm.pack(modulated.transpose(1, 2).to(torch.float32))
    out = torch.empty(batch, height * width, packed.width)
    cpu_gemm.bmm(pixels, packed, out)
    return out.view(batch, height, width, packed.width)[..., :weight.shape[0]].permute(0, 3, 1, 2)
