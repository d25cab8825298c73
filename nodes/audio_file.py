"""AudioFile: a sound file played in step with the render clock, with a transport driven by the editor or OSC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autolume_graph.audio import wires
from autolume_graph.audio.demo_clip import DEMO, demo_clip_path
from autolume_graph.audio.file_source import MAX_SECONDS, Clip, Playhead, decode
from autolume_graph.file_reads import BackgroundRead
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Bool, FilePath, Float, Output
from autolume_graph.types import PortType

PREPARE_WAIT_S = 30.0  # how long a render waits for the file before its first frame


def _decode(path: str) -> Clip:
    """The clip at `path` ("demo": the built-in beat), or a one-line NodeError when none is set (runs in the
    read pool)."""
    if not path:
        raise NodeError("set an audio file path first")
    return decode(demo_clip_path() if path == DEMO else Path(path).expanduser())


class AudioFile(Node):
    """Plays a WAV, FLAC or OGG file (any format PyAV decodes), mixed to mono, on the runtime clock.

    The file is decoded off the render thread (up to 15 minutes of it); meanwhile the node waits. The
    playhead moves by each frame's time step: in real time live, by exactly one frame offline, so a
    render hears (and analyses) the same audio at each frame every time. `seek` jumps each time it is
    set, even to the value it holds (resend 0 over OSC to restart).
    """

    category = "audio"
    time_dependent = True
    outputs = {
        "audio": Output(wires.AUDIO, "the samples played this frame (wire into AudioAnalysis)"),
        "time": Output(PortType.FLOAT, "the playhead, in seconds"),
        "duration": Output(PortType.FLOAT, "the file's length, in seconds"),
    }
    params = {
        "path": FilePath("", kind="audio", doc="the sound file to play (WAV, FLAC, OGG, ...); demo: a built-in beat"),
        "play": Bool(True, doc="playing (off: paused, silence goes out)"),
        "loop": Bool(True, doc="start again at the end (off: silence after the end)"),
        "seek": Float(0.0, 0.0, float(MAX_SECONDS), unit="s", every_write=True,
                      doc="jump to this time; each write jumps"),
    }

    def reset(self) -> None:
        self._read = BackgroundRead()
        self._playhead: Playhead | None = None
        self._seeks = 0

    def prepare(self, device: str) -> None:
        self._start_read(self.values["path"])
        self._read.wait(PREPARE_WAIT_S)

    def _start_read(self, path: str) -> None:
        if path != self._read.key:  # the label is made only for a new path: this runs every frame
            self._read.start_for(path, f"decoding {Path(path).name}", _decode, path)

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self._start_read(params["path"])
        if self._read.pending:  # the status changes only while a read is on its way
            try:
                clip = self._read.take()
            except NodeError:
                self._playhead = None
                raise
            finally:
                self._show_status()
            if clip is not None:
                self._playhead = Playhead(clip)
                self._show_status()
        if self._playhead is None:
            return {}
        seeks = self.write_counts.get("seek", 0)
        if seeks != self._seeks:
            self._seeks = seeks
            self._playhead.seek(params["seek"])
        span = self._playhead.advance(ctx.dt, params["play"], params["loop"], ctx.fixed_step)
        return {"audio": span, "time": span.time, "duration": self._playhead.clip.duration}

    def _show_status(self) -> None:
        clip = self._playhead.clip if self._playhead is not None else None
        about = ""
        if clip is not None:
            minutes, seconds = divmod(int(clip.duration), 60)
            about = f"{minutes}:{seconds:02d} at {clip.rate} Hz{' (the first 15 min)' if clip.truncated else ''}"
        self.status = NodeStatus.of(self._read.status, about)
