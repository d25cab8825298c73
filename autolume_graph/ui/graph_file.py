"""The graph file the editor works on: New, Open, Save, Save As, recent graphs and unsaved edits.

The document is the running graph plus the file it came from. A save notes the history's version
(`Snapshot.edit_version`), so the title shows an unsaved mark and New, Open and quitting ask first.
Opening reads and prepares the graph in a worker, then swaps it in as a preset switch does; writing
happens in a worker too. Whatever a worker finishes runs on the UI thread in `poll`. Presets stay
what they are: a folder of graphs to switch between live.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg

from autolume_graph.cache_folder import cache_dir
from autolume_graph.graph import Graph
from autolume_graph.recent import push_recent, read_recent
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from autolume_graph.session import SWITCH_WAIT_S, Session
from autolume_graph.ui.dialogs import open_file
from autolume_graph.ui.pending import Pending, reason
from autolume_graph.ui.presets import pack_graph, write_in_worker

GRAPH_SUFFIX = ".agraph"
RECENT_FILE = "recent_graphs.json"
RECENT_MAX = 10
UNTITLED = "untitled"

Action = Callable[[], None]


def recent_graphs() -> list[str]:
    """Graph files opened or saved in the editor, newest first."""
    return read_recent(cache_dir() / RECENT_FILE, RECENT_MAX)


def graph_path(chosen: str | Path) -> Path:
    """A chosen save path with the graph suffix (a name typed without one gets it)."""
    path = Path(chosen).expanduser()
    return path if path.suffix == GRAPH_SUFFIX else path.with_name(path.name + GRAPH_SUFFIX)


def open_for_editing(ref: str | None) -> tuple[Graph, Path | None]:
    """What `autolume-graph edit [REF]` opens, and the file Save writes to.

    A named `.agraph` file that does not exist yet is created (empty). Without a name the shipped
    default graph opens (an empty one if it is not shipped) and Save asks for a file, so the
    shipped default is never overwritten.
    """
    from autolume_graph.errors import UserError
    from autolume_graph.graph_files import open_graph, resolve_graph_path

    if ref and Path(ref).suffix == GRAPH_SUFFIX and not Path(ref).exists():
        save_graph(Graph(), ref)
        print(f"autolume-graph: created {ref}", file=sys.stderr)
    try:
        graph = open_graph(ref)
    except UserError:
        if ref:
            raise
        print("autolume-graph: no shipped default graph; starting with an empty one", file=sys.stderr)
        graph = Graph()
    return graph, resolve_graph_path(ref) if ref else None


def packed_with_version(runtime: Runtime) -> tuple[bytes, int]:
    """The running graph as file bytes and the history version they hold (render-thread work)."""
    return pack_graph(runtime), runtime.history.version


class UnsavedPrompt:
    """A modal asking what to do with unsaved edits before `then`: Save, Discard or Cancel."""

    def __init__(self) -> None:
        self._then: Action | None = None
        self._save: Callable[[Action], None] | None = None
        with dpg.window(label="Unsaved edits", modal=True, show=False, no_resize=True, autosize=True) as window:
            self.window = window
            self.text = dpg.add_text("")
            with dpg.group(horizontal=True):
                self.save_button = dpg.add_button(label="Save", callback=lambda: self._answer("save"))
                self.discard_button = dpg.add_button(label="Discard", callback=lambda: self._answer("discard"))
                self.cancel_button = dpg.add_button(label="Cancel", callback=lambda: self._answer("cancel"))

    @property
    def showing(self) -> bool:
        return bool(dpg.is_item_shown(self.window))

    def ask(self, question: str, save: Callable[[Action], None], then: Action) -> None:
        self._save, self._then = save, then
        dpg.set_value(self.text, question)
        width, height = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
        dpg.set_item_pos(self.window, [max(0, width // 2 - 160), max(0, height // 2 - 60)])
        dpg.show_item(self.window)

    def _answer(self, choice: str) -> None:
        dpg.hide_item(self.window)
        then, save = self._then, self._save
        self._then = self._save = None
        if then is None or save is None or choice == "cancel":
            return
        if choice == "save":
            save(then)
        else:
            then()


class GraphDocument:
    """The editor's file: `new`, `open`, `open_path`, `save`, `save_as`, `close`, and `poll` each UI frame."""

    def __init__(self, session: Session, pending: Pending, path: Path | None, saved_version: int) -> None:
        self.session = session
        self.pending = pending
        self.path = path
        self.saved_version = saved_version
        self.edit_version = saved_version
        self.prompt = UnsavedPrompt()
        self._finished: list[Action] = []  # workers' results, run on the UI thread
        self._lock = threading.Lock()

    # --- state ------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self.edit_version != self.saved_version

    @property
    def title(self) -> str:
        name = self.path.name if self.path else UNTITLED
        return f"{'* ' if self.dirty else ''}{name} - autolume-graph"

    def poll(self, edit_version: int) -> None:
        """Each UI frame: the snapshot's edit version, then whatever the workers finished."""
        self.edit_version = edit_version
        with self._lock:
            finished, self._finished = self._finished, []
        for action in finished:
            action()

    def _later(self, action: Action) -> None:
        with self._lock:
            self._finished.append(action)

    def _report_later(self, message: str) -> None:
        self._later(lambda: self.pending.report(message))

    def unless_unsaved(self, then: Action) -> None:
        if not self.dirty:
            then()
            return
        self.prompt.ask(f"{self.path.name if self.path else UNTITLED} has unsaved edits.", self.save, then)

    # --- commands ---------------------------------------------------------------------
    def new(self) -> None:
        self.unless_unsaved(lambda: threading.Thread(target=self._switch, args=(Graph(), None), name="new-graph",
                                                     daemon=True).start())

    def open(self) -> None:
        start = self.path.parent if self.path else None
        self.unless_unsaved(lambda: open_file(self.open_path, "graph", start))

    def open_recent(self, path: str) -> None:
        self.unless_unsaved(lambda: self.open_path(path))

    def open_path(self, path: str | Path) -> None:
        """Read `path` in a worker and swap it in; a bad file is one line and the show goes on."""
        path = Path(path).expanduser()
        self.pending.inform(f"opening {path.name}...")

        def work() -> None:
            try:
                graph = load_graph(path)
            except Exception as exc:  # noqa: BLE001 - every bad file is one line in the status bar
                self._report_later(reason(exc))
                return
            self._switch(graph, path)

        threading.Thread(target=work, name="open-graph", daemon=True).start()

    def _switch(self, graph: Graph, path: Path | None) -> None:
        """Swap `graph` in and wait for it to run (worker thread: it prepares models)."""
        try:
            version = self.session.switch_to(graph).result(timeout=SWITCH_WAIT_S)
        except Exception as exc:  # noqa: BLE001 - a graph that cannot run is refused, the old one stays
            self._report_later(reason(exc))
            return
        self._later(lambda: self._opened(path, version))

    def _opened(self, path: Path | None, version: int) -> None:
        self.path, self.saved_version = path, version
        if path is not None:
            push_recent(cache_dir() / RECENT_FILE, path, RECENT_MAX)
        self.pending.inform(f"opened {path}" if path else "new graph")

    def save(self, then: Action | None = None) -> None:
        """Save to the file the graph came from (Save As when it has none); `then` runs once it is saved."""
        if self.path is None:
            self.save_as(then)
        else:
            self._write(self.path, then)

    def save_as(self, then: Action | None = None) -> None:
        start = self.path.parent if self.path else None
        open_file(lambda chosen: self._write(graph_path(chosen), then), "graph", start)

    def _write(self, path: Path, then: Action | None) -> None:
        def write(packed: tuple[bytes, int]) -> None:
            data, version = packed

            def done(line: str, error: bool) -> None:
                self._later(lambda: self.pending.report(line) if error else self._saved(path, version, then))

            write_in_worker(path, data, done)

        self.pending.submit(packed_with_version, on_result=write)

    def _saved(self, path: Path, version: int, then: Action | None) -> None:
        self.path, self.saved_version = path, version
        push_recent(cache_dir() / RECENT_FILE, path, RECENT_MAX)
        self.pending.inform(f"saved {path}")
        if then is not None:
            then()

    def close(self, quit_now: Action) -> None:
        """The window's close button: quit, asking first about unsaved edits."""
        self.unless_unsaved(quit_now)
