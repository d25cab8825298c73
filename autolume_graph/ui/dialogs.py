"""File and folder pickers: one Dear PyGui file dialog made on demand and deleted when closed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from autolume_graph.gan.store import MODEL_SUFFIXES

# What a PATH parameter's `file_kind` accepts, and the filter's label.
EXTENSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "model": ("Models", MODEL_SUFFIXES),
    "vector": ("Vectors", (".npy",)),
    "directions": ("Directions", (".npy", ".npz")),
    "graph": ("Graphs", (".agraph",)),
    "audio": ("Audio", (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a")),
}
# A labelled collection: with a bare ".*" filter the dialog swaps a typed name's extension for ".*".
ANY_FILE = "All files (*){.*}"


def chosen_path(app_data: Any) -> str:
    """The path the user chose in the dialog, or "" when none.

    Dear PyGui joins the shown folder and the typed name even when the name is a full path
    (`/cwd//abs/path`): a typed absolute or `~` path is taken as typed.
    """
    if not isinstance(app_data, dict):
        return ""
    name = str(app_data.get("file_name") or "").strip()
    if not name:
        return ""
    typed = Path(name).expanduser()
    folder = Path(str(app_data.get("current_path") or Path.cwd()))
    return str(typed if typed.is_absolute() else folder / typed)


def _open(directory: bool, on_chosen: Callable[[str], None], extensions: tuple[str, tuple[str, ...]] | None = None,
          start: str | Path | None = None) -> int | str:
    def chosen(sender: int | str, app_data: Any) -> None:
        path = str(app_data.get("file_path_name") or "") if directory and isinstance(app_data, dict) \
            else chosen_path(app_data)
        dpg.delete_item(sender)
        if path:
            on_chosen(path)

    folder = Path(start).expanduser() if start else Path.cwd()
    if folder.is_file():
        folder = folder.parent
    with dpg.file_dialog(directory_selector=directory, callback=chosen, cancel_callback=lambda s, a: dpg.delete_item(s),
                         width=700, height=420, modal=True,
                         default_path=str(folder if folder.is_dir() else Path.cwd())) as dialog:
        if extensions:
            label, suffixes = extensions
            dpg.add_file_extension(f"{label} ({' '.join(suffixes)}){{{','.join(suffixes)}}}",
                                   color=(150, 255, 150, 255))
        if not directory:
            dpg.add_file_extension(ANY_FILE)
    return dialog


def open_file(on_chosen: Callable[[str], None], file_kind: str = "", start: str | Path | None = None) -> int | str:
    """Pick a file; the filter comes from the parameter's `file_kind` (any file when unknown)."""
    return _open(False, on_chosen, EXTENSIONS.get(file_kind), start)


def open_folder(on_chosen: Callable[[str], None], start: str | Path | None = None) -> int | str:
    return _open(True, on_chosen, None, start)
