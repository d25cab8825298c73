"""The engine keeps the rules: each node is opened and closed exactly once whatever path moves it, the engine
decides what changed, status is structured, refused wired values are reported, and a cycle is found by one
search per edge."""

from __future__ import annotations

from typing import Any

import pytest
from engine_nodes import Add, Sink, Source

from autolume_graph.commands import AddNode, Connect, RemoveNode
from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.node import CookContext, Node, NodeState, NodeStatus
from autolume_graph.params import Float, Input, Output
from autolume_graph.runtime import Runtime
from autolume_graph.scheduler import Scheduler
from autolume_graph.types import PortType


class Tracked(Node):
    """Counts how often the engine opens and closes it."""

    sink = True

    def reset(self) -> None:
        self.opens = self.closes = 0

    def open(self) -> None:
        self.opens += 1

    def close(self) -> None:
        self.closes += 1


def counts(*nodes: Tracked) -> list[tuple[int, int]]:
    return [(n.opens, n.closes) for n in nodes]


# --- lifecycle ------------------------------------------------------------------------------


def test_every_path_opens_and_closes_each_node_exactly_once():
    first = Tracked()
    graph = Graph()
    graph.add_node(first, name="first")
    rt = Runtime(graph)
    assert counts(first) == [(1, 0)]  # in the running graph from the start

    added = Tracked()
    rt.call(AddNode(added))
    assert counts(added) == [(1, 0)]
    assert rt.undo() and counts(added) == [(1, 1)]  # undo of an add closes (it used to leak)
    assert rt.redo() and counts(added) == [(2, 1)]  # back in: opened again
    rt.call(RemoveNode(added.id))
    assert counts(added) == [(2, 2)]
    assert rt.undo() and counts(added) == [(3, 2)]  # undo of a remove re-opens
    assert rt.redo() and counts(added) == [(3, 3)]  # redo of a remove closes
    assert rt.undo() and counts(added) == [(4, 3)]

    preset = Graph()
    incoming = Tracked()
    preset.add_node(incoming, name="incoming")
    rt.swap_graph(preset)
    assert counts(first, added, incoming) == [(1, 1), (4, 4), (1, 0)]
    rt.undo()  # the new graph has its own history: nothing of the old graph comes back
    assert counts(first, added) == [(1, 1), (4, 4)]

    rt.close()
    rt.close()
    assert counts(first, added, incoming) == [(1, 1), (4, 4), (1, 1)]


def test_undo_submitted_from_another_thread_closes_the_node():
    rt = Runtime(Graph(), fps=200)
    node = Tracked()
    rt.start()
    try:
        rt.call(AddNode(node))
        assert rt.submit(lambda r: r.undo()).result(10) is True  # as the editor's Undo does
        assert counts(node) == [(1, 1)]
    finally:
        rt.close()
    assert counts(node) == [(1, 1)]


def test_a_node_that_fails_to_open_shows_it_and_the_others_still_open():
    class Broken(Tracked):
        def open(self) -> None:
            raise OSError("port in use")

    graph = Graph()
    broken, fine = graph.add_node(Broken(), name="broken"), graph.add_node(Tracked(), name="fine")
    rt = Runtime(graph)
    assert broken.error == "OSError: port in use" and counts(fine) == [(1, 0)]
    rt.close()
    assert counts(fine) == [(1, 1)]


# --- change detection -----------------------------------------------------------------------


class Emits(Node):
    """Returns whatever `value` it is handed, so a test controls identity and equality."""

    outputs = {"value": Output(PortType.ANY)}

    def reset(self) -> None:
        self.value: Any = None

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {} if self.value is None else {"value": self.value}


class InPlace(Emits):
    outputs = {"value": Output(PortType.ANY, in_place=True)}


class Counter(Node):
    sink = True
    inputs = {"value": Input(PortType.ANY)}


def _pair(source: Node) -> tuple[Scheduler, Node]:
    graph = Graph()
    graph.add_node(source, name="source")
    counter = graph.add_node(Counter(), name="counter")
    graph.add_edge(Edge(source.id, "value", counter.id, "value"))
    return Scheduler(graph), counter


def _frame(scheduler: Scheduler, source: Node, value: Any) -> None:
    source.value = value
    source.param_version += 1  # make the source cook this frame
    scheduler.run_frame(CookContext(services={"publish": {}}))


@pytest.mark.parametrize(("first", "again", "changed"), [
    (object(), None, False),  # {}: nothing new
    (1.5, 1.5, False),  # an equal plain value
    ("a", "a", False),
    ((1, "x"), (1, "x"), False),  # a tuple of equal plain values
    (1.5, 2.5, True),
    (1, 1.0, True),  # another type
    ([1], [1], True),  # another object that may not be plain
])
def test_the_engine_tells_downstream_only_of_a_real_change(first, again, changed):
    source = Emits()
    scheduler, counter = _pair(source)
    _frame(scheduler, source, first)
    assert counter.cook_count == 1
    version = source.output_version
    _frame(scheduler, source, again)
    assert (source.output_version - version, counter.cook_count) == ((1, 2) if changed else (0, 1))


def test_the_same_object_is_no_change_unless_declared_in_place():
    thing = object()
    for cls, cooks in ((Emits, 1), (InPlace, 3)):
        source = cls()
        scheduler, counter = _pair(source)
        for _ in range(3):
            _frame(scheduler, source, thing)
        assert counter.cook_count == cooks, cls


def test_cached_outputs_rebuild_only_when_the_key_changes():
    node = Node()
    built: list[int] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"value": object()}

    tensorish = object()
    first = node.cached_outputs((tensorish, 1.0), build)
    assert node.cached_outputs((tensorish, 1.0), build)["value"] is first["value"]
    node.cached_outputs((object(), 1.0), build)  # another object in the key
    node.cached_outputs((object(), 2.0), build)
    assert len(built) == 3


# --- status -------------------------------------------------------------------------------------


def test_waiting_is_a_state_the_engine_sets_and_clears():
    source = Emits()
    graph = Graph()
    graph.add_node(source, name="source")
    counter = graph.add_node(Counter(), name="counter")
    graph.add_edge(Edge(source.id, "value", counter.id, "value"))
    rt = Runtime(graph)
    stat = rt.step().nodes[counter.id]
    assert (stat.state, stat.status, stat.status_parts) == (NodeState.WAITING, "waiting for value",
                                                            ("waiting for value",))
    source.value = 1.0
    source.param_version += 1
    stat = rt.step().nodes[counter.id]
    assert (stat.state, stat.status) == (NodeState.OK, "")


def test_a_node_text_that_looks_like_waiting_is_left_alone():
    graph = Graph()
    node = graph.add_node(Tracked(), name="node")
    node.status = "waiting for an image"  # the node's own words, not the engine's
    rt = Runtime(graph)
    stat = rt.step().nodes[node.id]
    assert (stat.state, stat.status) == (NodeState.INFO, "waiting for an image")


def test_status_parts_and_states():
    node = Node()
    node.status = NodeStatus.of("T: b16", "", "view: b32")
    assert (node.status, node.node_status.parts) == ("T: b16 | view: b32", ("T: b16", "view: b32"))
    node.status = NodeStatus.of("loading a.pkl...", state=NodeState.LOADING)
    assert node.node_status.state is NodeState.LOADING
    node.error = "RuntimeError: boom"
    assert node.node_status.state is NodeState.ERROR
    node.error, node.status = "", ""
    assert node.node_status == NodeStatus()


# --- refused wired values -----------------------------------------------------------------------


class Gain(Node):
    sink = True
    params = {"psi": Float(0.7, clip=False)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.used = params["psi"]
        return {}


def test_a_refused_wired_value_is_reported_on_the_node_until_it_fits():
    graph = Graph()
    source = graph.add_node(Source(), name="source")
    gain = graph.add_node(Gain(), name="gain")
    graph.add_edge(Edge(source.id, "value", gain.id, "psi"))
    rt = Runtime(graph)
    source.set_value("value", 2.0)
    rt.step()
    assert (gain.used, gain.status) == (2.0, "")
    source.values["value"] = float("nan")  # as a broken upstream computation would hand on
    source.param_version += 1
    stat = rt.step().nodes[gain.id]
    assert gain.used == 0.7  # the parameter keeps its own value
    assert stat.status == "wire into psi refused: ParamError: expected a finite number"
    assert stat.state is NodeState.INFO and "\n" not in stat.status
    source.set_value("value", 3.0)
    assert rt.step().nodes[gain.id].status == "" and gain.used == 3.0


# --- cycle check --------------------------------------------------------------------------------


def test_the_cycle_check_follows_existing_paths_only():
    graph = Graph()
    nodes = [graph.add_node(Add(), name=f"n{i}") for i in range(400)]
    for a, b in zip(nodes[:-1], nodes[1:], strict=True):
        graph.add_edge(Edge(a.id, "value", b.id, "a"))
    graph.add_edge(Edge(nodes[0].id, "value", nodes[-1].id, "b"))  # a shortcut along the chain: no cycle
    with pytest.raises(GraphError, match="would close a cycle"):
        graph.add_edge(Edge(nodes[-1].id, "value", nodes[0].id, "b"))
    with pytest.raises(GraphError, match="would close a cycle"):
        graph.add_edge(Edge(nodes[5].id, "value", nodes[5].id, "b"))
    side = graph.add_node(Source(), name="side")
    graph.add_edge(Edge(side.id, "value", nodes[0].id, "b"))
    sink = graph.add_node(Sink(), name="sink")
    rt = Runtime(graph)
    rt.call(Connect(Edge(nodes[-1].id, "value", sink.id, "value")))
    assert rt.step().published["sink"] == 2.0  # 1 along the chain, plus 1 over the shortcut


def test_a_device_change_recooks_every_node_and_an_absent_device_is_refused() -> None:
    """Issue 20: the performance panel's CPU/GPU switch moves the running graph without a restart: every
    node cooks again on the new device (any device name will do for the scheduler's rule)."""
    import torch

    graph = Graph()
    source, sink = graph.add_node(Source(), name="source"), graph.add_node(Sink(), name="sink")
    graph.add_edge(Edge(source.id, "value", sink.id, "value"))
    scheduler = Scheduler(graph)
    for device in ("cpu", "cpu", "elsewhere", "elsewhere"):
        scheduler.run_frame(CookContext(device=device, services={"publish": {}}))
    assert (source.cook_count, sink.cook_count) == (2, 2)

    runtime = Runtime(graph, fps=0)
    assert runtime.call(lambda rt: rt.set_device("cpu")) == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device here"):
            runtime.call(lambda rt: rt.set_device("cuda"))
        assert runtime.device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        runtime.call(lambda rt: rt.set_device("tpu"))
