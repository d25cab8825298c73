"""Issue 17, item 2: no file a node is pointed at blocks the render thread, stalls it, or eats the machine.

Every file a node reads goes through `autolume_graph.file_reads`: regular files only, checked on the
descriptor that is read, a size cap per kind, archive members bounded before and while inflating, all
in a bounded pool off the render thread whose reads have deadlines. The show tests run the tiny
reference model on a started render thread with a real OSC server, bind the path parameters (paths
are not bound by default) and send the hostile paths as real UDP messages. Also here: the KeyframeLoop
count bound over OSC (item 3) and VectorLatent's save into the vectors folder (item 4).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from generator_graph import add, generator_graph
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.commands import SetBinding, SetParam
from autolume_graph.file_reads import INFLATE_LIMITS, FileRefused, ReadPool
from autolume_graph.gan.latent import VectorFileError, load_directions, save_vector
from autolume_graph.gan.safe_pickle import ModelFileError
from autolume_graph.gan.store import ModelStore
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.params import Binding
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session

REPO = Path(__file__).resolve().parents[1]
MAX_FRAME_GAP_S = 1.0  # a blocked read would stop frames for good; reading gigabytes would stall them for seconds
GiB = 1 << 30


# --- hostile files ---------------------------------------------------------------------------------


def zip_bomb(path: Path, inflated: int, declared: int, member: str = "comp.npy") -> Path:
    """An .npz of one member: an .npy header of (rows, 512) float32 then zeros, `inflated` bytes in all,
    whose records declare `declared`. Written as repeated deflate blocks, so a few MB on disk."""
    chunk = 1 << 20
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                "shape": (inflated // 2048, 512)})
    header = head.getvalue()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(header + bytes(chunk - len(header))) + deflate.flush(zlib.Z_FULL_FLUSH)
    zeros = deflate.compress(bytes(chunk)) + deflate.flush(zlib.Z_FULL_FLUSH)
    stream = first + zeros * (inflated // chunk - 1) + deflate.flush()
    name = member.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, 0, len(stream), declared, len(name), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, 0, len(stream), declared,
                          len(name), 0, 0, 0, 0, 0, 0) + name
    offset = len(local) + len(name) + len(stream)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
    path.write_bytes(local + name + stream + central + end)
    return path


def inflates_past(path: Path, limit: int) -> bool:
    """Whether the archive's deflate stream really gives more than `limit` bytes (so the bomb is one)."""
    data = path.read_bytes()
    start = 30 + struct.unpack("<H", data[26:28])[0]
    inflate, out = zlib.decompressobj(-15), 0
    for i in range(start, len(data), 1 << 16):
        while True:
            piece = inflate.decompress(inflate.unconsumed_tail or data[i:i + (1 << 16)], 1 << 24)
            out += len(piece)
            if out > limit:
                return True
            if not inflate.unconsumed_tail:
                break
    return False


@pytest.fixture
def hostile(tmp_path: Path) -> Callable[[str], str]:
    """Makes hostile paths by name: real FIFOs, devices, a directory, a 10 GB sparse .npy, zip bombs."""
    def make(kind: str) -> str:
        target = tmp_path / f"{kind}.npy"
        if kind == "fifo":
            os.mkfifo(target)
        elif kind == "directory":
            target.mkdir()
        elif kind == "oversized":
            with open(target, "wb") as handle:
                handle.truncate(10 * GiB)  # sparse: costs nothing on disk
        elif kind == "bomb":
            target = zip_bomb(tmp_path / "bomb.npz", 2 * GiB, 2 * GiB)
        elif kind == "lying_bomb":  # declares less than the limit, inflates to 2 GB
            target = zip_bomb(tmp_path / "lying.npz", 2 * GiB, INFLATE_LIMITS["directions"] - (1 << 20))
        else:
            return {"dev_zero": "/dev/zero", "dev_stdin": "/dev/stdin"}[kind]
        return str(target)
    return make


def test_an_archive_of_many_members_is_refused_before_they_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(3000):
            archive.writestr(f"m{i}.npy", b"")
    with pytest.raises(VectorFileError, match="too many members"):
        load_directions(path, 512)


def test_the_zip_bombs_are_real(tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "b.npz", 256 << 20, 256 << 20)
    assert bomb.stat().st_size < 2 << 20 and inflates_past(bomb, 200 << 20)


# --- a running show ------------------------------------------------------------------------------


def _show_graph(reference_dir: Path, latent: str, **latent_values) -> Graph:
    """ModelLoader -> latent -> Mapping -> AdjustInput -> Generate -> Preview, the model loaded."""
    graph = Graph()
    loader = add(graph, "ModelLoader", path=str(reference_dir / "sg2_64_tiny.pkl"), device="cpu")
    source = add(graph, latent, **latent_values)
    mapping, adjust = add(graph, "Mapping"), add(graph, "AdjustInput", slider0=1.5)
    generate, preview = add(graph, "Generate"), add(graph, "Preview")
    for edge in (Edge(loader.id, "model", source.id, "model"), Edge(loader.id, "model", mapping.id, "model"),
                 Edge(loader.id, "model", generate.id, "model"), Edge(source.id, "z", mapping.id, "latent"),
                 Edge(mapping.id, "w", adjust.id, "w"), Edge(adjust.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    loader.prepare("cpu")
    return graph


class Show:
    """A session on a started render thread (30 fps) with OSC on 127.0.0.1; watches the frame counter."""

    def __init__(self, graph: Graph, tmp_path: Path) -> None:
        self.runtime = Runtime(graph, fps=30)
        self.session = Session(self.runtime, osc_host="127.0.0.1", osc_port=0, oscquery_port=0,
                               preset_dir=tmp_path / "presets")
        self.session.start_services()
        self.client = SimpleUDPClient(*self.session.osc_server.address)
        self.graph = graph

    def node(self, type_name: str) -> Node:
        return next(n for n in self.graph.nodes.values() if n.type_name == type_name)

    def bind(self, node: Node, param: str) -> str:
        """Bind a path parameter to OSC, as a user would (paths are not bound by default)."""
        address = f"/{node.name}/{param}"
        assert not node.binding(param).enabled
        self.runtime.call(SetBinding(node.id, param, Binding(True, address, "x")))
        return address

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Until a picture is up and no node is loading anything."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.runtime.snapshot
            if "preview" in snap.published and not any(s.status.startswith("loading") for s in snap.nodes.values()):
                return
            time.sleep(0.02)
        raise AssertionError("the show did not settle")

    def watch(self, until: Callable[[], bool], timeout: float = 20.0, after_s: float = 0.5) -> float:
        """Poll until `until()` (then `after_s` more); the longest time the frame counter stood still."""
        deadline = time.monotonic() + timeout
        last_frame, last_change, longest, done_at = self.runtime.snapshot.frame, time.monotonic(), 0.0, None
        while True:
            now = time.monotonic()
            frame = self.runtime.snapshot.frame
            if frame != last_frame:
                longest = max(longest, now - last_change)
                last_frame, last_change = frame, now
            if done_at is None and until():
                done_at = now
            if done_at is not None and now - done_at >= after_s:
                return max(longest, now - last_change)
            assert now < deadline, "the node never reported the read"
            time.sleep(0.002)

    def close(self) -> None:
        self.session.close()
        self.runtime.close()


@pytest.fixture
def show(reference_dir: Path, tmp_path: Path) -> Iterator[Show]:
    running = Show(_show_graph(reference_dir, "VectorLatent"), tmp_path)
    running.runtime.start()
    running.wait_settled()
    yield running
    running.close()


EXPECTED = {"fifo": "FIFO", "dev_zero": "a device, not a regular file", "directory": "a directory",
            "dev_stdin": "not a regular file", "oversized": "more than the 4.0 MB", "bomb": "an .npz archive"}


def test_vector_paths_that_would_block_or_stall_leave_the_show_running(show: Show, hostile) -> None:
    vector_node = show.node("VectorLatent")
    address = show.bind(vector_node, "path")
    vector, picture = vector_node.values["vector"], show.runtime.snapshot.published["preview"]
    for kind, reason in EXPECTED.items():
        path = hostile(kind)
        before = show.runtime.snapshot.frame
        show.client.send_message(address, path)
        time.sleep(0.05)
        show.client.send_message(f"/{vector_node.name}/load", 1)
        gap = show.watch(lambda: path in vector_node.error)  # noqa: B023 - used before the next case
        assert reason in vector_node.error and "\n" not in vector_node.error, (kind, vector_node.error)
        assert vector_node.status.startswith("failed: ") and reason in vector_node.status
        assert gap < MAX_FRAME_GAP_S, (kind, gap)
        assert show.runtime.snapshot.frame > before + 5, kind
        assert vector_node.values["vector"] is vector and show.runtime.snapshot.published["preview"] is picture
    assert show.runtime.running and not show.runtime.snapshot.engine_errors


def test_direction_files_that_would_block_or_inflate_leave_the_sliders_working(show: Show, hostile) -> None:
    adjust = show.node("AdjustInput")
    address = show.bind(adjust, "directions_path")
    directions, picture = adjust.values["directions"], show.runtime.snapshot.published["preview"]
    cases = {"fifo": "FIFO", "bomb": "inflates past the 16.0 MB", "lying_bomb": "cannot read member comp.npy"}
    for kind, reason in cases.items():
        path = hostile(kind)
        show.client.send_message(address, path)
        gap = show.watch(lambda: path in adjust.status)  # noqa: B023 - used before the next case
        assert reason in adjust.status, (kind, adjust.status)
        assert gap < MAX_FRAME_GAP_S, (kind, gap)
        assert adjust.values["directions"] is directions and show.runtime.snapshot.published["preview"] is picture
    show.client.send_message(f"/{adjust.name}/slider0", -1.0)  # the sliders still move the picture
    show.watch(lambda: show.runtime.snapshot.published["preview"] is not picture, after_s=0.0)
    assert adjust.error == ""


def test_keyframe_count_over_osc_is_clipped_and_frames_go_on(reference_dir: Path, tmp_path: Path) -> None:
    running = Show(_show_graph(reference_dir, "KeyframeLoop", time=2.0), tmp_path)
    loop = running.node("KeyframeLoop")
    running.runtime.start()
    try:
        running.wait_settled()
        before = running.runtime.snapshot.frame
        running.client.send_message(f"/{loop.name}/count", 1_000_000)
        running.client.send_message(f"/{loop.name}/index", 10**9)
        gap = running.watch(lambda: loop.values["count"] != 4)
        assert (loop.values["count"], loop.values["index"]) == (256, 255)
        huge = [{"seed": i} for i in range(1_000_000)]  # a list as long as any file could carry
        running.runtime.call(SetParam(loop.id, "keyframes", huge))
        gap = max(gap, running.watch(lambda: loop.values["keyframes"] is huge, after_s=1.0))
        assert gap < MAX_FRAME_GAP_S and loop.error == "" and running.runtime.snapshot.frame > before + 5
    finally:
        running.close()


# --- the pool and the model store --------------------------------------------------------------------


def _read_fifo_blocking(path: Path) -> bytes:
    """What a read on a hung file system does: wait in the kernel (here: for a FIFO's writer)."""
    with open(path, "rb") as handle:
        return handle.read()


def test_reads_stuck_in_the_kernel_cannot_starve_the_pool(tmp_path: Path) -> None:
    pool = ReadPool("test-read", workers=1, spare=1, max_stuck=2, deadline=0.5, patience=0.1)
    fifos = [tmp_path / f"stuck{i}" for i in range(2)]
    for fifo in fifos:
        os.mkfifo(fifo)
    stuck = [pool.submit(_read_fifo_blocking, fifo, name=fifo.name) for fifo in fifos]
    for future, fifo in zip(stuck, fifos, strict=True):
        with pytest.raises(FileRefused, match=f"{fifo.name}: read did not finish within 0.5 s"):
            future.result(timeout=5)
    good = [pool.submit(lambda i=i: i * i) for i in range(10)]
    assert [f.result(timeout=5) for f in good] == [i * i for i in range(10)]
    assert pool.thread_count <= 1 + 1 + 2
    for fifo in fifos:  # the kernel lets go: the written-off threads end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    deadline = time.monotonic() + 5
    while pool.thread_count > 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.thread_count <= 2
    pool.close()


def test_more_stuck_reads_than_the_pool_holds_fail_in_time_and_threads_stay_bounded(tmp_path: Path) -> None:
    pool = ReadPool("test-read", workers=1, spare=1, max_stuck=1, deadline=0.4, patience=0.05)
    fifos = [tmp_path / f"stuck{i}" for i in range(6)]
    for fifo in fifos:
        os.mkfifo(fifo)
    futures = [pool.submit(_read_fifo_blocking, fifo) for fifo in fifos]
    peak = 0
    deadline = time.monotonic() + 10
    while not all(f.done() for f in futures):
        peak = max(peak, pool.thread_count)
        assert time.monotonic() < deadline, "a read's future was never answered"
        time.sleep(0.005)
    assert all(isinstance(f.exception(), FileRefused) for f in futures)
    assert peak <= 1 + 1 + 1
    for fifo in fifos:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader is waiting on this one
            pass
    pool.close()


def test_fifo_models_do_not_keep_a_good_model_from_loading(reference_dir: Path, tmp_path: Path) -> None:
    store = ModelStore(workers=2)
    try:
        for name in ("a.pkl", "b.pkl"):
            os.mkfifo(tmp_path / name)
            with pytest.raises(ModelFileError, match=f"{name}: a FIFO \\(named pipe\\), not a regular file"):
                store.get(str(tmp_path / name), timeout=5)
        (tmp_path / "big.pkl").write_bytes(b"")
        os.truncate(tmp_path / "big.pkl", 5 * GiB)
        with pytest.raises(ModelFileError, match="more than the 4096.0 MB"):
            store.get(str(tmp_path / "big.pkl"), timeout=5)
        assert store.get(str(reference_dir / "sg2_64_tiny.pkl"), timeout=60).img_resolution == 64
    finally:
        store.close()


_PEAK = """
import sys
from autolume_graph.gan.latent import VectorFileError, load_directions, read_vector_array

def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to what is resident now
before = status_kb("VmRSS")
for path in sys.argv[1:]:
    for read in (read_vector_array, lambda p: load_directions(p, 512)):
        try:
            read(path)
        except VectorFileError as exc:
            print(exc)
print("PEAK_KB", status_kb("VmHWM") - before)
"""
PEAK_BOUND_MB = 64  # 4 x the 16 MB a directions archive may inflate to (the inflated bytes are joined once)


def test_peak_memory_reading_hostile_files_is_bounded(hostile) -> None:
    paths = [hostile(kind) for kind in ("bomb", "lying_bomb", "oversized", "fifo", "dev_zero")]
    result = subprocess.run([sys.executable, "-c", _PEAK, *paths], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(paths) + 1, result.stdout  # every read refused in one line
    peak_mb = int(lines[-1].split()[1]) / 1024
    print(f"peak RSS growth reading {len(paths)} hostile files twice: {peak_mb:.1f} MB (bound {PEAK_BOUND_MB})")
    assert peak_mb < PEAK_BOUND_MB


# --- saving -----------------------------------------------------------------------------------------------


def test_vector_save_writes_only_new_files_in_the_vectors_folder(reference_dir: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path / "work"))
    victim = tmp_path / "elsewhere" / "precious.npy"
    victim.parent.mkdir()
    victim.write_bytes(b"not to be touched")
    graph = generator_graph(reference_dir, latent="VectorLatent", path=str(victim))
    node = next(n for n in graph.nodes.values() if n.type_name == "VectorLatent")
    assert not node.binding("save").enabled and not node.binding("path").enabled and node.params["save"].writes
    runtime = Runtime(graph, fps=30, fixed_step=True)
    saved = []
    for path in (str(victim), str(victim), "../../escape/../precious.npy"):
        node.set_value("path", path)
        node.set_value("save", True)
        runtime.step()
        deadline = time.monotonic() + 10
        while not node.status.startswith("saved") and time.monotonic() < deadline:
            time.sleep(0.005)
            runtime.step()
        saved.append(Path(node.status.removeprefix("saved ")))
    vectors = tmp_path / "work" / "vectors"
    assert saved == [vectors / "precious.npy", vectors / "precious-1.npy", vectors / "precious-2.npy"]
    assert victim.read_bytes() == b"not to be touched"
    assert sorted(p.name for p in vectors.iterdir()) == ["precious-1.npy", "precious-2.npy", "precious.npy"]
    np.testing.assert_array_equal(np.load(saved[0]), node.values["vector"])
    runtime.close()


def test_a_save_never_replaces_a_file_that_appears_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "v.npy"
    barrier = threading.Barrier(8)

    def save() -> Path:
        barrier.wait()
        return save_vector(target, np.ones((1, 4), np.float32), overwrite=False)

    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(save())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 8 and all(p.exists() for p in results)
