"""Graph files: round trips, migration of older schemas, placeholders, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest
from killed_save import save_killed

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import PlaceholderNode
from autolume_graph.params import Binding, Param, ParamType
from autolume_graph.registry import default_registry
from autolume_graph.serialize import GraphFileError, load_graph, pack, save_graph

FIXTURES = Path(__file__).parent / "fixtures"


def non_default(param: Param):
    """A valid value different from the default, for every parameter type."""
    t = param.type
    if t is ParamType.FLOAT:
        lo = param.min if param.min is not None else param.default - 1
        hi = param.max if param.max is not None else param.default + 1
        return float(param.coerce(lo + 0.37 * (hi - lo) if lo + 0.37 * (hi - lo) != param.default else hi))
    if t is ParamType.INT:
        hi = param.max if param.max is not None else param.default + 3
        return int(param.coerce(param.default + 1 if param.default + 1 <= hi else param.default - 1))
    if t is ParamType.BOOL:  # a switch that writes always loads off: tests/test_reliability_loop.py
        return param.default if param.writes else not param.default
    if t is ParamType.TRIGGER:
        return False
    if t is ParamType.CHOICE:
        return next(c for c in param.choices if c != param.default)
    if t.osc_text:  # text of any kind: strings, paths, device names
        return "changed-" + str(param.default)
    return {"array": np.arange(6, dtype=np.float32).reshape(2, 3), "items": [1, 2.5, "x"]}


def values_equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def test_round_trip_of_every_node_type_with_non_default_values(tmp_path):
    registry = default_registry()
    assert registry.types, "the node library is empty"
    g = Graph()
    expected = {}
    for type_name, cls in sorted(registry.types.items()):
        node = g.add_node(cls(), name=f"{type_name}-x")
        for name, param in cls.params.items():
            node.values[name] = non_default(param)
            if param.osc_addressable:
                node.bindings[name] = Binding(True, f"/ctl/{node.name}/{name}", "x*2+1")
        node.ui = {"pos": [10.0, 20.0]}
        expected[node.id] = (type_name, node.name, dict(node.values), dict(node.bindings))
    g.settings = {"osc_port": 9000}
    path = tmp_path / "all.agraph"
    save_graph(g, path)
    loaded = load_graph(path)
    assert loaded.settings == {"osc_port": 9000}
    for node_id, (type_name, name, values, bindings) in expected.items():
        node = loaded.nodes[node_id]
        assert node.type_name == type_name and node.name == name and node.ui == {"pos": [10.0, 20.0]}
        for k, v in values.items():
            assert values_equal(node.values[k], v), (type_name, k, node.values[k], v)
        assert node.bindings == bindings


def test_edges_round_trip(tmp_path):
    registry = default_registry()
    g = Graph()
    lfo, maths = g.add_node(registry.create("LFO")), g.add_node(registry.create("Math"))
    g.add_edge(Edge(lfo.id, "value", maths.id, "a"))
    save_graph(g, tmp_path / "g.agraph")
    assert load_graph(tmp_path / "g.agraph").edges == g.edges


def test_schema_1_fixture_migrates():
    g = load_graph(FIXTURES / "graph_schema1.agraph")
    names = {n.name: n for n in g.nodes.values()}
    assert names["wobble"].type_name == "LFO" and names["wobble"].values["frequency"] == 2.0
    assert names["wobble"].ui == {"pos": [40, 60]}
    assert [(e.src_port, e.dst_port) for e in g.edges] == [("value", "a")]


def test_unknown_node_type_survives_load_and_save(tmp_path):
    data = {"format": "autolume-graph", "schema": 2, "settings": {}, "ui": {},
            "nodes": {"n1": {"type": "FutureNode", "type_version": 3, "name": "future",
                             "params": {"colour": "teal", "amount": 0.5}, "bindings": {}},
                      "n2": {"type": "LFO", "type_version": 1, "name": "lfo", "params": {}, "bindings": {}}},
            "edges": [{"src": "n2", "src_port": "value", "dst": "n1", "dst_port": "amount"}]}
    (tmp_path / "a.agraph").write_bytes(pack(data))
    g = load_graph(tmp_path / "a.agraph")
    node = g.nodes["n1"]
    assert isinstance(node, PlaceholderNode) and "FutureNode" in node.error
    save_graph(g, tmp_path / "b.agraph")
    again = msgpack.unpackb((tmp_path / "b.agraph").read_bytes())
    assert again["nodes"]["n1"]["type"] == "FutureNode"
    assert again["nodes"]["n1"]["params"] == {"colour": "teal", "amount": 0.5}
    assert again["edges"] == data["edges"]


@pytest.mark.parametrize("content, reason", [
    (None, "truncated"),
    (msgpack.packb({"hello": "world"}), "not an autolume-graph file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a readable graph file"),
    (msgpack.packb({"format": "autolume-graph", "schema": 99, "nodes": {}, "edges": []}), "newer"),
    (msgpack.packb({"format": "autolume-graph", "schema": 2, "nodes": {"a": 1}, "edges": []}), "invalid graph"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, reason):
    if content is None:
        content = (FIXTURES / "graph_schema1.agraph").read_bytes()[:-7]
    path = tmp_path / "bad.agraph"
    path.write_bytes(content)
    with pytest.raises(GraphFileError) as info:
        load_graph(path)
    message = str(info.value)
    assert reason in message and "\n" not in message and str(path) in message


def test_object_arrays_are_refused_on_load(tmp_path):
    payload = msgpack.packb(["|O", [1], b"\0" * 8])
    data = {"format": "autolume-graph", "schema": 2, "edges": [],
            "nodes": {"n1": {"type": "LFO", "name": "l", "params": {"phase": msgpack.ExtType(1, payload)}}}}
    (tmp_path / "o.agraph").write_bytes(msgpack.packb(data))
    with pytest.raises(GraphFileError, match="not allowed"):
        load_graph(tmp_path / "o.agraph")


def test_save_is_atomic_when_killed(tmp_path):
    """A process killed mid-save leaves the previous file loadable."""
    registry = default_registry()
    g = Graph()
    g.add_node(registry.create("LFO"), name="keep")
    path = tmp_path / "show.agraph"
    save_graph(g, path)
    save_killed("""
from autolume_graph.graph import Graph
from autolume_graph.registry import default_registry
from autolume_graph.serialize import save_graph
g = Graph(); g.add_node(default_registry().create("Constant"), name="new")
""", f"save_graph(g, {str(path)!r})")
    assert [n.name for n in load_graph(path).nodes.values()] == ["keep"]
