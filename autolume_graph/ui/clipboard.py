"""Copy and paste of nodes: their values, bindings and the links between them.

Copying runs on the render thread and keeps fresh, unattached twins of the nodes; each paste
makes new twins of those, so one copy pastes any number of times, each as one undoable edit
with new unique names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from autolume_graph.commands import Command
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.runtime import Runtime
from autolume_graph.ui.placement import Point, Rect

Link = tuple[int, str, int, str]  # source index, output, destination index, input (indexes into the nodes)


def clone(node: Node) -> Node:
    """A fresh node of the same type and name with copies of the values, bindings and editor data."""
    twin = type(node)()
    for name, value in node.values.items():
        twin.values[name] = copy.deepcopy(value)
    twin.reset()
    twin.bindings = {k: copy.copy(b) for k, b in node.bindings.items()}
    twin.ui = copy.deepcopy(node.ui)
    twin.name = node.name
    return twin


@dataclass(frozen=True)
class Clip:
    """Copied nodes (never in a graph), the links among them, and their canvas rectangles at the copy."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    rects: tuple[Rect, ...]


def copy_nodes(node_ids: list[str], rects: list[Rect]) -> Callable[[Runtime], Clip]:
    """Render-thread work: a Clip of these nodes (in this order, `rects` theirs) and the links among them."""
    def work(runtime: Runtime) -> Clip:
        graph = runtime.graph
        nodes = [graph.node(node_id) for node_id in node_ids]
        index = {node.id: i for i, node in enumerate(nodes)}
        links = tuple((index[e.src], e.src_port, index[e.dst], e.dst_port) for e in graph.edges
                      if e.src in index and e.dst in index)
        return Clip(tuple(clone(node) for node in nodes), links, tuple(rects))

    return work


@dataclass
class PasteNodes(Command):
    """Add nodes and the links among them as one undoable edit (refused as a whole)."""

    nodes: list[Node]
    links: tuple[Link, ...]

    def apply(self, graph: Graph) -> None:
        added: list[Node] = []
        try:
            for node in self.nodes:
                added.append(graph.add_node(node, node.id or None, node.name or None))
            for src, out, dst, port in self.links:
                graph.add_edge(Edge(self.nodes[src].id, out, self.nodes[dst].id, port))
        except BaseException:
            for node in added:
                graph.remove_node(node.id)
            raise

    def revert(self, graph: Graph) -> None:
        for node in self.nodes:
            graph.remove_node(node.id)


def paste(clip: Clip, positions: list[Point]) -> Callable[[Runtime], list[str]]:
    """Render-thread work: add new twins of the clip's nodes at `positions`; returns their ids."""
    def work(runtime: Runtime) -> list[str]:
        nodes = [clone(node) for node in clip.nodes]
        for node, pos in zip(nodes, positions, strict=True):
            node.ui["pos"] = [*pos]
        runtime.call(PasteNodes(nodes, clip.links))
        return [node.id for node in nodes]

    return work
