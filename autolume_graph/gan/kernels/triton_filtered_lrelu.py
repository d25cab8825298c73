"""StyleGAN3's filtered leaky ReLU as one Triton kernel per layer (the tiling: filtered_lrelu_tiles).

Each program takes one output tile of one (sample, channel) plane: it loads the input tile with its
halo, adds the bias, upsamples with two matrix products per filter term, applies leaky ReLU * gain
and the clamp, and downsamples with two more, all in registers. Products take float16/bfloat16
operands when the input is in that precision (tensor cores) and accumulate in float32; float32
inputs use exact IEEE products (TF32 would miss the 1e-4 the float32 path promises).
Importing this module imports triton; ask `kernels.available` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

if TYPE_CHECKING:
    from .filtered_lrelu_tiles import FusedFilteredLReLU

NUM_WARPS = 4


@triton.jit
def _matrix(ptr, term, ROWS: tl.constexpr, COLS: tl.constexpr, dtype: tl.constexpr):
    """Term `term` of a stacked [terms, ROWS, COLS] float32 matrix, in the products' dtype."""
    rows = tl.arange(0, ROWS)[:, None]
    cols = tl.arange(0, COLS)[None, :]
    return tl.load(ptr + term * ROWS * COLS + rows * COLS + cols).to(dtype)


@triton.jit
def _filtered_lrelu_kernel(
    x_ptr, bias_ptr, out_ptr, up_y_ptr, up_xt_ptr, down_y_ptr, down_xt_ptr,
    channels, in_h, in_w, out_h, out_w,
    x_sn, x_sc, x_sh, x_sw, o_sn, o_sc, o_sh, o_sw,
    first_y, first_x, step_y, step_x, outputs_y, outputs_x,
    gain, slope, clamp,
    IN_Y: tl.constexpr, IN_X: tl.constexpr, MID_Y: tl.constexpr, MID_X: tl.constexpr,
    OUT_Y: tl.constexpr, OUT_X: tl.constexpr, UP_TERMS: tl.constexpr, DOWN_TERMS: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
):
    plane = tl.program_id(0)
    tile_y = tl.program_id(1)
    tile_x = tl.program_id(2)
    n = (plane // channels).to(tl.int64)
    c = plane % channels
    dtype = x_ptr.dtype.element_ty

    # Input tile with halo; samples outside the input are the padding's zeros (no bias there).
    iy = first_y + tile_y * step_y + tl.arange(0, IN_Y)[:, None]
    ix = first_x + tile_x * step_x + tl.arange(0, IN_X)[None, :]
    inside = (iy >= 0) & (iy < in_h) & (ix >= 0) & (ix < in_w)
    x = tl.load(x_ptr + n * x_sn + c * x_sc + iy * x_sh + ix * x_sw, mask=inside, other=0.0).to(tl.float32)
    x = tl.where(inside, x + tl.load(bias_ptr + c).to(tl.float32), 0.0).to(dtype)

    mid = tl.zeros((MID_Y, MID_X), dtype=tl.float32)
    for k in tl.static_range(UP_TERMS):
        rows = tl.dot(_matrix(up_y_ptr, k, MID_Y, IN_Y, dtype), x, input_precision="ieee")
        mid += tl.dot(rows.to(dtype), _matrix(up_xt_ptr, k, IN_X, MID_X, dtype), input_precision="ieee")

    mid = tl.where(mid >= 0, mid, mid * slope) * gain
    if HAS_CLAMP:
        mid = tl.minimum(tl.maximum(mid, -clamp), clamp)
    mid = mid.to(dtype)

    out = tl.zeros((OUT_Y, OUT_X), dtype=tl.float32)
    for k in tl.static_range(DOWN_TERMS):
        rows = tl.dot(_matrix(down_y_ptr, k, OUT_Y, MID_Y, dtype), mid, input_precision="ieee")
        out += tl.dot(rows.to(dtype), _matrix(down_xt_ptr, k, MID_X, OUT_X, dtype), input_precision="ieee")

    ly = tl.arange(0, OUT_Y)[:, None]
    lx = tl.arange(0, OUT_X)[None, :]
    oy = tile_y * outputs_y + ly
    ox = tile_x * outputs_x + lx
    keep = (ly < outputs_y) & (lx < outputs_x) & (oy < out_h) & (ox < out_w)
    tl.store(out_ptr + n * o_sn + c * o_sc + oy * o_sh + ox * o_sw, out.to(out_ptr.dtype.element_ty), mask=keep)


def launch(act: FusedFilteredLReLU, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Run `act` on x [N, C, H, W] (any strides, float32/16 or bfloat16); the result is NCHW in x's dtype."""
    n, c = x.shape[:2]
    out = torch.empty(n, c, *act.out_size, device=x.device, dtype=x.dtype)
    y, xa = act.y, act.x
    grid = (n * c, y.tiles, xa.tiles)
    _filtered_lrelu_kernel[grid](
        x, bias.contiguous(), out, act.up_y, act.up_xt, act.down_y, act.down_xt,
        c, y.in_length, xa.in_length, y.out_length, xa.out_length,
        *x.stride(), *out.stride(),
        y.first_input, xa.first_input, y.input_step, xa.input_step, y.outputs, xa.outputs,
        act.gain, act.slope, 0.0 if act.clamp is None else act.clamp,
        IN_Y=y.in_block, IN_X=xa.in_block, MID_Y=y.mid_block, MID_X=xa.mid_block,
        OUT_Y=y.out_block, OUT_X=xa.out_block, UP_TERMS=act.up_y.shape[0], DOWN_TERMS=act.down_y.shape[0],
        HAS_CLAMP=act.clamp is not None, num_warps=NUM_WARPS,
    )
    return out

