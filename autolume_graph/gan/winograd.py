"""3x3 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, 2016), for the CPU.

oneDNN's direct convolution already runs at the CPU's peak multiply-add rate, so the only way to a
faster 3x3 layer is fewer multiply-adds: F(4x4, 3x3) computes each 4x4 output tile from a 6x6
input tile with 36 products per channel pair instead of 144, as 36 matrix products over all tiles.
The input and output transforms are memory-bound. Written with torch operators they pay only where
channels are many and the map is small (512 channels at 16..64 px: x1.8-2.0 on an AVX-512 CPU) and
lose on large maps with few channels. Our C transforms (`kernels/cpu_winograd`, built at first use)
make each one a single pass in cache and move the line: on a 2-core AVX2 CPU x1.3-2.3 over oneDNN's
direct convolution from 32 channels and 16 px up to 512 px maps (`python benchmarks/bench_winograd_layers.py`:
32-64 channels x1.3-1.8, 128 x1.5-2.3, 256-512 x2.1-3.7), where the torch transforms lose from 64 px on.
`pays_off` draws the line for whichever transforms run here.

Precision: float32 throughout with the transform of the weight done once in float64; the result
differs from the direct convolution by ~5e-5 of the activations' scale. Memory: the cached
transformed filters hold 36 values per channel pair where the weight holds 9 (a 1024 px FFHQ
network's four 512-channel layers that use it, 8 to 64 px: 150 MB more).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import trial
from .cpu_features import Support
from .kernels import autograd_needed, cpu_gemm, cpu_winograd
from .layers import derived

TILE = 4  # output tile side; the input tile is TILE + 2
# Interpolation points 0, 1, -1, 2, -2 and infinity: the standard, best-conditioned choice for F(4, 3).
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))

# Measured on a 2-core AVX-512 CPU (`python benchmarks/bench_winograd.py`): x1.2-2.0 from 256 channels
# in and out on maps up to a quarter of the channel count on a side (256 ch: 64 px, 512 ch: 128 px);
# around x1 at 128 channels; a loss with 64 channels, on larger maps (the transforms' traffic
# outgrows the caches) and on 4 px maps (one tile: the 4x larger transformed filter is all the traffic).
MIN_CHANNELS = 256
MIN_SIDE = 8
CHANNELS_PER_SIDE = 4
# With the C transforms (measured on a 2-core AVX2 CPU, `python benchmarks/bench_winograd_layers.py`, channels
# in and out 16..512, maps 4..512 px, since the fused chunks hold whole register tiles): x1.3-2.3 from 32
# channels on maps of 16 px and more, x1.0-1.9 on 8 px maps from 128 channels; 16 channels, 64 channels at
# 8 px and 4 px maps lose. Each (channels, side) pair is a least layer size from which it pays.
C_PAYS_FROM = ((32, 16), (128, 8))
# An up-sampling layer as four phases (`up2_phases`) against oneDNN's transposed convolution + filter
# (`python benchmarks/bench_winograd_layers.py 256,128,128,2 512,512,32,2 ...`): x1.3-1.6 from 128 px
# input maps with 32..256 channels out; x0.4-0.99 on 4..64 px maps with 256..512 channels, where the
# transposed convolution runs near peak.
UP_MIN_CHANNELS = 32
UP_MIN_SIDE = 128
TRIAL_LAYER = (256, 48)  # channels in and out, map side: the layer `products` times both products on
TRIAL_ROUNDS = 4
C_TRANSFORMS = True  # False: the torch transforms even where the C ones are built (for benchmarks)
_C_FAILURE: list[str] = []  # why the C path failed, once it has (not tried again)


@functools.cache
def _data_transforms(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """B^T and A^T as tensors, made once rather than on every convolution of every frame."""
    with torch.inference_mode(False):
        return torch.tensor(_BT, dtype=dtype, device=device), torch.tensor(_AT, dtype=dtype, device=device)


def transforms() -> Support:
    """Whether the C transforms run here (the first call starts their build, and the product's), and
    what was built or why not."""
    if not C_TRANSFORMS:
        return Support(False, "C transforms switched off")
    if _C_FAILURE:
        return Support(False, _C_FAILURE[0])
    cpu_gemm.support()
    return cpu_winograd.support()


def products() -> Support:
    """Whether the 36 matrix products run on our C product (`cpu_gemm`) rather than torch.bmm: decided
    once per process by timing a mid-sized layer with each (`TRIAL_LAYER`), the figures in the reason.
    The transformed filters' layout follows it."""
    if not transforms().available:
        return Support(False, "torch.bmm (with the torch transforms)")
    built = cpu_gemm.support()
    if not built.available:
        return Support(False, f"torch.bmm (ours not built: {built.reason})")
    return _measured_products()


@functools.cache
def _measured_products() -> Support:
    """The trial layer with our product and with torch.bmm, each its best of TRIAL_ROUNDS (`trial`)."""
    channels, side = TRIAL_LAYER
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode(False), torch.no_grad():
        x = torch.randn(1, channels, side, side, generator=gen).contiguous(memory_format=torch.channels_last)
        plain = _transformed(torch.randn(channels, channels, 3, 3, generator=gen))
        return trial.ours_if_faster(functools.partial(cpu_winograd.conv3x3, x, cpu_gemm.pack(plain)), "torch.bmm",
                                    functools.partial(cpu_winograd.conv3x3, x, plain), TRIAL_ROUNDS,
                                    f"{channels}-channel {side} px layer")


def pays_off(in_channels: int, out_channels: int, height: int, width: int, up: int = 1) -> bool:
    """Whether F(4x4, 3x3) beats the direct (`up` 2: transposed) convolution for this layer shape on
    the CPU (see module doc); height and width of the input map."""
    channels = min(in_channels, out_channels)
    if up == 2:
        return transforms().available and channels >= UP_MIN_CHANNELS and min(height, width) >= UP_MIN_SIDE
    if up != 1:
        return False
    if transforms().available:
        return any(channels >= least and min(height, width) >= side for least, side in C_PAYS_FROM)
    return channels >= MIN_CHANNELS and MIN_SIDE <= min(height, width) \
        and max(height, width) * CHANNELS_PER_SIDE <= channels


def kept_filters(owner: torch.nn.Module, sources: tuple[torch.Tensor, ...],
                 weight: Callable[[], torch.Tensor | None]) -> torch.Tensor | cpu_gemm.Packed | None:
    """`transform_weight(weight())` kept on `owner` until a source changes or the product (and with it
    the filters' layout) does; None where `weight()` is None (a layer Winograd cannot run)."""
    def build() -> torch.Tensor | cpu_gemm.Packed | None:
        made = weight()
        return None if made is None else transform_weight(made)
    return derived(owner, "winograd", sources, build, extra=products().available)


def transform_weight(weight: torch.Tensor) -> torch.Tensor | cpu_gemm.Packed:
    """[O, I, 3, 3] -> the transformed filters that `conv3x3` multiplies with: [36, I, O], or packed
    for our C product (`cpu_gemm.pack`) where `products()` chose it (`kept_filters` keeps them)."""
    u = _transformed(weight)
    if weight.device.type == "cpu" and weight.dtype == torch.float32 and products().available:
        return cpu_gemm.pack(u)
    return u


def _transformed(weight: torch.Tensor) -> torch.Tensor:
    """G w G^T for every channel pair, in float64: [36, I, O]."""
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("au,oiuv,bv->baio", g, weight.to(torch.float64), g)
    return u.reshape(36, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def up2_phases(weight: torch.Tensor, f: torch.Tensor, pad0: int) -> torch.Tensor | None:
    """The up-sampling convolution `fir(conv_transpose2d(x, weight^T, stride=2), f * 4, pad0, pad1)`
    (pad0 + pad1 = taps - 2; `fir` a true convolution) as four 3x3 convolutions of x with padding 1,
    one per output phase (row parity py, column parity px): their weights [4 O, I, 3, 3], phase
    2 py + px first, or None where a phase would need more than 3 taps.

    On the up-sampled grid the layer is x zero-stuffed, convolved with the weight and then the filter:
    one kernel of 3 + taps - 1 taps a side, and every second tap of it meets a sample of x.
    """
    taps = f.shape[-1]
    phase_taps = []
    for parity in (0, 1):  # the taps of the composite kernel (index r) that meet x for this output parity
        centre = parity - pad0 + taps - 1
        used = [centre + 2 - 2 * k for k in range(3)]
        if any((r - centre) % 2 == 0 and r not in used for r in range(taps + 2)):
            return None
        phase_taps.append(used)
    w64 = weight.detach().to(torch.float64).reshape(-1, 1, 3, 3)
    g = (f.detach().to(torch.float64).flip([0, 1]) * 4)[None, None]
    composite = F.conv2d(F.pad(w64, [taps - 1] * 4), g).reshape(*weight.shape[:2], taps + 2, taps + 2)
    margin = 2 + abs(pad0)  # used taps outside the composite kernel are zero
    composite = F.pad(composite, [margin] * 4)
    phases = [composite[:, :, [r + margin for r in phase_taps[py]]][:, :, :, [r + margin for r in phase_taps[px]]]
              for py in (0, 1) for px in (0, 1)]
    return torch.cat(phases).to(weight.dtype)


def conv3x3(x: torch.Tensor, u: torch.Tensor | cpu_gemm.Packed, pad: int = 1, gains: torch.Tensor | None = None,
            scale: torch.Tensor | None = None, bias: torch.Tensor | None = None, noise: torch.Tensor | None = None,
            slope: float = 1.0, clamp: float | None = None, up: int = 1) -> torch.Tensor:
    """`F.conv2d(x * gains, weight, padding=pad)` for u = `transform_weight(weight)`; x [B, C, H, W]
    float32, gains [B, C] (the style modulation) or None, pad >= 1; then * scale [B, O] + bias [O] +
    noise ([H', W'] or [B, 1, H', W']), leaky ReLU of `slope` (1: none), clamp to +-clamp (each optional).
    `up` 2: the weight is `up2_phases`' [4 O, I, 3, 3], and the four phases interleave into [B, O, 2 H', 2 W'].

    By the C transforms where they are built (the rest folded into their passes; the result channels_last
    where x is channels_last or planes, else contiguous), else by torch operators (the result channels_last).
    """
    if x.device.type == "cpu" and x.dtype == torch.float32 and transforms().available \
            and not autograd_needed(x, u, gains, scale, bias, noise):
        try:
            return cpu_winograd.conv3x3(x, u, pad, gains, scale, bias, noise, slope, clamp, up)
        except Exception as exc:  # out of memory, a library gone: the torch transforms for the rest of the run
            _C_FAILURE.append(f"C transforms failed: {type(exc).__name__}: {exc}".splitlines()[0])
    if gains is not None:
        x = x * gains.view(*gains.shape, 1, 1)
    if pad != 1:
        x = F.pad(x, [pad - 1] * 4)
    y = _torch_conv3x3(x, u)
    if up == 2:
        batch, _, height, width = y.shape
        y = y.view(batch, 2, 2, -1, height, width).permute(0, 3, 4, 1, 5, 2).reshape(batch, -1, 2 * height, 2 * width)
    if scale is not None:
        y.mul_(scale.view(*scale.shape, 1, 1))
    if bias is not None:
        y.add_(bias.view(1, -1, 1, 1))
    if noise is not None:
        y.add_(noise)
    if slope != 1:
        F.leaky_relu_(y, slope)  # slope 0 is a ReLU
    return y if clamp is None or clamp < 0 else y.clamp_(-clamp, clamp)


def _torch_conv3x3(x: torch.Tensor, u: torch.Tensor | cpu_gemm.Packed) -> torch.Tensor:
    """The transforms as torch operators, on the channels_last view of x; the result channels_last."""
    if isinstance(u, cpu_gemm.Packed):
        u = cpu_gemm.unpack(u)
    batch, channels, height, width = x.shape
    out_ch = u.shape[2]
    bt, at = _data_transforms(x.dtype, x.device)
    th, tw = -(-height // TILE), -(-width // TILE)
    # zero padding: 1 for the 3x3 kernel, and up to whole tiles at the bottom and right
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, TILE * tw + 1 - width, 1, TILE * th + 1 - height))
    hp, wp = xp.shape[1:3]
    row_stride = wp * channels
    # rows of every tile: [6 (row in tile), B, th, Wp, C]
    rows = xp.as_strided((6, batch, th, wp, channels),
                         (row_stride, hp * row_stride, TILE * row_stride, channels, 1))
    r = torch.mm(bt, rows.reshape(6, -1)).view(6, batch, th, wp, channels)
    # columns of every tile: [6 (column), 6 (transformed row), B, th, tw, C]
    cols = r.as_strided((6, 6, batch, th, tw, channels),
                        (channels, batch * th * row_stride, th * row_stride, row_stride, TILE * channels, 1))
    v = torch.mm(bt, cols.reshape(6, -1)).view(36, batch * th * tw, channels)
    m = torch.bmm(v, u).view(6, 6, batch * th * tw * out_ch)  # [column b, row a, tiles x O]
    s = torch.mm(at, m.view(6, -1)).view(TILE, 6, -1)  # [q, a, ...]
    y = torch.mm(at, s.transpose(0, 1).reshape(6, -1)).view(TILE, TILE, batch, th, tw, out_ch)
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(batch, TILE * th, TILE * tw, out_ch)[:, :height, :width]
    return y.permute(0, 3, 1, 2)
