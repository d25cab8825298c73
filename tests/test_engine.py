"""The scheduler cooks only what changed and what a sink pulls; edits are checked and undoable."""

from __future__ import annotations

import pytest
from engine_nodes import Add, Clock, Image, Sink, Source

from autolume_graph.commands import AddNode, Connect, Disconnect, History, RemoveNode, Rename, SetParam
from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.node import CookContext
from autolume_graph.runtime import Runtime
from autolume_graph.scheduler import Scheduler


def chain() -> tuple[Graph, dict]:
    """src1 -> add1.a, src2 -> add1.b, add1 -> sink1; plus an unpulled src3 -> add2."""
    g = Graph()
    n = {k: g.add_node(cls(), name=k) for k, cls in
         [("src1", Source), ("src2", Source), ("add1", Add), ("sink1", Sink), ("src3", Source), ("add2", Add)]}
    for e in [("src1", "value", "add1", "a"), ("src2", "value", "add1", "b"), ("add1", "value", "sink1", "value"),
              ("src3", "value", "add2", "a")]:
        g.add_edge(Edge(n[e[0]].id, e[1], n[e[2]].id, e[3]))
    return g, n


def cooked(scheduler: Scheduler, frame: int = 0) -> set[str]:
    report = scheduler.run_frame(CookContext(time=frame / 30, frame=frame, services={"publish": {}}))
    return {scheduler.graph.nodes[i].name for i in report.cooked}


def test_unchanged_nodes_are_not_cooked_and_unpulled_never():
    g, n = chain()
    s = Scheduler(g)
    assert cooked(s) == {"src1", "src2", "add1", "sink1"}
    assert cooked(s, 1) == set()
    assert n["sink1"].received == [2.0]


def test_param_change_recooks_exactly_downstream():
    g, n = chain()
    s = Scheduler(g)
    cooked(s)
    n["src2"].set_value("value", 5.0)
    assert cooked(s, 1) == {"src2", "add1", "sink1"}
    assert n["sink1"].received[-1] == 6.0
    n["add1"].set_value("offset", 1.0)
    assert cooked(s, 2) == {"add1", "sink1"}


def test_setting_the_same_value_does_not_dirty():
    g, n = chain()
    s = Scheduler(g)
    cooked(s)
    assert n["src1"].set_value("value", 1.0) is False
    assert cooked(s, 1) == set()


def test_time_dependent_nodes_cook_every_frame():
    g = Graph()
    clock, sink = g.add_node(Clock()), g.add_node(Sink())
    g.add_edge(Edge(clock.id, "value", sink.id, "value"))
    s = Scheduler(g)
    for frame in range(3):
        assert cooked(s, frame) == {clock.name, sink.name}
    assert sink.received == pytest.approx([0, 1 / 30, 2 / 30])


def test_wire_into_parameter_drives_it():
    g = Graph()
    clock, add, sink = g.add_node(Clock()), g.add_node(Add()), g.add_node(Sink())
    g.add_edge(Edge(clock.id, "value", add.id, "offset"))
    g.add_edge(Edge(add.id, "value", sink.id, "value"))
    s = Scheduler(g)
    cooked(s, 0)
    cooked(s, 3)
    assert sink.received[-1] == pytest.approx(0.1)
    assert add.values["offset"] == 0.0  # the wire overrides, the stored value stays


def test_raising_node_keeps_last_output_and_other_branches_cook():
    g, n = chain()
    sink2 = g.add_node(Sink(), name="sink2")
    g.add_edge(Edge(n["add2"].id, "value", sink2.id, "value"))
    s = Scheduler(g)
    cooked(s)
    n["add1"].set_value("fail", True)
    n["src3"].set_value("value", 7.0)
    names = cooked(s, 1)
    assert "add2" in names and sink2.received[-1] == 7.0
    assert n["add1"].error == "RuntimeError: told to fail"
    assert n["add1"].last_outputs["value"] == 2.0
    assert n["sink1"].received == [2.0]  # nothing new reached the sink; its last value stands
    n["add1"].set_value("fail", False)
    cooked(s, 2)
    assert n["add1"].error == ""


def test_trigger_fires_for_one_cook():
    g, n = chain()
    s = Scheduler(g)
    cooked(s)
    n["add1"].set_value("fire", True)
    cooked(s, 1)
    assert n["add1"].fired == 1 and n["add1"].values["fire"] is False
    cooked(s, 2)
    assert n["add1"].fired == 1


def snapshot_of(g: Graph) -> tuple:
    return (sorted((i, nd.name, tuple(sorted(nd.values.items()))) for i, nd in g.nodes.items()),
            sorted((e.src, e.src_port, e.dst, e.dst_port) for e in g.edges))


def test_type_and_cycle_refusals_leave_graph_unchanged():
    g, n = chain()
    h = History(g)
    image = g.add_node(Image())
    before = snapshot_of(g)
    with pytest.raises(GraphError, match="cannot connect .* \\(float\\) to .* \\(image\\)"):
        h.do(Connect(Edge(n["src1"].id, "value", image.id, "image")))
    with pytest.raises(GraphError, match="cycle"):
        h.do(Connect(Edge(n["add1"].id, "value", n["add1"].id, "offset")))
    g.add_edge(Edge(n["add1"].id, "value", n["add2"].id, "b"))
    before = snapshot_of(g)
    with pytest.raises(GraphError, match="cycle"):
        h.do(Connect(Edge(n["add2"].id, "value", n["src1"].id, "value")))
    with pytest.raises(GraphError, match="no output"):
        h.do(Connect(Edge(n["src1"].id, "nope", n["add2"].id, "a")))
    assert snapshot_of(g) == before and h.undo_stack == []


def test_undo_redo_round_trip():
    g, n = chain()
    h = History(g)
    start = snapshot_of(g)
    steps = [
        AddNode(Source(), name="extra"),
        SetParam(n["src1"].id, "value", 3.0),
        SetParam(n["src1"].id, "value", 4.0),  # merges with the previous: one undo step
        Rename(n["add1"].id, "mixer"),
        Disconnect(Edge(n["src2"].id, "value", n["add1"].id, "b")),
        RemoveNode(n["src3"].id),
    ]
    states = []
    for c in steps:
        h.do(c)
        states.append(snapshot_of(g))
    end = snapshot_of(g)
    assert len(h.undo_stack) == 5
    while h.undo():
        pass
    assert snapshot_of(g) == start
    while h.redo():
        pass
    assert snapshot_of(g) == end
    with pytest.raises(GraphError, match="already used"):
        h.do(Rename(n["src1"].id, "mixer"))


def test_connect_replaces_the_previous_source_and_undo_restores_it():
    g, n = chain()
    h = History(g)
    h.do(Connect(Edge(n["src3"].id, "value", n["add1"].id, "a")))
    assert g.incoming(n["add1"].id)["a"].src == n["src3"].id
    h.undo()
    assert g.incoming(n["add1"].id)["a"].src == n["src1"].id


def test_runtime_thread_applies_commands_at_frame_boundaries():
    g, n = chain()
    rt = Runtime(g, fps=200)
    rt.start()
    try:
        rt.submit(SetParam(n["src1"].id, "value", 10.0)).result(5)
        with pytest.raises(GraphError):
            rt.submit(SetParam(n["src1"].id, "nope", 1.0)).result(5)
        deadline = rt.snapshot.frame + 3
        while rt.snapshot.frame < deadline:
            pass
    finally:
        rt.stop()
    assert rt.snapshot.published["sink1"] == 11.0
    assert rt.snapshot.nodes[n["add1"].id].error == ""


def test_fixed_step_clock_is_reproducible():
    def run() -> list[float]:
        g = Graph()
        clock, sink = g.add_node(Clock()), g.add_node(Sink())
        g.add_edge(Edge(clock.id, "value", sink.id, "value"))
        rt = Runtime(g, fps=24, fixed_step=True)
        for _ in range(10):
            rt.step()
        return sink.received

    first, second = run(), run()
    assert first == second and first[-1] == 9 / 24
