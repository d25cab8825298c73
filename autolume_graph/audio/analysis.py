"""Block analysis of mono audio in numpy: levels, log-spaced bands, onsets, beats and tempo.

Pure and deterministic: the same samples fed in the same order give the same features, whatever
the size of the pieces they arrive in, because the work is done on fixed blocks (`hop` samples
each, a `window`-sample Hann window) carried across calls. So a file analysed at each frame's time
on a fixed-step clock gives the same result on every run.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

MAX_BANDS = 64
MAX_SPECTRUM = 256
WINDOW, HOP = 2048, 512
FLUX_GAIN = 100.0  # log compression of magnitudes before the flux: quiet onsets count, loud ones do not dominate
THRESHOLD_S = 0.3  # the adaptive threshold follows the median flux of this much audio
MIN_FLUX = 0.01  # below this no onset fires, whatever the threshold says (silence, dither)
REFRACTORY_S = 0.05  # at most one onset per this much audio
TEMPO_S = 8.0  # the flux history the tempo is estimated from
TEMPO_EVERY_S = 0.5  # how often the estimate is updated
BPM_RANGE = (60.0, 200.0)
STRENGTH_DECAY_S = 10.0  # the running peak that onset strength is scaled by falls to 1/e in this time


@dataclass(frozen=True)
class AnalysisConfig:
    """What to measure; changing any of it starts the analysis afresh."""

    rate: int
    bands: int = 8
    fmin: float = 40.0
    fmax: float = 16000.0
    attack_ms: float = 10.0
    release_ms: float = 200.0
    sensitivity: float = 1.5
    spectrum_size: int = 32


@dataclass(frozen=True)
class Features:
    """The analysis after the samples fed so far; triggers say whether they fired in the latest feed."""

    rms: float = 0.0
    peak: float = 0.0
    bands: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    onset: bool = False
    onset_strength: float = 0.0
    beat: bool = False
    bpm: float = 0.0
    spectrum: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    time: float = 0.0  # seconds of audio whose blocks have been analysed


def band_edges(bands: int, fmin: float, fmax: float) -> np.ndarray:
    """`bands + 1` edges in Hz, evenly spaced on a log scale from `fmin` to `fmax`."""
    return np.geomspace(fmin, fmax, bands + 1)


def band_matrix(edges: np.ndarray, rate: int, window: int = WINDOW) -> np.ndarray:
    """(len(edges) - 1, window // 2 + 1) 0/1 weights summing the power of each band's FFT bins; a band
    narrower than a bin takes the bin nearest its centre, so no band is always silent."""
    freqs = np.fft.rfftfreq(window, 1.0 / rate)
    matrix = ((freqs >= edges[:-1, None]) & (freqs < edges[1:, None])).astype(np.float32)
    for k in np.flatnonzero(matrix.sum(axis=1) == 0):
        matrix[k, np.argmin(np.abs(freqs - math.sqrt(edges[k] * edges[k + 1])))] = 1.0
    return matrix


def estimate_bpm(flux: np.ndarray, block_rate: float, bpm_range: tuple[float, float] = BPM_RANGE) -> float:
    """The tempo whose period best repeats in the flux envelope (autocorrelation peak), 0 when there is none."""
    x = flux - flux.mean()
    if len(x) < 4 or not np.any(x):
        return 0.0
    size = 1 << int(2 * len(x) - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    corr = np.fft.irfft(spectrum * np.conj(spectrum), size)[:len(x)]
    low = max(int(math.floor(60.0 * block_rate / bpm_range[1])), 1)
    high = min(int(math.ceil(60.0 * block_rate / bpm_range[0])), len(x) - 2)
    if high <= low:
        return 0.0
    lag = low + int(np.argmax(corr[low:high + 1]))
    if corr[lag] <= 0:
        return 0.0
    a, b, c = corr[lag - 1], corr[lag], corr[lag + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0  # parabola through the peak
    return 60.0 * block_rate / (lag + shift)


class Analyzer:
    """Streams mono samples through the block analysis; `feed` returns the features after each piece."""

    def __init__(self, config: AnalysisConfig) -> None:
        if not 1 <= config.bands <= MAX_BANDS or not 1 <= config.spectrum_size <= MAX_SPECTRUM:
            raise ValueError(f"bands must be 1-{MAX_BANDS} and spectrum size 1-{MAX_SPECTRUM}")
        self.config = config
        rate = config.rate
        fmax = min(config.fmax, 0.5 * rate)
        fmin = min(config.fmin, 0.5 * fmax)
        self._window = np.hanning(WINDOW).astype(np.float32)
        # one-sided power normalised so a band's value is the RMS of the signal within it
        self._scale = 2.0 / (WINDOW * float(np.sum(self._window ** 2)))
        self._bands = band_matrix(band_edges(config.bands, fmin, fmax), rate)
        self._spectrum = band_matrix(band_edges(config.spectrum_size, fmin, fmax), rate)
        self._spectrum /= self._spectrum.sum(axis=1, keepdims=True)
        self.block_rate = rate / HOP
        block_s = HOP / rate
        self._attack = math.exp(-block_s / max(config.attack_ms * 1e-3, 1e-9))
        self._release = math.exp(-block_s / max(config.release_ms * 1e-3, 1e-9))
        self._strength_decay = math.exp(-block_s / STRENGTH_DECAY_S)
        self._buffer = np.zeros(WINDOW - HOP, np.float32)  # the window's older part: silence before the start
        self._blocks = 0
        self._levels = np.zeros(config.bands, np.float32)
        self._log_magnitude = np.zeros(WINDOW // 2 + 1, np.float32)
        self._recent = deque(maxlen=max(int(round(THRESHOLD_S * self.block_rate)), 1))
        self._history = deque(maxlen=int(round(TEMPO_S * self.block_rate)))
        self._previous_flux = 0.0
        self._last_onset = -math.inf
        self._last_beat = -math.inf
        self._strength_peak = MIN_FLUX
        self._bpm = 0.0
        self._features = Features(bands=self._levels.copy(), spectrum=np.zeros(config.spectrum_size, np.float32))

    def feed(self, samples: np.ndarray) -> Features:
        """Analyse every whole block the new samples complete; levels are of the new samples themselves."""
        samples = np.asarray(samples, np.float32).ravel()
        data = np.concatenate([self._buffer, samples])
        count = (len(data) - (WINDOW - HOP)) // HOP
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
        peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
        onset = beat = False
        strength = 0.0
        spectrum = self._features.spectrum
        if count > 0:
            frames = np.lib.stride_tricks.sliding_window_view(data[:(count - 1) * HOP + WINDOW], WINDOW)[::HOP]
            power = np.square(np.abs(np.fft.rfft(frames * self._window, axis=1))) * self._scale
            band_power = power @ self._bands.T
            log_magnitude = np.log1p(FLUX_GAIN * np.sqrt(power))
            for i in range(count):
                hit, block_strength, block_beat = self._block(np.sqrt(band_power[i]), log_magnitude[i])
                onset, beat = onset or hit, beat or block_beat
                strength = max(strength, block_strength)
            spectrum = self._spectrum_of(power[-1])
            self._buffer = data[count * HOP:].copy()
        else:
            self._buffer = data
        self._features = Features(rms, peak, self._levels.copy(), onset, strength, beat, self._bpm, spectrum,
                                  self._blocks / self.block_rate)
        return self._features

    def _block(self, levels: np.ndarray, log_magnitude: np.ndarray) -> tuple[bool, float, bool]:
        """Smooth the band levels and judge one block for an onset and a beat."""
        coefficient = np.where(levels > self._levels, self._attack, self._release).astype(np.float32)
        self._levels = (levels + (self._levels - levels) * coefficient).astype(np.float32)
        flux = float(np.mean(np.maximum(log_magnitude - self._log_magnitude, 0.0)))
        self._log_magnitude = log_magnitude
        self._blocks += 1
        now = self._blocks / self.block_rate
        threshold = max(self.config.sensitivity * float(np.median(self._recent)) if self._recent else 0.0, MIN_FLUX)
        onset = flux > threshold and flux > self._previous_flux and now - self._last_onset >= REFRACTORY_S
        self._recent.append(flux)
        self._history.append(flux)
        self._previous_flux = flux
        self._strength_peak = max(self._strength_peak * self._strength_decay, flux)
        if self._blocks % max(int(round(TEMPO_EVERY_S * self.block_rate)), 1) == 0:
            self._bpm = estimate_bpm(np.asarray(self._history), self.block_rate)
        beat = False
        if onset:
            self._last_onset = now
            gap = 0.6 * 60.0 / self._bpm if self._bpm else 60.0 / BPM_RANGE[1]
            beat = now - self._last_beat >= gap
            if beat:
                self._last_beat = now
        return onset, flux / self._strength_peak, beat

    def _spectrum_of(self, power: np.ndarray) -> np.ndarray:
        """The latest block's spectrum on `spectrum_size` log-spaced bins, in dB mapped -80..0 to 0..1."""
        db = 10.0 * np.log10(self._spectrum @ power + 1e-12)
        return np.clip((db + 80.0) / 80.0, 0.0, 1.0).astype(np.float32)


def analyse(samples: np.ndarray, config: AnalysisConfig, piece: int = HOP) -> list[Features]:
    """The features after each `piece` samples of `samples`: the whole of a signal, for tests and offline use."""
    analyzer = Analyzer(config)
    return [analyzer.feed(samples[i:i + piece]) for i in range(0, len(samples), piece)]
