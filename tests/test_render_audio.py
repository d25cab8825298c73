"""`autolume-graph render --audio`: the song's length, AAC muxed in, and the picture in sync with it.

The sync check decodes the finished MP4 itself: the clicks' times from its audio stream, the frames
that react (a click's peak level wired into Color brightness) from its video stream.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from generator_graph import add, generator_graph
from test_audio_file import RATE, click_track, write_wav

from autolume_graph.cli import main
from autolume_graph.graph import Edge, Graph
from autolume_graph.serialize import save_graph

FPS = 10
SECONDS = 4.0
CLICKS = [0.55, 1.23, 2.01, 2.87, 3.46]  # off the frame boundaries: a frame early or late would show


def reactive_graph(reference_dir: Path) -> Graph:
    """The generator's picture through Color, its brightness the peak level of an AudioFile's audio."""
    graph = generator_graph(reference_dir)
    generate, preview = graph.node("generate"), graph.node("preview")
    graph.remove_edge(graph.incoming(preview.id)["image"])
    color, song, analysis = add(graph, "Color"), add(graph, "AudioFile"), add(graph, "AudioAnalysis")
    for edge in (Edge(generate.id, "image", color.id, "image"), Edge(color.id, "image", preview.id, "image"),
                 Edge(song.id, "audio", analysis.id, "audio"), Edge(analysis.id, "peak", color.id, "brightness")):
        graph.add_edge(edge)
    return graph


def decoded(path: Path) -> tuple[list[tuple[float, float]], np.ndarray, float]:
    """(time, mean brightness) per video frame, the audio (mono) and its first sample's time."""
    with av.open(str(path)) as container:
        frames = [(f.time, float(f.to_ndarray(format="gray").mean())) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = list(container.decode(audio=0))
    assert audio[0].sample_rate == RATE
    return frames, np.concatenate([f.to_ndarray()[0] for f in audio]), float(audio[0].time)


def sync_offsets(path: Path, fps: float = FPS) -> list[float]:
    """For each click in the MP4's audio, (time of the first bright frame - click time) in frames."""
    frames, audio, start = decoded(path)
    loud = np.flatnonzero(np.abs(audio) > 0.2)
    clicks = start + loud[np.insert(np.diff(loud) > RATE // 10, 0, True)] / RATE  # each click's first loud sample
    level = np.array([b for _, b in frames])
    bright = [t for (t, _), high in zip(frames, level > (level.min() + level.max()) / 2, strict=True) if high]
    assert len(bright) == len(clicks), (bright, clicks)
    return [(t - c) * fps for t, c in zip(bright, clicks, strict=True)]


def render_song(tmp_path: Path, graph: Graph, *args: str) -> Path:
    song = write_wav(tmp_path / "song.wav", click_track(CLICKS, SECONDS))
    save_graph(graph, tmp_path / "g.agraph")
    out = tmp_path / "video.mp4"
    assert main(["render", str(tmp_path / "g.agraph"), "--audio", str(song), "--fps", str(FPS),
                 "--out", str(out), *args]) == 0
    return out


def test_the_song_sets_the_length_and_the_picture_reacts_within_a_frame(reference_dir: Path, tmp_path: Path,
                                                                        capsys) -> None:
    out = render_song(tmp_path, reactive_graph(reference_dir))
    captured = capsys.readouterr()
    assert "40/40 frames" in captured.err and "played by 1 AudioFile node" in captured.out
    frames, audio, start = decoded(out)
    assert len(frames) == round(SECONDS * FPS)
    assert abs(start) < 1e-3 and abs(len(audio) / RATE - SECONDS) < 0.05  # AAC pads to whole 1024-sample frames
    offsets = sync_offsets(out)
    # a frame shows the audio played since the one before: a click lights the next frame, under a frame late
    assert len(offsets) == len(CLICKS) and all(0 <= d < 1 for d in offsets), offsets


def test_a_graph_without_audio_file_gets_the_song_muxed_only(reference_dir: Path, tmp_path: Path, capsys) -> None:
    out = render_song(tmp_path, generator_graph(reference_dir), "--seconds", "1.5")
    assert "muxed only" in capsys.readouterr().out
    frames, audio, _ = decoded(out)
    assert len(frames) == 15 and abs(len(audio) / RATE - 1.5) < 0.05  # the song cut at the video's end


@pytest.mark.parametrize("song", ["missing.wav", "not-audio.wav"])
def test_a_bad_song_is_one_line_and_leaves_the_earlier_video(reference_dir: Path, tmp_path: Path, capsys,
                                                             song: str) -> None:
    (tmp_path / "not-audio.wav").write_bytes(b"no sound here")
    save_graph(generator_graph(reference_dir), tmp_path / "g.agraph")
    out = tmp_path / "video.mp4"
    out.write_bytes(b"earlier")
    assert main(["render", str(tmp_path / "g.agraph"), "--audio", str(tmp_path / song), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and song in err, err
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"g.agraph", "video.mp4", "not-audio.wav"})
