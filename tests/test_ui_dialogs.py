"""The file picker, driven with real mouse and key events (xdotool) under a private Xvfb.

Dear PyGui's dialog joins the shown folder to a typed full path, and a bare `.*` filter swaps a typed
name's extension for `.*`; the picker must hand back what the user meant, and list our own model files.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from autolume_graph.gan.safe_format import SUFFIX
from tests.ui_input import needs_input, print_scene, run_scene

VIEWPORT = (900, 600)
DIALOG = (700, 420)  # dialogs._open's size; the dialog opens centred in the viewport

def drive(folder: str, typed: str, any_filter: bool, shot: str) -> dict:
    """Open the model picker on `folder`, type `typed` into its name box, press OK; what it chose."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.ui.dialogs import open_file

    chosen: list[str] = []
    dpg.create_context()
    dpg.create_viewport(width=VIEWPORT[0], height=VIEWPORT[1], x_pos=0, y_pos=0)
    dpg.setup_dearpygui()
    dpg.show_viewport()
    open_file(chosen.append, "model", folder)
    left, bottom = (VIEWPORT[0] - DIALOG[0]) // 2, (VIEWPORT[1] + DIALOG[1]) // 2
    name_box, filters, ok = (left + 300, bottom - 43), (left + 620, bottom - 43), (left + 18, bottom - 18)

    def click(x: int, y: int) -> None:
        subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"], check=True)

    script = {20: lambda: dpg.output_frame_buffer(file=shot), 30: lambda: click(*name_box)}
    if any_filter:
        script.update({32: lambda: click(*filters), 36: lambda: click(filters[0], filters[1] + 38),
                       38: lambda: click(*name_box)})
    script.update({40: lambda: subprocess.run(["xdotool", "key", "ctrl+a", "BackSpace"], check=True),
                   42: lambda: subprocess.run(["xdotool", "type", "--delay", "20", typed], check=True),
                   60: lambda: click(*ok)})
    deadline = time.monotonic() + 20
    frame = 0
    while dpg.is_dearpygui_running() and not chosen and time.monotonic() < deadline:
        dpg.render_dearpygui_frame()
        script.get(frame, lambda: None)()
        frame += 1
    dpg.destroy_context()
    return {"chosen": chosen}


def run_driver(folder: Path, typed: str, any_filter: bool, shot: Path) -> list[str]:
    return run_scene("tests.test_ui_dialogs", str(folder), typed, str(int(any_filter)), str(shot), timeout=60)["chosen"]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name in ("net.pkl", f"mix{SUFFIX}", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


@needs_input
def test_a_typed_full_path_is_taken_as_typed(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "model.pkl"
    assert run_driver(folder, str(elsewhere), False, folder / "shot.png") == [str(elsewhere)]


@needs_input
def test_a_typed_name_is_in_the_shown_folder_and_our_model_files_are_listed(folder: Path) -> None:
    assert run_driver(folder, f"mix{SUFFIX}", False, folder / "shot.png") == [str(folder / f"mix{SUFFIX}")]


@needs_input
def test_the_any_file_filter_adds_nothing_to_the_name(folder: Path) -> None:
    assert run_driver(folder, "notes.txt", True, folder / "shot.png") == [str(folder / "notes.txt")]


def test_the_model_filter_lists_pickles_and_our_model_files() -> None:
    from autolume_graph.ui.dialogs import EXTENSIONS

    assert set(EXTENSIONS["model"][1]) == {".pkl", SUFFIX}


if __name__ == "__main__":
    print_scene(lambda folder, typed, any_filter, shot: drive(folder, typed, any_filter == "1", shot))
