"""The graph model: nodes by id, edges, and the checks that keep it a valid typed DAG."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import networkx as nx

from autolume_graph.node import Node, PlaceholderNode
from autolume_graph.types import can_connect


class GraphError(ValueError):
    """An edit the graph refuses; the message is one line and the graph is unchanged."""


@dataclass(frozen=True)
class Edge:
    """A wire from an output port to an input port or a parameter of another node."""

    src: str
    src_port: str
    dst: str
    dst_port: str


_SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_\-]+", "-", text.lower()).strip("-")
    return slug or "node"


class Graph:
    """Plain data: node instances keyed by id, and edges. Change it through commands."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.settings: dict[str, Any] = {}
        self.structure_version = 0
        self._next_id = 1

    # --- lookup -------------------------------------------------------------------
    def node(self, ref: str) -> Node:
        """A node by id or by name."""
        if ref in self.nodes:
            return self.nodes[ref]
        for node in self.nodes.values():
            if node.name == ref:
                return node
        raise GraphError(f"no node {ref!r}")

    def incoming(self, node_id: str) -> dict[str, Edge]:
        return {e.dst_port: e for e in self.edges if e.dst == node_id}

    def digraph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from((e.src, e.dst) for e in self.edges)
        return g

    # --- structural edits (used by commands) --------------------------------------
    def new_id(self) -> str:
        while f"n{self._next_id}" in self.nodes:
            self._next_id += 1
        return f"n{self._next_id}"

    def unique_name(self, base: str, exclude: str | None = None) -> str:
        base = slugify(base)
        taken = {n.name for i, n in self.nodes.items() if i != exclude}
        if base not in taken:
            return base
        stem = base.rstrip("0123456789") or base
        i = 1
        while f"{stem}{i}" in taken:
            i += 1
        return f"{stem}{i}"

    def add_node(self, node: Node, node_id: str | None = None, name: str | None = None) -> Node:
        node.id = node_id or node.id or self.new_id()
        if node.id in self.nodes:
            raise GraphError(f"node id {node.id!r} already exists")
        node.name = self.unique_name(name or node.name or node.type_name)
        self.nodes[node.id] = node
        self.structure_version += 1
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        node = self.node(node_id)
        removed = [e for e in self.edges if node.id in (e.src, e.dst)]
        self.edges = [e for e in self.edges if e not in removed]
        del self.nodes[node.id]
        self.structure_version += 1
        return node, removed

    def check_edge(self, edge: Edge) -> None:
        """Raise GraphError with the reason if `edge` may not be added."""
        if edge.src not in self.nodes or edge.dst not in self.nodes:
            raise GraphError("both ends of a link must be nodes of the graph")
        src, dst = self.nodes[edge.src], self.nodes[edge.dst]
        # a placeholder's ports are unknown, so only their types go unchecked: a cycle through one is still a cycle
        if not (isinstance(src, PlaceholderNode) or isinstance(dst, PlaceholderNode)):
            self._check_ports(src, dst, edge)
        if self._reaches(edge.dst, edge.src):
            raise GraphError(f"linking {src.name} to {dst.name} would close a cycle")

    def _reaches(self, start: str, goal: str) -> bool:
        """Whether a path of edges leads from `start` to `goal`: one search, O(V + E), no graph rebuilt."""
        successors: dict[str, list[str]] = {}
        for e in self.edges:
            successors.setdefault(e.src, []).append(e.dst)
        seen, stack = {start}, [start]
        while stack:
            here = stack.pop()
            if here == goal:
                return True
            for nxt in successors.get(here, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    @staticmethod
    def _check_ports(src: Node, dst: Node, edge: Edge) -> None:
        """Both ports exist and their types can be wired."""
        if edge.src_port not in src.outputs:
            raise GraphError(f"{src.name} has no output {edge.src_port!r}")
        if edge.dst_port in dst.inputs:
            target_type = dst.inputs[edge.dst_port].type
        elif edge.dst_port in dst.params:
            target_type = dst.params[edge.dst_port].port_type
        else:
            raise GraphError(f"{dst.name} has no input or parameter {edge.dst_port!r}")
        source_type = src.outputs[edge.src_port].type
        if not can_connect(source_type, target_type):
            raise GraphError(
                f"cannot connect {src.name}.{edge.src_port} ({source_type.name}) "
                f"to {dst.name}.{edge.dst_port} ({target_type.name})"
            )

    def add_edge(self, edge: Edge) -> Edge | None:
        """Add a checked edge; an input has one source, so a previous edge into it is replaced and returned."""
        self.check_edge(edge)
        replaced = self.incoming(edge.dst).get(edge.dst_port)
        if replaced is not None:
            self.edges.remove(replaced)
        self.edges.append(edge)
        self.structure_version += 1
        return replaced

    def remove_edge(self, edge: Edge) -> None:
        if edge not in self.edges:
            raise GraphError("no such link")
        self.edges.remove(edge)
        self.structure_version += 1

    def rename(self, node_id: str, name: str) -> None:
        if not _SLUG.match(name):
            raise GraphError(f"name {name!r} must be a lowercase slug (letters, digits, - and _)")
        if any(n.name == name for i, n in self.nodes.items() if i != node_id):
            raise GraphError(f"name {name!r} is already used")
        self.nodes[node_id].name = name
        self.structure_version += 1

    def sinks(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.sink]
