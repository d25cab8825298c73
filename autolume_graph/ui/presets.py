"""The presets panel: a grid of slots, save / load / rename, and the folder with its recent list.

Loading goes through Session.switch_preset (a worker): at once, or morphing over the seconds set beside
Load (autolume_graph/morph.py); saving packs the graph on the render thread and writes the file in a worker,
so the UI never waits on either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg

from autolume_graph.atomic import write_atomic
from autolume_graph.cache_folder import cache_dir
from autolume_graph.morph import MAX_SECONDS
from autolume_graph.presets import PresetFolder
from autolume_graph.recent import push_recent, read_recent
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import GraphFileError, graph_to_dict, pack
from autolume_graph.session import Session
from autolume_graph.ui.dialogs import open_folder
from autolume_graph.ui.pending import Pending, reason

SLOTS = 16
COLUMNS = 4
RECENT_FILE = "recent_preset_folders.json"
RECENT_MAX = 8
EMPTY_COLOR = (110, 110, 110, 255)


def recent_folders() -> list[str]:
    return read_recent(cache_dir() / RECENT_FILE, RECENT_MAX)


def remember_folder(folder: str | Path) -> None:
    push_recent(cache_dir() / RECENT_FILE, folder, RECENT_MAX)


def pack_graph(runtime: Runtime) -> bytes:
    """The running graph as file bytes; render-thread work, so the copy is consistent."""
    return pack(graph_to_dict(runtime.graph))


Outcome = tuple[str, bool]  # a line for the status bar, and whether it is an error


def write_in_worker(path: Path, data: bytes, done: Callable[[str, bool], None]) -> None:
    """Write a file off the UI thread; `done(line, is_error)` gets the outcome (from the worker: queue it
    for the UI thread)."""
    def work() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        except OSError as exc:
            done(f"could not save {path}: {reason(exc)}", True)
            return
        done(f"saved {path}", False)

    threading.Thread(target=work, name="save-graph", daemon=True).start()


class PresetsPanel:
    """Slots show the folder's presets by name; empty slots are greyed and take a save."""

    def __init__(self, session: Session, pending: Pending) -> None:
        self.session = session
        self.pending = pending
        self.outcomes: list[Outcome] = []
        self.chosen: str | None = None
        self._loading: tuple[str, threading.Thread] | None = None
        self._shown_failure: str | None = None
        with dpg.theme() as self._empty_theme, dpg.theme_component(dpg.mvAll, enabled_state=False):
            dpg.add_theme_color(dpg.mvThemeCol_Text, EMPTY_COLOR)
        self.folder_text = dpg.add_text("")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Preset folder...", callback=lambda: open_folder(self.set_folder,
                                                                                    self.session.presets.folder))
            self.recent = dpg.add_combo([], label="Recent", width=240, callback=lambda s, a: self.set_folder(a))
        self.grid = dpg.add_group()
        with dpg.group(horizontal=True):
            self.name = dpg.add_input_text(hint="preset name", width=160)
            dpg.add_button(label="Save", callback=lambda: self.save(dpg.get_value(self.name).strip()))
            dpg.add_button(label="Load", callback=lambda: self.chosen and self.load(self.chosen))
            dpg.add_button(label="Rename", callback=lambda: self.chosen and self.rename(self.chosen,
                                                                                        dpg.get_value(self.name).strip()))
        with dpg.group(horizontal=True):  # how Load (and a second click on a slot) goes into a preset
            dpg.add_text("Morph over")
            self.morph = dpg.add_input_float(label="s (0: switch at once)", default_value=0.0, width=90, step=0,
                                             format="%.1f", min_value=0.0, max_value=MAX_SECONDS,
                                             min_clamped=True, max_clamped=True)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the slots from the folder (after a save, rename or folder change)."""
        names = self.session.presets.names()
        dpg.set_value(self.folder_text, f"Folder: {self.session.presets.folder}")
        dpg.configure_item(self.recent, items=recent_folders())
        dpg.delete_item(self.grid, children_only=True)
        slots = names + [""] * max(0, SLOTS - len(names))
        for row in range(0, len(slots), COLUMNS):
            with dpg.group(horizontal=True, parent=self.grid):
                for name in slots[row:row + COLUMNS]:
                    if name:
                        dpg.add_selectable(label=name, width=100, default_value=name == self.chosen,
                                           callback=lambda s, a, u: self.select(u), user_data=name)
                    else:
                        dpg.add_selectable(label="empty", width=100, enabled=False)
                        dpg.bind_item_theme(dpg.last_item(), self._empty_theme)

    def select(self, name: str) -> None:
        """Click a slot: select it; a second click on it loads it."""
        if self.chosen == name:
            self.load(name)
        self.chosen = name
        dpg.set_value(self.name, name)
        self.refresh()

    def load(self, name: str) -> None:
        """Switch to a preset, or morph into it over the morph time when that is above 0."""
        seconds = float(dpg.get_value(self.morph) or 0.0)
        self._loading = (name, self.session.switch_preset(name, seconds=seconds))
        self.pending.inform(f"morphing into preset {name} over {seconds:g} s..." if seconds
                            else f"loading preset {name}...")

    def save(self, name: str) -> None:
        try:
            path = self.session.presets.path(name)
        except GraphFileError as exc:
            self.pending.report(reason(exc))
            return
        self.chosen = name
        self.pending.submit(pack_graph, on_result=lambda data: write_in_worker(
            path, data, lambda line, error: self.outcomes.append((line, error))))

    def rename(self, old: str, new: str) -> None:
        try:
            self.session.presets.rename(old, new)
        except (GraphFileError, OSError) as exc:
            self.pending.report(reason(exc))
            return
        self.chosen = new
        self.refresh()

    def set_folder(self, folder: str) -> None:
        self.session.presets = PresetFolder(folder)
        remember_folder(folder)
        self.chosen = None
        self.refresh()

    def poll(self) -> None:
        """Each UI frame: report finished saves, a preset load that finished, and preset load failures."""
        while self.outcomes:
            message, error = self.outcomes.pop(0)
            self.pending.status.show(message, error)
            self.refresh()
        failure = self.session.errors.get("preset")
        if self._loading is not None and not self._loading[1].is_alive():
            if not failure:
                self.pending.inform(f"preset {self._loading[0]} loaded")
            self._loading = None
        if failure and failure != self._shown_failure:
            self.pending.report(f"preset: {failure}")
        self._shown_failure = failure
