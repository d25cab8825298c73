"""Link: the tempo, beat and bar of an Ableton Link session (DJ software, Live, phones on the LAN)."""

from __future__ import annotations

import time
from typing import Any

from autolume_graph.node import CookContext, Node, NodeState, NodeStatus
from autolume_graph.params import Bool, Output
from autolume_graph.roles import Role
from autolume_graph.tempo.count import BeatCount
from autolume_graph.tempo.link import LinkSession, LinkWish
from autolume_graph.tempo.source import SOURCE_OUTPUTS, Downbeats, source_outputs
from autolume_graph.tempo.wires import Tempo
from autolume_graph.types import PortType

from .tempo import bpm_param, quantum_param


class Link(Node):
    """Joins the Ableton Link session on the network and sends its tempo, beat and bar out.

    The session runs on a thread of its own; each frame reads its latest sample, extrapolated to the
    moment of the cook, and never waits. `bpm` is proposed to the session when it is set (any peer may
    change the tempo after: the `bpm` output says what the session plays). Peers' bars start together
    when they share the quantum. Without the aalink binding, or should the session fail, the node says so
    and counts on at `bpm` alone from the last beat it had (as it does for the few ms before the session's
    first sample). Link is live: an offline render locks to the manual Tempo node instead.
    """

    category = "tempo"
    roles = frozenset({Role.TEMPO_SOURCE})
    time_dependent = True
    outputs = {**SOURCE_OUTPUTS, "peers": Output(PortType.INT, "how many other Link apps are in the session")}
    params = {
        "enabled": Bool(True, doc="join the session (off: Link's own timeline at bpm, no peers)"),
        "bpm": bpm_param("tempo proposed to the session when set"),
        "quantum": quantum_param(),
        "start_stop_sync": Bool(False, doc="follow the session's start and stop: stopped, the beat holds"),
    }

    def reset(self) -> None:
        self.close()
        self._session: LinkSession | None = None
        self._wish = LinkWish()
        self._alone = BeatCount()
        self._downbeats = Downbeats()
        self.tempo: Tempo | None = None

    def close(self) -> None:
        if getattr(self, "_session", None) is not None:
            self._session.close()
            self._session = None

    def _ask(self, params: dict[str, Any]) -> LinkSession:
        wish, bpm = self._wish, params["bpm"]
        proposal = wish.proposal + (self._session is not None and bpm != wish.bpm)
        self._wish = LinkWish(params["enabled"], bpm, proposal, params["quantum"], params["start_stop_sync"])
        if self._session is None:
            self._session = LinkSession(self._wish)
        else:
            self._session.ask(self._wish)
        return self._session

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        session = self._ask(params)
        reading, now = session.reading, time.monotonic()
        if session.error or reading is None:  # no binding, or the first ms of the session: count alone
            bpm = params["bpm"]
            tempo, peers = Tempo(bpm, self._alone.beat(now, bpm), True, params["quantum"], "link"), 0
            self.status = NodeStatus.of(session.error, f"counting {bpm:g} BPM alone", state=NodeState.ERROR) \
                if session.error else NodeStatus.of("joining Link")
        else:
            playing = reading.playing or not params["start_stop_sync"]
            held = self.tempo.beat if self.tempo is not None else reading.beat_at(now)
            tempo = Tempo(reading.bpm, reading.beat_at(now) if playing else held, playing, reading.quantum, "link")
            peers = reading.peers
            self._alone.start(now, tempo.bpm, True, tempo.beat)  # should the session fail, counting goes on here
            self.status = NodeStatus.of(
                f"{peers} peer{'' if peers == 1 else 's'}" if reading.enabled else "Link off",
                f"{reading.bpm:.1f} BPM", "" if playing else "stopped")
        self.tempo = tempo
        return {**source_outputs(tempo, self._downbeats), "peers": peers}
