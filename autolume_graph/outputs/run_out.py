"""Where `run --out` puts frames, holding at most a frame or two in memory however long the run.

* ``.mp4``: every frame, H.264, through `VideoRecorder`.
* ``.npy``: every frame, uint8 [N, H, W, 3], streamed to the temporary file behind a header of
  fixed size that is rewritten with the frame count at the end.
* ``.png``, ``.jpg``, ``.jpeg``: the last frame only.

Each is written to a temporary file beside the path and renamed over it only when complete
(`autolume_graph.atomic`), so an error or a killed process leaves the file at the path as it was;
temporaries that killed runs left are removed when the next run starts. A frame whose size differs
from the first is scaled to it, as the recorder does. Failures (a full disk, an unwritable folder)
raise one `OutputError` line; `close(discard=True)` drops what was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np
from PIL import Image

from autolume_graph.atomic import publish, remove_stale_temps, temp_beside, write_with
from autolume_graph.outputs.errors import OutputError, one_line
from autolume_graph.outputs.frames import FrameConverter, HostFrame
from autolume_graph.outputs.recorder import VideoRecorder

if TYPE_CHECKING:
    from autolume_graph.runtime import Runtime, Snapshot

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
SUFFIXES = (".mp4", ".npy", *IMAGE_FORMATS)
NPY_HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + the header dict padded with spaces


class FrameFile(Protocol):
    """One `run --out` target: frames in, one finished file at `path` on `close()`."""

    path: Path

    def write(self, frame: HostFrame, t: float) -> None:
        """Take the frame shown at `t` seconds; OutputError on failure."""

    def close(self, discard: bool = False) -> None:
        """Finish the file and move it to `path` (`discard`: leave `path` as it was); OutputError on failure."""


def open_frame_file(path: Path, fps: float) -> FrameFile:
    """The writer for `path`'s suffix (OutputError for another one); removes stale temporaries beside it."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise OutputError(f"{path}: --out must end in {', '.join(SUFFIXES)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"writing {path} failed ({one_line(exc)})") from exc
    remove_stale_temps(path.parent)
    if suffix == ".mp4":
        return VideoFile(path, fps)
    if suffix == ".npy":
        return NpyStream(path)
    return LastImage(path, IMAGE_FORMATS[suffix])


class FrameTap:
    """A frame hook that hands each new frame's picture (its first published image) to a FrameFile.

    A hook must not raise into the frame loop: the first failure is kept in `error`, nothing more is
    written, and the caller ends the run with it.
    """

    def __init__(self, out: FrameFile) -> None:
        self.out = out
        self.error: OutputError | None = None
        self._converter = FrameConverter()
        self._seen: int | None = None

    def __call__(self, runtime: Runtime) -> None:
        self.take(runtime.snapshot)

    def take(self, snapshot: Snapshot) -> None:
        """Write `snapshot`'s picture unless it was written already (or there is none)."""
        if self.error is not None or snapshot.frame == self._seen or not snapshot.published:
            return
        self._seen = snapshot.frame
        try:
            self.out.write(self._converter.convert(next(iter(snapshot.published.values()))), snapshot.time)
        except OutputError as exc:
            self.error = exc


def _fitted(rgb: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """`rgb` scaled to `shape` (h, w, 3) where it differs."""
    if shape is None or rgb.shape == shape:
        return rgb
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((shape[1], shape[0]), Image.BILINEAR))


class VideoFile:
    """Every frame to an MP4."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self._recorder = VideoRecorder(path, fps or 30.0)
        if self._recorder.error is not None:
            raise self._recorder.error

    def write(self, frame: HostFrame, t: float) -> None:
        self._recorder.write_every(frame.bgra, t)

    def close(self, discard: bool = False) -> None:
        self._recorder.close(discard=discard)
        if self._recorder.error is not None:
            raise self._recorder.error
        if not discard and not self._recorder.frames_written:
            raise OutputError(f"{self.path}: the graph produced no image, nothing written")


class NpyStream:
    """Every frame to a .npy stack, streamed: one frame in memory, the header rewritten at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shape: tuple[int, ...] | None = None
        self._file: BinaryIO | None = None
        self._temp: Path | None = None
        self.frames = 0
        try:
            self._temp = temp_beside(path)
            self._file = open(self._temp, "r+b")  # noqa: SIM115 - kept open across frames, closed in close()
            self._file.write(npy_header((0, 0, 0, 3)))
        except OSError as exc:
            raise self._failed(exc) from exc

    def write(self, frame: HostFrame, t: float) -> None:
        rgb = np.ascontiguousarray(_fitted(frame.rgb, self._shape))
        try:
            self._file.write(rgb.data)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._shape = rgb.shape
        self.frames += 1

    def close(self, discard: bool = False) -> None:
        if self._file is None:
            return
        if discard or not self.frames:
            self._drop()
            if not discard:
                raise OutputError(f"{self.path}: the graph produced no image, nothing written")
            return
        try:
            self._file.seek(0)
            self._file.write(npy_header((self.frames, *self._shape)))
            self._file.close()
            publish(self._temp, self.path)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._file = None

    def _drop(self) -> None:
        """Close and remove the temporary file; `path` stays as it was."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)

    def _failed(self, exc: OSError) -> OutputError:
        self._drop()
        return OutputError(f"writing {self.path} failed ({one_line(exc)})")


def npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy version 1.0 header for a C-ordered uint8 array of `shape`, always NPY_HEADER_BYTES long
    (the format pads the header with spaces), so the final one can be written over the first."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    body = text.ljust(NPY_HEADER_BYTES - 10 - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


class LastImage:
    """The last frame only, as PNG or JPEG: one frame kept, written at the end."""

    def __init__(self, path: Path, image_format: str) -> None:
        self.path = path
        self._format = image_format
        self._last: np.ndarray | None = None
        self._closed = False

    def write(self, frame: HostFrame, t: float) -> None:
        if self._last is None or self._last.shape != frame.rgb.shape:
            self._last = np.empty(frame.rgb.shape, np.uint8)
        np.copyto(self._last, frame.rgb)

    def close(self, discard: bool = False) -> None:
        last, self._last = self._last, None
        if discard or self._closed:
            return
        self._closed = True
        if last is None:
            raise OutputError(f"{self.path}: the graph produced no image, nothing written")
        try:
            write_with(self.path, lambda temp: Image.fromarray(last).save(temp, format=self._format))
        except OSError as exc:
            raise OutputError(f"writing {self.path} failed ({one_line(exc)})") from exc

