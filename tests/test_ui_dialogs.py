"""The file picker, driven with real mouse and key events (xdotool) under a private Xvfb.

Dear PyGui's dialog joins the shown folder to a typed full path, and a bare `.*` filter swaps a typed
name's extension for `.*`; the picker must hand back what the user meant, and list our own model files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autolume_graph.gan.safe_format import SUFFIX

VIEWPORT = (900, 600)
DIALOG = (700, 420)  # dialogs._open's size; the dialog opens centred in the viewport

needs_input = pytest.mark.skipif(shutil.which("xdotool") is None or shutil.which("Xvfb") is None,
                                 reason="needs xdotool and Xvfb (.ci/run installs both)")


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
    from tests.ui_support import xvfb_display

    with xvfb_display("1000x700x24"):
        child = subprocess.run([sys.executable, __file__, str(folder), typed, str(int(any_filter)), str(shot)],
                               capture_output=True, text=True, timeout=60, env=dict(os.environ),
                               cwd=Path(__file__).resolve().parents[1])
    assert child.returncode == 0, child.stderr[-2000:]
    return json.loads(child.stdout.strip().splitlines()[-1])["chosen"]


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
    print(json.dumps(drive(sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4])))
