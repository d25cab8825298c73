"""Applies MIDI to bound parameters once per frame (a runtime frame hook), records what arrived for the
editor's monitor, and learns: `learn(node_id, param)` binds that parameter to the next control moved on any
port (an undoable SetMidiBinding), as OSCControl does for addresses.

The value goes through the parameter (`set_value` coerces and clips), so its range holds whatever the mapping
makes of the control. A binding applies only when its control sends, so an edit by hand stays until then.
"""

from __future__ import annotations

import time
from typing import Any

from autolume_graph.commands import SetMidiBinding
from autolume_graph.expr import ExpressionError, Mapping, compile_mapping
from autolume_graph.graph import GraphError
from autolume_graph.midi.events import MidiEvent
from autolume_graph.midi.ports import PORTS, PortManager, PortReader
from autolume_graph.node import Node
from autolume_graph.osc.mailbox import RECENT_PROBLEMS, Problem
from autolume_graph.osc.monitor import OSCMonitor
from autolume_graph.params import MIDI_KINDS, MidiBinding, Param, ParamError, ParamType, midi_bindable

Target = tuple[Node, str, MidiBinding, Mapping]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def span_mapping(param: Param) -> str:
    """The mapping that spreads a control's 0..1 over the parameter's UI range ("x" for 0..1 or no range)."""
    if param.min is None or param.max is None or (param.min, param.max) == (0, 1):
        return "x"
    return f"{_number(param.min)} + x*{_number(float(param.max) - float(param.min))}"


def learnable(event: MidiEvent) -> bool:
    """A control a performer moves: a CC, a note pressed, a bend, pressure, a program (not a note's release)."""
    return event.kind in MIDI_KINDS and (event.kind != "note" or event.note_on)


class MIDIControl:
    """The render thread's side of MIDI bindings; `monitor_all(True)` (the editor) reads every port."""

    def __init__(self, manager: PortManager = PORTS) -> None:
        self.manager = manager
        self.monitor = OSCMonitor()
        self.problems: tuple[Problem, ...] = ()  # the latest, oldest first; swapped whole (the editor reads it)
        self.learning: tuple[str, str] | None = None  # (node id, parameter) waiting for a control
        self.learned: tuple[str, str, str] | None = None  # (node name, parameter, binding label) of the last learn
        self._monitoring = False
        self._readers: dict[str, PortReader] = {}
        self._port_states: tuple[str, ...] = ()
        self._table: dict[str, list[Target]] = {}
        self._table_key: tuple[int, int] | None = None
        self._last_x: dict[tuple[str, str], float] = {}  # a trigger fires when its control crosses the middle

    # --- what the editor asks ------------------------------------------------------------
    def learn(self, node_id: str, param: str | None) -> None:
        """Bind `param` of `node_id` to the next control moved (None: stop waiting). Render thread."""
        was = self.learning is not None or self._monitoring
        self.learning = (node_id, param) if param is not None else None
        self._listing(was)

    def monitor_all(self, on: bool) -> None:
        """Read every port, bound or not, for the monitor (the editor's MIDI section)."""
        was = self.learning is not None or self._monitoring
        self._monitoring = on
        self._listing(was)

    def _listing(self, was: bool) -> None:
        now = self.learning is not None or self._monitoring
        if now != was:
            self.manager.keep_listing(now)

    def port_lines(self) -> list[str]:
        """Each port read at the last frame and its state ("jack: ctl:knobs", "jack: waiting for port 'x'")."""
        return list(self._port_states)

    def _problem(self, kind: str, detail: str) -> None:
        self.problems = (*self.problems, (time.monotonic(), kind, detail))[-RECENT_PROBLEMS:]

    # --- each frame --------------------------------------------------------------------
    def table(self, graph: Any) -> dict[str, list[Target]]:
        """Port name -> the parameters bound to controls on it; rebuilt when the graph's structure changes."""
        key = (id(graph), graph.structure_version)
        if key != self._table_key:
            table: dict[str, list[Target]] = {}
            for node in graph.nodes.values():
                for name, binding in node.midi_bindings.items():
                    if name not in node.params or not midi_bindable(node.params[name]):
                        continue
                    try:
                        mapping = compile_mapping(binding.mapping)
                    except ExpressionError as exc:
                        self._problem("bad-mapping", f"{node.name}.{name}: {exc}")
                        continue
                    table.setdefault(binding.port, []).append((node, name, binding, mapping))
            self._table, self._table_key = table, key
        return self._table

    def __call__(self, runtime: Any) -> None:
        """Frame hook: what each port sent since the last frame, applied before the frame cooks."""
        table = self.table(runtime.graph)
        listening = self.learning is not None or self._monitoring
        self._keep_readers(set(table) | (set(self.manager.listed) if listening else set()))
        self._port_states = tuple(reader.status for reader in self._readers.values())
        if not self._readers:
            return
        watched: set[str] = set()  # ports already shown and learned from this frame (two names, one port)
        for name, reader in self._readers.items():
            events, missed = reader.read()
            if missed:
                self._problem("flood", f"{reader.port or name}: {missed} messages dropped between two frames")
            if not events:
                continue
            port = reader.port or name
            shown = listening and port not in watched
            if shown and self.learning is not None:
                self._learn_from(runtime, port, events)
                table = self.table(runtime.graph)  # the learned binding follows from this very message
            drove = self._apply_all(table.get(name, ()), events)
            if shown:
                watched.add(port)
                self._record(port, events, drove)
        self.monitor.publish()

    def _keep_readers(self, wanted: set[str]) -> None:
        for name in [n for n in self._readers if n not in wanted]:
            self._readers.pop(name).close()
        for name in wanted - set(self._readers):
            self._readers[name] = PortReader(name, self.manager)

    def _apply_all(self, targets: Any, events: list[MidiEvent]) -> dict[str, list[str]]:
        """Apply each target's latest control among `events`; the labels of controls -> what they drove."""
        drove: dict[str, list[str]] = {}
        for node, name, binding, mapping in targets:
            matching = [e for e in events if e.matches(binding.channel, binding.kind, binding.number)]
            if not matching:
                continue
            if node.params[name].type is ParamType.TRIGGER:
                self._fire(node, name, matching)
            else:
                self._set(node, name, mapping, matching[-1])
            drove.setdefault(matching[-1].label, []).append(f"{node.name}.{name}")
        return drove

    def _set(self, node: Node, name: str, mapping: Mapping, event: MidiEvent) -> None:
        try:
            node.set_value(name, mapping(event.unit))
        except ExpressionError as exc:
            self._problem("mapping-error", f"{node.name}.{name}: {exc}")
        except ParamError as exc:
            self._problem("bad-value", f"{node.name}.{name}: {exc}")

    def _fire(self, node: Node, name: str, events: list[MidiEvent]) -> None:
        """A trigger fires on a note pressed or a control rising through the middle (not on each message)."""
        key = (node.id, name)
        fired = False
        for event in events:
            previous, self._last_x[key] = self._last_x.get(key, 0.0), event.unit
            fired = fired or event.note_on or (event.kind != "note" and previous < 0.5 <= event.unit)
        if fired:
            node.set_value(name, True)

    def _learn_from(self, runtime: Any, port: str, events: list[MidiEvent]) -> None:
        event = next((e for e in events if learnable(e)), None)
        if event is None:
            return
        node_id, param = self.learning
        self.learn("", None)
        try:
            node = runtime.graph.node(node_id)
            binding = MidiBinding(port, event.channel, event.kind, event.number, span_mapping(node.params[param]))
            runtime.history.do(SetMidiBinding(node_id, param, binding))
        except (GraphError, KeyError) as exc:
            self._problem("learn", f"{event.label}: {exc}")
            return
        self.learned = (node.name, param, binding.label)

    def _record(self, port: str, events: list[MidiEvent], drove: dict[str, list[str]]) -> None:
        latest: dict[str, tuple[MidiEvent, int]] = {}
        for event in events:
            if event.kind == "clock":
                continue  # 48 a second and no value: the clock node shows the tempo instead
            _, count = latest.pop(event.label, (event, 0))
            latest[event.label] = (event, count + 1)
        for label, (event, count) in latest.items():
            self.monitor.record(f"{port} {label}", (event.value,), count, tuple(drove.get(label, ())), False)

    def close(self) -> None:
        """Release every port (the session's end)."""
        self.learn("", None)
        self.monitor_all(False)
        self._keep_readers(set())
        self._port_states = ()
