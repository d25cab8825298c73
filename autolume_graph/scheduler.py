"""Cooks the graph once per frame: only what a sink pulls on, only what changed, errors contained."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.node import CookContext, Node, NodeState, NodeStatus, PlaceholderNode, same_value
from autolume_graph.params import ParamError, ParamType

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class Plan:
    """The cook order, each node's incoming edges and the nodes by id, rebuilt only when the structure changes.

    It holds its own node table so that the last good plan can keep rendering a graph that no longer plans.
    """

    order: list[Node]
    incoming: dict[str, list[Edge]]
    nodes: dict[str, Node]


EMPTY_PLAN = Plan([], {}, {})
_NOTHING_TO_SAY = NodeStatus()


def build_plan(graph: Graph) -> Plan:
    """The plan of `graph`: what the sinks pull on, in topological order. GraphError (one line) if there is none."""
    try:
        g = graph.digraph()
        pulled: set[str] = set()
        for sink in graph.sinks():
            pulled.add(sink.id)
            pulled |= nx.ancestors(g, sink.id)
        order = [graph.nodes[i] for i in nx.lexicographical_topological_sort(g) if i in pulled]
    except nx.NetworkXUnfeasible:
        names = {i: n.name for i, n in graph.nodes.items()}
        cycle = " -> ".join(names.get(src, src) for src, _ in nx.find_cycle(graph.digraph()))
        raise GraphError(f"the graph cannot be cooked: it has a cycle ({cycle})") from None
    except Exception as exc:
        raise GraphError(f"the graph cannot be cooked ({_one_line(exc)})") from None
    incoming: dict[str, list[Edge]] = {n.id: [] for n in order}
    for edge in graph.edges:
        if edge.dst in incoming:
            incoming[edge.dst].append(edge)
    return Plan(order, incoming, {n.id: n for n in order})


@dataclass
class FrameReport:
    cooked: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    cook_ms: dict[str, float] = field(default_factory=dict)


class Scheduler:
    """Evaluates a graph each frame in topological order with dirty tracking."""

    def __init__(self, graph: Graph, plan: Plan | None = None) -> None:
        self.graph = graph
        self._plan = plan
        self._plan_version = graph.structure_version if plan is not None else -1
        self.plan_error = ""  # why the live structure does not plan (the last good plan renders meanwhile)
        # what each node saw at its last cook: its param version and its sources' output versions
        self._seen: dict[str, tuple[int, tuple[int, ...]]] = {}
        # per node id, what its fresh outputs pass through before any reader sees them (a preset morph's
        # blend, autolume_graph/morph.py): such a node cooks every frame and its outputs count as new
        self.output_filters: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    def plan(self) -> Plan:
        """The plan of the current structure, or the last good one while the structure does not plan."""
        if self._plan_version != self.graph.structure_version:
            self._plan_version = self.graph.structure_version  # a structure that fails is not retried each frame
            try:
                self._plan = build_plan(self.graph)
            except GraphError as exc:
                self.plan_error = str(exc)
                log.warning("%s; the last good plan keeps rendering", exc)
            else:
                self.plan_error = ""
                self._seen = {k: v for k, v in self._seen.items() if k in self.graph.nodes}
        return self._plan or EMPTY_PLAN

    def run_frame(self, ctx: CookContext) -> FrameReport:
        report = FrameReport()
        plan = self.plan()
        for node in plan.order:
            try:
                self._visit(node, plan, ctx, report)
            except Exception as exc:  # noqa: BLE001 - a node's own bookkeeping (animating, ...) failing is its error
                node.error = _one_line(exc)
                report.errors[node.id] = node.error
        return report

    def _visit(self, node: Node, plan: Plan, ctx: CookContext, report: FrameReport) -> None:
        """Cook `node` if something it depends on changed (or it animates) and its wired inputs are ready."""
        edges = plan.incoming[node.id]
        source_versions = tuple(plan.nodes[e.src].output_version for e in edges)
        seen = self._seen.get(node.id)
        state = (node.param_version, source_versions, ctx.device)  # a device change recooks every node
        filtered = node.id in self.output_filters
        if seen is not None and seen == state and not filtered and not node.animating(node.values):
            return
        if isinstance(node, PlaceholderNode):
            return
        pending = next((e.dst_port for e in edges if e.src_port not in plan.nodes[e.src].last_outputs), None)
        if pending is not None:  # a wired input with nothing on it yet (a model still loading)
            node.input_status = NodeStatus.of(f"waiting for {pending}", state=NodeState.WAITING)
            return
        self._cook(node, edges, plan.nodes, ctx, report)
        self._seen[node.id] = state

    def _cook(self, node: Node, edges: list[Edge], nodes: dict[str, Node], ctx: CookContext,
              report: FrameReport) -> None:
        inputs: dict[str, Any] = {}
        params = dict(node.values)
        refused: list[str] = []
        for edge in edges:
            value = nodes[edge.src].last_outputs.get(edge.src_port)
            if edge.dst_port in node.params:
                if value is not None:
                    try:
                        params[edge.dst_port] = node.params[edge.dst_port].coerce(value)
                    except ParamError as exc:  # the parameter keeps its own value, and the node says why
                        refused.append(f"wire into {edge.dst_port} refused: {_one_line(exc)}")
            else:
                inputs[edge.dst_port] = value
        node.input_status = NodeStatus.of(*refused) if refused else _NOTHING_TO_SAY
        start = time.perf_counter()
        try:
            outputs = node.cook(ctx, inputs, params) or {}
        except Exception as exc:  # the show goes on: record, keep the last good outputs
            node.error = _one_line(exc)
            report.errors[node.id] = node.error
        else:
            node.error = ""
            output_filter = self.output_filters.get(node.id)
            if output_filter is not None:
                outputs = output_filter(outputs)
            if (output_filter is not None and outputs) or _changes(node, outputs):
                node.output_version += 1
            node.last_outputs.update(outputs)
        finally:
            node.cook_ms = (time.perf_counter() - start) * 1000.0
            node.cook_count += 1
            report.cooked.append(node.id)
            report.cook_ms[node.id] = node.cook_ms
            for name, param in node.params.items():
                if param.type is ParamType.TRIGGER and node.values[name]:
                    node.values[name] = False  # a trigger fires for one cook


def _changes(node: Node, outputs: dict[str, Any]) -> bool:
    """Whether `outputs` differ from the node's last ones: a port that is new, declared `in_place`, or holds
    another object (or another plain value)."""
    last = node.last_outputs
    for port, value in outputs.items():
        declared = node.outputs.get(port)
        if port not in last or (declared is not None and declared.in_place) or not same_value(last[port], value):
            return True
    return False
