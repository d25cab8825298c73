"""Video recording (H.264 MP4 via PyAV) and PNG snapshots, kept off the render thread.

Why a thread and a bounded pool: x264 takes milliseconds per frame and a disk can stall; the
render loop only copies the frame into one of `queue_size` reused buffers of a `FrameWorker`
(``write`` returns False and counts ``dropped`` when all are waiting to be encoded).

Timestamps are the frames' real times: ``pts = round((t - t_first) * 90000)`` in a 1/90000 time
base, so a live recording is variable-frame-rate and plays back at the speed it was rendered.
A timestamp that does not advance is nudged one tick forward (the muxer needs strictly
increasing pts). ``fps_hint`` only guides the encoder's rate control and keyframe spacing.

yuv420p needs even width and height: an odd-sized frame is padded by repeating its last
row/column, so the file is up to one pixel larger than the frame. If the frame size changes
mid-recording, later frames are scaled to the first frame's size.

The video is written to a hidden temporary file beside `path` (see `autolume_graph.atomic`) and
renamed to `path` only when it is finished, so a killed process leaves the previous file at `path`
byte-identical (and a temporary file that the next start removes). ``overwrite=False`` never
replaces an existing file: the take goes to the next free ``NAME-N.mp4`` and ``.path`` says so.

Errors (unwritable folder, full disk, missing libx264) never raise into the caller: the recorder
stops, removes its temporary file, leaves `path` as it was, and exposes one ``OutputError`` line
as ``.error``. A recording with no frame, or one closed with ``discard=True``, leaves `path` as it was.
"""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from autolume_graph.atomic import publish, temp_beside, write_with
from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.frame_worker import FrameWorker

TIME_BASE = Fraction(1, 90000)
CODEC = "libx264"
PIXEL_FORMATS = {3: "rgb24", 4: "bgra"}


class VideoRecorder:
    """Records frames (RGB or BGRA) with their timestamps to an H.264 MP4 that becomes `path` when closed."""

    def __init__(
        self, path: str | os.PathLike, fps_hint: float = 30, crf: int = 18, preset: str = "veryfast",
        queue_size: int = 8, *, overwrite: bool = True,
    ) -> None:
        self.path = Path(path)  # where the finished file is (or will be)
        self._overwrite = overwrite
        self._discard = False
        self._fps = Fraction(fps_hint).limit_denominator(1001)
        self._options = {"crf": str(crf), "preset": preset}
        self._worker = FrameWorker(f"recorder:{self.path.name}", capacity=queue_size)
        self._close_lock = threading.Lock()
        self._closed = False
        self.frames_written = 0
        self.error: OutputError | None = None
        if CODEC not in av.codecs_available:
            self.error = OutputError(f"{CODEC} is not available in PyAV's bundled FFmpeg")
            return
        try:  # now, not in the encoder thread: a folder that cannot be written is an error at once
            self._temp = temp_beside(self.path)
        except OSError as exc:
            self.error = OutputError(f"recording {self.path} failed ({one_line(exc)})")
            return
        self._worker.start(self._run)

    @property
    def dropped(self) -> int:
        """Frames not recorded because every buffer was still waiting to be encoded."""
        return self._worker.dropped

    def write(self, frame: np.ndarray, t_seconds: float) -> bool:
        """Queue a frame shown at `t_seconds` (copied; any strides); False if dropped.

        `frame` is HxWx3 RGB or HxWx4 BGRA/BGRX uint8. Prefer ``HostFrame.bgra``: copying it is a
        plain memcpy, while the strided ``HostFrame.rgb`` view costs ~3 ms more at 1024 px.
        """
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 RGB or HxWx4 BGRA uint8, got {frame.shape} {frame.dtype}")
        if self.error is not None:
            return False
        h, w, c = frame.shape
        return self._worker.offer((h + h % 2, w + w % 2, c), lambda buf: _fill_even(buf, frame), float(t_seconds))

    def write_every(self, frame: np.ndarray, t_seconds: float) -> None:
        """Queue a frame, waiting for the encoder rather than dropping (offline work); OutputError on failure."""
        while not self.write(frame, t_seconds):
            if self.error is not None:
                raise OutputError(str(self.error))
            time.sleep(0.002)

    def close(self, discard: bool = False) -> None:
        """Encode what is queued, finish the file, move it to `path` and stop the thread; `discard`:
        drop the recording instead, leaving `path` as it was. Idempotent; never raises."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._discard = discard
        self._worker.close(drain=not discard)

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(discard=exc_type is not None)

    def _run(self) -> None:
        container = stream = None
        t0 = last_pts = None
        try:
            container = av.open(str(self._temp), mode="w")
            while (item := self._worker.next_frame()) is not None:
                buf, t = item
                if stream is None:
                    stream = self._add_stream(container, buf.shape[1], buf.shape[0])
                    t0 = t
                pts = round((t - t0) / TIME_BASE)
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1
                last_pts = pts
                frame = av.VideoFrame.from_ndarray(buf, format=PIXEL_FORMATS[buf.shape[2]])
                self._worker.recycle(buf)
                frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                frame.pts, frame.time_base = pts, TIME_BASE
                container.mux(stream.encode(frame))
                self.frames_written += 1
            if stream is not None:
                container.mux(stream.encode(None))
            container.close()
            if stream is not None and not self._discard:
                self.path = publish(self._temp, self.path, overwrite=self._overwrite)
        except Exception as exc:  # IO or codec failure: report it, never raise into the render loop
            self.error = OutputError(f"recording {self.path} failed ({one_line(exc)})")
            if container is not None:
                try:
                    container.close()
                except Exception:  # already failing; the first error is the one to report
                    pass
        finally:
            self._temp.unlink(missing_ok=True)  # published, or not to be kept
            self._worker.stop(drain=False)

    def _add_stream(self, container: av.container.OutputContainer, width: int, height: int):
        stream = container.add_stream(CODEC, rate=self._fps, options=self._options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        return stream


def _fill_even(buf: np.ndarray, frame: np.ndarray) -> None:
    """`frame` into the even-sized `buf`, an odd last row/column repeated (yuv420p needs even sizes)."""
    h, w = frame.shape[:2]
    buf[:h, :w] = frame
    if h % 2:
        buf[h, :w] = frame[h - 1]
    if w % 2:
        buf[:, w] = buf[:, w - 1]


def write_png(rgb: np.ndarray, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Save an HxWx3 uint8 image through a temporary file renamed at the end; returns where it went
    (see `autolume_graph.atomic.publish` for `overwrite`); raises OutputError."""
    path = Path(path)
    try:
        return write_with(path, lambda temp: Image.fromarray(np.ascontiguousarray(rgb)).save(temp, format="PNG"),
                          overwrite=overwrite)
    except OSError as exc:
        raise OutputError(f"snapshot {path.name} failed ({one_line(exc)})") from exc
