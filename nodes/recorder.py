"""Recorder: records the image to an MP4 while `record` is on, and writes PNG snapshots.

While recording the node cooks every frame and writes the latest image at the frame's runtime
time, so a still picture is held for as long as it was shown and the file is variable-frame-rate
with real timestamps. Stopping finishes the file in a background thread, so the render loop does
not wait for the encoder; the node reports the finished file (or its error) a few frames later.

Where it writes is the user's, never the graph's: `path` and `snapshot_dir` only name a file in the
recordings folder and a sub-folder of the snapshots folder (`autolume_graph.workspace`), an earlier
take or snapshot is never overwritten, and the video becomes its file only when finished
(`autolume_graph.atomic`). None of these parameters is bound to OSC unless the user binds it;
`/autolume/record` and `/autolume/snapshot` are the show's own controls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from autolume_graph import workspace
from autolume_graph.atomic import remove_stale_temps
from autolume_graph.failure_memo import FailureMemo
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.latest import LatestFrame
from autolume_graph.outputs.recorder import VideoRecorder, write_png
from autolume_graph.params import Bool, Input, String, Trigger
from autolume_graph.roles import Role
from autolume_graph.types import PortType


def timed_name(template: str) -> str:
    """`template` with `{time}` replaced by the local time (before the name is sanitized)."""
    return template.replace("{time}", time.strftime("%Y%m%d-%H%M%S"))


def output_file(kind: str, name: str, suffix: str, sub: str = "") -> Path:
    """A new file's path in the folder of `kind`, its folder's stale temporary files removed."""
    path = workspace.output_path(kind, name, suffix, sub=sub)
    remove_stale_temps(path.parent)
    return path


class Recorder(Node):
    """Records the image to H.264 MP4 with real timestamps and saves PNG snapshots; the show never waits."""

    category = "output"
    roles = frozenset({Role.SINK, Role.RECORDER})
    inputs = {"image": Input(PortType.IMAGE, "image to record")}
    params = {
        "path": String("autolume-{time}.mp4", writes=True,
                       doc="video file name in the recordings folder; {time} is the start time; read when "
                           "recording starts"),
        "record": Bool(False, writes=True, doc="record while on (OSC /autolume/record)"),
        "snapshot": Trigger(writes=True, doc="save the image as PNG in the snapshots folder (OSC /autolume/snapshot)"),
        "snapshot_dir": String("", writes=True,
                               doc="sub-folder of the snapshots folder, one plain name (empty: the folder itself)"),
    }

    def reset(self) -> None:
        self._latest = LatestFrame()
        self._recorder: VideoRecorder | None = None
        self._finishing: tuple[VideoRecorder, threading.Thread] | None = None
        self._failures = FailureMemo()  # by `path`: retried when it changes or record is switched on again

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
        if self._recorder is None:
            failure = self._failures.failure(params["path"])
            if failure is not None:
                return failure
            try:
                path = output_file("recordings", timed_name(params["path"]), ".mp4")
            except (OSError, workspace.WriteRefused) as exc:
                return self._failures.remember(params["path"], f"recording {params['path']!r} failed ({one_line(exc)})")
            recorder = VideoRecorder(path, ctx.fps if ctx.fps > 0 else 30.0, overwrite=False)
            if recorder.error is not None:  # its folder cannot be written: now, not when it first encodes
                return self._failures.remember(params["path"], str(recorder.error))
            self._recorder = recorder
        recorder = self._recorder
        if self._latest.frame is not None:
            recorder.write(self._latest.frame.bgra, ctx.time)
        if recorder.error is not None:
            return str(recorder.error)
        dropped = f", {recorder.dropped} dropped" if recorder.dropped else ""
        self.status = f"recording {recorder.path.name}: {recorder.frames_written} frames{dropped}"
        return ""

    def _snapshot(self, params: dict[str, Any]) -> str:
        """Write the image as PNG, named like the video, in the snapshots folder; returns the error ("" if none)."""
        frame = self._latest.frame
        if frame is None:
            return "no image to snapshot yet"
        try:
            path = output_file("snapshots", timed_name(params["path"]), ".png", sub=params["snapshot_dir"])
            path = write_png(frame.rgb, path, overwrite=False)
        except OutputError as exc:
            return str(exc)
        except (OSError, workspace.WriteRefused) as exc:
            return f"snapshot failed ({one_line(exc)})"
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
        self._failures.forget()
        if self._recorder is None:
            return
        recorder, self._recorder = self._recorder, None
        thread = threading.Thread(target=recorder.close, name=f"finish:{recorder.path.name}")
        thread.start()
        self._finishing = (recorder, thread)
