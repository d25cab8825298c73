"""Seamless loops: NoiseLoop (a random loop of a set radius) and KeyframeLoop (a closed spline).

Both run one shared cycle clock (`LoopCycle`): the loop position alpha follows the runtime
clock (`time` seconds per cycle), a wired tempo (`beats` per cycle: Link, MIDI clock, Tempo) or,
with `use_alpha` on, the `alpha` value itself (a wire or OSC). Perfect Loop sends the OSC value 1
at the end of every cycle, so a recorder or another program can cut exactly one loop (on the bar,
when locked to a multiple of the bar's beats); `stop_after_one` holds the loop at its start/end
point after one cycle. `cycle_seconds(params)` tells the offline renderer how long one cycle is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolume_graph.file_reads import BackgroundRead
from autolume_graph.gan import wires
from autolume_graph.gan.latent import (
    VectorFileError,
    catmull_rom_weights,
    fit_latent,
    keyframe_index_alpha,
    keyframe_loop,
    noise_loop,
    seed_z,
)
from autolume_graph.gan.latent_morph import morph_latent_outputs
from autolume_graph.gan.latent_value import Latent, LatentTerm
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.osc.client import OSCSender
from autolume_graph.params import Bool, Data, Float, Input, Int, Output, String
from autolume_graph.roles import Role
from autolume_graph.tempo.lock import BeatFollower, beats_param
from autolume_graph.tempo.wires import TEMPO, Tempo
from autolume_graph.types import PortType

from .seed_latent import latent_dims
from .vector_latent import fit_latent_file, read_latent_file

MAX_KEYFRAMES = 256  # each costs a vector in memory and a mapping when mixed; a loop through more is noise

CYCLE_PARAMS = {
    "time": Float(10.0, 0.5, 120.0, clip=False, limit=(0.01, 86400.0), unit="s",
                  doc="seconds per loop (with no tempo wired)"),
    "beats": beats_param(16.0, "loop length"),
    "alpha": Float(0.0, 0.0, 1.0, clip=False, limit=(-1.0e6, 1.0e6),
                   doc="position in the loop, 0..1 (wraps); used when use_alpha is on"),
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
    Locked to a tempo the phase is beat / beats, so cycles end on multiples of `beats` beats; the
    beat is followed through `BeatFollower` (held while stopped, never a little backwards).
    """

    def __init__(self) -> None:
        self._origin: tuple[float, float, float] | None = None  # (t0, p0, seconds)
        self._cycles = 0
        self._alpha: float | None = None
        self.held = False
        self._sender: OSCSender | None = None
        self.tempo: Tempo | None = None  # the tempo of the last frame, while one is wired
        self._follower = BeatFollower()

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
        return self._position(p0 + (now - t0) / seconds, params)

    def _position(self, phase: float, params: dict[str, Any], counts: bool = True) -> tuple[float, bool]:
        """(alpha, whether a cycle ended) at `phase` cycles; `counts`: a cycle passed now is an end."""
        cycles = math.floor(phase + _WRAP_EPS)
        wrapped = cycles > self._cycles and counts
        self._cycles = cycles
        if wrapped and params["stop_after_one"]:
            self.held = True
            return 0.0, True
        return max(phase - cycles, 0.0), wrapped

    def _locked_alpha(self, tempo: Tempo, params: dict[str, Any]) -> tuple[float, bool]:
        beats = params["beats"]
        if beats <= 0:
            raise NodeError("beats must be above 0")
        if not params["stop_after_one"]:
            self.held = False
        self._origin = None
        just_locked = self.tempo is None  # the count starts here: nothing ended
        self.tempo = tempo
        phase = self._follower.follow(tempo) / beats
        if self.held:
            self._cycles = math.floor(phase + _WRAP_EPS)
            return 0.0, False
        return self._position(phase, params, not just_locked)

    def advance(self, ctx: CookContext, params: dict[str, Any], tempo: Tempo | None = None) -> float:
        """This frame's alpha in [0, 1); sends the pulse once when a cycle ended since the last frame."""
        if not isinstance(tempo, Tempo) or params["use_alpha"]:
            self.tempo = None
        if params["use_alpha"]:
            alpha = float(params["alpha"]) % 1.0
            wrapped = self._alpha is not None and alpha < self._alpha - 0.5
            self._origin = None
        elif isinstance(tempo, Tempo):
            alpha, wrapped = self._locked_alpha(tempo, params)
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

    roles = frozenset({Role.LOOP_CLOCK, Role.MORPHS_OUTPUTS})
    morph_outputs = staticmethod(morph_latent_outputs)  # a preset morph slerps the loop's latent
    cycle: LoopCycle

    def reset(self) -> None:
        if getattr(self, "cycle", None) is not None:
            self.cycle.close()
        self.cycle = LoopCycle()

    def animating(self, params: dict[str, Any]) -> bool:
        return self.cycle.animating(params)

    def close(self) -> None:
        self.cycle.close()

    def cycle_seconds(self, params: dict[str, Any], tempo: Tempo | None = None) -> float:
        """Seconds of one cycle, for an offline render of exactly one loop (frames = seconds * fps): `beats`
        at the tempo it is locked to (`tempo`, else the last frame's), else `time`."""
        tempo = tempo or self.cycle.tempo
        if tempo is not None and tempo.bpm > 0:
            return tempo.seconds(params["beats"])
        return float(params["time"])


_LOOP_OUTPUTS = {
    "z": Output(wires.LATENT, "the latent on the loop"),
    "alpha": Output(PortType.FLOAT, "position in the loop, 0..1"),
}
_LOOP_INPUTS = {
    "model": Input(wires.MODEL, "optional: the generator whose sizes to use (default z 512)"),
    "tempo": Input(TEMPO, "optional: lock the loop to this tempo (Link, MIDI clock, Tempo), `beats` per loop"),
}


class NoiseLoop(_Looping, Node):
    """A random closed path of a set radius around a point picked by the looping seed (`noise_loop`)."""

    category = "latent"
    inputs = _LOOP_INPUTS
    outputs = _LOOP_OUTPUTS
    params = {
        "seed": Int(0, 0, 100000, clip=False, limit=(-2**31, 2**32 - 1),
                    doc="looping seed: picks the loop (wraps mod 2**32)"),
        "radius": Float(0.5, 0.0, 1.0, doc="how large the loop is: 0 a still point, 1 through unrelated images"),
        "project": Bool(True, doc="map z through the mapping network (off: use z as w directly)"),
        **CYCLE_PARAMS,
    }

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        alpha = self.cycle.advance(ctx, params, inputs.get("tempo"))
        z_dim = latent_dims(inputs.get("model"))[0]
        seed, radius, project = params["seed"], params["radius"], params["project"]
        return self.cached_outputs((alpha, seed, radius, project, z_dim), lambda: {
            "z": Latent.of(noise_loop(alpha, seed, radius, z_dim), "z", project), "alpha": alpha})


@dataclass(frozen=True, eq=False)
class _Keyframe:
    array: np.ndarray  # (1, z_dim) z or (1, num_ws, w_dim) w, float64
    tensor: torch.Tensor  # the same as float32, one object per keyframe so Mapping caches its mapping
    kind: str
    project: bool


def _keyframe_specs(keyframes: Any, count: int) -> list[Any]:
    """The first `count` keyframe entries, padded with seed keyframes (seed i for entry i)."""
    if keyframes is not None and not isinstance(keyframes, (list, tuple)):
        raise NodeError("keyframes must be a list")
    specs = list((keyframes or [])[:count])
    return specs + [{"seed": i} for i in range(len(specs), count)]


def _vector_paths(keyframes: Any) -> tuple[str, ...]:
    """The vector files the keyframes name, each once (only the first MAX_KEYFRAMES entries are ever used)."""
    entries = keyframes[:MAX_KEYFRAMES] if isinstance(keyframes, (list, tuple)) else []
    named = (e["vector"] for e in entries if isinstance(e, dict) and isinstance(e.get("vector"), str))
    return tuple(dict.fromkeys(named))


def _read_vectors(paths: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every keyframe file's array (run in the read pool); the first that fails is the node's error."""
    return {path: read_latent_file(path) for path in paths}


def _resolve(i: int, spec: Any, model: Any, files: dict[str, np.ndarray]) -> _Keyframe:
    if not isinstance(spec, dict):
        raise NodeError(f"keyframe {i}: expected a dict with a seed or a vector")
    if "seed" in spec:
        if not isinstance(spec["seed"], (int, float, np.number)) or not math.isfinite(spec["seed"]):
            raise NodeError(f"keyframe {i}: seed must be a number")
        array, kind = seed_z(int(spec["seed"]), latent_dims(model)[0]), "z"
    elif isinstance(spec.get("vector"), str):
        array, kind = fit_latent_file(files[spec["vector"]], spec["vector"], model)
    elif spec.get("vector") is not None:
        try:  # a vector kept in the graph must fit the model like one from a file
            array, kind = fit_latent(np.asarray(spec["vector"]), *latent_dims(model), f"keyframe {i}")
        except (VectorFileError, ValueError, TypeError) as exc:
            raise NodeError(f"keyframe {i}: {str(exc).splitlines()[0]}") from None
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
    an optional `"project"` flag (default on); missing entries are seeds 0..count-1. Vector files
    are read off the render thread whenever `keyframes` is set; the loop runs on through the previous
    keyframes until they land. A file that fails is reported on the node, which holds its last frame
    until `keyframes` is set again.
    """

    category = "latent"
    roles = frozenset({Role.LOOP_CLOCK, Role.KEYFRAMES, Role.MORPHS_OUTPUTS})
    inputs = _LOOP_INPUTS
    outputs = _LOOP_OUTPUTS
    params = {
        "count": Int(4, 1, 32, clip=False, limit=(1, MAX_KEYFRAMES), doc="number of keyframes"),
        "keyframes": Data(None, doc='list of {"seed": n} or {"vector": path}, each with optional "project"'),
        "index": Int(0, 0, 31, clip=False, limit=(0, MAX_KEYFRAMES - 1),
                     doc="keyframe the loop starts at (shifts the loop by index / count)"),
        **CYCLE_PARAMS,
    }

    def reset(self) -> None:
        super().reset()
        self._files = BackgroundRead()
        self._src: Any = object()  # the keyframes value whose files were last asked for
        self._vectors: dict[str, np.ndarray] | NodeError = {}  # those files' arrays once landed, or their failure
        self._built: tuple | None = None  # (keyframes value, files, count, model sizes) `_frames` was built from
        self._frames: list[_Keyframe] | NodeError = []
        self._listed: tuple[Any, int, list[Any]] = (object(), 0, [])  # (keyframes, count, what editor_data lists)

    def animating(self, params: dict[str, Any]) -> bool:
        return super().animating(params) or self._files.pending

    def editor_data(self) -> dict[str, Any]:
        """The keyframes as the loop runs them, exactly `count` (missing ones are seeds), so the editor's list
        and the count never disagree; entries past `count` stay stored, unused, until the count grows again."""
        keyframes, count = self.values["keyframes"], int(self.values["count"])
        if self._listed[0] is not keyframes or self._listed[1] != count:
            try:
                specs = _keyframe_specs(keyframes, count)
            except NodeError:
                specs = []
            self._listed = (keyframes, count, specs)
        return {"keyframes": self._listed[2]}

    def _ask_for_files(self, keyframes: Any) -> None:
        """Read the keyframes' files again whenever `keyframes` is set (even to an equal value)."""
        if keyframes is not self._src:
            self._src = keyframes
            paths = _vector_paths(keyframes)
            if paths:
                label = f"loading {Path(paths[0]).name}" if len(paths) == 1 else f"loading {len(paths)} vector files"
                self._files.start(label, _read_vectors, paths)
            else:
                self._files.forget()
                self._vectors = {}

    def prepare(self, device: str) -> None:
        """Before a graph goes live (an offline render, a preset switch): wait for the keyframes' files."""
        self._ask_for_files(self.values["keyframes"])
        self._files.wait()

    def _keyframes(self, params: dict[str, Any], model: Any) -> list[_Keyframe] | None:
        """The keyframes to loop through: the previous ones while new files load (None before any)."""
        self._ask_for_files(params["keyframes"])
        try:
            landed = self._files.take()
        except NodeError as exc:
            self._vectors = exc  # held until `keyframes` is set again
        else:
            if landed is not None:
                self._vectors = landed
        finally:
            self.status = self._files.status
        if self._files.pending:
            return self._frames if isinstance(self._frames, list) and self._frames else None
        key = (self._src, self._vectors, int(params["count"]), latent_dims(model))
        built = self._built
        if built is None or key[0] is not built[0] or key[1] is not built[1] or key[2:] != built[2:]:
            self._built = key
            try:
                if isinstance(self._vectors, NodeError):
                    raise self._vectors
                specs = _keyframe_specs(self._src, key[2])
                self._frames = [_resolve(i, spec, model, self._vectors) for i, spec in enumerate(specs)]
            except NodeError as exc:
                self._frames = exc
        if isinstance(self._frames, NodeError):
            raise self._frames
        return self._frames

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        alpha = self.cycle.advance(ctx, params, inputs.get("tempo"))
        frames = self._keyframes(params, inputs.get("model"))
        if frames is None:
            return {}
        position = (alpha + params["index"] / len(frames)) % 1.0
        return self.cached_outputs((position, frames), lambda: {"z": _spline_latent(position, frames), "alpha": alpha})
