"""The demo clip: a short beat made from a fixed recipe at first use, so the shipped audio-reactive graph
plays out of the box (nothing bundled, nothing downloaded). AudioFile's `path` "demo" names it."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from autolume_graph.atomic import write_atomic
from autolume_graph.gan.default_model import cache_dir

DEMO = "demo"
RATE = 48000
SECONDS = 16.0
BPM = 120.0
VERSION = 1  # in the file name: a changed recipe is a new file


def demo_samples() -> np.ndarray:
    """Four bars at 120 BPM: a kick on every beat, a hat between, a bass that steps each bar (mono float32)."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    beat = 60.0 / BPM
    since_beat = t % beat
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-since_beat * 30)) * since_beat) * np.exp(-since_beat * 9)
    since_hat = (t + beat / 2) % beat
    hat = np.random.default_rng(7).standard_normal(t.size) * np.exp(-since_hat * 60) * 0.15
    bass_notes = np.array([55.0, 65.4, 49.0, 73.4])[(t // (4 * beat)).astype(int) % 4]
    bass = np.sin(2 * np.pi * bass_notes * t) * 0.25
    return (0.6 * kick + hat + bass).clip(-1, 1).astype(np.float32)


def demo_clip_path() -> Path:
    """The demo clip's WAV file in the cache folder, written (atomically) the first time it is asked for."""
    path = cache_dir() / f"demo-beat-v{VERSION}.wav"
    if not path.is_file():
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes((demo_samples() * 32767).astype("<i2").tobytes())
        write_atomic(path, buffer.getvalue())
    return path
