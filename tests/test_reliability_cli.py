"""The command line ends with its true exit status, finishes its outputs on Ctrl+C and SIGTERM, keeps at
most a frame in memory for `run --out`, and answers every user mistake with one line and exit status 2.

Every check runs the real CLI as a subprocess on the shipped default graph (NDIOut included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from autolume_graph.outputs.frames import HostFrame
from autolume_graph.outputs.run_out import LastImage, NpyStream

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # several runs share two cores
PARALLEL_RUNS = 3


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autolume_graph.cli", *args]


def cli(*args: str, cwd: Path = REPO, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout)


def _run_to_sink(i: int, tmp_path: Path) -> tuple[int, str, str]:
    """Run `i` of the exit-status check: frames, stdout sink and OSC vary with `i`; (status, stdout, stderr)."""
    frames = (1, 2, 3, 5)[i % 4]
    osc = ["--osc-port", "0", "--oscquery-port", "0"] if i % 5 == 0 else ["--no-osc"]
    args = command("run", "--frames", str(frames), "--fps", "0", "--device", "cpu", "--ndi-name",
                   f"agtest-cli-{os.getpid()}-{i}", *osc)
    sink = ("pipe", "file", "null")[i % 3]
    if sink == "pipe":
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=180)
        return proc.returncode, proc.stdout, proc.stderr
    target = tmp_path / f"stdout-{i}.txt" if sink == "file" else Path(os.devnull)
    with open(target, "w") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=ENV,
                              timeout=180)
    return proc.returncode, target.read_text() if sink == "file" else "", proc.stderr


def test_run_on_the_default_graph_ends_with_status_0_every_time(tmp_path):
    """20 short runs, NDI sender included, stdout to a pipe, a file and /dev/null: each ends with 0, no abort."""
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        results = list(pool.map(lambda i: _run_to_sink(i, tmp_path), range(20)))
    for i, (status, stdout, stderr) in enumerate(results):
        assert status == 0 and "terminate called" not in stderr, (i, status, stderr)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines[0].startswith("preparing") and lines[1].startswith("running default"), (i, stderr)
        assert len(lines) == 2, f"run {i} reported an error (NDI not sending?): {stderr}"
        if i % 3 != 2:  # pipe and file: the summary line arrived whole
            assert f"{(1, 2, 3, 5)[i % 4]} frames in" in stdout, (i, stdout)


def _signal_when_working(args: list[str], cwd: Path, marker: bytes, signum: int) -> tuple[int, str, float]:
    """Start the CLI with `args`, send `signum` a second after `marker` shows on stderr (it is making frames);
    (status, stderr, seconds the stop took)."""
    proc = subprocess.Popen(command(*args), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while marker not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk and time.monotonic() < deadline, seen.decode(errors="replace")
            seen += chunk
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=60)
        return proc.returncode, (seen + rest).decode(errors="replace"), time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_during_run_out_mp4_leaves_a_playable_video(tmp_path, signum, status):
    """The show stops after its current frame, the video is finished and moved into place, nothing else left."""
    (tmp_path / "show.mp4").write_bytes(b"an older take")
    args = ["run", "--fps", "10", "--no-osc", "--device", "cpu", "--ndi-name", f"agtest-cli-{os.getpid()}-{signum}",
            "--out", "show.mp4"]
    code, stderr, took = _signal_when_working(args, tmp_path, b"\rframe ", signum)
    assert code == status, stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr
    with av.open(str(tmp_path / "show.mp4")) as video:
        frames = sum(1 for _ in video.decode(video=0))
    assert frames > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show.mp4"]  # no temporary file left
    assert took < 30, f"the orderly stop took {took:.1f} s"


def test_sigterm_during_render_keeps_the_earlier_video(tmp_path):
    """Outside a show a signal unwinds the command (the runtime lets it through): status 143, one line."""
    (tmp_path / "loop.mp4").write_bytes(b"the earlier render")
    args = ["render", "default", "--seconds", "600", "--fps", "10", "--device", "cpu", "--out", "loop.mp4"]
    code, stderr, took = _signal_when_working(args, tmp_path, b" frames, ", signal.SIGTERM)
    assert code == 143 and stderr.split("\n")[-2] == "autolume-graph: stopped by SIGTERM", stderr
    assert "Traceback" not in stderr
    assert (tmp_path / "loop.mp4").read_bytes() == b"the earlier render"
    assert [p.name for p in tmp_path.iterdir()] == ["loop.mp4"]
    assert took < 30, f"stopping took {took:.1f} s"


def test_a_killed_run_out_npy_leaves_the_old_file_and_the_next_run_cleans_up(tmp_path):
    old = tmp_path / "frames.npy"
    old.write_bytes(b"the previous good file")
    args = ["run", "--fps", "10", "--no-osc", "--device", "cpu", "--out", "frames.npy"]
    code, stderr, _ = _signal_when_working(args, tmp_path, b"\rframe ", signal.SIGKILL)
    assert code == -signal.SIGKILL, stderr
    assert old.read_bytes() == b"the previous good file"
    assert len(list(tmp_path.iterdir())) == 2  # and the killed run's temporary file
    proc = cli("run", "--frames", "2", "--fps", "0", "--no-osc", "--device", "cpu", "--out", "frames.npy",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.load(old).shape == (2, 256, 256, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["frames.npy"]


def test_a_full_disk_under_run_out_is_one_line_and_the_old_file_stays(tiny_disk):
    old = tiny_disk / "frames.npy"
    old.write_bytes(b"the previous good file")
    proc = cli("run", "--frames", "8", "--fps", "0", "--no-osc", "--device", "cpu", "--out", str(old),
               cwd=tiny_disk.parent)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("autolume-graph")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
    assert old.read_bytes() == b"the previous good file"
    assert [p.name for p in tiny_disk.iterdir()] == ["frames.npy"]  # the temporary file is gone


def _mistakes(tmp_path: Path, model: Path) -> list[list[str]]:
    garbage = tmp_path / "garbage.agraph"
    garbage.write_bytes(b"\x00\x01 not a graph")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    run = ["run", "--frames", "1", "--no-osc", "--device", "cpu"]
    cases = [  # refused by argparse (cheap), then by the command itself
        ["run", "--osc-port", "99999"], ["run", "--osc-port", "-1"], ["run", "--oscquery-port", "65536"],
        ["run", "--fps", "nan"], ["run", "--fps", "-2"], ["run", "--frames", "-3"], ["run", "--frames", "two"],
        ["run", "--osc-allow", "10.0.0.0/33"], ["generate", str(model), "--psi", "inf", "--out", "a.png"],
        ["generate", str(model), "--seed", "-1", "--out", "a.png"], ["bench", "--frames", "0"],
        ["render", "default", "--seconds", "1", "--fps", "0", "--out", "r.mp4"],
        ["run", str(garbage)], ["run", str(tmp_path / "missing.agraph")],
        [*run, "--out", "frames.gif"], [*run, "--out", str(a_file / "frames.npy")],
        ["generate", str(model), "--out", "a.gif"], ["generate", str(model), "--psi", "3.4e38", "--out", "a.png"],
        ["generate", str(model), "--out", str(a_file / "a.png")],
    ]
    if not torch.cuda.is_available():
        cases.append([*run, "--device", "cuda"])
    return cases


def test_every_user_mistake_is_one_line_and_status_2(tmp_path, reference_dir):
    cases = _mistakes(tmp_path, reference_dir / "sg2_64_tiny.pkl")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: cli(*args, cwd=tmp_path), cases))
    for args, proc in zip(cases, results, strict=True):
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("autolume-graph")]
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and len(errors) == 1, (args, proc.stderr)
        assert all(line.startswith(("preparing", "running")) for line in lines if line not in errors), (args, lines)
    assert not (tmp_path / "a.png").exists()  # a refused psi writes no (black) picture


def test_generate_writes_jpeg(tmp_path, reference_dir):
    proc = cli("generate", str(reference_dir / "sg2_64_tiny.pkl"), "--seed", "3", "--out", str(tmp_path / "a.jpg"))
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "a.jpg") as image:
        assert image.format == "JPEG" and image.size == (64, 64)
        assert np.asarray(image).std() > 5
    assert [p.name for p in tmp_path.iterdir()] == ["a.jpg"]


def _frames(count: int, size: int = 256) -> Iterator[HostFrame]:
    """`count` distinct BGRX frames in 3 reused buffers, as the converter hands them over."""
    buffers = [np.full((size, size, 4), 255, np.uint8) for _ in range(3)]
    for i in range(count):
        buf = buffers[i % 3]
        buf[..., :3] = i % 251
        yield HostFrame(buf, None)


def _peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


FRAME_BYTES = 256 * 256 * 3


def test_run_out_png_keeps_only_the_last_frame_in_memory(tmp_path):
    out = LastImage(tmp_path / "last.png", "PNG")
    frames = 300  # ~59 MB if every frame were kept

    def write_all() -> None:
        for i, frame in enumerate(_frames(frames)):
            out.write(frame, i / 30)

    assert _peak_bytes(write_all) < 8 * FRAME_BYTES
    out.close()
    with Image.open(tmp_path / "last.png") as image:
        assert np.asarray(image)[0, 0].tolist() == [(frames - 1) % 251] * 3


def test_run_out_npy_streams_frames_to_disk(tmp_path):
    out = NpyStream(tmp_path / "frames.npy")
    frames = 300

    def write_all() -> None:
        for i, frame in enumerate(_frames(frames)):
            out.write(frame, i / 30)
        out.write(HostFrame(np.full((100, 60, 4), 7, np.uint8), None), 10.0)  # another size: scaled to the first

    assert _peak_bytes(write_all) < 8 * FRAME_BYTES
    assert not (tmp_path / "frames.npy").exists()  # only the temporary file until closed
    out.close()
    stack = np.load(tmp_path / "frames.npy", mmap_mode="r")
    assert stack.shape == (frames + 1, 256, 256, 3) and stack.dtype == np.uint8
    assert [int(stack[i, 0, 0, 0]) for i in (0, 1, 250, 299, 300)] == [0, 1, 250, 299 % 251, 7]
    assert [p.name for p in tmp_path.iterdir()] == ["frames.npy"]


def test_run_out_npy_discarded_leaves_the_old_file(tmp_path):
    path = tmp_path / "frames.npy"
    path.write_bytes(b"old")
    out = NpyStream(path)
    for i, frame in enumerate(_frames(3)):
        out.write(frame, i / 30)
    out.close(discard=True)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["frames.npy"]


def test_run_frames_keeps_the_frame_rate_and_fixed_step_runs_free(tmp_path):
    """Issue 20 bug 2: `run --frames 6 --fps 5` takes at least the 1 s its five frame periods last."""
    paced = cli("run", "--frames", "6", "--fps", "5", "--no-osc", "--device", "cpu", cwd=tmp_path)
    assert paced.returncode == 0, paced.stderr
    seconds = float(paced.stdout.split(" frames in ")[1].split(" s")[0])
    assert seconds >= 0.95, paced.stdout


@pytest.mark.parametrize("suffix", ["npy", "mp4"])
def test_ctrl_c_during_run_out_without_frames_leaves_the_frames(tmp_path, suffix):
    """Issue 20 bug 1: stopped with SIGINT (no --frames), the file named in the summary exists and holds them."""
    args = ["run", "--fps", "10", "--no-osc", "--device", "cpu", "--out", f"take.{suffix}"]
    proc = subprocess.Popen(command(*args), cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    try:
        while b"\rframe " not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    frames = int(stdout.decode().split(" frames in ")[0].split()[-1])
    assert f"written to take.{suffix}" in stdout.decode() and frames > 0
    if suffix == "npy":
        assert np.load(tmp_path / "take.npy").shape[0] == frames
    else:
        with av.open(str(tmp_path / "take.mp4")) as video:
            assert sum(1 for _ in video.decode(video=0)) == frames
