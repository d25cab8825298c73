"""Seamless loops: NoiseLoop (a random loop of a set radius) and KeyframeLoop (a closed spline).

Both run one shared cycle clock (`LoopCycle`): the loop position alpha follows the runtime
clock (`time` seconds per cycle) or, with `use_alpha` on, the `alpha` value itself (a wire or
OSC). Perfect Loop sends the OSC value 1 at the end of every cycle, so a recorder or another
program can cut exactly one loop; `stop_after_one` holds the loop at its start/end point after
one cycle. `cycle_seconds(params)` tells the offline renderer how long one cycle is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolume_graph.gan.latent import (
    catmull_rom_weights,
    keyframe_index_alpha,
    keyframe_loop,
    noise_loop,
    seed_z,
)
from autolume_graph.gan.latent_value import Latent, LatentTerm
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.osc.client import OSCSender
from autolume_graph.params import Bool, Data, Float, Input, Int, Output, String
from autolume_graph.types import PortType

from .seed_latent import latent_dims
from .vector_latent import load_latent_file

CYCLE_PARAMS = {
    "time": Float(10.0, 0.5, 120.0, clip=False, unit="s", doc="seconds per loop"),
    "alpha": Float(0.0, 0.0, 1.0, clip=False, doc="position in the loop, 0..1 (wraps); used when use_alpha is on"),
    "use_alpha": Bool(False, doc="drive the position by alpha (a wire or OSC) instead of time"),
    "perfect_loop": Bool(False, doc="send 1 over OSC at the end of every cycle"),
    "osc_host": String("127.0.0.1", doc="Perfect Loop: host to send to"),
    "osc_port": Int(9000, 1, 65535, doc="Perfect Loop: UDP port to send to"),
    "osc_address": String("/autolume/loop", doc="Perfect Loop: OSC address of the pulse"),
    "stop_after_one": Bool(False, doc="hold at the loop's start (= end) point after one cycle"),
}

_WRAP_EPS = 1e-9  # a fixed-step clock lands on k * time up to rounding: count that frame as the wrap


class LoopCycle:
    """Where a loop is in its cycle, when a cycle ends, and the Perfect Loop pulse sent then.

    In timed mode the phase is `p0 + (t - t0) / time`, rebased whenever `time` changes (so a
    change bends the speed without a jump) or when timing resumes after manual alpha or a hold.
    On a fixed-step clock a cycle of T seconds at F fps therefore ends exactly at frames k*T*F.
    In manual mode a cycle ends when alpha falls by more than half (0.97 -> 0.02).
    """

    def __init__(self) -> None:
        self._origin: tuple[float, float, float] | None = None  # (t0, p0, seconds)
        self._cycles = 0
        self._alpha: float | None = None
        self.held = False
        self._sender: OSCSender | None = None

    def animating(self, params: dict[str, Any]) -> bool:
        return not params["use_alpha"] and not (self.held and params["stop_after_one"])

    def _timed_alpha(self, now: float, params: dict[str, Any]) -> tuple[float, bool]:
        seconds = params["time"]
        if seconds <= 0:
            raise NodeError("time must be above 0 seconds")
        if not params["stop_after_one"]:
            self.held = False
        if self.held:
            self._origin = None
            return 0.0, False
        if self._origin is None:
            self._origin = (now, self._cycles + (self._alpha or 0.0), seconds)
        elif self._origin[2] != seconds:
            t0, p0, old = self._origin
            self._origin = (now, p0 + (now - t0) / old, seconds)
        t0, p0, _ = self._origin
        phase = p0 + (now - t0) / seconds
        cycles = math.floor(phase + _WRAP_EPS)
        wrapped = cycles > self._cycles
        self._cycles = cycles
        if wrapped and params["stop_after_one"]:
            self.held = True
            return 0.0, True
        return max(phase - cycles, 0.0), wrapped

    def advance(self, ctx: CookContext, params: dict[str, Any]) -> float:
        """This frame's alpha in [0, 1); sends the pulse once when a cycle ended since the last frame."""
        if params["use_alpha"]:
            alpha = float(params["alpha"]) % 1.0
            wrapped = self._alpha is not None and alpha < self._alpha - 0.5
            self._origin = None
        else:
            alpha, wrapped = self._timed_alpha(ctx.time, params)
        if wrapped and params["perfect_loop"]:
            self._send(params)
        self._alpha = alpha
        return alpha

    def _send(self, params: dict[str, Any]) -> None:
        host, port = params["osc_host"], int(params["osc_port"])
        if self._sender is None or (self._sender.host, self._sender.port) != (host, port):
            self.close()
            self._sender = OSCSender(host, port)
        self._sender.send(params["osc_address"], 1)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class _Looping:
    """The node hooks both loop nodes share. A mixin rather than a Node, so it is no node type."""

    cycle: LoopCycle

    def reset(self) -> None:
        if getattr(self, "cycle", None) is not None:
            self.cycle.close()
        self.cycle = LoopCycle()
        self._last_key: tuple | None = None

    def animating(self, params: dict[str, Any]) -> bool:
        return self.cycle.animating(params)

    def close(self) -> None:
        self.cycle.close()

    @staticmethod
    def cycle_seconds(params: dict[str, Any]) -> float:
        """Seconds of one cycle, for an offline render of exactly one loop (frames = seconds * fps)."""
        return float(params["time"])

    def _changed(self, key: tuple) -> bool:
        """Whether what the output depends on differs from the last cook (a held loop sends nothing)."""
        changed = key != self._last_key
        self._last_key = key
        return changed


_LOOP_OUTPUTS = {
    "z": Output(PortType.Z, "the latent on the loop"),
    "alpha": Output(PortType.FLOAT, "position in the loop, 0..1"),
}
_MODEL_INPUT = {"model": Input(PortType.MODEL, "optional: the generator whose sizes to use (default z 512)")}


class NoiseLoop(_Looping, Node):
    """A random closed path of a set radius around a point picked by the looping seed (`noise_loop`)."""

    category = "latent"
    inputs = _MODEL_INPUT
    outputs = _LOOP_OUTPUTS
    params = {
        "seed": Int(0, 0, 100000, clip=False, doc="looping seed: picks the loop (wraps mod 2**32)"),
        "radius": Float(0.5, 0.0, 1.0, doc="how large the loop is: 0 a still point, 1 through unrelated images"),
        "project": Bool(True, doc="map z through the mapping network (off: use z as w directly)"),
        **CYCLE_PARAMS,
    }

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        alpha = self.cycle.advance(ctx, params)
        z_dim = latent_dims(inputs.get("model"))[0]
        if not self._changed((alpha, params["seed"], params["radius"], params["project"], z_dim)):
            return {}
        z = noise_loop(alpha, params["seed"], params["radius"], z_dim)
        return {"z": Latent.of(z, "z", params["project"]), "alpha": alpha}


@dataclass(frozen=True, eq=False)
class _Keyframe:
    array: np.ndarray  # (1, z_dim) z or (1, num_ws, w_dim) w, float64
    tensor: torch.Tensor  # the same as float32, one object per keyframe so Mapping caches its mapping
    kind: str
    project: bool


def _keyframe_specs(keyframes: Any, count: int) -> list[dict]:
    """The first `count` keyframe entries, padded with seed keyframes (seed i for entry i)."""
    specs = list(keyframes or [])[:count]
    return specs + [{"seed": i} for i in range(len(specs), count)]


def _resolve(i: int, spec: Any, model: Any) -> _Keyframe:
    if not isinstance(spec, dict):
        raise NodeError(f"keyframe {i}: expected a dict with a seed or a vector")
    if "seed" in spec:
        if not isinstance(spec["seed"], (int, float, np.number)):
            raise NodeError(f"keyframe {i}: seed must be a number")
        array, kind = seed_z(int(spec["seed"]), latent_dims(model)[0]), "z"
    elif isinstance(spec.get("vector"), str):
        array, kind = load_latent_file(spec["vector"], model)
    elif spec.get("vector") is not None:
        array = np.asarray(spec["vector"], dtype=np.float64)
        kind = "w" if array.ndim >= 2 and array.shape[-2] > 1 else "z"
        array = array.reshape((1, -1) if kind == "z" else (1, *array.shape[-2:]))
    else:
        raise NodeError(f"keyframe {i}: needs a seed or a vector")
    array = np.asarray(array, dtype=np.float64)
    latent = Latent.of(array, kind, bool(spec.get("project", True)))
    term = latent.terms[0]
    return _Keyframe(array, term.value, kind, term.project)


def _spline_latent(alpha: float, frames: list[_Keyframe]) -> Latent:
    """The loop at alpha: one interpolated vector if all keyframes are alike, else a blend in w.

    Keyframes that all share kind and Project are interpolated directly (`keyframe_loop`, with
    its norm correction). Mixed ones cannot be, since they live in different spaces until
    mapped: the latent is then the spline's weights on the keyframes, and Mapping sums the
    mapped keyframes with those weights (a Catmull-Rom blend in w, equally seamless).
    """
    first = frames[0]
    if all((f.kind, f.project) == (first.kind, first.project) for f in frames):
        return Latent.of(keyframe_loop(alpha, [f.array for f in frames]), first.kind, first.project)
    n = len(frames)
    index, local = keyframe_index_alpha(alpha, n)
    coefs: dict[int, float] = {}
    for offset, weight in zip((-1, 0, 1, 2), catmull_rom_weights(local), strict=True):
        key = (index + offset) % n
        coefs[key] = coefs.get(key, 0.0) + float(weight)
    return Latent(tuple(LatentTerm(c, frames[k].tensor, frames[k].kind, frames[k].project)
                        for k, c in sorted(coefs.items()) if c != 0.0))


class KeyframeLoop(_Looping, Node):
    """A closed C1 spline through keyframes (seeds or vector files), keyframe i at alpha = i / count.

    `keyframes` holds entries `{"seed": 12}` or `{"vector": "path.npy" or an array}`, each with
    an optional `"project"` flag (default on); missing entries are seeds 0..count-1. A vector
    file that fails is reported on the node and read again only when the keyframes or the file change.
    """

    category = "latent"
    inputs = _MODEL_INPUT
    outputs = _LOOP_OUTPUTS
    params = {
        "count": Int(4, 1, 32, clip=False, doc="number of keyframes"),
        "keyframes": Data(None, doc='list of {"seed": n} or {"vector": path}, each with optional "project"'),
        "index": Int(0, 0, 31, clip=False, doc="keyframe the loop starts at (shifts the loop by index / count)"),
        **CYCLE_PARAMS,
    }

    def reset(self) -> None:
        super().reset()
        self._frames_src: Any = None  # the keyframes value the cache was built from
        self._frames_key: tuple | None = None
        self._frames: list[_Keyframe] | NodeError = []
        self._frames_version = 0

    def _keyframes(self, params: dict[str, Any], model: Any) -> list[_Keyframe]:
        count = max(int(params["count"]), 1)
        specs = _keyframe_specs(params["keyframes"], count)
        paths = tuple(s.get("vector") for s in specs if isinstance(s, dict) and isinstance(s.get("vector"), str))
        mtimes = tuple(_mtime(p) for p in paths)
        key = (count, latent_dims(model), mtimes)
        if params["keyframes"] is not self._frames_src or key != self._frames_key:
            self._frames_src, self._frames_key = params["keyframes"], key
            self._frames_version += 1
            try:
                self._frames = [_resolve(i, spec, model) for i, spec in enumerate(specs)]
            except NodeError as exc:
                self._frames = exc
        if isinstance(self._frames, NodeError):
            raise self._frames
        return self._frames

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        alpha = self.cycle.advance(ctx, params)
        frames = self._keyframes(params, inputs.get("model"))
        position = (alpha + params["index"] / len(frames)) % 1.0
        if not self._changed((position, self._frames_version)):
            return {}
        return {"z": _spline_latent(position, frames), "alpha": alpha}


def _mtime(path: str) -> float:
    try:
        return os.stat(Path(path).expanduser()).st_mtime
    except OSError:
        return -1.0
