"""An immutable picture of the graph's structure, captured on the render thread for the UI.

The editor rebuilds what it draws from this, never from the live graph, and asks for a new one
only when the graph (or its structure version) changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.runtime import Runtime

ViewKey = tuple[int, int]


@dataclass(frozen=True)
class NodeView:
    """One node as the editor sees it; `node` is read only for declarations, values and bindings."""

    id: str
    name: str
    type_name: str
    node: Node
    pos: tuple[float, float] | None


@dataclass(frozen=True)
class GraphView:
    key: ViewKey
    nodes: dict[str, NodeView]
    edges: tuple[Edge, ...]

    def wired_params(self, node_id: str) -> set[str]:
        """Parameters of a node driven by a wire (their widgets show the node's own value, disabled)."""
        params = self.nodes[node_id].node.params
        return {e.dst_port for e in self.edges if e.dst == node_id and e.dst_port in params}

    def of_type(self, type_name: str) -> list[NodeView]:
        return [n for n in self.nodes.values() if n.type_name == type_name]


EMPTY = GraphView((0, -1), {}, ())


def view_key(graph: Graph) -> ViewKey:
    return id(graph), graph.structure_version


def capture(graph: Graph) -> GraphView:
    """Copy the structure; call on the render thread (or while the runtime is stopped)."""
    nodes = {}
    for node in graph.nodes.values():
        pos = node.ui.get("pos")
        nodes[node.id] = NodeView(node.id, node.name, node.type_name, node,
                                  (float(pos[0]), float(pos[1])) if pos else None)
    return GraphView(view_key(graph), nodes, tuple(graph.edges))


def capture_if_changed(known: ViewKey) -> Callable[[Runtime], GraphView | None]:
    """Render-thread work returning a new view only when the structure moved past `known`."""
    def work(runtime: Runtime) -> GraphView | None:
        graph = runtime.graph
        return capture(graph) if view_key(graph) != known else None

    return work
