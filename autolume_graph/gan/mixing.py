"""Real-time model mixing: blend two generators' synthesis weights per block or per layer.

Works on plain state dicts (networks only through the family registry). Parameter names group by prefix:
a block is the first two name parts under `synthesis.` (`synthesis.b16` in StyleGAN2,
`synthesis.L3_52_128` / `synthesis.input` in StyleGAN3; each family declares its block names and
the resolution they state, `family.Family.blocks`) and a layer the first three
(`synthesis.b16.conv0`); a mix weight set on a layer overrides its block's. Everything
outside `synthesis.` (the mapping network) stays A's. Weight t is 0 for A, 1 for B.

The mixed tensors are written in place into preallocated outputs (`torch.lerp(..., out=)`,
`copy_` at exactly 0 and 1), so changing the mix costs one pass over the changed
parameters and no allocation. Pass the live model's own state-dict tensors as `out` and the
model sees the mix with no further copy.

Dropping ("X"): to align a higher-resolution A with a lower-resolution B, drop A's top
blocks. They must be a suffix of A's block order (the highest resolutions); the mixed state
dict then omits them and describes a generator whose output resolution is `resolution`,
the highest kept block's (for StyleGAN2's skip generators every block has its own toRGB, so
the truncated sum of RGB outputs is a valid image at that size). The caller builds that
smaller network and loads the mix into it. Blocks that B lacks keep A's weights (t must
stay 0); blocks only B has are ignored: the mix has A's architecture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .family import block_resolution, family_of_blocks


class MixError(ValueError):
    """Two models that cannot be mixed, or a bad mix request; one line naming the cause."""


def block_of(name: str) -> str | None:
    """`synthesis.b16.conv0.weight` -> `synthesis.b16`; None outside the synthesis network."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "synthesis" and len(parts) > 2 else None


def layer_of(name: str) -> str | None:
    """`synthesis.b16.conv0.weight` -> `synthesis.b16.conv0`; the block for direct params."""
    parts = name.split(".")
    if parts[0] != "synthesis" or len(parts) <= 2:
        return None
    return ".".join(parts[:3]) if len(parts) > 3 else ".".join(parts[:2])


def resolution_of(block: str) -> int | None:
    """The output resolution a block name states (`synthesis.b64` -> 64), if it states one."""
    return block_resolution(block)


def family_of(state: Mapping[str, torch.Tensor]) -> str:
    """The name of the family whose synthesis blocks the state dict holds, or "unknown"."""
    family = family_of_blocks({block_of(k) for k in state} - {None})
    return family.name if family is not None else "unknown"


class ModelMixer:
    """Mixes state dicts A and B into preallocated tensors; `mix(weights)` per change."""

    def __init__(
        self,
        a: Mapping[str, torch.Tensor],
        b: Mapping[str, torch.Tensor],
        drop: Iterable[str] = (),
        out: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        fa, fb = family_of(a), family_of(b)
        if fa != fb:
            raise MixError(f"cannot mix a {fa} model with a {fb} model")
        self.blocks: list[str] = list(dict.fromkeys(b for b in map(block_of, a) if b is not None))
        dropped = set(drop)
        unknown = dropped - set(self.blocks)
        if unknown:
            raise MixError(f"cannot drop unknown block(s) {', '.join(sorted(unknown))}")
        if dropped and set(self.blocks[len(self.blocks) - len(dropped) :]) != dropped:
            raise MixError("only the highest-resolution blocks (a suffix of the block list) can be dropped")
        self.dropped = [blk for blk in self.blocks if blk in dropped]
        self.blocks = [blk for blk in self.blocks if blk not in dropped]
        if not self.blocks:
            raise MixError("model A has no synthesis blocks to mix")
        kept = [k for k in a if block_of(k) not in dropped]
        self.layers: list[str] = list(dict.fromkeys(lay for lay in map(layer_of, kept) if lay is not None))
        self._mixable: list[tuple[str, str, str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.out: dict[str, torch.Tensor] = {}
        for name in kept:
            ta = a[name]
            if out is None:
                dst = ta.detach().clone()
            else:
                if name not in out:
                    raise MixError(f"output state dict lacks {name}")
                dst = out[name]
                if dst.shape != ta.shape:
                    raise MixError(f"{name}: output shape {tuple(dst.shape)} != A's {tuple(ta.shape)}")
                with torch.no_grad():
                    dst.copy_(ta)
            self.out[name] = dst
            block = block_of(name)
            if block is None or name not in b or not ta.is_floating_point():
                continue
            tb = b[name]
            if tb.shape != ta.shape:
                raise MixError(f"{name}: shape {tuple(ta.shape)} in A but {tuple(tb.shape)} in B")
            src_a = ta.detach().to(device=dst.device, dtype=dst.dtype)
            src_b = tb.detach().to(device=dst.device, dtype=dst.dtype)
            self._mixable.append((name, block, layer_of(name), src_a, src_b, dst))
        if not self._mixable:
            raise MixError("the models share no synthesis parameters")
        self._mixable_groups = {g for _, blk, lay, *_ in self._mixable for g in (blk, lay)}
        self._last: dict[str, float] = {name: 0.0 for name, *_ in self._mixable}

    @property
    def resolution(self) -> int | None:
        """Output resolution of the mixed (possibly truncated) generator, if the names state it."""
        found = [r for r in map(resolution_of, self.blocks) if r is not None]
        return max(found) if found else None

    def mix(self, weights: Mapping[str, float]) -> dict[str, torch.Tensor]:
        """Write the mix for {block or layer: t} (unset = 0 = A; t clipped to [0, 1]).

        Only parameters whose t changed are touched. Returns `out`, the same dict of the
        same tensors every call.
        """
        unknown = set(weights) - set(self.blocks) - set(self.layers)
        if unknown:
            raise MixError(f"unknown mix group(s) {', '.join(sorted(unknown))}")
        locked = [g for g, t in weights.items() if t != 0.0 and g not in self._mixable_groups]
        if locked:
            raise MixError(f"{', '.join(sorted(locked))} missing from model B; their weight must be 0")
        with torch.no_grad():
            for name, block, layer, ta, tb, dst in self._mixable:
                t = min(max(float(weights.get(layer, weights.get(block, 0.0))), 0.0), 1.0)
                if self._last[name] == t:
                    continue
                if t == 0.0:
                    dst.copy_(ta)
                elif t == 1.0:
                    dst.copy_(tb)
                else:
                    torch.lerp(ta, tb, t, out=dst)
                self._last[name] = t
        return self.out
