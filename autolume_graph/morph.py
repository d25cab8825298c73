"""Preset morphs: the running graph crossfades into a preset over time, one step per frame on the render thread.

Same shape (node ids, types and links): each parameter goes from its value at the start to the preset's
along t (smoothstep-eased on the runtime clock): numbers blend (held to their ranges, whole numbers
rounded), every other kind (switches, choices, text, paths, data) flips at t = 0.5, triggers are left
alone. A node that declares Role.MORPHS_OUTPUTS takes the preset's values at once and blends its outputs
instead (latents slerp, models crossfade, gan/latent_morph.py and nodes/model_loader.py). At t = 1 the
preset's own graph is swapped in, so its exact values, bindings and names hold. A preset of another shape
cannot be blended node by node: it is swapped in at the midpoint. The engine knows no node type: it reads
parameter kinds and declared roles only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autolume_graph.graph import Graph
from autolume_graph.node import Node, same_value
from autolume_graph.params import Param, ParamType
from autolume_graph.roles import Role

if TYPE_CHECKING:
    from autolume_graph.runtime import Runtime

log = logging.getLogger(__name__)

MIDPOINT = 0.5
MAX_SECONDS = 3600.0


class MorphError(ValueError):
    """A morph that cannot be asked for (a bad time, beats without a tempo); one line."""


def ease(x: float) -> float:
    """Smoothstep: starts and lands gently, and is 0.5 exactly halfway."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def same_shape(a: Graph, b: Graph) -> bool:
    """Whether `b` has `a`'s node ids with the same types and the same links, so it can be blended node by node."""
    if a.nodes.keys() != b.nodes.keys():
        return False
    if any(node.type_name != b.nodes[node_id].type_name for node_id, node in a.nodes.items()):
        return False
    return set(a.edges) == set(b.edges)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def blended(param: Param, start: Any, end: Any, t: float) -> Any:
    """A parameter's value a fraction `t` of the way: numbers blend, anything else flips at the midpoint."""
    if param.type.number and _is_number(start) and _is_number(end):
        return param.coerce(start + (end - start) * t)
    return end if t >= MIDPOINT else start


SECONDS_UNITS = ("s", "sec", "seconds", "second")
BEATS_UNITS = ("b", "beat", "beats")
USAGE = "/autolume/preset NAME [TIME [seconds|beats]]"


def tempo_seconds(beats: float, graph: Graph) -> float:
    """How long `beats` last at the tempo of the graph's first Role.TEMPO_SOURCE node that has one."""
    tempo = next((node.tempo for node in graph.nodes.values()
                  if Role.TEMPO_SOURCE in node.roles and getattr(node, "tempo", None) is not None), None)
    if tempo is None or tempo.bpm <= 0:
        raise MorphError(f"{USAGE}: a time in beats needs a tempo (a Link or MIDI clock node that follows one)")
    return tempo.seconds(beats)


def morph_seconds(args: tuple | list, graph: Graph) -> float:
    """The morph time the arguments after a preset's name give: none (or 0) is an instant switch; a number is
    seconds, or beats when followed by "beats" (at the graph's tempo). MorphError says what is wrong."""
    if not args:
        return 0.0
    amount, unit = args[0], (args[1] if len(args) > 1 else "seconds")
    if len(args) > 2 or not _is_number(amount) or amount < 0 or not isinstance(unit, str):
        raise MorphError(f"{USAGE}: got {' '.join(map(repr, args))}")
    unit = unit.lower()
    if unit not in SECONDS_UNITS + BEATS_UNITS:
        raise MorphError(f"{USAGE}: unit {unit!r} is neither seconds nor beats")
    seconds = tempo_seconds(amount, graph) if unit in BEATS_UNITS and amount else float(amount)
    if seconds > MAX_SECONDS:
        raise MorphError(f"{USAGE}: {seconds:g} s is longer than {MAX_SECONDS:g} s")
    return seconds


@dataclass
class _ParamMorph:
    node: Node
    name: str
    param: Param
    start: Any
    end: Any


@dataclass
class _OutputMorph:
    """A Role.MORPHS_OUTPUTS node: its outputs at the start, and what its `prepare_morph` built."""

    node: Node
    start: dict[str, Any]
    prepared: Any = None


OutputFilter = Callable[[dict[str, Any]], dict[str, Any]]


def differing(node: Node, target: Node) -> dict[str, Any]:
    """The preset node's values that differ from the running node's, triggers left out (they fire, not hold)."""
    return {name: value for name, value in target.values.items()
            if name in node.params and node.params[name].type is not ParamType.TRIGGER
            and not same_value(node.values.get(name), value) and not _same_data(node.values.get(name), value)}


def _same_data(old: Any, new: Any) -> bool:
    """Equal data (arrays, lists of keyframes) is no change either; anything that cannot be compared is one."""
    try:
        return bool(np.array_equal(np.asarray(old, dtype=object), np.asarray(new, dtype=object)))
    except Exception:  # noqa: BLE001 - a value that does not compare is a change, flipped at the midpoint
        return False


def _blending(runtime: Runtime) -> set[str]:
    """The nodes whose outputs the morphs on the running graph blend now."""
    return {node_id for hook in runtime.frame_hooks if isinstance(hook, Morph) and hook._graph is runtime.graph
            for node_id in hook._outputs}


class Morph:
    """One morph from the running graph into `target` over `seconds` (runtime clock); a frame hook while it runs.

    `done` resolves once the target runs (its exception if the runtime refused it; "replaced" when a newer
    morph or a switch took over first)."""

    def __init__(self, target: Graph, seconds: float) -> None:
        if not _is_number(seconds) or not 0 < seconds <= MAX_SECONDS:
            raise MorphError(f"morph time {seconds!r}: expected seconds above 0, at most {MAX_SECONDS:g}")
        self.target = target
        self.seconds = float(seconds)
        self.done: Future = Future()
        self.t = 0.0  # the eased position, read by the output filters during the cook
        self._graph: Graph | None = None
        self._blend = False
        self._params: list[_ParamMorph] = []
        self._outputs: dict[str, _OutputMorph] = {}
        self._prepared: dict[str, Any] = {}
        self._origin: float | None = None

    # --- off the render thread ---------------------------------------------------------
    @staticmethod
    def capture(runtime: Runtime) -> tuple[Graph, dict[str, dict[str, Any]], set[str]]:
        """The running graph, each node's last outputs and the nodes a morph in progress blends (render
        thread: a consistent picture)."""
        outputs = {node_id: dict(node.last_outputs) for node_id, node in runtime.graph.nodes.items()}
        return runtime.graph, outputs, _blending(runtime)

    def prepare(self, graph: Graph, outputs: dict[str, dict[str, Any]], blending: set[str]) -> None:
        """Off the render thread, after the target's nodes were prepared (models loaded): let each
        Role.MORPHS_OUTPUTS node that changes (or that a morph in progress left between two) build what its
        blend needs (a model crossfade)."""
        if not same_shape(graph, self.target):
            return
        for node_id, node in graph.nodes.items():
            target = self.target.nodes[node_id]
            prepare = getattr(node, "prepare_morph", None)
            if (Role.MORPHS_OUTPUTS in node.roles and prepare is not None
                    and (node_id in blending or differing(node, target))):
                try:
                    self._prepared[node_id] = prepare(outputs.get(node_id, {}), target)
                except Exception as exc:  # noqa: BLE001 - its blend falls back (a flip), the morph goes on
                    log.warning("morph: %s could not prepare: %s", node.name, exc)

    # --- on the render thread ------------------------------------------------------------
    def begin(self, runtime: Runtime) -> None:
        """Take over from a morph in progress (its values so far are where this one starts) and run from the
        next frame on."""
        blending = _blending(runtime)  # outputs a replaced morph leaves between two: this one carries them on
        for hook in list(runtime.frame_hooks):
            if isinstance(hook, Morph):
                hook.end(runtime, "replaced")
        self._graph = runtime.graph
        self._blend = same_shape(runtime.graph, self.target)
        if self._blend:
            for node_id, node in runtime.graph.nodes.items():
                self._plan_node(runtime, node, self.target.nodes[node_id], node_id in blending)
        runtime.frame_hooks.append(self)

    def _plan_node(self, runtime: Runtime, node: Node, target: Node, blending: bool) -> None:
        changes = differing(node, target)
        if not changes and not blending:
            return
        if Role.MORPHS_OUTPUTS not in node.roles:
            self._params += [_ParamMorph(node, name, node.params[name], node.values[name], value)
                             for name, value in changes.items()]
            return
        morph = _OutputMorph(node, dict(node.last_outputs), self._prepared.get(node.id))
        for name, value in changes.items():
            node.set_value(name, value)
        self._outputs[node.id] = morph
        runtime.scheduler.output_filters[node.id] = self._output_filter(morph)

    def _output_filter(self, morph: _OutputMorph) -> OutputFilter:
        def output_filter(outputs: dict[str, Any]) -> dict[str, Any]:
            return morph.node.morph_outputs(morph.start, outputs, self.t, morph.prepared)

        return output_filter

    def __call__(self, runtime: Runtime) -> None:
        """One frame: move every blended value to this frame's t; swap the preset in when it is time."""
        if runtime.graph is not self._graph:  # the graph was replaced under the morph (a switch, a file opened)
            self.end(runtime, "replaced")
            return
        now = runtime.clock.time
        if self._origin is None:
            self._origin = now
        progress = min(max((now - self._origin) / self.seconds, 0.0), 1.0)
        self.t = ease(progress)
        if progress >= 1.0 or (not self._blend and progress >= MIDPOINT):
            self._finish(runtime)
            return
        for change in self._params:
            change.node.set_value(change.name, blended(change.param, change.start, change.end, self.t))

    def _finish(self, runtime: Runtime) -> None:
        self._remove(runtime)
        try:
            runtime.swap_graph(self.target)
        except Exception as exc:  # noqa: BLE001 - refused (it cannot be cooked): the running graph stays
            self.done.set_exception(exc)
        else:
            self.done.set_result("switched")

    def end(self, runtime: Runtime, outcome: str) -> None:
        """Stop where it is (a newer morph or switch takes over); the values reached stay."""
        self._remove(runtime)
        if not self.done.done():
            self.done.set_result(outcome)

    def _remove(self, runtime: Runtime) -> None:
        if self in runtime.frame_hooks:
            runtime.frame_hooks.remove(self)
        for node_id in self._outputs:
            runtime.scheduler.output_filters.pop(node_id, None)
