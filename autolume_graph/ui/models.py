"""The models browser: Recent, the models/ folder and Find; choosing sets a ModelLoader's path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg

from autolume_graph.commands import SetParam
from autolume_graph.gan.store import list_models, models_dir, recent_models
from autolume_graph.roles import Role
from autolume_graph.ui.dialogs import open_file
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import GraphView


class ModelsPanel:
    """Lists are read from disk when built and on Refresh, never per frame."""

    def __init__(self, pending: Pending, view: Callable[[], GraphView], selected: Callable[[], list[str]]) -> None:
        self.pending = pending
        self.view = view
        self.selected = selected
        with dpg.group(horizontal=True):
            dpg.add_button(label="Find...", callback=lambda: open_file(self.choose, "model"))
            dpg.add_button(label="Refresh", callback=lambda: self.refresh())
        dpg.add_text("Recent")
        self.recent = dpg.add_listbox([], num_items=5, width=-1, callback=lambda s, a: self.choose(a))
        self.folder_label = dpg.add_text("")
        self.folder = dpg.add_listbox([], num_items=6, width=-1,
                                      callback=lambda s, a: self.choose(str(models_dir() / a)))
        self.refresh()

    def refresh(self) -> None:
        dpg.configure_item(self.recent, items=recent_models())
        dpg.set_value(self.folder_label, f"Models in {models_dir()}")
        dpg.configure_item(self.folder, items=[p.name for p in list_models()])

    def target(self) -> str | None:
        """The selected ModelLoader, else the graph's first one."""
        loaders = {n.id for n in self.view().with_role(Role.MODEL_SOURCE)}
        chosen = [i for i in self.selected() if i in loaders]
        return (chosen or sorted(loaders) or [None])[0]

    def choose(self, path: str | Path) -> None:
        node_id = self.target()
        if node_id is None:
            self.pending.report("add a ModelLoader node to load a model")
            return
        self.pending.submit(SetParam(node_id, "path", str(path)))
