"""StyleGAN2's per-layer elementwise work as two Triton kernels around cuDNN's convolution.

Eagerly, a synthesis layer launches about ten small kernels besides its convolution: the weight
times the styles, its square, the sum, + 1e-8, rsqrt, the product (and, before an up-sampling
convolution, a transposed copy, and autocast's cast to half); then the noise times its strength,
the add, the bias add, leaky ReLU, the gain, the clamp. Here `modulate` writes the per-sample
(de)modulated weight in the layout and dtype the convolution takes, in one launch, and `epilogue`
does noise, bias, activation, gain, clamp and toRGB's skip add in one pass over the map, in place.
Both compute in float32 whatever the storage dtype. Importing this module imports triton; ask
`kernels.available` first.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import interpreting

BLOCK = 1024  # elements a program handles at a time
# The interpreter pays per program, not per element: there a program takes more (tests pass the GPU's sizes).
INTERPRETER_BLOCK = 16384
INTERPRETER_ROWS = 16
ACTIVATIONS = {"linear": 0, "relu": 1, "lrelu": 2}


@triton.jit
def _modulate_kernel(w_ptr, s_ptr, out_ptr, rows, in_ch, out_ch, taps, gain, o_sb, o_so, o_si,
                     DEMODULATE: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """ROWS (sample, output channel) rows: weight[o] * styles[b] (* rsqrt(sum of squares + 1e-8)) * gain."""
    row = tl.program_id(0) * ROWS + tl.arange(0, ROWS)[:, None]
    b = (row // out_ch).to(tl.int64)
    o = row % out_ch
    length = in_ch * taps
    scale = tl.zeros((ROWS, 1), dtype=tl.float32) + gain
    if DEMODULATE:
        total = tl.zeros((ROWS, BLOCK), dtype=tl.float32)
        for start in range(0, length, BLOCK):
            k = start + tl.arange(0, BLOCK)[None, :]
            inside = (row < rows) & (k < length)
            w = tl.load(w_ptr + o * length + k, mask=inside, other=0.0).to(tl.float32)
            s = tl.load(s_ptr + b * in_ch + k // taps, mask=inside, other=0.0).to(tl.float32)
            total += (w * s) * (w * s)
        scale = gain / tl.sqrt(tl.sum(total, axis=1, keep_dims=True) + 1e-8)
    for start in range(0, length, BLOCK):
        k = start + tl.arange(0, BLOCK)[None, :]
        inside = (row < rows) & (k < length)
        i = k // taps
        w = tl.load(w_ptr + o * length + k, mask=inside, other=0.0).to(tl.float32)
        s = tl.load(s_ptr + b * in_ch + i, mask=inside, other=0.0).to(tl.float32)
        target = out_ptr + b * o_sb + o * o_so + i * o_si + k % taps
        tl.store(target, (w * s * scale).to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _epilogue_kernel(x_ptr, bias_ptr, noise_ptr, strength_ptr, skip_ptr, numel, channels, plane,
                     noise_sn, noise_scale, gain, slope, clamp,
                     CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, ACTIVATION: tl.constexpr,
                     HAS_CLAMP: tl.constexpr, HAS_SKIP: tl.constexpr, BLOCK: tl.constexpr):
    """In place: act(x + noise * strength * scale + bias) * gain, clamped, + skip; offsets in memory order."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = idx < numel
    if CHANNELS_LAST:
        c = idx % channels
        pixel = (idx // channels) % plane
        n = idx // (channels * plane)
    else:
        c = (idx // plane) % channels
        pixel = idx % plane
        n = idx // (channels * plane)
    x = tl.load(x_ptr + idx, mask=inside, other=0.0).to(tl.float32)
    x += tl.load(bias_ptr + c, mask=inside, other=0.0).to(tl.float32)
    if HAS_NOISE:
        noise = tl.load(noise_ptr + n * noise_sn + pixel, mask=inside, other=0.0).to(tl.float32)
        x += noise * (tl.load(strength_ptr).to(tl.float32) * noise_scale)
    if ACTIVATION == 1:
        x = tl.maximum(x, 0.0)
    elif ACTIVATION == 2:
        x = tl.where(x >= 0, x, x * slope)
    x = x * gain
    if HAS_CLAMP:
        x = tl.minimum(tl.maximum(x, -clamp), clamp)
    if HAS_SKIP:
        x += tl.load(skip_ptr + idx, mask=inside, other=0.0).to(tl.float32)
    tl.store(x_ptr + idx, x.to(x_ptr.dtype.element_ty), mask=inside)


def modulate(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool, dtype: torch.dtype,
             transposed: bool = False, gain: float = 1.0, rows_per_program: int | None = None) -> torch.Tensor:
    """weight [O, I, k, k] scaled by styles [B, I] per sample (and demodulated per output channel) times
    `gain`, as [B*O, I, k, k] in `dtype`, or as [B*I, O, k, k] (`transposed`: a transposed convolution's
    grouped weight). A program takes one row (sample, output channel) on the GPU."""
    out_ch, in_ch, kh, kw = weight.shape
    batch, taps = styles.shape[0], kh * kw
    weight, styles = weight.contiguous(), styles.contiguous()
    if transposed:
        out = torch.empty(batch * in_ch, out_ch, kh, kw, device=weight.device, dtype=dtype)
        strides = (in_ch * out_ch * taps, taps, out_ch * taps)
    else:
        out = torch.empty(batch * out_ch, in_ch, kh, kw, device=weight.device, dtype=dtype)
        strides = (out_ch * in_ch * taps, in_ch * taps, taps)
    rows = batch * out_ch
    per_program = rows_per_program or (INTERPRETER_ROWS if interpreting() else 1)
    _modulate_kernel[(triton.cdiv(rows, per_program),)](weight, styles, out, rows, in_ch, out_ch, taps, float(gain),
                                                        *strides, DEMODULATE=demodulate, ROWS=per_program,
                                                        BLOCK=BLOCK)
    return out


def _layout_of(x: torch.Tensor) -> bool | None:
    """True for channels_last, False for contiguous, None for any other memory order."""
    if x.is_contiguous():
        return False
    return True if x.is_contiguous(memory_format=torch.channels_last) else None


def fits(x: torch.Tensor, skip: torch.Tensor | None = None) -> bool:
    """Whether `epilogue` takes x (contiguous or channels_last) and skip (the same shape, dtype and strides)."""
    return _layout_of(x) is not None and (skip is None or (
        skip.shape == x.shape and skip.dtype == x.dtype and skip.stride() == x.stride()))


def epilogue(x: torch.Tensor, bias: torch.Tensor, noise: torch.Tensor | None = None,
             strength: torch.Tensor | None = None, noise_scale: float = 1.0, activation: str = "linear",
             gain: float = 1.0, slope: float = 0.2, clamp: float | None = None,
             skip: torch.Tensor | None = None, block: int | None = None) -> torch.Tensor:
    """x [B, C, H, W] in place: activation(x + noise * strength * noise_scale + bias) * gain, clamped to
    +-clamp (None or < 0: not clamped), plus `skip`. noise is [H, W] (one map for every sample) or
    [B, 1, H, W]; strength a 0-d tensor, read on the device (a CUDA graph sees its current value).
    Needs `fits(x, skip)`. A program takes `block` elements (BLOCK on the GPU)."""
    batch, channels, h, w = x.shape
    if noise is not None:
        noise = noise.contiguous()
        noise_sn = 0 if noise.ndim == 2 else h * w
    else:
        noise_sn = 0
    has_clamp = clamp is not None and clamp >= 0
    block = block or (INTERPRETER_BLOCK if interpreting() else BLOCK)
    grid = (triton.cdiv(x.numel(), block),)
    _epilogue_kernel[grid](x, bias, x if noise is None else noise, bias if strength is None else strength,
                           x if skip is None else skip, x.numel(), channels, h * w, noise_sn,
                           float(noise_scale), float(gain), float(slope), float(clamp) if has_clamp else 0.0,
                           CHANNELS_LAST=bool(_layout_of(x)) and channels > 1, HAS_NOISE=noise is not None,
                           ACTIVATION=ACTIVATIONS[activation], HAS_CLAMP=has_clamp, HAS_SKIP=skip is not None,
                           BLOCK=block)
    return x
