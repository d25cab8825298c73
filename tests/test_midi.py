"""MIDI in through a real JACK server: a virtual controller port sends CCs, notes, pitch bend and pressure into
MIDIIn nodes and MIDI-bound parameters; ranges hold, learn binds, bindings are saved, a flood stays bounded
and a port that vanishes is opened again when it comes back."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from autolume_graph.commands import SetMidiBinding
from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.midi.control import span_mapping
from autolume_graph.midi.events import parse
from autolume_graph.midi.ports import PortManager, PortReader, list_ports
from autolume_graph.node import NodeState
from autolume_graph.params import MidiBinding
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import graph_from_dict, graph_to_dict, load_graph, save_graph
from autolume_graph.session import Session
from tests.engine_nodes import Add, Sink
from tests.midi_support import Controller, step_until


@pytest.fixture
def controller(jack_server):
    found = Controller()
    yield found
    found.close()


def midi_in(graph: Graph, name: str, **values) -> object:
    """A MIDIIn with `values`, its value wired into a sink so that each frame cooks it."""
    node = graph.add_node(default_registry().create("MIDIIn"), name=name)
    for key, value in values.items():
        node.set_value(key, value)
    sink = graph.add_node(Sink(), name=f"{name}-sink")
    graph.add_edge(Edge(node.id, "value", sink.id, "value"))
    return node


def opened(node) -> bool:
    """Whether the node reads the port it names (its status is the API and that port)."""
    return node.status == f"jack: {node.values['port']}"


def test_the_port_lister_finds_the_controller(controller) -> None:
    assert controller.name in list_ports()


def test_cc_note_bend_and_pressure_arrive_scaled(controller) -> None:
    graph = Graph()
    cc = midi_in(graph, "cc", port=controller.name, channel=1, kind="cc", number=7)
    note = midi_in(graph, "note", port=controller.name, kind="note", number=60)
    bend = midi_in(graph, "bend", port=controller.name, kind="pitch bend", scale="raw")
    press = midi_in(graph, "press", port=controller.name, channel=2, kind="aftertouch")
    runtime = Runtime(graph, fps=0)
    try:
        step_until(runtime.step, lambda: all(opened(n) for n in (cc, note, bend, press)), "the port opened")
        assert cc.status == f"jack: {controller.name}"
        controller.cc(7, 127, channel=3)  # another channel: not cc's
        controller.cc(8, 100)  # another number
        controller.cc(7, 32)
        controller.send(0xE0, 0x00, 0x60)  # pitch bend +4096
        controller.send(0xD1, 64)  # channel pressure on channel 2
        step_until(runtime.step, lambda: cc.last_outputs.get("value") == pytest.approx(32 / 127), "the CC")
        step_until(runtime.step, lambda: bend.last_outputs.get("value") == 4096.0, "the bend, raw")
        step_until(runtime.step, lambda: press.last_outputs.get("value") == pytest.approx(64 / 127), "the pressure")
        assert cc.last_outputs["gate"] is False

        triggers = []
        runtime.frame_hooks.append(lambda rt: triggers.append(note.last_outputs.get("trigger")))
        controller.note(60, 100)
        step_until(runtime.step, lambda: note.last_outputs.get("gate") is True, "the note held")
        assert note.last_outputs["velocity"] == pytest.approx(100 / 127)
        assert note.last_outputs["value"] == pytest.approx(100 / 127)
        controller.note(60, 0)
        step_until(runtime.step, lambda: note.last_outputs.get("gate") is False, "the note released")
        assert note.last_outputs["value"] == 0.0 and note.last_outputs["velocity"] == pytest.approx(100 / 127)
        assert triggers.count(True) == 1  # once for the press, not again for the release

        controller.cc(7, 100)  # rising through the middle fires the trigger, once
        controller.cc(7, 120)
        step_until(runtime.step, lambda: cc.last_outputs.get("value") == pytest.approx(120 / 127), "the CC rising")
        assert cc.last_outputs["gate"] is True and all(n.error == "" for n in graph.nodes.values())
    finally:
        runtime.close()


def test_a_missing_port_waits_without_an_error(jack_server) -> None:
    graph = Graph()
    node = midi_in(graph, "absent", port="no-such-controller:out")
    runtime = Runtime(graph, fps=0)
    try:
        step_until(runtime.step, lambda: "waiting for port" in node.status, "the waiting status")
        assert node.error == "" and node.node_status.state is NodeState.WAITING
        assert node.last_outputs["value"] == 0.0
    finally:
        runtime.close()


def test_no_midi_system_is_one_line_on_the_node(jack_server, monkeypatch) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "autolume-test-no-such-server")
    manager = PortManager()
    reader = PortReader("", manager)
    try:
        deadline = time.monotonic() + 10
        while "no MIDI" not in reader.status and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.status.startswith("no MIDI (jack): ") and "\n" not in reader.status
        assert reader.read() == ([], 0)
    finally:
        reader.close()


@pytest.fixture
def session(tmp_path, jack_server):
    graph = Graph()
    graph.add_node(default_registry().create("LFO"), name="wobble")
    found = Session(Runtime(graph, fps=0), osc=False, preset_dir=tmp_path / "presets")
    yield found
    found.close()


def test_a_bound_cc_is_mapped_and_clipped_to_the_range(session, controller) -> None:
    wobble = session.runtime.graph.node("wobble")
    session.runtime.call(SetMidiBinding(wobble.id, "phase", MidiBinding(controller.name, 1, "cc", 7, "x*10")))
    session.runtime.call(SetMidiBinding(wobble.id, "frequency", MidiBinding(controller.name, 0, "cc", 8,
                                                                           "x*5000")))
    step_until(session.runtime.step, lambda: session.midi.port_lines() == [f"jack: {controller.name}"], "the port")
    controller.cc(7, 6)
    step_until(session.runtime.step, lambda: wobble.values["phase"] == pytest.approx(6 / 127 * 10), "the mapping")
    controller.cc(7, 64)  # 5.04: past the parameter's range
    step_until(session.runtime.step, lambda: wobble.values["phase"] == 1.0, f"the clipped value {wobble.values}")
    controller.cc(8, 127, channel=9)  # omni; frequency goes past its UI range only up to its limit
    step_until(session.runtime.step, lambda: wobble.values["frequency"] == 1000.0, "the limit")
    assert [row.address for row in session.midi.monitor.entries()] == []  # headless: nothing monitored


def test_learn_binds_the_next_control_and_undo_takes_it_back(session, controller) -> None:
    wobble = session.runtime.graph.node("wobble")
    session.runtime.call(lambda rt: session.midi.learn(wobble.id, "frequency"))
    step_until(session.runtime.step, lambda: controller.name in session.midi.manager.listed, "the port listed")
    step_until(session.runtime.step, lambda: f"jack: {controller.name}" in session.midi.port_lines(), "the port")
    controller.note(60, 0)  # a release binds nothing
    controller.cc(21, 127, channel=3)
    expected = MidiBinding(controller.name, 3, "cc", 21, span_mapping(wobble.params["frequency"]))
    step_until(session.runtime.step, lambda: wobble.midi_bindings.get("frequency") == expected, "the learn")
    assert expected.mapping == "0 + x*10"
    assert session.midi.learned == ("wobble", "frequency", f"cc 21 ch 3 on {controller.name}")
    step_until(session.runtime.step, lambda: wobble.values["frequency"] == 10.0, "the learning message applied")
    controller.cc(21, 0, channel=3)
    step_until(session.runtime.step, lambda: wobble.values["frequency"] == 0.0, "the bound control")
    assert session.midi.learning is None
    session.runtime.call(lambda rt: rt.history.undo())
    assert "frequency" not in wobble.midi_bindings


def test_text_parameters_cannot_be_bound(session) -> None:
    graph = session.runtime.graph
    osc_in = graph.add_node(default_registry().create("OSCIn"), name="in")
    with pytest.raises(GraphError, match="cannot be bound to MIDI"):
        session.runtime.call(SetMidiBinding(osc_in.id, "address", MidiBinding()))
    with pytest.raises(GraphError, match="mapping"):
        session.runtime.call(SetMidiBinding(osc_in.id, "value", MidiBinding(mapping="x+")))
    with pytest.raises(GraphError, match="channel"):
        session.runtime.call(SetMidiBinding(osc_in.id, "value", MidiBinding(channel=17)))


def test_midi_bindings_are_saved_and_bad_ones_dropped(tmp_path, caplog) -> None:
    graph = Graph()
    wobble = graph.add_node(default_registry().create("LFO"), name="wobble")
    wobble.midi_bindings["phase"] = MidiBinding("knobs", 2, "note", 64, "1-x")
    path = tmp_path / "show.agraph"
    save_graph(graph, path)
    assert load_graph(path).node("wobble").midi_bindings == {"phase": MidiBinding("knobs", 2, "note", 64, "1-x")}

    data = graph_to_dict(graph)
    entry = data["nodes"][wobble.id]
    entry["midi_bindings"].update({
        "frequency": {"port": "k", "channel": 99, "kind": "cc", "number": 1, "mapping": "x"},
        "amplitude": {"port": 5, "kind": "cc"}, "offset": {"kind": "cc", "mapping": "x+"},
        "wave": "garbage", "nothing": {"kind": "cc"}})
    with caplog.at_level(logging.WARNING):
        loaded = graph_from_dict(data)
    assert loaded.node("wobble").midi_bindings == {"phase": MidiBinding("knobs", 2, "note", 64, "1-x")}
    dropped = [r.getMessage() for r in caplog.records if "dropping the MIDI binding" in r.getMessage()]
    assert len(dropped) == 5, dropped

    del entry["midi_bindings"]  # a file from before MIDI bindings
    assert graph_from_dict(data).node("wobble").midi_bindings == {}
    assert "midi_bindings" not in graph_to_dict(graph_from_dict(data))["nodes"][wobble.id]


def test_a_flood_does_not_stall_the_frame(controller) -> None:
    graph = Graph()
    node = midi_in(graph, "cc", port=controller.name, number=1)
    runtime = Runtime(graph, fps=0)
    try:
        step_until(runtime.step, lambda: opened(node), "the port")
        sent = threading.Event()

        def flood() -> None:
            for i in range(40000):
                controller.cc(1, i % 100)
            sent.set()

        thread = threading.Thread(target=flood)
        thread.start()
        slowest = 0.0
        while not sent.is_set():
            start = time.perf_counter()
            runtime.step()
            slowest = max(slowest, time.perf_counter() - start)
        thread.join()
        time.sleep(0.1)
        controller.cc(1, 127)
        step_until(runtime.step, lambda: node.last_outputs.get("value") == 1.0, "the value after the flood")
        assert slowest < 0.5, f"a frame took {slowest:.3f} s during the flood"
        assert node.error == ""
    finally:
        runtime.close()


def test_a_port_that_vanishes_is_opened_again_when_it_returns(jack_server) -> None:
    controller = Controller()
    graph = Graph()
    node = midi_in(graph, "cc", port=controller.name, number=3)
    runtime = Runtime(graph, fps=0)
    try:
        step_until(runtime.step, lambda: opened(node), "the port")
        controller.cc(3, 10)
        step_until(runtime.step, lambda: node.last_outputs.get("value") == pytest.approx(10 / 127), "a value")
        controller.close()  # unplugged
        step_until(runtime.step, lambda: node.status == f"jack: waiting for port {controller.name!r}", "the port gone")
        assert node.error == "" and node.last_outputs["value"] == pytest.approx(10 / 127)  # kept
        controller = Controller(controller.client)  # plugged in again
        step_until(runtime.step, lambda: opened(node), "the port again")

        def moved() -> None:  # the knob turns until it is heard (JACK may take a period to join the ports)
            controller.cc(3, 90)
            runtime.step()

        step_until(moved, lambda: node.last_outputs.get("value") == pytest.approx(90 / 127), "a new value")
    finally:
        runtime.close()
        controller.close()


def test_nodes_and_bindings_share_one_input_per_port(session, controller) -> None:
    graph = session.runtime.graph
    first, second = (midi_in(graph, name, port=controller.name, number=4) for name in ("a", "b"))
    wobble = graph.node("wobble")
    session.runtime.call(SetMidiBinding(wobble.id, "phase", MidiBinding(controller.name, 0, "cc", 4)))
    step_until(session.runtime.step, lambda: opened(first) and opened(second), "the port")
    feeds = [feed for feed in session.midi.manager.feeds() if feed.name == controller.name]
    assert len(feeds) == 1 and feeds[0].users == 3
    controller.cc(4, 127)
    step_until(session.runtime.step, lambda: wobble.values["phase"] == 1.0 and first.last_outputs["value"] == 1.0
               and second.last_outputs["value"] == 1.0, "all three")


@pytest.mark.parametrize("data", [[0xB3, 7, 100], [0x91, 60, 90], [0x81, 60, 40], [0x90, 61, 0], [0xA0, 60, 33],
                                  [0xC3, 5], [0xD0, 50], [0xE0, 0, 0x40], [0xE2, 0x7F, 0x7F], [0xE5, 0, 0],
                                  [0xF8], [0xFA], [0xFB], [0xFC], [0xF2, 10, 1]])
def test_decoding_agrees_with_mido(data) -> None:
    import mido

    event, message = parse(data, 1.5), mido.Message.from_bytes(data)
    fields = {"control_change": ("control", "value"), "note_on": ("note", "velocity"),
              "note_off": ("note", None), "polytouch": ("note", "value"), "program_change": (None, "program"),
              "aftertouch": (None, "value"), "pitchwheel": (None, "pitch"), "songpos": (None, "pos")}
    number, value = fields.get(message.type, (None, None))
    assert event.t == 1.5
    assert event.channel == (message.channel + 1 if hasattr(message, "channel") else 0)
    assert event.number == (getattr(message, number) if number else 0)
    assert event.value == (getattr(message, value) if value else 0)


@pytest.mark.parametrize("data", [[], [0x90], [0x90, 60], [0xB0, 200, 1], [0xF0, 1, 2, 0xF7], [0xFE], [0x40, 1]])
def test_what_is_not_read_decodes_to_nothing(data) -> None:
    assert parse(data, 0.0) is None


def test_a_bound_trigger_fires_once_per_press(session, controller) -> None:
    graph = session.runtime.graph
    adder = graph.add_node(Add(), name="adder")
    sink = graph.add_node(Sink(), name="sink")
    graph.add_edge(Edge(adder.id, "value", sink.id, "value"))
    session.runtime.call(SetMidiBinding(adder.id, "fire", MidiBinding(controller.name, 1, "cc", 64)))
    step_until(session.runtime.step, lambda: session.midi.port_lines() == [f"jack: {controller.name}"], "the port")
    for value in (0, 100, 110, 127, 20, 90):  # rises through the middle twice
        controller.cc(64, value)
        deadline = time.monotonic() + 0.1  # frames between the messages: each press is a frame's trigger
        while time.monotonic() < deadline:
            session.runtime.step()
            time.sleep(0.005)
    step_until(session.runtime.step, lambda: adder.fired == 2, "two presses")
    for _ in range(10):
        session.runtime.step()
    assert adder.fired == 2
