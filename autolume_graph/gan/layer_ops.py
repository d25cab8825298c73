"""Feature-map edits ("network bending") on [B, C, H, W] activations, built once per change.

A layer-transform node describes a stack of `OpSpec`s; `build_edit` turns it into one plain
callable when the stack changes, so per frame there is only the call (no hook registration,
no parsing). Identity ops are dropped at build time, and an all-identity stack returns its
input tensor itself, bit for bit. Inputs are never written to.

Conventions:
- translate x/y are fractions of the map's width/height; +x moves content right, +y down.
  Uncovered pixels are zero ("no feature").
- rotate is in degrees, positive counter-clockwise on screen (as `torch.rot90(k=1)`).
- scale > 1 zooms in (content grows about the centre).
- consecutive translate/rotate/scale ops on the same channels fuse into one affine
  resample (one `grid_sample`, one blur), with `align_corners=False` and the matrix built in
  pixel units, so non-square maps rotate without shear. Rotations by whole quarter turns
  use `torch.rot90` instead (exact; bilinear sampling at cos(90 deg) ~ 6e-17 is not).
- invert is x -> -x: activations are signed, and negation keeps their magnitude and is
  its own inverse.
- threshold is binary: 1 where x > value, else 0.
- erode/dilate take a kernel size (rounded up to odd; <= 1 is the identity, at most
  MAX_KERNEL), min/max pooled with the border excluded. The square kernel runs as a column
  pass then a row pass (exact for min/max), each no longer than covers the whole map, so an
  element costs at most 2 * MAX_KERNEL comparisons whatever amount comes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .accel import to_device

Edit = Callable[[torch.Tensor], torch.Tensor]

AFFINE_KINDS = ("translate", "rotate", "scale")
KINDS = AFFINE_KINDS + (
    "erode",
    "dilate",
    "invert",
    "flip_h",
    "flip_v",
    "threshold",
    "multiply",
    "ablate",
)


@dataclass(frozen=True)
class OpSpec:
    """One edit. `value`: rotate degrees, scale factor, kernel size, threshold level or
    multiplier; translate uses `x` and `y`. `channels`: indices from `channel_selection`,
    None for all."""

    kind: str
    value: float = 0.0
    x: float = 0.0
    y: float = 0.0
    channels: torch.Tensor | None = None


def channel_selection(
    num_channels: int,
    mode: str = "all",
    fraction: float = 1.0,
    seed: int = 0,
    start: int = 0,
    end: int | None = None,
) -> torch.Tensor | None:
    """Sorted channel indices for an edit, or None meaning every channel.

    "random": round(fraction * C) channels drawn reproducibly from `seed`;
    "range": channels start..end-1 (clipped). A selection covering every channel is None.
    """
    if mode == "all":
        return None
    if mode == "random":
        count = min(max(round(float(fraction) * num_channels), 0), num_channels)
        gen = torch.Generator().manual_seed(int(seed) % 2**63)
        idx = torch.randperm(num_channels, generator=gen)[:count].sort().values
    elif mode == "range":
        stop = num_channels if end is None else min(max(int(end), 0), num_channels)
        idx = torch.arange(min(max(int(start), 0), stop), stop)
    else:
        raise ValueError(f"unknown channel selection mode {mode!r} (all, random, range)")
    return None if idx.numel() == num_channels else idx


MAX_KERNEL = 129
"""The largest erode/dilate kernel: at most ~260 comparisons an element, what a 3x3 convolution of 32 channels costs."""


def _kernel(value: float) -> int:
    k = int(math.ceil(min(max(value, 1.0), MAX_KERNEL)))
    return k + 1 if k % 2 == 0 else k


def _max_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """Max over a k x k window centred on each element, border excluded, as a column then a row pass.

    A window of 2n-1 along an axis of n already reaches every element from everywhere, so longer
    ones are cut to that: the same result, for a bounded cost.
    """
    h, w = x.shape[-2:]
    kh, kw = min(k, 2 * h - 1), min(k, 2 * w - 1)
    x = F.max_pool2d(x, (kh, 1), stride=1, padding=(kh // 2, 0)) if kh > 1 else x
    return F.max_pool2d(x, (1, kw), stride=1, padding=(0, kw // 2)) if kw > 1 else x


def _is_identity(op: OpSpec) -> bool:
    if op.channels is not None and op.channels.numel() == 0:
        return True
    if op.kind == "translate":
        return op.x == 0.0 and op.y == 0.0
    if op.kind == "rotate":
        return op.value % 360.0 == 0.0
    if op.kind in ("scale", "multiply"):
        return op.value == 1.0
    if op.kind in ("erode", "dilate"):
        return _kernel(op.value) <= 1
    return False


def _forward_matrix(op: OpSpec, h: int, w: int) -> torch.Tensor:
    """How op moves content, in pixel units about the map centre (x right, y down)."""
    m = torch.eye(3, dtype=torch.float64)
    if op.kind == "translate":
        m[0, 2], m[1, 2] = op.x * w, op.y * h
    elif op.kind == "scale":
        m[0, 0] = m[1, 1] = op.value
    else:  # rotate, counter-clockwise on screen; with y pointing down that is this matrix
        c, s = math.cos(math.radians(op.value)), math.sin(math.radians(op.value))
        m[:2, :2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    return m


class _Affine:
    """A fused run of translate/rotate/scale ops; sampling grids cached per map shape."""

    def __init__(self, ops: Sequence[OpSpec]) -> None:
        self.ops = tuple(ops)
        turns = None
        if all(op.kind == "rotate" for op in ops):
            total = sum(op.value for op in ops)
            if total % 90.0 == 0.0:
                turns = int(total // 90.0) % 4
        self.quarter_turns = turns
        self._grids: dict[tuple, torch.Tensor] = {}

    def _grid(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        key = (h, w, x.device, x.dtype)
        grid = self._grids.get(key)
        if grid is None:
            forward = torch.eye(3, dtype=torch.float64)
            for op in self.ops:  # later ops act on the result of earlier ones
                forward = _forward_matrix(op, h, w) @ forward
            to_pixels = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], dtype=torch.float64))
            theta = torch.linalg.inv(to_pixels) @ torch.linalg.inv(forward) @ to_pixels
            grid = F.affine_grid(theta[None, :2].to(x.dtype), [1, 1, h, w], align_corners=False)
            self._grids[key] = grid = to_device(grid, x.device)
        return grid

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = self.quarter_turns
        if k is not None and (k % 2 == 0 or x.shape[-1] == x.shape[-2]):
            return torch.rot90(x, k, dims=(2, 3))
        grid = self._grid(x)
        return F.grid_sample(
            x,
            grid.expand(x.shape[0], -1, -1, -1),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )


def _pointwise(op: OpSpec) -> Edit:
    kind, v = op.kind, float(op.value)
    if kind == "dilate":
        k = _kernel(v)
        return lambda x: _max_pool(x, k)
    if kind == "erode":
        k = _kernel(v)
        return lambda x: -_max_pool(-x, k)
    if kind == "invert":
        return torch.neg
    if kind == "flip_h":
        return lambda x: torch.flip(x, dims=(3,))
    if kind == "flip_v":
        return lambda x: torch.flip(x, dims=(2,))
    if kind == "threshold":
        return lambda x: (x > v).to(x.dtype)
    if kind == "multiply":
        return lambda x: x * v
    return torch.zeros_like  # ablate


class _OnChannels:
    """Apply an edit to the selected channels only, leaving the rest (and the input) as is."""

    def __init__(self, edit: Edit, channels: torch.Tensor) -> None:
        self.edit = edit
        self._index = {channels.device: channels.to(torch.long)}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        idx = self._index.get(x.device)
        if idx is None:
            idx = self._index[x.device] = to_device(next(iter(self._index.values())), x.device)
        return x.index_copy(1, idx, self.edit(x.index_select(1, idx)))


def _same_channels(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is b or (a is not None and b is not None and torch.equal(a, b))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def build_edit(ops: Sequence[OpSpec]) -> Edit:
    """Compose a stack of ops (applied in order) into one callable [B,C,H,W] -> [B,C,H,W]."""
    for op in ops:
        if op.kind not in KINDS:
            raise ValueError(f"unknown layer op {op.kind!r} (one of {', '.join(KINDS)})")
    active = [op for op in ops if not _is_identity(op)]
    groups: list[list[OpSpec]] = []
    for op in active:
        prev = groups[-1] if groups else None
        if (
            prev is not None
            and op.kind in AFFINE_KINDS
            and prev[-1].kind in AFFINE_KINDS
            and _same_channels(op.channels, prev[-1].channels)
        ):
            prev.append(op)
        else:
            groups.append([op])
    steps: list[Edit] = []
    for group in groups:
        if group[0].kind in AFFINE_KINDS:
            affine = _Affine(group)
            if affine.quarter_turns == 0:  # e.g. rotate 90 then -90
                continue
            edit: Edit = affine
        else:
            edit = _pointwise(group[0])
        channels = group[0].channels
        steps.append(edit if channels is None else _OnChannels(edit, channels))
    if not steps:
        return _identity
    if len(steps) == 1:
        return steps[0]
    chain = tuple(steps)

    def run(x: torch.Tensor) -> torch.Tensor:
        for step in chain:
            x = step(x)
        return x

    return run
