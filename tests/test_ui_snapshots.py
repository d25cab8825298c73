"""The editor reads only what the render thread publishes, and undo says when it overwrites a live OSC value.

The editor runs as it does in a show: the runtime on its own render thread, Dear PyGui frames on this one
(under a private Xvfb), OSC as real UDP packets to 127.0.0.1. Every node of the graph is watched: any read of
a node's attributes from a thread other than the render thread is recorded. The editor tests run in a pytest
process of their own: Dear PyGui does not take a second context in one process (test_ui has the first).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

dpg = pytest.importorskip("dearpygui.dearpygui")

from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from autolume_graph.commands import History, SetParam  # noqa: E402
from autolume_graph.graph import Edge, Graph  # noqa: E402
from autolume_graph.node import Node  # noqa: E402
from autolume_graph.registry import default_registry  # noqa: E402
from autolume_graph.runtime import Runtime  # noqa: E402
from autolume_graph.session import Session  # noqa: E402
from autolume_graph.ui.app import Editor  # noqa: E402
from tests.ui_support import xvfb_display  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OWN_PROCESS = "AUTOLUME_UI_SNAPSHOT_CHILD"  # set in the child process that runs the editor tests
in_own_process = pytest.mark.skipif(os.environ.get(OWN_PROCESS) != "1",
                                    reason="runs in its own process (test_the_editor_checks_pass_in_their_own_process)")
RENDER_THREAD = "autolume-render"
WAIT_S = 10.0
LIVE_NOTE = "changed live (OSC)"


class Tripwire:
    """Records each read of a watched node's attributes made off the render thread."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, str]] = []

    def watch(self, node: Node) -> None:
        """Give `node` a subclass of its own class that reports foreign reads (declarations stay on the class)."""
        reads = self.reads

        def watched(obj: Node, attribute: str) -> Any:
            if not attribute.startswith("__") and threading.current_thread().name != RENDER_THREAD:
                reads.append((object.__getattribute__(obj, "name"), attribute))
            return object.__getattribute__(obj, attribute)

        cls = type(node)
        node.__class__ = type(cls.__name__, (cls,), {"__getattribute__": watched, "type_name": cls.type_name,
                                                     "__module__": __name__})


def math_graph() -> Graph:
    """lfo -> math.a (a wire into a parameter) and a spare constant."""
    registry = default_registry()
    graph = Graph()
    lfo = graph.add_node(registry.create("LFO"), name="lfo")
    math = graph.add_node(registry.create("Math"), name="math")
    graph.add_node(registry.create("Constant"), name="constant")
    graph.add_edge(Edge(lfo.id, "value", math.id, "a"))
    return graph


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Editor, Tripwire]]:
    """An editor over a running show whose nodes are all watched."""
    with xvfb_display():
        session = Session(Runtime(math_graph(), fps=60.0), osc_port=0,
                          preset_dir=tmp_path_factory.mktemp("presets"))
        session.start_services()
        editor = Editor(session, width=1200, height=800)
        tripwire = Tripwire()
        session.runtime.start()
        session.runtime.call(lambda rt: [tripwire.watch(node) for node in rt.graph.nodes.values()])
        try:
            yield session, editor, tripwire
        finally:
            editor.close()
            session.close()


def until(editor: Editor, done: Callable[[], bool], what: str) -> None:
    """Draw UI frames until `done` (the render thread keeps making its own frames meanwhile)."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        editor.render()
        time.sleep(0.01)
    editor.render()


def live_value(session: Session, node: str, param: str) -> Any:
    """A value read on the render thread, as the test's own look at the graph."""
    return session.runtime.call(lambda rt: rt.graph.node(node).values[param])


def slot(session: Session, editor: Editor, node: str, param: str) -> int | str:
    node_id = session.runtime.call(lambda rt: rt.graph.node(node).id)
    until(editor, lambda: node_id in editor.widgets.by_node, f"the widgets of {node}")
    return editor.widgets.by_node[node_id][param].widget


def send_osc(session: Session, address: str, value: float) -> None:
    host, port = session.osc_server.address
    SimpleUDPClient(host, port).send_message(address, value)


def change_widget(widget: int | str, value: object) -> None:
    """What Dear PyGui does when the user moves a widget: the value changes, then its callback runs."""
    dpg.set_value(widget, value)
    dpg.get_item_callback(widget)(widget, value, dpg.get_item_user_data(widget))


@in_own_process
def test_the_tripwire_sees_a_read_of_a_node_off_the_render_thread(live: tuple[Session, Editor, Tripwire]) -> None:
    session, editor, tripwire = live
    node = session.runtime.call(lambda rt: rt.graph.node("math"))
    before = len(tripwire.reads)
    assert isinstance(node.values, dict)
    assert tripwire.reads[before:] == [("math", "values")]
    del tripwire.reads[before:]


@in_own_process
def test_values_set_by_osc_reach_the_widgets_through_snapshots_only(live: tuple[Session, Editor, Tripwire]) -> None:
    session, editor, tripwire = live
    widget = slot(session, editor, "math", "b")
    wired = slot(session, editor, "math", "a")
    send_osc(session, "/math/b", 0.375)
    until(editor, lambda: dpg.get_value(widget) == pytest.approx(0.375), "the OSC value in the widget")
    assert live_value(session, "math", "b") == pytest.approx(0.375)
    assert not dpg.is_item_enabled(wired)  # the wire's view came through too
    for view in editor.canvas.view.nodes.values():  # the view holds copies and classes, never a node
        assert not any(isinstance(field, Node) for field in vars(view).values())
    titles = {dpg.get_item_label(item) for item in editor.canvas.items.values()}
    assert titles == {"lfo [LFO]", "math [Math]", "constant [Constant]"}
    assert tripwire.reads == []


@in_own_process
def test_undo_after_an_osc_change_restores_the_edit_and_says_so(live: tuple[Session, Editor, Tripwire]) -> None:
    session, editor, tripwire = live
    widget = slot(session, editor, "math", "b")
    start = live_value(session, "math", "b")

    change_widget(widget, 0.75)  # an undoable edit
    until(editor, lambda: live_value(session, "math", "b") == pytest.approx(0.75), "the edit in the graph")
    send_osc(session, "/math/b", 0.25)  # a live change after it
    until(editor, lambda: dpg.get_value(widget) == pytest.approx(0.25), "the OSC value in the widget")
    editor.report("ready", error=False)

    editor.canvas.undo()
    until(editor, lambda: editor.status.text != "ready", "the undo's status line")
    assert LIVE_NOTE in editor.status.text
    assert "math.b" in editor.status.text
    assert live_value(session, "math", "b") == pytest.approx(start)  # restored anyway, as documented
    until(editor, lambda: dpg.get_value(widget) == pytest.approx(start), "the restored value in the widget")

    change_widget(widget, 0.5)  # the same without OSC in between: a plain undo, no note
    until(editor, lambda: live_value(session, "math", "b") == pytest.approx(0.5), "the second edit")
    editor.report("ready", error=False)
    editor.canvas.undo()
    until(editor, lambda: live_value(session, "math", "b") == pytest.approx(start), "the second undo")
    until(editor, lambda: dpg.get_value(widget) == pytest.approx(start), "the second restore in the widget")
    assert editor.status.text == "ready"
    assert tripwire.reads == []


def test_undo_note_names_only_a_live_change_that_undo_overwrites() -> None:
    graph = math_graph()
    math = graph.node("math")
    history = History(graph)
    history.do(SetParam(math.id, "b", 0.75))
    history.do(SetParam(math.id, "b", 0.8))  # merged: one undo step, still no live change
    command = history.undo_stack[-1]
    assert command.undo_note(graph) == ""
    math.set_value("b", 0.25)  # what an OSC binding does on the render thread
    assert LIVE_NOTE in command.undo_note(graph)
    math.set_value("b", 0.0)  # live, but back to the value undo restores: nothing is lost
    assert command.undo_note(graph) == ""
    assert history.undo() and math.values["b"] == 0.0


@pytest.mark.skipif(os.environ.get(OWN_PROCESS) == "1", reason="this is the child process")
def test_the_editor_checks_pass_in_their_own_process() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                            cwd=REPO, env={**os.environ, OWN_PROCESS: "1"}, capture_output=True, text=True,
                            timeout=300)
    summary = result.stdout.splitlines()[-1] if result.stdout else ""
    assert result.returncode == 0 and "4 passed" in summary, result.stdout[-4000:] + result.stderr[-2000:]
