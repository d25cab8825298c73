"""An immutable picture of the graph's structure, captured on the render thread for the UI.

The editor rebuilds what it draws from this, never from the live graph, and asks for a new one
only when the graph (or its structure version) changed. A view holds plain copies and node
classes (their declarations), never a node: parameter values come from each frame's snapshot.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.params import Binding
from autolume_graph.runtime import NodeStat, Runtime

ViewKey = tuple[int, int]


@dataclass(frozen=True)
class NodeView:
    """One node as the editor sees it when the view was captured.

    `kind` is the node's class, read only for its declarations (ports, parameters); `instance` tells a node
    that replaced another under the same id from the same node; `values` are the parameter values at capture
    (the widgets' first values; later ones come from snapshots); `bindings` hold each OSC-addressable
    parameter's binding as the node resolves it.
    """

    id: str
    name: str
    type_name: str
    kind: type[Node]
    instance: int
    pos: tuple[float, float] | None
    values: dict[str, Any]
    bindings: dict[str, Binding]

    def current_values(self, stat: NodeStat | None) -> dict[str, Any]:
        """The values in this node's latest `stat` (those at capture until a snapshot has this very node)."""
        return stat.values if self.published_in(stat) else self.values

    def published_in(self, stat: NodeStat | None) -> bool:
        """Whether `stat` is of this node, not of one that had its id before (another graph, an undone add)."""
        return stat is not None and stat.instance == self.instance


@dataclass(frozen=True)
class GraphView:
    key: ViewKey
    nodes: dict[str, NodeView]
    edges: tuple[Edge, ...]

    def wired_params(self, node_id: str) -> set[str]:
        """Parameters of a node driven by a wire (their widgets show the node's own value, disabled)."""
        params = self.nodes[node_id].kind.params
        return {e.dst_port for e in self.edges if e.dst == node_id and e.dst_port in params}

    def with_role(self, role: str) -> list[NodeView]:
        """The nodes whose class declares `role` (autolume_graph/roles.py)."""
        return [n for n in self.nodes.values() if role in n.kind.roles]


EMPTY = GraphView((0, -1), {}, ())


def view_key(graph: Graph) -> ViewKey:
    return id(graph), graph.structure_version


def capture_node(node: Node) -> NodeView:
    """Copy what the editor needs of one node; call on the render thread."""
    pos = node.ui.get("pos")
    bindings = {name: copy.copy(node.binding(name)) for name, param in node.params.items() if param.osc_addressable}
    return NodeView(node.id, node.name, node.type_name, type(node), id(node),
                    (float(pos[0]), float(pos[1])) if pos else None, dict(node.values), bindings)


def capture(graph: Graph) -> GraphView:
    """Copy the structure; call on the render thread (or while the runtime is stopped)."""
    return GraphView(view_key(graph), {node.id: capture_node(node) for node in graph.nodes.values()},
                     tuple(graph.edges))


def capture_if_changed(known: ViewKey) -> Callable[[Runtime], GraphView | None]:
    """Render-thread work returning a new view only when the structure moved past `known`."""
    def work(runtime: Runtime) -> GraphView | None:
        graph = runtime.graph
        return capture(graph) if view_key(graph) != known else None

    return work
