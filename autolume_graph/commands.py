"""Edit commands with undo/redo: the only way the editor, OSC and the CLI change a graph.

Live performance values are the one exception: an OSC (or MIDI) binding sets its parameter on the
render thread each frame, outside the history, so it is not undoable. Undoing an edit restores the
value from before the edit even over a later live change, and `Command.undo_note` says so first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.node import Node, same_value
from autolume_graph.params import Binding, MidiBinding, ParamError, midi_bindable


class Command:
    """One reversible edit. `apply` raises GraphError and leaves the graph unchanged when refused."""

    def apply(self, graph: Graph) -> None:
        raise NotImplementedError

    def revert(self, graph: Graph) -> None:
        raise NotImplementedError

    def merge(self, newer: Command) -> bool:
        """Fold a newer command into this one (a slider drag is one undo step)."""
        return False

    def undo_note(self, graph: Graph) -> str:
        """What undoing this now would overwrite that the history never saw, as one line ("" for nothing)."""
        return ""


@dataclass
class AddNode(Command):
    node: Node
    node_id: str | None = None
    name: str | None = None

    def apply(self, graph: Graph) -> None:
        graph.add_node(self.node, self.node_id or self.node.id or None, self.name or self.node.name or None)
        self.node_id, self.name = self.node.id, self.node.name

    def revert(self, graph: Graph) -> None:
        graph.remove_node(self.node.id)


@dataclass
class RemoveNode(Command):
    node_id: str
    _node: Node | None = None
    _edges: list[Edge] = field(default_factory=list)

    def apply(self, graph: Graph) -> None:
        self._node, self._edges = graph.remove_node(self.node_id)

    def revert(self, graph: Graph) -> None:
        assert self._node is not None
        graph.nodes[self._node.id] = self._node
        graph.edges.extend(self._edges)
        graph.structure_version += 1


@dataclass
class Connect(Command):
    edge: Edge
    _replaced: Edge | None = None

    def apply(self, graph: Graph) -> None:
        self._replaced = graph.add_edge(self.edge)

    def revert(self, graph: Graph) -> None:
        graph.remove_edge(self.edge)
        if self._replaced is not None:
            graph.edges.append(self._replaced)


@dataclass
class Disconnect(Command):
    edge: Edge

    def apply(self, graph: Graph) -> None:
        graph.remove_edge(self.edge)

    def revert(self, graph: Graph) -> None:
        graph.edges.append(self.edge)
        graph.structure_version += 1


@dataclass
class SetParam(Command):
    node_id: str
    param: str
    value: Any
    _old: Any = None
    _set: Any = None  # the value as stored, to tell a later live change

    def apply(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        if self.param not in node.params:
            raise GraphError(f"{node.name} has no parameter {self.param!r}")
        self._old = node.values[self.param]
        try:
            node.set_value(self.param, self.value)
        except ParamError as exc:
            raise GraphError(f"{node.name}.{self.param}: {exc}") from None
        self._set = node.values[self.param]

    def revert(self, graph: Graph) -> None:
        graph.node(self.node_id).set_value(self.param, self._old)

    def merge(self, newer: Command) -> bool:
        if isinstance(newer, SetParam) and (newer.node_id, newer.param) == (self.node_id, self.param):
            self.value, self._set = newer.value, newer._set
            return True
        return False

    def undo_note(self, graph: Graph) -> str:
        """A live change (OSC, MIDI, the node itself) since this edit, unless undo would restore its value anyway."""
        node = graph.nodes.get(self.node_id)
        current = node.values.get(self.param) if node is not None else self._set
        if same_value(current, self._set) or same_value(current, self._old):
            return ""
        return (f"undo: {node.name}.{self.param} was changed live (OSC) since this edit; restored the value from "
                f"before the edit (live values are not undoable)")


@dataclass
class Rename(Command):
    """A new name for a node. Its parameters keep the OSC addresses controllers already send to: each
    enabled default binding (`/<old name>/<param>`) is pinned as an explicit one before the rename."""

    node_id: str
    name: str
    _old: str = ""
    _old_bindings: dict[str, Binding] = field(default_factory=dict)

    def apply(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        old_name, old_bindings = node.name, dict(node.bindings)
        pinned = {name: node.binding(name) for name, param in node.params.items()
                  if param.osc_addressable and name not in node.bindings and node.binding(name).enabled}
        graph.rename(node.id, self.name)  # refuses before anything changed
        node.bindings.update(pinned)
        self._old, self._old_bindings = old_name, old_bindings

    def revert(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        graph.rename(self.node_id, self._old)
        node.bindings.clear()
        node.bindings.update(self._old_bindings)


def _check_binding(binding: Binding | MidiBinding) -> None:
    """A binding's mapping compiles and its source (address, control) can listen, or GraphError says why."""
    from autolume_graph.expr import ExpressionError, compile_mapping

    try:
        compile_mapping(binding.mapping)
    except ExpressionError as exc:
        raise GraphError(f"mapping {binding.mapping!r}: {exc}") from None
    problem = binding.problem()
    if problem is not None:
        raise GraphError(problem)


@dataclass
class SetBinding(Command):
    """Bind a parameter to an OSC address; the mapping is validated by the caller's checker."""

    node_id: str
    param: str
    binding: Binding
    _old: Binding | None = None

    def apply(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        if self.param not in node.params or not node.params[self.param].osc_addressable:
            raise GraphError(f"{node.name}.{self.param} cannot be bound to OSC")
        _check_binding(self.binding)
        self._old = node.bindings.get(self.param)
        node.bindings[self.param] = self.binding
        graph.structure_version += 1

    def revert(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        if self._old is None:
            node.bindings.pop(self.param, None)
        else:
            node.bindings[self.param] = self._old
        graph.structure_version += 1


@dataclass
class SetMidiBinding(Command):
    """Bind a parameter to a MIDI control (None: unbind); the mapping and the binding are checked here."""

    node_id: str
    param: str
    binding: MidiBinding | None
    _old: MidiBinding | None = None

    def apply(self, graph: Graph) -> None:
        node = graph.node(self.node_id)
        if self.param not in node.params or not midi_bindable(node.params[self.param]):
            raise GraphError(f"{node.name}.{self.param} cannot be bound to MIDI")
        if self.binding is not None:
            _check_binding(self.binding)
        self._old = node.midi_bindings.get(self.param)
        self._put(node, self.binding)
        graph.structure_version += 1

    def revert(self, graph: Graph) -> None:
        self._put(graph.node(self.node_id), self._old)
        graph.structure_version += 1

    def _put(self, node: Node, binding: MidiBinding | None) -> None:
        if binding is None:
            node.midi_bindings.pop(self.param, None)
        else:
            node.midi_bindings[self.param] = binding


_edit_versions = itertools.count(1)  # process-wide, so a swapped-in graph's history never repeats a version


class History:
    """Applies commands to a graph and keeps undo/redo stacks.

    `version` changes with every edit, undo and redo (and differs between histories): an editor that
    noted it when saving knows whether the graph has unsaved edits.
    """

    def __init__(self, graph: Graph, limit: int = 500) -> None:
        self.graph = graph
        self.limit = limit
        self.undo_stack: list[Command] = []
        self.redo_stack: list[Command] = []
        self.version = next(_edit_versions)

    def do(self, command: Command, merge: bool = True) -> None:
        command.apply(self.graph)
        self.version = next(_edit_versions)
        self.redo_stack.clear()
        if merge and self.undo_stack and self.undo_stack[-1].merge(command):
            return
        self.undo_stack.append(command)
        del self.undo_stack[: -self.limit]

    def undo(self) -> bool:
        if not self.undo_stack:
            return False
        command = self.undo_stack.pop()
        command.revert(self.graph)
        self.version = next(_edit_versions)
        self.redo_stack.append(command)
        return True

    def redo(self) -> bool:
        if not self.redo_stack:
            return False
        command = self.redo_stack.pop()
        command.apply(self.graph)
        self.version = next(_edit_versions)
        self.undo_stack.append(command)
        return True
