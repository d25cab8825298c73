"""A ring of audio frames in a memory-mapped file, written by the capture process and read by the render thread.

Why a file mapping: the PortAudio stream lives in a child process (see live_source.py), and both sides
must touch the samples without a pipe or a lock. One writer appends whole blocks and then publishes
its frame count; the reader copies what was published since its last read. A block's arrival time
(time.monotonic, one clock for every process on the machine) is kept beside the frame count it ends at.

Layout: a header of int64/float64 fields, BLOCKS (end count, arrival) pairs, then `capacity` frames of
`channels` float32 samples.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCKS = 1024  # arrival times kept: at 64-frame blocks, 1.4 s at 48 kHz
_HEADER = 8  # int64 fields: written, blocks written, capacity, channels, rate, dropouts, (spare)
_WRITTEN, _BLOCK_COUNT, _CAPACITY, _CHANNELS, _RATE, _DROPOUTS = range(6)


def _size(capacity: int, channels: int) -> int:
    return 8 * _HEADER + 16 * BLOCKS + 4 * capacity * channels


class SharedRing:
    """The mapping of one ring file; `create` makes the file, `attach` maps an existing one."""

    def __init__(self, path: Path, buffer: mmap.mmap) -> None:
        self.path = path
        self._buffer = buffer
        self._header = np.frombuffer(buffer, np.int64, _HEADER)
        self.capacity = int(self._header[_CAPACITY])
        self.channels = int(self._header[_CHANNELS])
        self.rate = int(self._header[_RATE])
        self._ends = np.frombuffer(buffer, np.int64, BLOCKS, 8 * _HEADER)
        self._arrivals = np.frombuffer(buffer, np.float64, BLOCKS, 8 * _HEADER + 8 * BLOCKS)
        self._frames = np.frombuffer(buffer, np.float32, self.capacity * self.channels,
                                     8 * _HEADER + 16 * BLOCKS).reshape(self.capacity, self.channels)

    @classmethod
    def create(cls, folder: Path, capacity: int, channels: int, rate: int) -> SharedRing:
        """A zeroed ring file in `folder` (the writer makes it once it knows the device; the reader attaches)."""
        fd, name = tempfile.mkstemp(prefix="autolume-audio-", suffix=".ring", dir=folder)
        try:
            os.ftruncate(fd, _size(capacity, channels))
            buffer = mmap.mmap(fd, _size(capacity, channels))
        finally:
            os.close(fd)
        np.frombuffer(buffer, np.int64, _HEADER)[[_CAPACITY, _CHANNELS, _RATE]] = (capacity, channels, rate)
        return cls(Path(name), buffer)

    @classmethod
    def attach(cls, path: Path) -> SharedRing:
        with open(path, "r+b") as handle:
            return cls(path, mmap.mmap(handle.fileno(), 0))

    @property
    def written(self) -> int:
        """Frames written since the ring was made."""
        return int(self._header[_WRITTEN])

    # --- the writer (the capture callback: no allocation beyond numpy's views) ----------------------
    def append(self, block: np.ndarray) -> None:
        """Copy a (frames, channels) block in, note its arrival, then publish it (the count last)."""
        arrived = time.monotonic()
        frames = len(block)
        written = int(self._header[_WRITTEN])
        start = written % self.capacity
        first = min(frames, self.capacity - start)
        self._frames[start:start + first] = block[:first]
        if first < frames:
            self._frames[:frames - first] = block[first:]
        count = int(self._header[_BLOCK_COUNT])
        self._ends[count % BLOCKS] = written + frames
        self._arrivals[count % BLOCKS] = arrived
        self._header[_BLOCK_COUNT] = count + 1
        self._header[_WRITTEN] = written + frames

    def count_dropout(self) -> None:
        """The host lost input before this block (an overrun, a JACK xrun)."""
        self._header[_DROPOUTS] += 1

    # --- the reader ---------------------------------------------------------------------------------
    def read(self, start: int, end: int) -> np.ndarray:
        """A copy of frames [start, end) (end - start <= capacity), (frames, channels)."""
        index = np.arange(start, end) % self.capacity
        return self._frames[index]

    def arrival(self, count: int) -> float | None:
        """When the block holding frame number `count` arrived; None when it is not kept (or not come)."""
        blocks = int(self._header[_BLOCK_COUNT])
        for k in range(blocks - 1, max(blocks - BLOCKS, 0) - 1, -1):
            end = int(self._ends[k % BLOCKS])
            begin = int(self._ends[(k - 1) % BLOCKS]) if k > 0 else 0
            if begin <= count < end:
                return float(self._arrivals[k % BLOCKS])
            if end <= count:
                return None
        return None

    @property
    def dropouts(self) -> int:
        """Blocks the host reported input lost before, since the ring was made."""
        return int(self._header[_DROPOUTS])

    def block_frames(self) -> int:
        """The size of the latest block (0 before any)."""
        blocks = int(self._header[_BLOCK_COUNT])
        if blocks == 0:
            return 0
        before = int(self._ends[(blocks - 2) % BLOCKS]) if blocks > 1 else 0
        return int(self._ends[(blocks - 1) % BLOCKS]) - before

    def remove(self) -> None:
        """Delete the file (the mapping stays valid for whoever still holds it)."""
        self.path.unlink(missing_ok=True)


def ring_folder() -> Path:
    """Memory-backed /dev/shm where there is one, else the temp folder."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
