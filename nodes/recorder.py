"""Recorder: records the image to an MP4 while `record` is on, and writes PNG snapshots.

While recording the node cooks every frame and writes the latest image at the frame's runtime
time, so a still picture is held for as long as it was shown and the file is variable-frame-rate
with real timestamps. Stopping finishes the file in a background thread, so the render loop does
not wait for the encoder; the node reports the finished file (or its error) a few frames later.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.latest import LatestFrame
from autolume_graph.outputs.recorder import VideoRecorder, write_png
from autolume_graph.params import Bool, FilePath, Input, String, Trigger
from autolume_graph.types import PortType


def timed_path(template: str) -> Path:
    """`template` with `{time}` replaced by the local time."""
    return Path(template.replace("{time}", time.strftime("%Y%m%d-%H%M%S"))).expanduser()


def unused(path: Path) -> Path:
    """`path`, or `path` with a `-N` suffix if it exists: never overwrite an earlier take."""
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


class Recorder(Node):
    """Records the image to H.264 MP4 with real timestamps and saves PNG snapshots; the show never waits."""

    category = "output"
    sink = True
    inputs = {"image": Input(PortType.IMAGE, "image to record")}
    params = {
        "path": FilePath("recordings/autolume-{time}.mp4", kind="video",
                         doc="video file; {time} is the start time; read when recording starts"),
        "record": Bool(False, doc="record while on (OSC /autolume/record)"),
        "snapshot": Trigger(doc="save the image as PNG (OSC /autolume/snapshot)"),
        "snapshot_dir": String("", doc="folder for snapshots (empty: beside the video path)"),
    }

    def reset(self) -> None:
        self._latest = LatestFrame()
        self._recorder: VideoRecorder | None = None
        self._finishing: tuple[VideoRecorder, threading.Thread] | None = None
        self._failed = ""  # why the recording could not start; retried when record is switched on again

    @property
    def recorder(self) -> VideoRecorder | None:
        """The recording in progress (None when not recording)."""
        return self._recorder

    def animating(self, params: dict[str, Any]) -> bool:
        return bool(params["record"]) or self._finishing is not None

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self._latest.update(inputs.get("image"))
        errors = [self._finished(), self._record(ctx, params), self._snapshot(params) if params["snapshot"] else ""]
        first = next((e for e in errors if e), "")
        if first:
            raise NodeError(first)
        return {}

    def _record(self, ctx: CookContext, params: dict[str, Any]) -> str:
        """Start, feed or stop the recording; returns its error ("" if none)."""
        if not params["record"]:
            self.close()
            return ""
        if self._failed:
            return self._failed
        if self._recorder is None:
            path = unused(timed_path(params["path"]))
            try:  # fail now: the encoder would only notice when it first writes, seconds later
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError as exc:
                self._failed = f"recording {path} failed ({one_line(exc)})"
                return self._failed
            self._recorder = VideoRecorder(path, ctx.fps if ctx.fps > 0 else 30.0)
        recorder = self._recorder
        if self._latest.frame is not None:
            recorder.write(self._latest.frame.bgra, ctx.time)
        if recorder.error is not None:
            return str(recorder.error)
        dropped = f", {recorder.dropped} dropped" if recorder.dropped else ""
        self.status = f"recording {recorder.path.name}: {recorder.frames_written} frames{dropped}"
        return ""

    def _snapshot(self, params: dict[str, Any]) -> str:
        """Write the image as PNG beside the video (or in snapshot_dir); returns the error ("" if none)."""
        frame = self._latest.frame
        if frame is None:
            return "no image to snapshot yet"
        video = timed_path(params["path"])
        folder = Path(params["snapshot_dir"]).expanduser() if params["snapshot_dir"] else video.parent
        path = unused(folder / f"{video.stem}.png")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(frame.rgb, path)
        except OutputError as exc:
            return str(exc)
        except OSError as exc:
            return f"snapshot {path.name} failed ({one_line(exc)})"
        self.status = f"saved {path.name}"
        return ""

    def _finished(self) -> str:
        """Report a recording that finished in the background; returns its error ("" if none)."""
        if self._finishing is None or self._finishing[1].is_alive():
            return ""
        recorder, _ = self._finishing
        self._finishing = None
        if recorder.error is not None:
            return str(recorder.error)
        self.status = f"saved {recorder.path.name} ({recorder.frames_written} frames)"
        return ""

    def close(self) -> None:
        """Finish the recording in progress in the background; a later cook starts a new file."""
        self._failed = ""
        if self._recorder is None:
            return
        recorder, self._recorder = self._recorder, None
        thread = threading.Thread(target=recorder.close, name=f"finish:{recorder.path.name}")
        thread.start()
        self._finishing = (recorder, thread)
