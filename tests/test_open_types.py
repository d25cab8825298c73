"""Open registries: a wire type, a parameter type and node types declared in one plugin file
(tests/plugins/color_swatch.py, loaded like a user's node folder) work in a graph, over OSC, in
OSCQuery and in a saved file; engine layers ask for roles, never for class names."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.params import PARAM_TYPES, ParamType
from autolume_graph.registry import Registry, default_registry
from autolume_graph.render import loop_seconds, preview_node
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from autolume_graph.session import Session
from autolume_graph.types import WIRE_TYPES, PortType, can_connect

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry()
    reg.load_package()
    reg.load_folder(PLUGINS)
    assert not reg.failures, reg.failures
    return reg


def swatch_graph(registry: Registry) -> Graph:
    """swatch -> (color wire into a parameter) -> relay -> sink."""
    graph = Graph()
    swatch = graph.add_node(registry.create("Swatch"), name="swatch")
    relay = graph.add_node(registry.create("Swatch"), name="relay")
    sink = graph.add_node(registry.create("SwatchSink"), name="sink")
    graph.add_edge(Edge(swatch.id, "rgb", relay.id, "color"))
    graph.add_edge(Edge(relay.id, "rgb", sink.id, "rgb"))
    return graph


def test_plugin_declarations_register_by_loading_one_file(registry):
    assert {"Swatch", "SwatchSink"} <= set(registry.types)
    assert WIRE_TYPES["color"].doc == "an RGB triple in 0..1"
    assert PARAM_TYPES["hex color"].osc_type == "str"
    assert registry.types["SwatchSink"].sink and Role.SINK in registry.types["SwatchSink"].roles


def test_plugin_wire_connects_only_to_itself_and_any(registry):
    color = WIRE_TYPES["color"]
    assert can_connect(color, color) and can_connect(color, PortType.ANY) and can_connect(PortType.ANY, color)
    assert not can_connect(color, PortType.FLOAT) and not can_connect(PortType.FLOAT, color)
    graph = swatch_graph(registry)
    lfo = graph.add_node(registry.create("LFO"), name="lfo")
    with pytest.raises(GraphError, match=r"\(float\) to sink.rgb \(color\)"):
        graph.add_edge(Edge(lfo.id, "value", graph.node("sink").id, "rgb"))


def test_plugin_types_cook_in_a_graph(registry):
    graph = swatch_graph(registry)
    runtime = Runtime(graph, fps=0)
    try:
        runtime.step()
        assert graph.node("relay").values["color"] == "#ff8000"  # the wire set the parameter, coerced
        assert graph.node("sink").received == pytest.approx((1.0, 128 / 255, 0.0))
        graph.node("swatch").set_value("color", "#00FF00")
        runtime.step()
        assert graph.node("sink").received == (0.0, 1.0, 0.0)
    finally:
        runtime.close()


def test_plugin_parameter_refuses_what_it_cannot_take(registry):
    param = registry.types["Swatch"].params["color"]
    assert param.coerce(0.5) == "#808080" and param.coerce((0, 0, 1)) == "#0000ff"
    with pytest.raises(ValueError, match="#rrggbb"):
        param.coerce("red")


@pytest.fixture
def session(registry, tmp_path):
    s = Session(Runtime(swatch_graph(registry), fps=0), osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                preset_dir=tmp_path / "presets")
    s.start_services()
    yield s
    s.close()


def send_until(session: Session, address: str, value: object, done, timeout: float = 3.0) -> None:
    SimpleUDPClient(*session.osc_server.address).send_message(address, value)
    deadline = time.time() + timeout
    while time.time() < deadline:
        session.runtime.step()
        if done():
            return
        time.sleep(0.005)
    raise AssertionError(f"{address} {value!r} was not applied in time")


def test_plugin_parameter_over_osc_and_oscquery(session):
    graph = session.runtime.graph
    swatch, sink = graph.node("swatch"), graph.node("sink")
    send_until(session, "/swatch/color", "#0000FF", lambda: sink.received == (0.0, 0.0, 1.0))  # text as is
    send_until(session, "/swatch/color", 0.5, lambda: swatch.values["color"] == "#808080")  # a number, mapped
    send_until(session, "/swatch/color", "not a color", lambda: session.mailbox.counts().get("bad-value"))
    assert swatch.values["color"] == "#808080"  # refused with a warning: the value stays
    host, port = session.oscquery.address
    entry = json.load(urllib.request.urlopen(f"http://{host}:{port}/swatch/color", timeout=5))
    assert entry["TYPE"] == "s" and entry["VALUE"] == ["#808080"] and entry["DESCRIPTION"] == "the color"


def test_plugin_graph_saves_and_reloads(registry, tmp_path):
    graph = swatch_graph(registry)
    graph.node("swatch").set_value("color", "#123456")
    save_graph(graph, tmp_path / "swatch.agraph")
    loaded = load_graph(tmp_path / "swatch.agraph", registry)
    assert loaded.node("swatch").values["color"] == "#123456"
    assert {(e.src_port, e.dst_port) for e in loaded.edges} == {("rgb", "color"), ("rgb", "rgb")}
    runtime = Runtime(loaded, fps=0)
    try:
        runtime.step()
        assert loaded.node("sink").received == pytest.approx((0x12 / 255, 0x34 / 255, 0x56 / 255))
    finally:
        runtime.close()


def test_plugin_parameter_reuses_an_editor_widget_kind(registry):
    pytest.importorskip("dearpygui")
    from autolume_graph.ui.widgets import WIDGETS, has_widget

    param = registry.types["Swatch"].params["color"]
    assert has_widget(param) and param.type.widget in WIDGETS
    assert all(kind.widget in WIDGETS for kind in PARAM_TYPES.values() if kind.widget)
    assert not has_widget(registry.types["KeyframeLoop"].params["keyframes"])


def test_gan_wires_live_outside_the_engine():
    import autolume_graph.types as engine_types

    assert not hasattr(engine_types.PortType, "MODEL") and not hasattr(engine_types.PortType, "Z")
    default_registry()  # the node library imports the GAN layer's wires
    assert {"model", "latent", "w", "edits"} <= set(WIRE_TYPES)
    assert ParamType.PATH.bound_by_default is False and ParamType.DATA.osc_type == ""


def test_roles_not_names_choose_preview_and_loop_clock(registry):
    """A renamed class keeps working: the render asks for roles."""
    class RenamedPreview(registry.types["Preview"]):
        pass

    class RenamedLoop(registry.types["NoiseLoop"]):
        pass

    graph = Graph()
    preview = graph.add_node(RenamedPreview(), name="shown")
    loop = graph.add_node(RenamedLoop(), name="loop")
    loop.set_value("time", 7.0)
    assert preview_node(graph) is preview and loop_seconds(graph) == 7.0
    assert preview in graph.sinks()


def test_the_sink_flag_and_the_sink_role_are_one():
    from autolume_graph.node import Node

    class FlaggedSink(Node):
        sink = True

    class DeclaredSink(Node):
        roles = frozenset({Role.SINK})

    class NoSink(Node):
        pass

    assert Role.SINK in FlaggedSink.roles and DeclaredSink.sink and not NoSink.sink and not NoSink.roles
