"""Promise: OSC takes datagrams only from the senders the user admits, and no stream of messages grows memory.

Real UDP on 127.0.0.1 (and ::1 where the machine has IPv6): a server bound to loopback that admits
only 10.0.0.0/8 refuses and counts our datagrams; one that admits 127.0.0.1 takes them. Endless
distinct mappings sent over OSC leave the compiled-mapping cache at its cap, and a system handler
that overflows is counted, never raised into the frame.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import REPO
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.graph import Graph
from autolume_graph.osc.allow import parse_allow
from autolume_graph.osc.bindings import MAPPING_CACHE
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.server import OSCServer
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from autolume_graph.session import Session


def _wait(done, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert done()


def _send(server: OSCServer, n: int, family: int = socket.AF_INET) -> None:
    host, port = server.address
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for i in range(n):
            sock.sendto(_message(i), (host, port))


def _message(i: int) -> bytes:
    builder = OscMessageBuilder(f"/knob/{i % 4}")
    builder.add_arg(float(i))
    return builder.build().dgram


def test_allow_list_parses_cidrs_hosts_and_ipv6_and_names_a_bad_part() -> None:
    allow = parse_allow("10.0.0.0/8, 192.168.1.7,fd00::/8")
    assert allow.admits("10.1.2.3") and allow.admits("192.168.1.7") and allow.admits("fd12::1")
    assert allow.admits("::ffff:10.0.0.9")  # an IPv4 sender seen through a dual-stack socket
    assert not allow.admits("192.168.1.8") and not allow.admits("127.0.0.1") and not allow.admits("::1")
    assert parse_allow("") is None and parse_allow(None) is None
    for bad in ("10.0.0.0/33", "banana", "10.0.0.0/8,300.1.1.1"):
        with pytest.raises(ValueError) as info:
            parse_allow(bad)
        assert "allow-list" in str(info.value) and "\n" not in str(info.value)


def test_senders_outside_the_allow_list_are_refused_and_counted() -> None:
    with OSCServer(Mailbox(), "127.0.0.1", 0, allow="10.0.0.0/8") as server:
        _send(server, 200)
        _wait(lambda: server.refused == 200)
        assert server.mailbox.drain() == {}
        assert server.mailbox.counts().get("received", 0) == 0 and server.running
    with OSCServer(Mailbox(), "127.0.0.1", 0, allow="127.0.0.1/32") as server:
        _send(server, 200)
        _wait(lambda: server.mailbox.counts().get("received", 0) == 200)
        assert server.refused == 0 and set(server.mailbox.drain()) == {f"/knob/{i}" for i in range(4)}


def test_ipv6_senders_are_judged_too() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    for allow, admitted in (("::1/128", True), ("10.0.0.0/8,fe80::/10", False)):
        with OSCServer(Mailbox(), "::1", 0, allow=allow) as server:
            _send(server, 20, socket.AF_INET6)
            kind = "received" if admitted else "refused-sender"
            _wait(lambda kind=kind: server.mailbox.counts().get(kind, 0) == 20)


def test_a_session_takes_its_allow_list_from_the_user_or_the_graph(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow-list"):
        Session(Runtime(Graph(), fps=0), osc_allow="10.0.0.0/33")
    graph = Graph()
    lfo = graph.add_node(default_registry().create("LFO"), name="wobble")
    graph.settings["osc_allow"] = "10.0.0.0/8"
    save_graph(graph, tmp_path / "show.agraph")
    session = Session(Runtime(load_graph(tmp_path / "show.agraph"), fps=0), osc_host="127.0.0.1", osc_port=0,
                      preset_dir=tmp_path / "presets")
    session.start_services()
    try:
        wobble = session.runtime.graph.node("wobble")
        client = SimpleUDPClient(*session.osc_server.address)
        client.send_message(lfo.binding("frequency").address, 5.0)
        _wait(lambda: session.osc_server.refused == 1)
        session.runtime.step()
        assert wobble.values["frequency"] == 0.25  # refused: never applied
        session.listen("127.0.0.1", 0, allow="127.0.0.0/8, ::1")
        assert session.runtime.graph.settings["osc_allow"] == "127.0.0.0/8, ::1"
        with pytest.raises(ValueError, match="allow-list"):
            session.listen("127.0.0.1", 0, allow="nonsense")  # refused before anything moves
        client = SimpleUDPClient(*session.osc_server.address)
        client.send_message(lfo.binding("frequency").address, 5.0)
        _wait(lambda: (session.runtime.step(), wobble.values["frequency"] == 5.0)[1])
        assert session.osc_server.refused == 1  # the counter (the session's mailbox) holds only the first
    finally:
        session.close()


def test_a_bad_allow_list_in_a_graph_file_keeps_osc_off_and_says_why(tmp_path: Path) -> None:
    graph = Graph()
    graph.settings["osc_allow"] = "10.0.0.0/99"
    session = Session(Runtime(graph, fps=0), osc_host="127.0.0.1", osc_port=0, preset_dir=tmp_path / "presets")
    session.start_services()
    try:
        assert session.osc_server is None and "allow-list" in session.errors["osc"]
        assert session.runtime.step().frame >= 0  # the show runs
    finally:
        session.close()


def test_endless_distinct_mappings_over_osc_keep_the_cache_bounded(tmp_path: Path) -> None:
    graph = Graph()
    inputs = [graph.add_node(default_registry().create("OSCIn"), name=f"in{i}") for i in range(100)]
    session = Session(Runtime(graph, fps=0), osc_host="127.0.0.1", osc_port=0, preset_dir=tmp_path / "presets")
    session.start_services()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tracemalloc.start()
    try:
        rounds, sizes = 100, []
        for r in range(rounds):  # 100 rounds x 100 nodes: 10,000 distinct mappings, each one applied
            bundle = OscBundleBuilder(IMMEDIATELY)
            for i, node in enumerate(inputs):
                message = OscMessageBuilder(node.binding("mapping").address)
                message.add_arg(f"x*{r * len(inputs) + i + 2}")
                bundle.add_content(message.build())
            sock.sendto(bundle.build().dgram, session.osc_server.address)
            last = f"x*{r * len(inputs) + len(inputs) + 1}"
            _wait(lambda last=last: (session.runtime.step(), inputs[-1].values["mapping"] == last)[1])
            session.runtime.step()  # the table (and its mappings) is rebuilt for the new texts
            sizes.append(tracemalloc.get_traced_memory()[0])
        assert session.control.cached_mappings <= MAPPING_CACHE
        assert sizes[-1] - sizes[9] < 2_000_000, sizes  # no growth with the number of mappings seen
        assert session.mailbox.counts().get("received", 0) == rounds * len(inputs)
    finally:
        tracemalloc.stop()
        sock.close()
        session.close()


def test_a_system_handler_that_overflows_is_counted_and_the_frame_goes_on(tmp_path: Path) -> None:
    session = Session(Runtime(Graph(), fps=0), osc_host="127.0.0.1", osc_port=0, preset_dir=tmp_path / "presets")
    session.control.system["/autolume/exp"] = lambda args: math.exp(args[0])  # OverflowError for 1e6
    session.start_services()
    try:
        SimpleUDPClient(*session.osc_server.address).send_message("/autolume/exp", 1e6)
        frame = session.runtime.snapshot.frame
        _wait(lambda: (session.runtime.step(), session.mailbox.counts().get("bad-system-message", 0) == 1)[1])
        assert session.runtime.snapshot.engine_errors == {}
        assert session.runtime.step().frame > frame
    finally:
        session.close()


_EDITOR_CHECK = """
import sys, time
import dearpygui.dearpygui as dpg
from pythonosc.udp_client import SimpleUDPClient
from autolume_graph.graph import Graph
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session
from autolume_graph.ui.app import Editor
from tests.ui_support import xvfb_display

with xvfb_display():
    session = Session(Runtime(Graph(), fps=30.0, fixed_step=True), osc_port=0, preset_dir=sys.argv[1])
    session.start_services()
    editor = Editor(session, width=1200, height=800)
    try:
        panel = editor.output
        dpg.set_value(panel.osc_allow, "10.0.0.0/33")
        panel._listen()
        assert "allow-list" in dpg.get_value(panel.osc_allow_error), dpg.get_value(panel.osc_allow_error)
        dpg.set_value(panel.osc_allow, "10.0.0.0/8")
        dpg.set_value(panel.osc_port, 0)
        panel._listen()
        assert dpg.get_value(panel.osc_allow_error) == ""
        for _ in range(3):
            editor.render()
            session.runtime.step()
        assert session.runtime.graph.settings["osc_allow"] == "10.0.0.0/8"
        SimpleUDPClient(*session.osc_server.address).send_message("/autolume/fps", 25.0)
        deadline = time.monotonic() + 5
        while session.osc_server.refused == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(12):  # the readout refreshes every few UI frames
            editor.render()
            session.runtime.step()
        assert session.runtime.target_fps == 30.0
        assert "1 refused" in dpg.get_value(panel.osc), dpg.get_value(panel.osc)
    finally:
        editor.close()
        session.close()
print("ok")
"""


def test_the_editor_sets_the_allow_list_and_shows_refusals(tmp_path: Path) -> None:
    """In its own process: Dear PyGui does not take a second context in one process well (see test_ui)."""
    pytest.importorskip("dearpygui.dearpygui")
    if not (os.environ.get("DISPLAY") or shutil.which("Xvfb")):
        pytest.skip("needs a display or Xvfb")
    result = subprocess.run([sys.executable, "-c", _EDITOR_CHECK, str(tmp_path / "presets")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
