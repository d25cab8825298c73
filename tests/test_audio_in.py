"""AudioIn on a real JACK server (dummy driver): signals made here are played by a JACK client of the test
and heard through PortAudio in a live Runtime; a bad device and a server that stops mid-show."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from generator_graph import add, generator_graph

from autolume_graph.audio.analysis import HOP, AnalysisConfig, analyse, band_edges
from autolume_graph.audio.live_source import list_inputs
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, NodeState
from autolume_graph.params import Input
from autolume_graph.runtime import Runtime
from autolume_graph.types import PortType

RATE = 48000
JACK = "JACK Audio Connection Kit"


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "",
             show: Callable[[], str] = lambda: "") -> Any:
    """Poll `condition` until it is true (generous bound: machines are shared); `show` says what was seen."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition} {show()}"
        time.sleep(0.05)
    return found


class Player:
    """A JACK client of the test with one output port: plays a signal once when told (silence otherwise)."""

    def __init__(self, name: str, server: str | None = None) -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True, servername=server)
        self.port = self.client.outports.register("out")
        self._lock = threading.Lock()
        self._signal = np.zeros(0, np.float32)
        self._position = 0
        self._loop = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    @property
    def device(self) -> str:
        """How PortAudio's JACK host lists this client, as a stable device name."""
        return f"{self.client.name} ({JACK})"

    def play(self, signal: np.ndarray, loop: bool = False) -> None:
        with self._lock:
            self._signal, self._position, self._loop = signal.astype(np.float32), 0, loop

    @property
    def done(self) -> bool:
        return not self._loop and self._position >= len(self._signal)

    def _process(self, frames: int) -> None:
        out = self.port.get_array()
        with self._lock:
            signal, position = self._signal, self._position
            if self._loop and len(signal):
                out[:] = np.take(signal, np.arange(position, position + frames), mode="wrap")
                self._position = (position + frames) % len(signal)
            else:
                piece = signal[position:position + frames]
                out[:len(piece)] = piece
                out[len(piece):] = 0.0
                self._position = position + len(piece)

    def close(self) -> None:
        """Leave the server; a wedged server is not waited on for more than a few seconds."""
        closing = threading.Thread(target=lambda: (self.client.deactivate(), self.client.close()), daemon=True)
        closing.start()
        closing.join(timeout=5.0)


class Record(Node):
    """Test sink: each frame's audio span and analysis triggers."""

    sink = True
    time_dependent = True
    inputs = {"audio": Input(PortType.ANY), "onset": Input(PortType.ANY), "bands": Input(PortType.ANY)}

    def reset(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.frames.append({"frame": ctx.frame, **inputs})
        return {}


def listening_graph(device: str, graph: Graph | None = None) -> tuple[Graph, Node, Node, Record]:
    """AudioIn on `device` -> AudioAnalysis, both recorded (in `graph` when given)."""
    graph = graph if graph is not None else Graph()
    source, analysis = add(graph, "AudioIn", device=device), add(graph, "AudioAnalysis")
    record = graph.add_node(Record())
    for edge in (Edge(source.id, "audio", analysis.id, "audio"), Edge(source.id, "audio", record.id, "audio"),
                 Edge(analysis.id, "onset", record.id, "onset"), Edge(analysis.id, "bands", record.id, "bands")):
        graph.add_edge(edge)
    return graph, source, analysis, record


def streaming(node: Node) -> bool:
    """Whether the node hears its device and says so (its status, set as it cooks, names the rate)."""
    source = node.source
    return (source is not None and source.opened is not None and source.block_frames() > 0
            and f"{source.opened.rate} Hz" in node.status)


@pytest.fixture
def player(jack_server: str, request: pytest.FixtureRequest) -> Player:
    found = Player(f"agtest-{request.node.name[5:25]}")
    yield found
    found.close()


def test_the_device_list_names_jack_clients_found_by_a_fresh_scan(player: Player) -> None:
    names = list_inputs()  # the player started after this process imported sounddevice: a fresh scan finds it
    assert f"system ({JACK})" in names and player.device in names


def test_a_440_hz_tone_lands_in_its_band(player: Player) -> None:
    t = np.arange(RATE) / RATE
    player.play(0.5 * np.sin(2 * np.pi * 440.0 * t), loop=True)
    graph, source, analysis, record = listening_graph(player.device)
    runtime = Runtime(graph, fps=30)
    runtime.start()
    try:
        wait_for(lambda: streaming(source), what="the stream", show=lambda: source.status)
        start = len(record.frames)
        wait_for(lambda: len(record.frames) > start + 20, what="frames")
        assert source.error == "" and analysis.error == ""
        assert source.node_status.parts[:2] == (player.device, f"{RATE} Hz")
        assert source.last_outputs["level"] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
        bands = analysis.last_outputs["bands"]
        edges = band_edges(8, 40.0, 16000.0)
        assert int(np.argmax(bands)) == int(np.searchsorted(edges, 440.0)) - 1
        assert analysis.last_outputs["rms"] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    finally:
        runtime.close()


def click_track(times: list[float], seconds: float) -> np.ndarray:
    """Decaying noise bursts at `times` over silence (the same recipe every run)."""
    out = np.zeros(int(seconds * RATE), np.float32)
    rng = np.random.default_rng(3)
    for t in times:
        start = int(round(t * RATE))
        out[start:start + 240] += rng.standard_normal(240) * np.exp(-np.arange(240) / 60.0) * 0.8
    return out


def located(signal: np.ndarray, heard: np.ndarray, starts: list[int], span: int = 240) -> list[tuple[int, float]]:
    """Where each click of `signal` (its first `span` samples at `starts`) is in `heard`, and how alike
    (normalised correlation, 1: the same samples): the first by cross-correlation over all of `heard`,
    each next near where the gap from the one before puts it."""
    found: list[tuple[int, float]] = []
    for k, start in enumerate(starts):
        click = signal[start:start + span]
        low = 0 if not found else max(found[-1][0] + starts[k] - starts[k - 1] - 4096, 0)
        window = heard[low:low + (len(heard) if not found else 8192)]
        corr = np.correlate(window, click, mode="valid")
        at = int(np.argmax(corr))
        piece = window[at:at + span]
        found.append((low + at, float(corr[at] / (np.linalg.norm(piece) * np.linalg.norm(click) + 1e-12))))
    return found


def test_clicks_are_heard_as_played_and_fire_onsets_on_their_frames(player: Player) -> None:
    times = [0.31, 0.74, 1.09, 1.58, 1.93, 2.41, 2.77, 3.26]  # uneven: a shifted or repeated block would show
    starts = [int(round(t * RATE)) for t in times]
    signal = click_track(times, 3.6)
    graph, source, analysis, record = listening_graph(player.device)
    runtime = Runtime(graph, fps=30)
    runtime.start()
    try:
        wait_for(lambda: streaming(source), what="the stream", show=lambda: source.status)
        player.play(signal)
        wait_for(lambda: player.done, what="the clicks played")
        start = len(record.frames)
        wait_for(lambda: len(record.frames) > start + 10, what="frames after the clicks")
    finally:
        runtime.close()
    spans = [f["audio"] for f in record.frames]
    heard = np.concatenate([s.samples for s in spans])
    clicks = located(signal, heard, starts)
    assert all(alike > 0.9 for _, alike in clicks), clicks
    # JACK drops a late client's cycle (async mode, a busy machine): a gap may lose a few 256-frame periods
    gaps = np.diff([at for at, _ in clicks]) - np.diff(starts)
    assert np.all((gaps <= 0) & (gaps >= -4 * 256)), gaps
    assert float(np.abs(heard).max()) == pytest.approx(float(np.abs(signal).max()), abs=1e-6)

    # the analysis of what was heard puts each onset in the block of its click (or the next)
    features = analyse(heard, AnalysisConfig(RATE), piece=HOP)
    fired = [i for i, f in enumerate(features) if f.onset]
    expected = [at // HOP for at, _ in clicks]
    assert len(fired) == len(times) and all(0 <= a - b <= 1 for a, b in zip(fired, expected, strict=True))

    # and live, each onset trigger fires on the frame that handed on its click, or within the two after
    ends = np.cumsum([len(s.samples) for s in spans])
    click_frames = [int(np.searchsorted(ends, at, side="right")) for at, _ in clicks]
    onset_frames = [k for k, f in enumerate(record.frames) if f["onset"]]
    assert len(onset_frames) == len(times), (onset_frames, click_frames)
    assert all(0 <= o - c <= 2 for o, c in zip(onset_frames, click_frames, strict=True)), (onset_frames, click_frames)


def test_a_bad_device_name_shows_on_the_node_and_the_picture_keeps_coming(jack_server: str,
                                                                          reference_dir: Path) -> None:
    graph = generator_graph(reference_dir, anim=True, speed=2.0)
    graph, source, analysis, record = listening_graph("no such device", graph)
    runtime = Runtime(graph, fps=30)
    runtime.start()
    try:
        wait_for(lambda: "no audio input 'no such device'" in source.status, what="the message")
        assert source.node_status.state == NodeState.WAITING and source.error == ""
        first = runtime.snapshot
        wait_for(lambda: runtime.snapshot.frame > first.frame + 10, what="frames")
        later = runtime.snapshot
        assert later.published["preview"] is not first.published["preview"]  # the picture moves on
        assert analysis.error == "" and float(np.abs(record.frames[-1]["audio"].samples).max(initial=0)) == 0.0
    finally:
        runtime.close()


def _jackd(name: str) -> subprocess.Popen:
    process = subprocess.Popen([shutil.which("jackd") or "jackd", "--no-realtime", "-n", name, "-d", "dummy",
                                "-r", str(RATE), "-p", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _answers(name), timeout=10.0, what=f"jackd {name}")
    return process


def _answers(name: str) -> bool:
    import jack

    try:
        jack.Client("agtest-probe", no_start_server=True, servername=name).close()
        return True
    except jack.JackOpenError:
        return False


def test_the_server_stopping_mid_show_leaves_the_show_running(jack_server: str, reference_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    private = f"agtest-dying-{os.getpid()}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", private)  # the capture process is started with this environment
    server = _jackd(private)
    graph = generator_graph(reference_dir, anim=True, speed=2.0)
    graph, source, analysis, record = listening_graph("", graph)
    runtime = Runtime(graph, fps=30)
    runtime.start()
    try:
        wait_for(lambda: streaming(source), what="the stream on the private server")
        assert source.node_status.parts[0] == f"system ({JACK})"
        server.terminate()
        server.wait(timeout=10)
        wait_for(lambda: "did its server stop?" in source.status, what="the stall message")
        first = runtime.snapshot
        wait_for(lambda: "no audio input found" in source.status, what="the retry's message")
        assert runtime.snapshot.frame > first.frame + 5
        assert runtime.snapshot.published["preview"] is not first.published["preview"]
        assert source.error == "" and analysis.error == "" and not runtime.snapshot.engine_error

        server = _jackd(private)  # back again: a rescan opens it at once
        runtime.call(lambda rt: source.set_value("rescan", True))
        wait_for(lambda: streaming(source), what="the stream after the rescan")
    finally:
        runtime.close()
        server.terminate()
        server.wait(timeout=10)


def run_shipped(frames: int, then: Callable[[Graph, Runtime], None]) -> tuple[Graph, list]:
    """graphs/audio-in-reactive, live on the CPU: `then` runs once `frames` frames have published; the
    published pictures (a list that grows while `then` runs)."""
    from autolume_graph.graph_files import open_graph

    graph = open_graph("audio-in-reactive")
    for node in graph.nodes.values():
        node.prepare("cpu")
    runtime = Runtime(graph, fps=30)
    pictures: list = []
    runtime.frame_hooks.append(lambda rt: pictures.append(rt.snapshot.published.get("preview")))
    runtime.start()
    try:
        wait_for(lambda: len(pictures) > frames, timeout=60.0, what="frames of the shipped graph")
        then(graph, runtime)
    finally:
        runtime.close()
    return graph, [p for p in pictures if p is not None]


def test_the_shipped_audio_in_graph_hears_the_default_input_and_the_picture_reacts(jack_server: str) -> None:
    t = np.arange(RATE // 2) / RATE
    burst = np.where(t < 0.05, 0.9 * np.sin(2 * np.pi * 220.0 * t), 0.0)  # a burst each 0.5 s

    def hear_a_player(graph: Graph, runtime: Runtime) -> None:
        source = graph.node("audio")
        wait_for(lambda: streaming(source), what="the default input", show=lambda: source.status)
        assert source.node_status.parts[0] == f"system ({JACK})"
        player = Player("agtest-shipped")  # made after the model loaded: its callback needs this process's GIL
        try:
            player.play(burst, loop=True)
            inputs = player.client.get_ports(name_pattern="PortAudio", is_audio=True, is_input=True)
            player.client.connect(player.port, inputs[0])  # patched in as a VJ would; the mix of 2 channels: half
            wait_for(lambda: graph.node("analysis").last_outputs.get("peak", 0.0) > 0.3, what="the bursts heard")
            start = runtime.snapshot.frame
            wait_for(lambda: runtime.snapshot.frame > start + 20, what="frames with the bursts")
        finally:
            player.close()

    graph, pictures = run_shipped(10, hear_a_player)
    assert all(n.error == "" for n in graph.nodes.values()), {n.name: n.error for n in graph.nodes.values()}
    brightness = [float(p.mean()) for p in pictures[-20:]]
    assert max(brightness) - min(brightness) > 0.05  # the bursts flash the picture


def test_the_shipped_audio_in_graph_without_a_server_says_why_and_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"agtest-nobody-{os.getpid()}")  # no such server
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")

    def said_why(graph: Graph, runtime: Runtime) -> None:
        wait_for(lambda: "no audio input found" in graph.node("audio").status, what="the reason on the node")

    graph, pictures = run_shipped(10, said_why)
    assert all(n.error == "" for n in graph.nodes.values()), {n.name: n.error for n in graph.nodes.values()}
    assert graph.node("audio").node_status.state == NodeState.WAITING
    assert len({id(p) for p in pictures}) > 5  # the picture goes on (its seed animates)
