"""AudioFile and AudioAnalysis in a real Runtime on the fixed-step clock, on sound files written here."""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autolume_graph.audio.analysis import band_edges
from autolume_graph.audio.file_source import Clip, Playhead, decode
from autolume_graph.file_reads import FileRefused
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node
from autolume_graph.params import Input
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.types import PortType

RATE, FPS = 48000, 30.0


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_flac(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    import av

    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="stereo")
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2)[None, :], format="s16", layout="stereo")  # interleaved
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def click_track(times: list[float], seconds: float) -> np.ndarray:
    out = np.zeros(int(seconds * RATE), np.float32)
    rng = np.random.default_rng(1)
    for t in times:
        start = int(round(t * RATE))
        out[start:start + 240] += rng.standard_normal(240) * np.exp(-np.arange(240) / 60.0) * 0.8
    return out


class Record(Node):
    """Test sink: what the analysis sent out, frame by frame."""

    sink = True
    time_dependent = True
    inputs = {"onset": Input(PortType.ANY), "bands": Input(PortType.ANY), "time": Input(PortType.ANY)}

    def reset(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.frames.append({"frame": ctx.frame, **inputs})
        return {}


def run(path: Path, frames: int, fixed_step: bool = True, **file_values: Any) -> tuple[Runtime, list[dict[str, Any]]]:
    registry = default_registry()
    graph = Graph()
    source = graph.add_node(registry.create("AudioFile"), name="song")
    source.set_value("path", str(path))
    for name, value in file_values.items():
        source.set_value(name, value)
    analysis = graph.add_node(registry.create("AudioAnalysis"), name="analysis")
    record = graph.add_node(Record(), name="record")
    graph.add_edge(Edge(source.id, "audio", analysis.id, "audio"))
    graph.add_edge(Edge(analysis.id, "onset", record.id, "onset"))
    graph.add_edge(Edge(analysis.id, "bands", record.id, "bands"))
    graph.add_edge(Edge(source.id, "time", record.id, "time"))
    for node in graph.nodes.values():
        node.prepare("cpu")  # as an offline render does: the file is decoded before frame 0
    runtime = Runtime(graph, fps=FPS, fixed_step=fixed_step)
    try:
        for _ in range(frames):
            runtime.step()
            if not fixed_step:
                time.sleep(1 / FPS)  # live: the wall clock moves the playhead
    finally:
        runtime.close()
    return runtime, record.frames


def test_the_band_of_a_440_hz_tone_peaks(tmp_path: Path) -> None:
    t = np.arange(2 * RATE) / RATE
    path = write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t))
    _, frames = run(path, 30)
    bands = frames[-1]["bands"]
    assert int(np.argmax(bands)) == int(np.searchsorted(band_edges(8, 40.0, 16000.0), 440.0) - 1)
    assert frames[-1]["time"] == pytest.approx(29 / FPS, abs=1 / RATE)  # the playhead is on the frame clock


def test_live_the_playhead_follows_the_wall_clock_and_the_analysis_keeps_up(tmp_path: Path) -> None:
    t = np.arange(3 * RATE) / RATE
    path = write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t))
    start = time.perf_counter()
    _, frames = run(path, 20, fixed_step=False)
    elapsed = time.perf_counter() - start
    assert frames[-1]["time"] == pytest.approx(elapsed, abs=0.25)
    assert int(np.argmax(frames[-1]["bands"])) == int(np.searchsorted(band_edges(8, 40.0, 16000.0), 440.0) - 1)


@pytest.mark.parametrize("writer", [write_wav, write_flac])
def test_onsets_fire_on_the_frames_of_the_clicks(tmp_path: Path, writer: Any) -> None:
    times = [0.41 + 0.53 * k for k in range(8)]
    path = writer(tmp_path / f"clicks.{writer.__name__[6:]}", click_track(times, 5.0))
    runtime, frames = run(path, int(5.0 * FPS))
    assert not runtime.engine_errors
    fired = [f["frame"] for f in frames if f["onset"]]
    expected = [int(np.ceil(t * FPS)) for t in times]  # frame n plays the audio of (n - 1) / fps .. n / fps
    assert len(fired) == len(times)
    assert all(abs(a - b) <= 1 for a, b in zip(fired, expected, strict=True)), (fired, expected)


def test_a_render_is_the_same_every_time(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "clicks.wav", click_track([0.3, 0.9, 1.2], 2.0))
    first = [(f["onset"], f["bands"].tobytes()) for f in run(path, 60)[1]]
    assert first == [(f["onset"], f["bands"].tobytes()) for f in run(path, 60)[1]]


def test_seek_pause_and_loop() -> None:
    clip = Clip(np.arange(1000, dtype=np.float32), 1000)
    head = Playhead(clip)
    assert head.advance(0.1, True, False, True).restarted
    span = head.advance(0.1, True, False, True)
    assert not span.restarted and span.samples[0] == 100 and span.time == pytest.approx(0.2)
    assert not head.advance(0.1, False, False, True).samples.any() and head.position == 200  # paused: silence
    head.seek(0.95)
    span = head.advance(0.1, True, True, True)
    assert span.restarted and list(span.samples[:3]) == [950, 951, 952] and span.samples[50] == 0  # looped
    head.seek(0.95)
    assert not head.advance(0.1, True, False, True).samples[50:].any()  # no loop: silence after the end


def test_seek_over_a_parameter_write_jumps_each_time(tmp_path: Path) -> None:
    t = np.arange(2 * RATE) / RATE
    path = write_wav(tmp_path / "ramp.wav", 0.1 * np.sin(2 * np.pi * 100 * t))
    source = default_registry().create("AudioFile")
    source.set_value("path", str(path))
    source.prepare("cpu")
    ctx = CookContext(time=0.0, dt=0.0, fps=FPS)
    source.cook(ctx, {}, dict(source.values))
    for _ in range(2):
        source.set_value("seek", 1.0)  # the same value again still jumps
        out = source.cook(CookContext(time=0.1, dt=0.1, frame=3, fps=FPS), {}, dict(source.values))
        assert out["time"] == pytest.approx(1.1) and out["audio"].restarted


def test_what_is_not_a_sound_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRefused, match="not a regular file"):
        decode(tmp_path)
    (tmp_path / "noise.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(FileRefused, match="cannot decode"):
        decode(tmp_path / "noise.wav")


def test_the_shipped_audio_reactive_graph_plays_the_demo_beat_out_of_the_box() -> None:
    """graphs/audio-reactive: the built-in beat (made from a recipe at first use) drives the picture."""
    from autolume_graph.graph_files import open_graph
    from autolume_graph.runtime import Runtime

    graph = open_graph("audio-reactive")
    for node in graph.nodes.values():
        node.prepare("cpu")
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        pictures = [runtime.step().published["preview"].clone() for _ in range(30)]
        assert all(n.error == "" for n in graph.nodes.values()), {n.name: n.error for n in graph.nodes.values()}
        analysis = graph.node("analysis")
        assert analysis.last_outputs["rms"] > 0.01  # the beat is heard
        brightness = [float(p.mean()) for p in pictures]
        assert max(brightness) - min(brightness) > 0.05  # and seen: the kicks flash the picture
    finally:
        runtime.close()
