"""Promises 4 and 6 for outputs: a graph file or a message names no place to write, and a killed
render cannot lose the previous video.

Real files, the real encoder (PyAV), real UDP on 127.0.0.1, a real `autolume-graph render` process
SIGKILLed mid-render. The working folder is `$AUTOLUME_WORKDIR` = tmp/work and the current folder
tmp/cwd, so a relative name that escaped would land beside them, an absolute one at its own place.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
from generator_graph import add, attach, generator_graph
from killed_save import save_killed
from pythonosc.udp_client import SimpleUDPClient
from test_model_files import TINY

from autolume_graph import workspace
from autolume_graph.atomic import remove_stale_temps, temp_beside
from autolume_graph.cli import main
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.graph import Edge
from autolume_graph.node import CookContext
from autolume_graph.outputs.recorder import VideoRecorder, write_png
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from autolume_graph.session import Session
from nodes.model_mix import ModelMix

TESTS = Path(__file__).resolve().parent
ABSOLUTE = Path(f"/tmp/autolume-abs-{uuid.uuid4().hex}")  # outside tmp_path: must never appear


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    """The working folder (recordings/, models/ under it); the current folder, HOME and the program's
    cache (its recent-models list) beside it."""
    for name in ("work", "cwd", "home"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path / "work"))
    monkeypatch.delenv("AUTOLUME_MODELS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    yield tmp_path / "work"
    assert not ABSOLUTE.exists()


def _files(root: Path) -> list[Path]:
    """Every file under `root` but the program's cache."""
    return sorted(p for p in root.rglob("*") if (p.is_file() or p.is_symlink()) and "cache" not in p.parts)


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record(runtime: Runtime, session: Session, node, frames: int = 4) -> None:
    """Record `frames` frames through the show's own /autolume/record, then wait for the file."""
    session.control.system["/autolume/record"]((1,))
    for _ in range(frames):
        runtime.step()
    session.control.system["/autolume/record"]((0,))
    deadline = time.monotonic() + 30
    while not node.status.startswith("saved") and time.monotonic() < deadline:
        runtime.step()
        time.sleep(0.01)
    assert node.status.startswith("saved"), node.error or node.status


HOSTILE = [  # (video path, snapshot_dir) as a graph file or a message would give them
    ("../../x/evil.mp4", "/etc"),
    (f"{ABSOLUTE}/evil.mp4", str(ABSOLUTE)),
    ("~/evil-{time}.mp4", "../../outside"),
    ("/dev/evil.mp4", "../snaps/../../x"),
]


@pytest.mark.parametrize(("path", "snapshot_dir"), HOSTILE)
def test_recorder_names_from_a_graph_file_or_a_message_write_only_in_the_recordings_folder(
        reference_dir: Path, work: Path, tmp_path: Path, path: str, snapshot_dir: str) -> None:
    graph = generator_graph(reference_dir, anim=True)
    attach(graph, "Recorder", path=path, snapshot_dir=snapshot_dir)
    save_graph(graph, tmp_path / "show.agraph")
    graph = load_graph(tmp_path / "show.agraph")  # the names come from the file
    graph.node("modelloader").prepare("cpu")
    node = next(n for n in graph.nodes.values() if n.type_name == "Recorder")
    assert (node.values["path"], node.values["snapshot_dir"]) == (path, snapshot_dir)
    runtime = Runtime(graph, fps=20, fixed_step=True)
    session = Session(runtime, osc=False, preset_dir=tmp_path / "presets")
    try:
        _record(runtime, session, node)
        session.control.system["/autolume/snapshot"](())
        runtime.step()
        assert node.error == "" and node.status.startswith("saved evil")
        node.set_value("path", "../../../x/evil2.mp4")  # then as a message sets it (set_value is what OSC calls)
        _record(runtime, session, node)
    finally:
        session.close()
    recordings = work / "recordings"
    written = _files(tmp_path)
    videos = [p for p in written if p.suffix == ".mp4"]
    assert [p.parent for p in written if p.suffix == ".mp4"] == [recordings, recordings]
    assert [p.name.startswith("evil") for p in videos] == [True, True]
    assert [_frames(p) for p in videos] == [4, 4]
    [snapshot] = [p for p in written if p.suffix == ".png"]
    assert snapshot.is_relative_to(recordings) and snapshot.parent != recordings  # its sub-folder, inside
    assert written == sorted([*videos, snapshot, tmp_path / "show.agraph"])  # nothing anywhere else
    for escaped in (tmp_path.parent / "x", tmp_path.parent.parent / "x", Path("/dev/evil.mp4"),
                    Path("/etc/evil.png")):
        assert not escaped.exists()


def test_write_parameters_are_not_bound_to_osc_but_the_show_controls_work(reference_dir: Path, work: Path,
                                                                            tmp_path: Path) -> None:
    graph = generator_graph(reference_dir, anim=True)
    node = attach(graph, "Recorder")
    mixer = add(graph, "ModelMix")
    writing = {node: ("path", "record", "snapshot", "snapshot_dir"), mixer: ("save", "save_name")}
    for owner, names in writing.items():
        for name in names:
            assert owner.params[name].writes and not owner.binding(name).enabled, name
    session = Session(Runtime(graph, fps=0), osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                      preset_dir=tmp_path / "presets")
    session.start_services()
    runtime = session.runtime
    client = SimpleUDPClient(*session.osc_server.address)
    try:
        for name, value in (("path", f"{ABSOLUTE}/osc.mp4"), ("snapshot_dir", "/etc"), ("record", 1),
                            ("snapshot", 1)):
            client.send_message(node.binding(name).address, value)
        client.send_message(mixer.binding("save_name").address, "../../evil")
        client.send_message("/autolume/record", 1)  # the show's own control: applied
        deadline = time.monotonic() + 5
        while node.recorder is None and time.monotonic() < deadline:
            runtime.step()
            time.sleep(0.005)
        assert node.recorder is not None, node.error
        for _ in range(3):
            runtime.step()
        client.send_message("/autolume/record", 0)
        deadline = time.monotonic() + 30
        while not node.status.startswith("saved") and time.monotonic() < deadline:
            runtime.step()
            time.sleep(0.01)
    finally:
        session.close()
    assert node.values["path"] == "autolume-{time}.mp4" and node.values["snapshot_dir"] == ""
    assert mixer.values["save_name"] == ""
    [video] = _files(work)
    assert video.parent == work / "recordings" and video.name.startswith("autolume-") and _frames(video) >= 3


def test_an_earlier_take_or_snapshot_is_never_overwritten(reference_dir: Path, work: Path, tmp_path: Path) -> None:
    recordings = work / "recordings"
    recordings.mkdir()
    (recordings / "take.mp4").write_bytes(b"an earlier take")
    (recordings / "take.png").write_bytes(b"an earlier snapshot")
    graph = generator_graph(reference_dir, anim=True)
    node = attach(graph, "Recorder", path="take.mp4")
    runtime = Runtime(graph, fps=20, fixed_step=True)
    session = Session(runtime, osc=False, preset_dir=tmp_path / "presets")
    try:
        _record(runtime, session, node)
        assert node.status.startswith("saved take-1.mp4")
        node.set_value("snapshot", True)
        runtime.step()
        node.set_value("path", "race.mp4")
        session.control.system["/autolume/record"]((1,))
        runtime.step()
        (recordings / "race.mp4").write_bytes(b"appeared while recording")  # taken before the take ends
        _record(runtime, session, node)
    finally:
        session.close()
    assert (recordings / "take.mp4").read_bytes() == b"an earlier take"
    assert (recordings / "take.png").read_bytes() == b"an earlier snapshot"
    assert (recordings / "race.mp4").read_bytes() == b"appeared while recording"
    assert node.status.startswith("saved race-1.mp4")
    assert sorted(p.name for p in recordings.iterdir()) == ["race-1.mp4", "race.mp4", "take-1.mp4", "take-1.png",
                                                           "take.mp4", "take.png"]
    assert _frames(recordings / "take-1.mp4") == 4


def test_loading_a_graph_never_starts_a_write(reference_dir: Path, work: Path, tmp_path: Path) -> None:
    graph = generator_graph(reference_dir, anim=True)
    attach(graph, "Recorder", record=True, snapshot=True)
    loader, mapping = (next(n for n in graph.nodes.values() if n.type_name == kind) for kind in ("ModelLoader",
                                                                                                 "Mapping"))
    mixer, generate = add(graph, "ModelMix", save_name="from-the-file", save=True), add(graph, "Generate")
    for edge in (Edge(loader.id, "model", mixer.id, "a"), Edge(loader.id, "model", mixer.id, "b"),
                 Edge(mixer.id, "model", generate.id, "model"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", add(graph, "Preview").id, "image")):
        graph.add_edge(edge)
    save_graph(graph, tmp_path / "show.agraph")
    loaded = load_graph(tmp_path / "show.agraph")
    loaded.node("modelloader").prepare("cpu")
    runtime = Runtime(loaded, fps=20, fixed_step=True)
    try:
        for _ in range(8):
            runtime.step()
        time.sleep(0.5)  # a save in a worker would have landed by now
    finally:
        runtime.close()
    recorder = next(n for n in loaded.nodes.values() if n.type_name == "Recorder")
    assert recorder.values["record"] is False and recorder.recorder is None
    assert _files(work) == []


@pytest.mark.parametrize("name", ["../../evil", f"{ABSOLUTE}/evil.safetensors", "~/evil"])
def test_model_mix_saves_only_into_the_models_folder(work: Path, tmp_path: Path, name: str) -> None:
    a, b = make_random_model(TINY, seed=1), make_random_model(TINY, seed=2)
    node = ModelMix()
    for _ in range(2):  # the same name twice: the second is a new file
        node.cook(CookContext(), {"a": a, "b": b}, {**node.values, "crossfade": 0.5, "save_name": name,
                                                    "save": True})
        deadline = time.monotonic() + 20
        while node.animating(node.values) and time.monotonic() < deadline:
            time.sleep(0.02)
            node.cook(CookContext(), {"a": a, "b": b}, {**node.values, "crossfade": 0.5})
    node.close()
    assert node.status.endswith("saved evil-1.safetensors"), node.status
    assert [p.relative_to(work).as_posix() for p in _files(tmp_path)] == ["models/evil-1.safetensors",
                                                                          "models/evil.safetensors"]
    assert not (tmp_path.parent / "evil.safetensors").exists()


def test_the_models_folder_is_the_one_the_model_store_lists(work: Path, tmp_path: Path, monkeypatch) -> None:
    from autolume_graph.gan.store import models_dir

    monkeypatch.setenv("AUTOLUME_MODELS", str(tmp_path / "mine"))
    assert workspace.folder("models") == models_dir().resolve() == tmp_path / "mine"


# --- outputs that cannot lose the previous good file -----------------------------------------------
def _render(graph_path: Path, out: Path, seconds: str) -> list[str]:
    return ["render", str(graph_path), "--seconds", seconds, "--fps", "10", "--out", str(out)]


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial.mp4"))


def test_a_killed_render_leaves_the_previous_video_and_its_temp_goes_with_the_next(
        reference_dir: Path, tmp_path: Path) -> None:
    graph_path, out = tmp_path / "show.agraph", tmp_path / "videos" / "show.mp4"
    save_graph(generator_graph(reference_dir, anim=True), graph_path)
    assert main(_render(graph_path, out, "0.5")) == 0
    before = _sha(out)
    child = subprocess.Popen([sys.executable, "-m", "autolume_graph.cli", *_render(graph_path, out, "3600")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(p.stat().st_size > 0 for p in _temps(out.parent)):
            assert child.poll() is None, "the render ended before it was killed"
            time.sleep(0.05)
        time.sleep(1.0)  # the first frame is encoded once the file has its header: some dozens more
        assert child.poll() is None, "the render ended before it was killed"
        [temp] = _temps(out.parent)
        assert temp.stat().st_size > 0, "the render wrote no frames in time"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert _sha(out) == before and _frames(out) == 5  # byte-identical, still the old video
    assert str(child.pid) in temp.name
    assert main(_render(graph_path, out, "0.3")) == 0  # the next start removes the dead render's temp
    assert _temps(out.parent) == [] and sorted(p.name for p in out.parent.iterdir()) == ["show.mp4"]
    assert _sha(out) != before and _frames(out) == 3


def test_a_failed_or_interrupted_recording_leaves_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "show.mp4"
    out.write_bytes(b"the previous good video")
    frame = np.full((32, 32, 3), 90, np.uint8)
    with pytest.raises(KeyboardInterrupt), VideoRecorder(out) as recorder:
        for i in range(5):
            recorder.write_every(frame, i / 10)
        raise KeyboardInterrupt
    empty = VideoRecorder(out)  # closed with no frame: nothing to replace the old file with
    empty.close()
    assert out.read_bytes() == b"the previous good video" and os.listdir(tmp_path) == ["show.mp4"]
    assert empty.error is None


def test_a_killed_png_write_keeps_the_previous_image(tmp_path: Path) -> None:
    path = tmp_path / "last.png"
    write_png(np.zeros((8, 8, 3), np.uint8), path)
    before = _sha(path)
    save_killed(f"import numpy as np\nfrom autolume_graph.outputs.recorder import write_png\np = {str(path)!r}",
                "write_png(np.full((8, 8, 3), 200, np.uint8), p)")
    assert _sha(path) == before
    [temp] = [p for p in tmp_path.iterdir() if p != path]
    assert temp.name.startswith(".last.png.") and temp.name.endswith(".partial.png")
    assert remove_stale_temps(tmp_path) == [temp] and os.listdir(tmp_path) == ["last.png"]


def test_stale_temps_are_those_whose_writer_is_gone(tmp_path: Path) -> None:
    target = tmp_path / "show.mp4"
    mine = temp_beside(target)  # this process: a live writer
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "from autolume_graph.atomic import temp_beside; print(temp_beside(sys.argv[2]))",
                           str(TESTS.parent), str(target)], capture_output=True, text=True, check=True)
    try:
        time.sleep(1.5)  # the live child must have started before its temp is written
        alive = target.with_name(f".show.mp4.{live.pid}.0123abcd.partial.mp4")
        alive.write_bytes(b"")
        reused = target.with_name(f".show.mp4.{live.pid}.4567cdef.partial.mp4")
        reused.write_bytes(b"")
        os.utime(reused, (time.time() - 3600, time.time() - 3600))  # older than the process with its PID
        others = [tmp_path / name for name in (".hidden", "show.partial.mp4", ".show.mp4.12.xyz.partial.mp4")]
        for other in others:
            other.write_bytes(b"not ours")
        removed = remove_stale_temps(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert sorted(removed) == sorted([Path(dead.stdout.strip()), reused])
    assert sorted(tmp_path.iterdir()) == sorted([mine, alive, *others])
