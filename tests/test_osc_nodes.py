"""OSCIn turns an address into a wire; OSCOut sends values out: real UDP on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.commands import SetParam
from autolume_graph.graph import Edge, Graph
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session


def step_until(session: Session, condition, timeout: float = 3.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        session.runtime.step()
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition not met in time")


def test_osc_in_drives_a_wire_and_osc_out_sends_it_back_out(receiver, tmp_path):
    registry = default_registry()
    g = Graph()
    osc_in = g.add_node(registry.create("OSCIn"), name="fader")
    osc_in.set_value("address", "/touchosc/fader1")
    osc_in.set_value("mapping", "x*10")
    maths = g.add_node(registry.create("Math"), name="sum")
    maths.set_value("b", 1.0)
    out = g.add_node(registry.create("OSCOut"), name="echo")
    out.set_value("port", receiver.getsockname()[1])
    out.set_value("address", "/echo")
    g.add_edge(Edge(osc_in.id, "value", maths.id, "a"))
    g.add_edge(Edge(maths.id, "value", out.id, "value"))
    session = Session(Runtime(g, fps=0), osc_port=0, oscquery_port=0, preset_dir=tmp_path)
    session.start_services()
    try:
        session.runtime.step()
        assert OscMessage(receiver.recv(1024)).params == [pytest.approx(1.0)]  # the first frame: 0 + 1
        SimpleUDPClient(*session.osc_server.address).send_message("/touchosc/fader1", 0.25)
        step_until(session, lambda: maths.last_outputs.get("value") == 3.5)
        assert OscMessage(receiver.recv(1024)).params == [pytest.approx(3.5)]
        # a new address takes effect without rebuilding the graph
        session.runtime.call(SetParam(osc_in.id, "address", "/other"))
        SimpleUDPClient(*session.osc_server.address).send_message("/other", 0.5)
        step_until(session, lambda: maths.last_outputs.get("value") == 6.0)
        assert OscMessage(receiver.recv(1024)).params == [pytest.approx(6.0)]
    finally:
        session.close()


def test_osc_in_with_a_bad_mapping_shows_the_error(tmp_path):
    g = Graph()
    osc_in = g.add_node(default_registry().create("OSCIn"), name="bad")
    osc_in.set_value("mapping", "__import__('os')")
    sink = g.add_node(default_registry().create("OSCOut"), name="out")
    g.add_edge(Edge(osc_in.id, "value", sink.id, "value"))
    rt = Runtime(g, fps=0)
    rt.step()
    assert osc_in.error.startswith("NodeError: mapping:")
