"""File and folder pickers: one Dear PyGui file dialog made on demand and deleted when closed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg

# What a PATH parameter's `file_kind` accepts.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "model": (".pkl", ".agm"),
    "vector": (".npy",),
    "directions": (".npy", ".npz"),
    "graph": (".agraph",),
}


def _open(directory: bool, on_chosen: Callable[[str], None], extensions: tuple[str, ...] = (),
          start: str | Path | None = None) -> int | str:
    def chosen(sender: int | str, app_data: dict) -> None:
        path = app_data.get("file_path_name", "") if isinstance(app_data, dict) else ""
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
            dpg.add_file_extension("{" + ",".join(extensions) + "}", color=(150, 255, 150, 255))
        if not directory:
            dpg.add_file_extension(".*")
    return dialog


def open_file(on_chosen: Callable[[str], None], file_kind: str = "", start: str | Path | None = None) -> int | str:
    """Pick a file; the filter comes from the parameter's `file_kind` (any file when unknown)."""
    return _open(False, on_chosen, EXTENSIONS.get(file_kind, ()), start)


def open_folder(on_chosen: Callable[[str], None], start: str | Path | None = None) -> int | str:
    return _open(True, on_chosen, (), start)
