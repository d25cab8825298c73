"""Tempo: a tempo of its own, counted on the runtime clock, for tempo-locked patches without Link."""

from __future__ import annotations

from typing import Any

from autolume_graph.node import CookContext, Node, NodeStatus
from autolume_graph.params import Bool, Float, Trigger
from autolume_graph.roles import Role
from autolume_graph.tempo.count import BeatCount
from autolume_graph.tempo.source import SOURCE_OUTPUTS, Downbeats, source_outputs
from autolume_graph.tempo.wires import Tempo

BPM_LIMIT = (1.0, 999.0)
QUANTUM_LIMIT = (1.0, 64.0)


def bpm_param(doc: str) -> Float:
    """A tempo source's `bpm` parameter."""
    return Float(120.0, 20.0, 300.0, clip=False, limit=BPM_LIMIT, unit="BPM", doc=doc)


def quantum_param() -> Float:
    """A tempo source's `quantum` parameter."""
    return Float(4.0, 1.0, 16.0, clip=False, limit=QUANTUM_LIMIT, unit="beats", doc="beats per bar")


class ManualTempo(Node):
    """Beats at a set tempo, counted on the runtime clock from the first frame: an offline render on the
    fixed-step clock locks to it the same every time. A new bpm bends the count, never jumps it."""

    type_name = "Tempo"
    category = "tempo"
    roles = frozenset({Role.TEMPO_SOURCE})
    time_dependent = True
    outputs = SOURCE_OUTPUTS
    params = {
        "bpm": bpm_param("beats per minute"),
        "quantum": quantum_param(),
        "playing": Bool(True, doc="off: the beat holds where it is (what locks to it holds too)"),
        "restart": Trigger(doc="beat 0 at this frame: the downbeat of bar one"),
    }

    def reset(self) -> None:
        self._count = BeatCount()
        self._downbeats = Downbeats()
        self._tempo: Tempo | None = None

    @property
    def tempo(self) -> Tempo:
        """The latest tempo; before the first frame, beat 0 at the set tempo (what `render --loop` asks)."""
        if self._tempo is not None:
            return self._tempo
        return Tempo(self.values["bpm"], 0.0, self.values["playing"], self.values["quantum"], "tempo")

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        bpm, playing = params["bpm"], params["playing"]
        if params["restart"]:
            self._count.start(ctx.time, bpm, playing)
        self._tempo = Tempo(bpm, self._count.beat(ctx.time, bpm, playing), playing, params["quantum"], "tempo")
        self.status = NodeStatus.of(f"{bpm:g} BPM", "" if playing else "stopped")
        return source_outputs(self._tempo, self._downbeats)
