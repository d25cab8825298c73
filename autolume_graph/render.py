"""Offline render: a graph on the fixed-step clock into an MP4, exactly one loop or a set length.

Frame i is made at time i / fps, so a loop of T seconds rendered as round(T * fps) frames ends
one step before it starts again and the video repeats seamlessly. The picture is the graph's
first Preview node's image, resized on the device (area when shrinking, bilinear otherwise), at the
picture's own width x height unless `--size` says otherwise (non-square models stay non-square).
H.264 in yuv420p needs even sizes: an odd width or height is padded by repeating the last column or
row (`outputs.recorder`), so the video may be one pixel larger than the picture, never rescaled.
Other output nodes (NDI, windows, recorders) are left out of the render: an offline render
must not announce sources or open windows. Frames are never dropped: the render waits for the
encoder instead.

The video is written beside `out` under a temporary name and renamed to `out` only when every frame
is in: a render that fails, is interrupted or is killed leaves an earlier `out` byte-identical, and
the temporary files of killed renders are removed when the next render into that folder starts.

With `audio` (a song), every AudioFile node plays that file from its start on the same fixed-step
clock (frame i hears the song from i / fps on), and once the frames are in, the song, cut to the
video's length, is muxed into the MP4 as AAC (`audio.mux`). A graph without an AudioFile node gets
the song muxed only, the picture deaf to it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TextIO

import torch

from autolume_graph import image_ops
from autolume_graph.atomic import remove_stale_temps, temp_beside, write_with
from autolume_graph.graph import Graph
from autolume_graph.node import Node
from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.frames import FrameConverter
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime


class RenderError(ValueError):
    """A render that cannot be made as asked; the message is one line."""


def parse_size(text: str) -> tuple[int, int]:
    """`WxH` -> (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 2 or int(match[2]) < 2:
        raise RenderError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    return int(match[1]), int(match[2])


def loop_seconds(graph: Graph) -> float:
    """The cycle length of the graph's one loop clock (a node with Role.LOOP_CLOCK has `cycle_seconds`), at the
    tempo of the tempo source wired into it, if any (Role.TEMPO_SOURCE)."""
    loops = [n for n in graph.nodes.values() if Role.LOOP_CLOCK in n.roles]
    if len(loops) != 1:
        found = f"has {len(loops)}: {', '.join(n.name for n in loops)}" if loops else "has none"
        raise RenderError(f"--loop needs exactly one loop node (NoiseLoop, KeyframeLoop); the graph {found}")
    loop = loops[0]
    sources = (graph.nodes[e.src] for e in graph.edges if e.dst == loop.id and e.dst_port == "tempo")
    tempo = next((s.tempo for s in sources if Role.TEMPO_SOURCE in s.roles), None)
    return float(loop.cycle_seconds(loop.values, tempo))


def frame_count(seconds: float, fps: float) -> int:
    """Frames in `seconds` at `fps`, at least one."""
    if not fps > 0:
        raise RenderError(f"--fps must be above 0, got {fps:g}")
    count = round(seconds * fps)
    if count < 1:
        raise RenderError(f"{seconds:g} s at {fps:g} fps is no frame")
    return count


def resize(image: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """[1,C,H,W] (or [C,H,W]) -> [1,C,height,width] on the same device; None keeps the size."""
    image = image if image.dim() == 4 else image.unsqueeze(0)
    return image if size is None else image_ops.resize(image, size[1], size[0], "area")


def preview_node(graph: Graph) -> Node:
    """The graph's first preview node (Role.PREVIEW), the render's picture."""
    for node in graph.nodes.values():
        if Role.PREVIEW in node.roles:
            return node
    raise RenderError("the graph has no Preview node: its image is what render writes")


def keep_only_preview(graph: Graph) -> Node:
    """Offline work (render, bench) needs only the preview's picture: drop other sinks (NDI, windows, recorders)."""
    preview = preview_node(graph)
    for sink in graph.sinks():
        if sink is not preview:
            graph.remove_node(sink.id)
    return preview


def audio_players(graph: Graph) -> list[Node]:
    """The graph's AudioFile nodes: with `--audio`, each plays the song."""
    return [n for n in graph.nodes.values() if n.type_name == "AudioFile"]


def audio_seconds(audio: str | Path) -> float:
    """The song's length, the render's length when no other is given."""
    from autolume_graph.audio import mux  # PyAV only where audio is muxed

    try:
        return mux.audio_seconds(audio)
    except mux.MuxError as exc:
        raise RenderError(f"--audio {exc}") from None


def render(graph: Graph, out: str | Path, *, fps: float, size: tuple[int, int] | None, frames: int,
           device: str = "cpu", progress: TextIO | None = None, audio: str | Path | None = None) -> int:
    """Render `frames` frames at `fps` to the MP4 `out` (a progress bar on `progress`), with `audio` muxed
    in (and played by the AudioFile nodes) when given; returns the number of frames written."""
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise RenderError(f"{out}: --out must be an .mp4 file")
    preview = keep_only_preview(graph)
    for node in audio_players(graph) if audio is not None else ():
        node.set_value("path", str(audio))
    for node in graph.nodes.values():
        node.prepare(device)  # models and songs load before the clock starts, so frame 0 has its picture
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"{out}: {one_line(exc)}") from None
    remove_stale_temps(out.parent)
    try:
        video = out if audio is None else temp_beside(out)  # with audio, the frames go to a file muxed later
    except OSError as exc:
        raise RenderError(f"{out}: {one_line(exc)}") from None
    try:
        written = _render_frames(graph, preview, video, fps=fps, size=size, frames=frames, device=device,
                                 progress=progress)
        if audio is not None:
            if progress is not None:
                progress.write(f"muxing {Path(audio).name} as AAC\n")
            _mux(video, audio, out, written / fps)
    finally:
        if video != out:
            video.unlink(missing_ok=True)
    return written


def _mux(video: Path, audio: str | Path, out: Path, seconds: float) -> None:
    """`video` with the first `seconds` of `audio` as `out`, which stays as it was on failure."""
    from autolume_graph.audio import mux

    try:
        write_with(out, lambda temp: mux.mux_audio(video, audio, temp, seconds))
    except mux.MuxError as exc:
        raise RenderError(f"--audio {exc}") from None
    except OSError as exc:
        raise RenderError(f"{out}: {one_line(exc)}") from None


def _render_frames(graph: Graph, preview: Node, out: Path, *, fps: float, size: tuple[int, int] | None,
                   frames: int, device: str, progress: TextIO | None) -> int:
    """The frames into the video-only MP4 `out`; returns how many were written."""
    from autolume_graph.outputs.recorder import VideoRecorder  # PyAV only where video is written

    recorder = VideoRecorder(out, fps)
    if recorder.error is not None:
        raise RenderError(str(recorder.error))
    runtime = Runtime(graph, fps=fps, fixed_step=True, device=device)
    converter = FrameConverter()
    start = time.perf_counter()
    complete = False
    try:
        with torch.inference_mode():
            for i in range(frames):
                snap = runtime.step()
                image = snap.published.get(preview.name)
                if image is None:
                    errors = "; ".join(f"{s.name}: {s.error}" for s in snap.nodes.values() if s.error)
                    raise RenderError(f"no image at frame {i}{f' ({errors})' if errors else ''}")
                try:
                    recorder.write_every(converter.convert(resize(image, size)).bgra, i / fps)
                except OutputError as exc:
                    raise RenderError(str(exc)) from None
                if progress is not None:
                    _draw_progress(progress, i + 1, frames, time.perf_counter() - start)
        complete = True
    finally:
        recorder.close(discard=not complete)  # only a whole render replaces the earlier file
        runtime.close()
        if progress is not None:
            progress.write("\n")
    if recorder.error is not None:
        raise RenderError(str(recorder.error))
    return recorder.frames_written


def _draw_progress(stream: TextIO, done: int, total: int, elapsed: float) -> None:
    width = 30
    filled = width * done // total
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames, "
                 f"{done / max(elapsed, 1e-9):.1f} fps")
    stream.flush()
