"""The block analysis on signals made here: tones land in their band, clicks give onsets and tempo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autolume_graph.audio.analysis import HOP, AnalysisConfig, Analyzer, analyse, band_edges, estimate_bpm

RATE = 48000


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def clicks(times: list[float], seconds: float, seed: int = 0) -> np.ndarray:
    """Short decaying noise bursts starting at `times` (s), in silence."""
    out = np.zeros(int(seconds * RATE), np.float32)
    rng = np.random.default_rng(seed)
    for t in times:
        start = int(round(t * RATE))
        burst = rng.standard_normal(240) * np.exp(-np.arange(240) / 60.0) * 0.8
        out[start:start + 240] += burst[:len(out) - start]
    return out


@pytest.mark.parametrize("freq", [100.0, 440.0, 3000.0])
def test_a_tone_lands_in_its_band(freq: float) -> None:
    config = AnalysisConfig(RATE, bands=8)
    last = analyse(tone(freq, 1.0), config)[-1]
    edges = band_edges(8, config.fmin, config.fmax)
    expected = int(np.searchsorted(edges, freq) - 1)
    assert int(np.argmax(last.bands)) == expected
    assert last.bands[expected] == pytest.approx(0.5 / math.sqrt(2), rel=0.05)  # the band's RMS (less leakage)
    others = np.delete(last.bands, expected)
    assert np.all(others < 0.3 * last.bands[expected])  # a low tone leaks into the band below through its window
    assert last.rms == pytest.approx(0.5 / math.sqrt(2), rel=0.05)
    assert last.peak == pytest.approx(0.5, rel=0.01)
    assert int(np.argmax(last.spectrum)) == int(np.searchsorted(band_edges(32, config.fmin, config.fmax), freq) - 1)


def test_onsets_fire_on_the_block_of_each_click_and_nowhere_else() -> None:
    times = [0.3 + 0.37 * k for k in range(12)]
    features = analyse(clicks(times, 5.0), AnalysisConfig(RATE), piece=HOP)
    fired = [i for i, f in enumerate(features) if f.onset]
    expected = [int(t * RATE) // HOP for t in times]  # the piece the click's first sample is in
    assert len(fired) == len(times)
    assert all(abs(a - b) <= 1 for a, b in zip(fired, expected, strict=True))
    strength = np.array([f.onset_strength for f in features])
    assert all(strength[i:i + 4].max() > 0.5 for i in fired)  # the flux peaks as the click fills the window
    quiet = np.ones(len(features), bool)
    for i in fired:
        quiet[i - 2:i + 10] = False
    assert strength[quiet].max() < 0.01


def test_a_120_bpm_click_gives_120_bpm_and_a_beat_per_click() -> None:
    times = list(np.arange(0.25, 10.0, 0.5))
    features = analyse(clicks(times, 10.0), AnalysisConfig(RATE), piece=1600)
    assert features[-1].bpm == pytest.approx(120.0, abs=2.0)
    assert sum(f.beat for f in features) == len(times)


def test_offbeat_onsets_are_not_beats_once_the_tempo_is_known() -> None:
    beats = list(np.arange(0.25, 10.0, 0.5))
    offbeats = [t + 0.125 for t in beats[12:]]  # a sixteenth after each beat, from 6 s on
    features = analyse(clicks(sorted(beats + offbeats), 10.0), AnalysisConfig(RATE), piece=1600)
    assert sum(f.onset for f in features) == len(beats) + len(offbeats)
    assert sum(f.beat for f in features) == len(beats)


def test_estimate_bpm_from_an_envelope() -> None:
    block_rate = 100.0
    envelope = np.zeros(800)
    envelope[::50] = 1.0  # one pulse each 0.5 s
    assert estimate_bpm(envelope, block_rate) == pytest.approx(120.0, abs=0.5)
    assert estimate_bpm(np.zeros(800), block_rate) == 0.0


def test_the_result_is_repeatable_and_does_not_depend_on_how_the_samples_are_cut() -> None:
    signal = np.concatenate([tone(440.0, 0.5), clicks([0.2, 0.6], 1.0)])
    config = AnalysisConfig(RATE)
    a, b = Analyzer(config), Analyzer(config)
    for i in range(0, len(signal), 333):
        a.feed(signal[i:i + 333])
    for i in range(0, len(signal), 1600):
        last = b.feed(signal[i:i + 1600])
    mine = a.feed(np.zeros(0, np.float32))
    assert mine.time == last.time
    np.testing.assert_allclose(mine.bands, last.bands, rtol=1e-5)  # batched FFTs round a little differently
    np.testing.assert_allclose(mine.spectrum, last.spectrum, rtol=1e-5)
    assert mine.bpm == pytest.approx(last.bpm, rel=1e-6)
    again = Analyzer(config)
    for i in range(0, len(signal), 333):
        again.feed(signal[i:i + 333])
    repeat = again.feed(np.zeros(0, np.float32))
    np.testing.assert_array_equal(repeat.bands, mine.bands)  # the same cut: the same numbers, bit for bit


def test_attack_and_release_follow_their_time_constants() -> None:
    config = AnalysisConfig(RATE, attack_ms=50.0, release_ms=200.0)
    signal = np.concatenate([tone(440.0, 1.0), np.zeros(RATE, np.float32)])
    features = analyse(signal, config, piece=HOP)
    band = int(np.argmax(features[int(RATE * 0.9) // HOP].bands))
    level = np.array([f.bands[band] for f in features])
    full = level[int(RATE * 0.9) // HOP]
    window_s = 2048 / RATE  # the window's own rise and fall

    def crossing(start_s: float, above: bool, fraction: float) -> float:
        start = int(start_s * RATE) // HOP
        hits = np.flatnonzero(level[start:] >= fraction * full if above else level[start:] <= fraction * full)
        return hits[0] * HOP / RATE

    assert 0.05 <= crossing(0.0, True, 1 - 1 / math.e) <= 0.05 + window_s
    assert 0.2 <= crossing(1.0, False, 1 / math.e) <= 0.2 + window_s


def test_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Analyzer(AnalysisConfig(RATE, bands=0))
    with pytest.raises(ValueError):
        Analyzer(AnalysisConfig(RATE, spectrum_size=100000))
