"""The pieces that outputs and nodes share instead of writing them again: the frame worker and the failure memo."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from autolume_graph.failure_memo import FailureMemo
from autolume_graph.file_reads import BackgroundRead, ReadPool
from autolume_graph.node import NodeError
from autolume_graph.outputs.frame_worker import FrameWorker


def _frame(value: int, shape: tuple[int, ...] = (2, 2, 4)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def _copy_of(frame: np.ndarray):
    return lambda buf: np.copyto(buf, frame)


def _collect(worker: FrameWorker, gate: threading.Event, seen: list[int]) -> None:
    """A worker loop that waits for `gate` before each frame, so the test decides when it falls behind."""
    while (item := worker.next_frame()) is not None:
        gate.wait()
        seen.append(int(item[0][0, 0, 0]))
        worker.recycle(item[0])


def test_latest_wins_replaces_a_waiting_frame_and_counts_it() -> None:
    worker = FrameWorker("latest")
    for value in (1, 2, 3):  # no worker yet: each new frame replaces the one waiting
        assert worker.offer((2, 2, 4), _copy_of(_frame(value)))
    assert worker.dropped == 2
    seen: list[int] = []
    gate = threading.Event()
    gate.set()
    worker.start(lambda: _collect(worker, gate, seen))
    worker.close()
    assert seen == [3]
    assert not worker.offer((2, 2, 4), _copy_of(_frame(4)))  # closed: refused, not counted as dropped
    assert worker.dropped == 2


def test_a_bounded_queue_keeps_order_drops_when_full_and_drains_on_close() -> None:
    worker = FrameWorker("bounded", capacity=3)
    accepted = [worker.offer((2, 2, 4), _copy_of(_frame(v)), t=v) for v in range(5)]
    assert accepted == [True, True, True, False, False] and worker.dropped == 2
    seen: list[int] = []
    gate = threading.Event()
    gate.set()
    worker.start(lambda: _collect(worker, gate, seen))
    worker.close(drain=True)
    assert seen == [0, 1, 2]


def test_closing_without_draining_drops_the_queue_and_buffers_are_reused() -> None:
    worker = FrameWorker("discard", capacity=3)
    taken, gate = threading.Event(), threading.Event()
    seen: list[int] = []

    def run() -> None:
        while (item := worker.next_frame()) is not None:
            taken.set()
            gate.wait()
            seen.append(int(item[0][0, 0, 0]))

    worker.start(run)
    assert worker.offer((2, 2, 4), _copy_of(_frame(1)))
    assert taken.wait(5)  # the worker holds frame 1; frames 2 and 3 wait in the queue
    assert worker.offer((2, 2, 4), _copy_of(_frame(2))) and worker.offer((2, 2, 4), _copy_of(_frame(3)))
    worker.stop(drain=False)
    gate.set()
    worker.close()
    assert seen == [1] and worker.stopped
    again = FrameWorker("reuse", capacity=1)
    bufs: list[np.ndarray] = []
    again.offer((2, 2, 4), bufs.append)
    buf, _ = again.next_frame()
    again.recycle(buf)
    again.offer((2, 2, 4), bufs.append)
    assert bufs[0] is bufs[1]  # same size: the buffer is reused, not reallocated
    again.offer((4, 2, 4), bufs.append)  # full: dropped
    again.next_frame()
    again.offer((4, 2, 4), bufs.append)  # not recycled yet, and the only buffer: dropped too
    assert again.dropped == 2 and len(bufs) == 2


def test_a_failure_is_answered_until_its_inputs_change() -> None:
    memo = FailureMemo()
    assert memo.failure("a.pkl") is None and not memo
    assert memo.remember("a.pkl", "a.pkl: not a network pickle") == "a.pkl: not a network pickle"
    assert memo.failure("a.pkl") == "a.pkl: not a network pickle" and memo
    assert memo.failure("b.pkl") is None  # other inputs are tried
    memo.remember("b.pkl", "b failed")
    assert memo.failure("a.pkl") is None  # capacity 1: only the last attempt is remembered
    memo.forget()
    assert memo.failure("b.pkl") is None


def test_the_memo_is_bounded_and_keeps_the_newest() -> None:
    memo = FailureMemo(capacity=3)
    for i in range(5):
        memo.remember(("model.pkl", i), f"failed {i}")
    assert [memo.failure(("model.pkl", i)) for i in range(5)] == [None, None, "failed 2", "failed 3", "failed 4"]
    with pytest.raises(ValueError):
        FailureMemo(capacity=0)


def test_a_background_read_runs_once_per_key_and_keeps_its_failure(tmp_path: Path) -> None:
    calls: list[str] = []

    def read(path: str) -> str:
        calls.append(path)
        if not Path(path).exists():
            raise NodeError(f"{path}: no such file")
        return Path(path).read_text()

    pool = ReadPool("test-read", workers=1)
    good = tmp_path / "good.txt"
    good.write_text("ok")
    reader = BackgroundRead(pool, key=str(good))  # the saved path counts as read
    reader.start_for(str(good), "loading good.txt", read, str(good))
    assert not reader.pending and calls == []
    missing = str(tmp_path / "missing.txt")
    for _ in range(3):  # every frame asks; the file is read once
        reader.start_for(missing, "loading missing.txt", read, missing)
        reader.wait(5)
        try:
            reader.take()
        except NodeError:
            pass
    assert calls == [missing] and reader.status == f"failed: {missing}: no such file"
    reader.start_for(str(good), "loading good.txt", read, str(good))
    reader.wait(5)
    assert reader.take() == "ok" and calls == [missing, str(good)] and reader.status == ""
    pool.close(wait=True, timeout=5)
