"""OSC drives parameters through bindings: real UDP on 127.0.0.1 into a running session."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.commands import SetBinding
from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.params import Binding
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from autolume_graph.session import Session


def make_graph() -> Graph:
    reg = default_registry()
    g = Graph()
    g.add_node(reg.create("LFO"), name="wobble")
    g.add_node(reg.create("Math"), name="mix")
    return g


@pytest.fixture
def session(tmp_path):
    s = Session(Runtime(make_graph(), fps=0), osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                preset_dir=tmp_path / "presets")
    s.start_services()
    yield s
    s.close()


def send_and_step(session: Session, messages: list[tuple[str, object]], until=None, timeout: float = 3.0):
    host, port = session.osc_server.address
    client = SimpleUDPClient(host, port)
    for address, value in messages:
        client.send_message(address, value)
    deadline = time.time() + timeout
    while time.time() < deadline:
        session.runtime.step()
        if until is None or until():
            return
        time.sleep(0.005)
    raise AssertionError("the message was not applied in time")


def node(session: Session, name: str):
    return session.runtime.graph.node(name)


def test_default_address_mapping_and_clipping(session):
    wobble = node(session, "wobble")
    send_and_step(session, [("/wobble/frequency", 2.5)], until=lambda: wobble.values["frequency"] == 2.5)
    session.runtime.call(SetBinding(wobble.id, "phase", Binding(True, "/knob", "x*2")))
    send_and_step(session, [("/knob", 0.2)], until=lambda: wobble.values["phase"] == pytest.approx(0.4))
    send_and_step(session, [("/knob", 3.0)], until=lambda: wobble.values["phase"] == 1.0)  # clipped
    send_and_step(session, [("/mix/op", "multiply")], until=lambda: node(session, "mix").values["op"] == "multiply")


def test_latest_value_wins_and_ints_bools_are_coerced(session):
    send_and_step(session, [("/mix/a", float(i)) for i in range(200)],
                  until=lambda: node(session, "mix").values["a"] == 199.0)  # a's range is the UI's only
    send_and_step(session, [("/wobble/wave", 2.6)], until=lambda: node(session, "wobble").values["wave"] == "square")


def test_disabled_binding_ignores_messages(session):
    wobble = node(session, "wobble")
    session.runtime.call(SetBinding(wobble.id, "offset", Binding(False, "/wobble/offset", "x")))
    send_and_step(session, [("/wobble/offset", 5.0), ("/wobble/amplitude", 3.0)],
                  until=lambda: wobble.values["amplitude"] == 3.0)
    assert wobble.values["offset"] == 0.0
    assert session.mailbox.counts().get("unknown-address", 0) >= 1


def test_invalid_mapping_is_refused_when_entered(session):
    wobble = node(session, "wobble")
    for text in ("__import__('os')", "x.__class__", "open('f')", "9**9**9"):
        with pytest.raises(GraphError, match="mapping"):
            session.runtime.call(SetBinding(wobble.id, "offset", Binding(True, "/o", text)))
    assert "offset" not in wobble.bindings


def test_runtime_math_error_keeps_previous_value(session):
    wobble = node(session, "wobble")
    session.runtime.call(SetBinding(wobble.id, "offset", Binding(True, "/inv", "1/x")))
    send_and_step(session, [("/inv", 4.0)], until=lambda: wobble.values["offset"] == 0.25)
    send_and_step(session, [("/inv", 0.0)], until=lambda: session.mailbox.counts().get("mapping-error", 0) >= 1)
    assert wobble.values["offset"] == 0.25


def test_bindings_survive_save_load_and_preset_switch_over_osc(session, tmp_path):
    wobble = node(session, "wobble")
    session.runtime.call(SetBinding(wobble.id, "amplitude", Binding(True, "/fader/1", "x*4")))
    save_graph(session.runtime.graph, tmp_path / "g.agraph")
    assert load_graph(tmp_path / "g.agraph").node("wobble").bindings["amplitude"] == Binding(True, "/fader/1", "x*4")
    preset = make_graph()
    preset.node("wobble").bindings["amplitude"] = Binding(True, "/fader/1", "x*4")
    preset.node("wobble").set_value("frequency", 7.0)
    session.presets.save("second", preset)
    old_graph = session.runtime.graph
    send_and_step(session, [("/autolume/preset", "second")],
                  until=lambda: session.runtime.graph is not old_graph)
    assert session.runtime.graph.node("wobble").values["frequency"] == 7.0
    send_and_step(session, [("/fader/1", 0.5)],
                  until=lambda: session.runtime.graph.node("wobble").values["amplitude"] == 2.0)


def test_bad_preset_over_osc_keeps_the_show(session):
    (session.presets.folder).mkdir(parents=True, exist_ok=True)
    (session.presets.folder / "broken.agraph").write_bytes(b"\x93garbage")
    graph = session.runtime.graph
    session.switch_preset("broken", wait=True)
    session.runtime.step()
    assert session.runtime.graph is graph and "broken" in session.errors["preset"]


def test_oscquery_serves_the_tree_with_current_values(session):
    wobble = node(session, "wobble")
    send_and_step(session, [("/wobble/frequency", 1.5)], until=lambda: wobble.values["frequency"] == 1.5)
    host, port = session.oscquery.address
    tree = json.load(urllib.request.urlopen(f"http://{host}:{port}/", timeout=5))
    freq = tree["CONTENTS"]["wobble"]["CONTENTS"]["frequency"]
    assert freq["FULL_PATH"] == "/wobble/frequency" and freq["VALUE"] == [1.5] and freq["TYPE"] == "f"
    sub = json.load(urllib.request.urlopen(f"http://{host}:{port}/mix/op", timeout=5))
    assert sub["VALUE"] == ["add"]


def test_listen_moves_the_server_and_keeps_it_in_the_graph(session):
    session.listen("127.0.0.1", 0)
    host, port = session.osc_server.address
    assert session.runtime.graph.settings["osc_host"] == "127.0.0.1"
    wobble = node(session, "wobble")
    send_and_step(session, [("/wobble/frequency", 3.5)], until=lambda: wobble.values["frequency"] == 3.5)
    assert session.oscquery is not None and session.oscquery.osc_port == port


def test_renaming_a_node_keeps_the_addresses_controllers_send_to(session):
    """Issue 20 bug 6: after a rename `/mix/b` still drives the parameter; undo restores both."""
    from autolume_graph.commands import Rename

    mix = node(session, "mix")
    session.runtime.call(SetBinding(mix.id, "a", Binding(True, "/fader/1", "x")))
    session.runtime.call(Rename(mix.id, "blend"))
    assert mix.binding("b").address == "/mix/b"  # the editor shows the kept address
    assert mix.binding("a").address == "/fader/1"
    send_and_step(session, [("/mix/b", 3.0), ("/fader/1", 2.0)],
                  until=lambda: mix.values["b"] == 3.0 and mix.values["a"] == 2.0)
    assert session.osc_server.mailbox.counts().get("unknown-address", 0) == 0
    session.runtime.undo()
    assert mix.name == "mix" and "b" not in mix.bindings and mix.binding("a").address == "/fader/1"


@pytest.mark.parametrize("address", ["knob", "/two words", "/a//b", "/a/", "/wild*", "/" + "x" * 300])
def test_a_binding_needs_a_valid_osc_address(session, address):
    """Issue 20 bug 7: an address without a leading / (or with pattern characters) is refused."""
    mix = node(session, "mix")
    with pytest.raises(GraphError, match="OSC address"):
        session.runtime.call(SetBinding(mix.id, "b", Binding(True, address, "x")))
    assert "b" not in mix.bindings


def test_a_file_with_a_bad_address_keeps_the_default_binding(tmp_path, caplog):
    graph = make_graph()
    graph.node("mix").bindings["b"] = Binding(True, "no-slash", "x")
    path = tmp_path / "bad.agraph"
    save_graph(graph, path)
    loaded = load_graph(path)
    assert loaded.node("mix").binding("b").address == "/mix/b"
    assert "dropping the OSC binding" in caplog.text


def test_the_monitor_lists_each_address_with_what_it_drove(session):
    """Issue 20: the OSC monitor's data: latest args, count and rate, the parameter driven, unknown ones."""
    wobble = node(session, "wobble")
    send_and_step(session, [("/wobble/frequency", 2.5), ("/nobody/home", 1.0)],
                  until=lambda: {e.address for e in session.control.monitor.entries()} >= {"/wobble/frequency",
                                                                                         "/nobody/home"})
    seen = {entry.address: entry for entry in session.control.monitor.entries()}
    assert seen["/wobble/frequency"].targets == ("wobble.frequency",) and not seen["/wobble/frequency"].unknown
    assert seen["/wobble/frequency"].args == "2.5" and seen["/wobble/frequency"].rate > 0
    assert seen["/nobody/home"].unknown and seen["/nobody/home"].targets == ()
    assert wobble.values["frequency"] == 2.5
    host, port = session.osc_server.address
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"not osc at all", (host, port))
    deadline = time.time() + 3
    while not any(kind == "malformed" for _, kind, _ in session.mailbox.problems()) and time.time() < deadline:
        time.sleep(0.01)
    assert any(kind == "unknown-address" and "/nobody/home" in detail for _, kind, detail in session.mailbox.problems())
    assert any(kind == "malformed" for _, kind, _ in session.mailbox.problems())


def test_learn_binds_a_parameter_to_the_next_address(session):
    mix = node(session, "mix")
    session.runtime.call(lambda rt: session.control.learn(mix.id, "b"))
    send_and_step(session, [("/fader/7", 0.5)], until=lambda: mix.values["b"] == 0.5)
    assert mix.binding("b").address == "/fader/7" and mix.binding("b").enabled
    assert session.control.learned == ("mix", "b", "/fader/7") and session.control.learning is None
    send_and_step(session, [("/fader/7", 0.75)], until=lambda: mix.values["b"] == 0.75)
    session.runtime.undo()
    assert mix.binding("b").address == "/mix/b"


def test_oscquery_lists_the_picture_size_once_a_preview_has_one(tmp_path):
    """Issue 19: a controller can read the (non-square) picture's width x height, read-only."""
    import torch

    from autolume_graph.node import CookContext, Node
    from autolume_graph.params import Output
    from autolume_graph.types import PortType

    class Wide(Node):
        outputs = {"image": Output(PortType.IMAGE)}

        def cook(self, ctx: CookContext, inputs: dict, params: dict) -> dict:
            return {"image": torch.zeros(1, 3, 48, 64)}

    graph = Graph()
    source = graph.add_node(Wide(), name="wide")
    preview = graph.add_node(default_registry().create("Preview"), name="preview")
    graph.add_edge(Edge(source.id, "image", preview.id, "image"))
    s = Session(Runtime(graph, fps=0), osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                preset_dir=tmp_path / "presets")
    s.start_services()
    try:
        host, port = s.oscquery.address
        before = json.load(urllib.request.urlopen(f"http://{host}:{port}/", timeout=5))
        assert "autolume" not in before.get("CONTENTS", {}) or "image" not in before["CONTENTS"]["autolume"].get(
            "CONTENTS", {})
        s.runtime.step()
        image = json.load(urllib.request.urlopen(f"http://{host}:{port}/autolume/image", timeout=5))["CONTENTS"]
        assert image["width"]["VALUE"] == [64] and image["height"]["VALUE"] == [48]
        assert image["width"]["ACCESS"] == 1
    finally:
        s.close()


def test_resending_the_seed_jumps_back_to_it_after_anim_and_drag(tmp_path):
    """Issue 20 bug 5: `/seed/seed 42` while the animation shows 47.7 returns to 42 (its value unchanged)."""
    from tests.test_latent_nodes import Collect

    graph = Graph()
    seed = graph.add_node(default_registry().create("SeedLatent"), name="seed")
    sink = graph.add_node(Collect(), name="sink")
    graph.add_edge(Edge(seed.id, "seed", sink.id, "value"))
    s = Session(Runtime(graph, fps=10, fixed_step=True), osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                preset_dir=tmp_path / "presets")
    s.start_services()
    try:
        send_and_step(s, [("/seed/seed", 42.0), ("/seed/anim", True), ("/seed/speed", 5.0)],
                      until=lambda: seed.last_outputs.get("seed", 0) > 43.0)
        send_and_step(s, [("/seed/anim", False)], until=lambda: not seed.values["anim"])
        s.runtime.step()
        assert seed.last_outputs["seed"] > 43.0 and seed.values["seed"] == 42.0
        send_and_step(s, [("/seed/seed", 42.0)], until=lambda: seed.last_outputs["seed"] == 42.0)
        send_and_step(s, [("/seed/drag", 1.0)], until=lambda: seed.values["drag"] == 1.0)
        send_and_step(s, [("/seed/drag", 3.5)], until=lambda: seed.last_outputs["seed"] == 45.5)  # drag 0 -> 3.5
        send_and_step(s, [("/seed/seed", 42.0)], until=lambda: seed.last_outputs["seed"] == 42.0)
    finally:
        s.close()
