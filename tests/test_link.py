"""Link: the Link node and a second, real Ableton Link peer (another process) agree on tempo, beat and phase.

Both run in a private network namespace made for the test, whose loopback carries multicast (Link's
discovery), so nothing is announced on the host's network. The test thread enters the namespace for the
test (setns acts on the calling thread; the Link thread the node starts, and the threads Link starts from
it, are made in it), the peer process is started in it with `ip netns exec`.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, NodeState
from autolume_graph.params import Input
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.types import PortType

CLONE_NEWNET = 0x40000000
QUANTUM = 4.0

PEER = """
import asyncio, json, sys, threading, time
from aalink import Link

asked = []

def read_stdin():
    for line in sys.stdin:
        asked.append(line.split())
    asked.append(["quit"])

async def main():
    link = Link(float(sys.argv[1]))
    link.quantum = float(sys.argv[2])
    link.start_stop_sync_enabled = True
    link.enabled = True
    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        while asked:
            what = asked.pop(0)
            if what[0] == "tempo":
                link.tempo = float(what[1])
            elif what[0] in ("play", "stop"):
                link.playing = what[0] == "play"
            elif what[0] == "quit":
                link.enabled = False
                return
        beat, bpm = link.beat, link.tempo
        print(json.dumps({"at": time.monotonic(), "beat": beat, "bpm": bpm, "peers": link.num_peers,
                          "playing": link.playing}), flush=True)
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


@pytest.fixture
def private_network() -> Iterator[str]:
    """A network namespace with multicast routed on its loopback; the test thread is in it meanwhile."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a private network namespace")
    name = f"agtest-link-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {made.stderr.strip()}")
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for command in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                        ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name, *command], check=True, capture_output=True)
        _setns(f"/run/netns/{name}")
        yield name
    finally:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.setns(home, CLONE_NEWNET) == 0, "could not go back to the host's network namespace"
        os.close(home)
        subprocess.run(["ip", "netns", "del", name], check=True, capture_output=True)


class Peer:
    """Another Link app: a process of its own, told what to do on stdin, saying what it sees on stdout."""

    def __init__(self, netns: str, bpm: float) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-c", PEER, str(bpm), str(QUANTUM)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.seen: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.seen = json.loads(line)

    def beat_at(self, now: float) -> float:
        seen = self.seen
        return seen["beat"] + (now - seen["at"]) * seen["bpm"] / 60.0

    def ask(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        try:
            self.ask("quit")
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(5)


class Record(Node):
    """Test sink: the Link node's outputs on the last frame, and the frames a bar started."""

    sink = True
    time_dependent = True
    inputs = {port: Input(PortType.ANY) for port in ("bpm", "beat", "phase", "peers", "bar", "playing")}

    def reset(self) -> None:
        self.last: dict[str, Any] = {}
        self.bars: list[dict[str, Any]] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.last = dict(inputs)
        if inputs.get("bar"):
            self.bars.append(dict(inputs))
        return {}


@pytest.fixture
def link_patch() -> Iterator[tuple[Node, Record, Runtime]]:
    graph = Graph()
    link = graph.add_node(default_registry().create("Link"), name="link")
    link.set_value("quantum", QUANTUM)
    record = graph.add_node(Record(), name="record")
    for port in Record.inputs:
        graph.add_edge(Edge(link.id, port, record.id, port))
    runtime = Runtime(graph, fps=50.0, fixed_step=True)
    yield link, record, runtime
    runtime.close()


def step_until(runtime: Runtime, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Make frames (about 50 a second) until `condition` holds; a generous bound, not a speed test."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        runtime.step()
        time.sleep(0.02)


def phase_gap(a: float, b: float) -> float:
    """How far apart two beats are in the bar (0 .. QUANTUM / 2)."""
    return abs((a - b + QUANTUM / 2) % QUANTUM - QUANTUM / 2)


def test_two_link_peers_agree_on_tempo_beat_and_phase(private_network, link_patch):
    link, record, runtime = link_patch
    peer = Peer(private_network, bpm=100.0)
    try:
        step_until(runtime, lambda: record.last.get("peers", 0) >= 1 and peer.seen.get("peers", 0) >= 1,
                   "the node and the peer see each other")
        assert "1 peer" in link.status
        step_until(runtime, lambda: record.last["bpm"] == pytest.approx(peer.seen["bpm"]), "they share a tempo")

        peer.ask("tempo 133")
        step_until(runtime, lambda: record.last["bpm"] == pytest.approx(133.0), "the peer's tempo reaches the node")
        assert link.tempo.bpm == pytest.approx(133.0) and "133.0 BPM" in link.status

        link.set_value("bpm", 97.0)
        step_until(runtime, lambda: peer.seen["bpm"] == pytest.approx(97.0), "the node's tempo reaches the peer")
        step_until(runtime, lambda: record.last["bpm"] == pytest.approx(97.0), "the node plays its own proposal")

        time.sleep(0.1)  # the peer's next report is at the new tempo
        before = time.monotonic()
        runtime.step()
        after = time.monotonic()
        beat = record.last["beat"]
        slack = (after - before) * 97.0 / 60.0 + 0.02
        assert phase_gap(beat, peer.beat_at(before)) <= slack, (beat, peer.beat_at(before), slack)
        assert record.last["phase"] == pytest.approx((beat % QUANTUM) / QUANTUM)

        start, started = beat, before
        step_until(runtime, lambda: time.monotonic() > started + 1.5, "1.5 s pass")
        runtime.step()
        moved, elapsed = record.last["beat"] - start, time.monotonic() - started
        assert 0.8 * elapsed * 97.0 / 60.0 < moved < 1.2 * elapsed * 97.0 / 60.0 + 0.1

        step_until(runtime, lambda: len(record.bars) >= 1, "a bar starts", timeout=10.0)
        assert record.bars[0]["phase"] < 0.25  # the bar trigger fires as the bar starts

        link.set_value("start_stop_sync", True)  # the session is stopped (nobody started it): the beat holds
        step_until(runtime, lambda: record.last["playing"] is False, "the node follows the session's stop")
        held = record.last["beat"]
        for _ in range(10):
            runtime.step()
            time.sleep(0.02)
        assert record.last["beat"] == held and link.tempo.playing is False and "stopped" in link.status
        peer.ask("play")
        step_until(runtime, lambda: record.last["playing"] is True and record.last["beat"] != held,
                   "the peer's start reaches the node")
        peer.ask("stop")
        step_until(runtime, lambda: record.last["playing"] is False, "the peer's stop reaches the node")

        link.set_value("enabled", False)
        step_until(runtime, lambda: record.last["peers"] == 0 and peer.seen["peers"] == 0, "the node leaves")
        assert "Link off" in link.status
    finally:
        peer.close()


def test_without_the_binding_the_node_counts_alone_and_says_so(monkeypatch, link_patch):
    monkeypatch.setitem(sys.modules, "aalink", None)  # the import fails as it does where aalink is missing
    link, record, runtime = link_patch
    link.set_value("bpm", 150.0)
    step_until(runtime, lambda: "unavailable" in link.status, "the node says the binding is missing")
    assert link.node_status.state is NodeState.ERROR and link.error == ""
    assert len(link.node_status.parts) == 2 and "counting 150 BPM alone" in link.status
    first = record.last["beat"]
    step_until(runtime, lambda: record.last["beat"] > first + 0.5, "the beat advances on the node's own count")
    assert record.last["bpm"] == 150.0 and record.last["peers"] == 0
