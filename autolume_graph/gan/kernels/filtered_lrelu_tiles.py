"""How the fused filtered leaky ReLU tiles a layer: per-axis geometry and the small matrices it multiplies by.

Along one axis, upsampling (zero-stuff, pad, FIR) is a linear map from a run of input samples to a
run of samples at the raised rate, and the down FIR plus subsampling is another, each a banded
matrix. A tile of the output is then `Dy @ act(Uy @ X @ Ux^T) @ Dx^T` for the input tile X (with its
halo): four small matrix products per (sample, channel) that run on tensor cores, with no zero-stuffed
or full-rate map ever written to memory. If every tile starts at the same phase of the upsampling
(outputs per tile times `down` a multiple of `up`), the matrices are the same for every tile and are
built here once per layer. A 2-D (radial) filter is split into a sum of separable ones by its SVD
(exact to rounding: a 12x12 jinc has rank at most 12), so it takes one product pair per term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MAX_BLOCK = 64  # largest matrix side a program holds (the tile, its halo at the raised rate, its inputs)
MIN_BLOCK = 16  # smallest side a GPU matrix product takes
SVD_TOLERANCE = 1e-7  # relative to the largest singular value: terms below this are float32 rounding


def _block(n: int) -> int:
    return max(MIN_BLOCK, 1 << (n - 1).bit_length())


@dataclass(frozen=True)
class AxisTiles:
    """One axis of a layer: `outputs` results per tile, read from inputs `first_input + tile * input_step` on."""

    in_length: int
    out_length: int
    phase: int  # which tap of the up filter meets the tile's first input at its first raised-rate sample
    outputs: int  # valid results per tile
    first_input: int
    input_step: int
    in_block: int  # block sides (powers of two): inputs, raised-rate samples, results
    mid_block: int
    out_block: int

    @property
    def tiles(self) -> int:
        return -(-self.out_length // self.outputs)


def axis_tiles(length: int, up: int, pad0: int, pad1: int, up_taps: int, down: int, down_taps: int,
               max_block: int = MAX_BLOCK) -> list[AxisTiles]:
    """The tilings of one axis worth considering: the largest tile for each set of block sides that fit
    in `max_block` (the smallest tile where none does)."""
    mid_length = length * up + pad0 + pad1 - up_taps + 1
    if mid_length < down_taps:
        raise ValueError(f"padding {pad0}, {pad1} leaves no output for {length} samples")
    out_length = (mid_length - down_taps) // down + 1
    phase = pad0 % up

    def blocks(outputs: int) -> tuple[int, int, int]:
        mids = (outputs - 1) * down + down_taps
        inputs = (mids + up_taps - 2 - phase) // up + 1
        return _block(inputs), _block(mids), _block(outputs)

    step = up // math.gcd(up, down)  # every tile then starts at the same phase
    largest: dict[tuple[int, int, int], int] = {}
    for outputs in range(step, out_length + step, step):
        if max(blocks(outputs)) <= max_block:
            largest[blocks(outputs)] = outputs
    return [AxisTiles(length, out_length, phase, outputs, -(pad0 // up), outputs * down // up, *blocks(outputs))
            for outputs in (largest.values() or [step])]


def products_cost(y: AxisTiles, x: AxisTiles, up_terms: int, down_terms: int) -> int:
    """Multiply-adds of the matrix products over a whole plane: what a tiling is chosen by."""
    up = y.mid_block * y.in_block * x.in_block + y.mid_block * x.in_block * x.mid_block
    down = y.out_block * y.mid_block * x.mid_block + y.out_block * x.mid_block * x.out_block
    return y.tiles * x.tiles * (up_terms * up + down_terms * down)


def separable_terms(f: torch.Tensor | None, gain: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(along y, along x) pairs whose outer products sum to f flipped (a true convolution) times gain.

    A 1-D filter runs along both axes, so each side takes sqrt(gain); no filter is a single tap.
    """
    if f is None:
        tap = torch.full([1], math.sqrt(gain), dtype=torch.float64)
        return [(tap, tap)]
    f = f.detach().to("cpu", torch.float64).flip(list(range(f.ndim)))
    if f.ndim == 1:
        return [(f * math.sqrt(gain), f * math.sqrt(gain))]
    if f.ndim != 2:
        raise ValueError(f"a filter is 1-D (separable) or 2-D, not {f.ndim}-D")
    u, s, vh = torch.linalg.svd(f * gain)
    keep = s > s[0] * SVD_TOLERANCE
    keep[0] = True  # an all-zero filter (a layer before its weights load) is still one term
    return [(u[:, k] * s[k].sqrt(), vh[k] * s[k].sqrt()) for k in range(len(s)) if keep[k]]


def up_matrix(taps: torch.Tensor, tiles: AxisTiles, up: int) -> torch.Tensor:
    """[mid_block, in_block]: raised-rate sample i of a tile from its input j, through tap j * up + phase - i."""
    i = torch.arange(tiles.mid_block)[:, None]
    j = torch.arange(tiles.in_block)[None, :]
    a = j * up + tiles.phase - i
    inside = (a >= 0) & (a < taps.numel())
    return torch.where(inside, taps[a.clamp(0, taps.numel() - 1)], 0.0)


def down_matrix(taps: torch.Tensor, tiles: AxisTiles, down: int) -> torch.Tensor:
    """[out_block, mid_block]: result o of a tile from raised-rate sample i, through tap i - o * down."""
    o = torch.arange(tiles.out_block)[:, None]
    i = torch.arange(tiles.mid_block)[None, :]
    b = i - o * down
    inside = (b >= 0) & (b < taps.numel()) & (o < tiles.outputs)
    return torch.where(inside, taps[b.clamp(0, taps.numel() - 1)], 0.0)


class FusedFilteredLReLU(torch.nn.Module):
    """One layer's bias -> upsample FIR -> lrelu * gain, clamp -> downsample FIR as one fused kernel.

    Arguments as `filtered_lrelu.FilteredLReLU` (in_size is (width, height)); geometry and matrices are
    built at construction, so a call only launches the kernel (and can be captured in a CUDA graph).
    """

    def __init__(self, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None, up: int, down: int,
                 padding: list[int], in_size: tuple[int, int], gain: float, slope: float, clamp: float | None,
                 max_block: int = MAX_BLOCK):
        super().__init__()
        px0, px1, py0, py1 = (int(p) for p in padding)
        width, height = in_size
        ups, downs = separable_terms(up_filter, up**2), separable_terms(down_filter, 1.0)
        rows = axis_tiles(height, up, py0, py1, ups[0][0].numel(), down, downs[0][0].numel(), max_block)
        cols = axis_tiles(width, up, px0, px1, ups[0][1].numel(), down, downs[0][1].numel(), max_block)
        self.y, self.x = min(((y, x) for y in rows for x in cols),
                             key=lambda yx: products_cost(*yx, len(ups), len(downs)))
        self.gain, self.slope = float(gain), float(slope)
        self.clamp = None if clamp is None or clamp < 0 else float(clamp)

        def stack(matrices: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(matrices).to(torch.float32).contiguous()

        # The x-axis matrices are stored transposed, as the right-hand factors they are.
        self.register_buffer("up_y", stack([up_matrix(fy, self.y, up) for fy, _ in ups]), persistent=False)
        self.register_buffer("up_xt", stack([up_matrix(fx, self.x, up).t() for _, fx in ups]), persistent=False)
        self.register_buffer("down_y", stack([down_matrix(fy, self.y, down) for fy, _ in downs]), persistent=False)
        self.register_buffer("down_xt", stack([down_matrix(fx, self.x, down).t() for _, fx in downs]),
                             persistent=False)

    @property
    def out_size(self) -> tuple[int, int]:
        """(height, width) of the result."""
        return self.y.out_length, self.x.out_length

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        from .triton_filtered_lrelu import launch  # imports triton: only where `kernels.available` said so

        if tuple(x.shape[2:]) != (self.y.in_length, self.x.in_length):
            raise ValueError(f"built for {self.y.in_length}x{self.x.in_length} inputs, got "
                             f"{x.shape[2]}x{x.shape[3]}")
        return launch(self, x, bias)
