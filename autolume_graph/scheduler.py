"""Cooks the graph once per frame: only what a sink pulls on, only what changed, errors contained."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, PlaceholderNode
from autolume_graph.params import ParamError, ParamType


@dataclass
class _Plan:
    """The cook order and each node's incoming edges, rebuilt only when the structure changes."""

    order: list[Node]
    incoming: dict[str, list[Edge]]


@dataclass
class FrameReport:
    cooked: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    cook_ms: dict[str, float] = field(default_factory=dict)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Scheduler:
    """Evaluates a graph each frame in topological order with dirty tracking."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._plan: _Plan | None = None
        self._plan_version = -1
        # what each node saw at its last cook: its param version and its sources' output versions
        self._seen: dict[str, tuple[int, tuple[int, ...]]] = {}

    def plan(self) -> _Plan:
        if self._plan is None or self._plan_version != self.graph.structure_version:
            g = self.graph.digraph()
            pulled: set[str] = set()
            for sink in self.graph.sinks():
                pulled.add(sink.id)
                pulled |= nx.ancestors(g, sink.id)
            order = [self.graph.nodes[i] for i in nx.lexicographical_topological_sort(g) if i in pulled]
            incoming: dict[str, list[Edge]] = {n.id: [] for n in order}
            for edge in self.graph.edges:
                if edge.dst in incoming:
                    incoming[edge.dst].append(edge)
            self._plan = _Plan(order, incoming)
            self._plan_version = self.graph.structure_version
            self._seen = {k: v for k, v in self._seen.items() if k in self.graph.nodes}
        return self._plan

    def run_frame(self, ctx: CookContext) -> FrameReport:
        report = FrameReport()
        plan = self.plan()
        nodes = self.graph.nodes
        for node in plan.order:
            edges = plan.incoming[node.id]
            source_versions = tuple(nodes[e.src].output_version for e in edges)
            seen = self._seen.get(node.id)
            if (
                seen is not None
                and seen == (node.param_version, source_versions)
                and not node.animating(node.values)
            ):
                continue
            if isinstance(node, PlaceholderNode):
                continue
            pending = next((e.dst_port for e in edges if e.src_port not in nodes[e.src].last_outputs), None)
            if pending is not None:  # a wired input with nothing on it yet (a model still loading)
                node.status = f"waiting for {pending}"
                continue
            if node.status.startswith("waiting for "):
                node.status = ""
            self._cook(node, edges, ctx, report)
            self._seen[node.id] = (node.param_version, source_versions)
        return report

    def _cook(self, node: Node, edges: list[Edge], ctx: CookContext, report: FrameReport) -> None:
        inputs: dict[str, Any] = {}
        params = dict(node.values)
        nodes = self.graph.nodes
        for edge in edges:
            value = nodes[edge.src].last_outputs.get(edge.src_port)
            if edge.dst_port in node.params:
                if value is not None:
                    try:
                        params[edge.dst_port] = node.params[edge.dst_port].coerce(value)
                    except ParamError:
                        pass  # a wired value the parameter cannot take keeps the parameter's own
            else:
                inputs[edge.dst_port] = value
        start = time.perf_counter()
        try:
            outputs = node.cook(ctx, inputs, params) or {}
        except Exception as exc:  # the show goes on: record, keep the last good outputs
            node.error = _one_line(exc)
            report.errors[node.id] = node.error
        else:
            node.error = ""
            node.last_outputs.update(outputs)
            if outputs:
                node.output_version += 1
        finally:
            node.cook_ms = (time.perf_counter() - start) * 1000.0
            node.cook_count += 1
            report.cooked.append(node.id)
            report.cook_ms[node.id] = node.cook_ms
            for name, param in node.params.items():
                if param.type is ParamType.TRIGGER and node.values[name]:
                    node.values[name] = False  # a trigger fires for one cook
