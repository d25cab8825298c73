"""Audio files: decoded once off the render thread into a bounded mono buffer, then played on the render clock.

The playhead moves by each frame's `dt`, so it follows wall time live and the fixed step offline:
what a frame hears then depends only on its time, and the analysis of a render is the same each run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from autolume_graph.file_reads import FileRefused, open_regular

MAX_SECONDS = 15 * 60  # the most audio kept per file: 15 min of 48 kHz mono float32 is 165 MiB
MAX_RATE = 48000  # files above this are resampled to it (analysis needs no more)
MAX_SPAN_S = 1.0  # the most audio one frame hands on (a stalled frame skips the rest)


@dataclass(frozen=True, eq=False)
class Clip:
    """A decoded file: mono float32 samples at `rate`."""

    samples: np.ndarray
    rate: int
    truncated: bool = False

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True, eq=False)
class AudioSpan:
    """What travels on an audio wire each frame: the samples played since the last frame.

    `time` is the playhead (s) after them; `restarted`: the playhead jumped (seek, new file), so an
    analysis starts afresh; `fixed_step`: the frame's clock is the fixed step of an offline render,
    so a reader waits for its analysis of these samples rather than showing the latest it has.
    """

    samples: np.ndarray
    rate: int
    time: float
    restarted: bool = False
    fixed_step: bool = False


def decode(path: str | os.PathLike) -> Clip:
    """`path` decoded with PyAV (WAV, FLAC, OGG, MP3, ...), mixed to mono; run off the render thread."""
    import av  # PyAV only where a file is decoded

    try:
        with open_regular(path, "audio") as handle, av.open(handle) as container:
            if not container.streams.audio:
                raise FileRefused(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = min(int(stream.rate or MAX_RATE), MAX_RATE)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            limit = MAX_SECONDS * rate
            pieces, total = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    total += pieces[-1].size
                if total >= limit:
                    break
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise FileRefused(f"{path}: cannot decode ({str(exc).splitlines()[0]})") from None
    samples = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    if not samples.size:
        raise FileRefused(f"{path}: no audio in it")
    return Clip(samples[:limit], rate, len(samples) > limit)


class Playhead:
    """A clip's transport: play, pause, seek and loop, moved on by each frame's `dt`."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.position = 0  # in samples
        self._restarted = True

    def seek(self, seconds: float) -> None:
        self.position = int(round(min(max(seconds, 0.0), self.clip.duration) * self.clip.rate))
        self._restarted = True

    def advance(self, dt: float, playing: bool, loop: bool, fixed_step: bool) -> AudioSpan:
        """The samples of the next `dt` seconds (silence while paused or past the end without `loop`)."""
        rate, data = self.clip.rate, self.clip.samples
        count = min(int(round(max(dt, 0.0) * rate)), int(MAX_SPAN_S * rate))
        end = self.position + count
        if not playing:
            samples = np.zeros(count, np.float32)
        elif end <= len(data):
            samples = data[self.position:end]  # a view: the clip is never written
            self.position = end
        elif loop:
            samples = np.take(data, np.arange(self.position, end), mode="wrap")
            self.position = end % len(data)
        else:
            samples = np.concatenate([data[self.position:], np.zeros(end - len(data), np.float32)])
            self.position = len(data)
        span = AudioSpan(samples, rate, self.position / rate, self._restarted, fixed_step)
        self._restarted = False
        return span
