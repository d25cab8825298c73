"""AudioAnalysis: levels, bands, onsets, beats, tempo and a spectrum of an audio wire, each a wire of its own."""

from __future__ import annotations

from typing import Any

from autolume_graph.audio import wires
from autolume_graph.audio.analysis import MAX_BANDS, MAX_SPECTRUM, AnalysisConfig
from autolume_graph.audio.worker import AnalysisWorker
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.params import Float, Input, Int, Output
from autolume_graph.types import PortType

OFFLINE_WAIT_S = 5.0  # an offline frame waits this long, at most, for the analysis of its own audio


class AudioAnalysis(Node):
    """Measures the audio on its input, on a thread of its own, and sends each measure out as a wire.

    Live, each frame shows the latest analysis ready (the audio of the frame before, at most a few
    ms old); on an offline render's fixed-step clock each frame waits for the analysis of its own
    audio, so a render is the same every time. Bands are RMS levels of log-spaced frequency bands,
    each following a rise within `attack` and a fall within `release`; onsets come from the spectral
    flux over an adaptive threshold; the tempo from the flux's autocorrelation (60-200 BPM); a beat is
    an onset at least 0.6 beats after the last one.
    """

    category = "audio"
    inputs = {"audio": Input(wires.AUDIO, "the audio to measure (from AudioFile)")}
    outputs = {
        "rms": Output(PortType.FLOAT, "RMS level of the frame's audio (a full-scale sine: 0.71)"),
        "peak": Output(PortType.FLOAT, "peak level of the frame's audio (0-1)"),
        "band": Output(PortType.FLOAT, "the smoothed level of band `band_index`"),
        "bands": Output(PortType.ANY, "the smoothed band levels, low to high (float32 vector)"),
        "onset": Output(PortType.TRIGGER, "fires on the frame a sound starts"),
        "onset_strength": Output(PortType.FLOAT, "the flux of the frame's strongest onset over its recent peak (0-1)"),
        "beat": Output(PortType.TRIGGER, "fires on the frame of a beat"),
        "bpm": Output(PortType.FLOAT, "the tempo estimate (0 until there is one)"),
        "spectrum": Output(PortType.ANY, "the spectrum on log-spaced bins, -80..0 dB as 0-1 (float32 vector)"),
    }
    params = {
        "bands": Int(8, 1, MAX_BANDS, doc="how many log-spaced bands between low and high"),
        "band_index": Int(0, 0, MAX_BANDS - 1, doc="the band sent out on `band`"),
        "low": Float(40.0, 20.0, 2000.0, unit="Hz", doc="the lowest band's lower edge"),
        "high": Float(16000.0, 1000.0, 24000.0, unit="Hz", doc="the highest band's upper edge"),
        "attack": Float(10.0, 0.0, 1000.0, unit="ms", doc="how fast a band level rises (time constant)"),
        "release": Float(200.0, 0.0, 5000.0, unit="ms", doc="how fast a band level falls (time constant)"),
        "sensitivity": Float(1.5, 1.0, 5.0, doc="an onset's flux over the recent median flux (lower: more onsets)"),
        "spectrum_size": Int(32, 1, MAX_SPECTRUM, doc="how many bins the spectrum has"),
    }

    def reset(self) -> None:
        self._worker: AnalysisWorker | None = None

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        span = inputs.get("audio")
        if span is None:
            raise NodeError("connect an audio source (AudioFile)")
        if self._worker is None:
            self._worker = AnalysisWorker()
        config = AnalysisConfig(span.rate, params["bands"], params["low"], params["high"], params["attack"],
                                params["release"], params["sensitivity"], params["spectrum_size"])
        serial = self._worker.submit(span, config)
        if span.fixed_step and not self._worker.wait(serial, OFFLINE_WAIT_S):
            raise NodeError(f"the analysis took longer than {OFFLINE_WAIT_S:g} s")
        try:
            features = self._worker.take()
        except RuntimeError as exc:
            raise NodeError(f"analysis failed: {exc}") from None
        if features is None:
            return {}
        bands = features.bands
        return {"rms": features.rms, "peak": features.peak,
                "band": float(bands[min(params["band_index"], len(bands) - 1)]) if len(bands) else 0.0,
                "bands": bands, "onset": features.onset, "onset_strength": features.onset_strength,
                "beat": features.beat, "bpm": features.bpm, "spectrum": features.spectrum}
