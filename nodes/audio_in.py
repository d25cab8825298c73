"""AudioIn: live sound from an input device (PortAudio: JACK, ALSA, CoreAudio, WASAPI, ...) on the audio wire."""

from __future__ import annotations

from typing import Any

import numpy as np

from autolume_graph.audio import wires
from autolume_graph.audio.capture_process import MAX_CHANNELS
from autolume_graph.audio.live_source import KIND, LiveSource, Wanted
from autolume_graph.node import CookContext, Node, NodeState, NodeStatus
from autolume_graph.params import Bool, Choice, DeviceName, Int, Output, Trigger
from autolume_graph.types import PortType

BLOCK_SIZES = ("auto", "64", "128", "256", "512", "1024", "2048")


class AudioIn(Node):
    """Sends out, each frame, the audio that arrived from the input device since the frame before.

    The device is opened and watched off the render thread, in a process of its own: a bad name, an
    unplugged device or a stopped server shows why on the node, silence goes out and the node tries
    again by itself (at once on `rescan`). Live only: what it hears depends on when each frame runs.
    """

    category = "audio"
    time_dependent = True
    outputs = {
        "audio": Output(wires.AUDIO, "the samples that arrived since the last frame (wire into AudioAnalysis)"),
        "level": Output(PortType.FLOAT, "RMS level of the frame's audio (a full-scale sine: 0.71)"),
    }
    params = {
        "device": DeviceName("", kind=KIND, doc="the input device (empty: the system's default input)"),
        "channel": Int(0, 0, MAX_CHANNELS, doc="the channel to hear, 1..N (0: the mix of all)"),
        "block_size": Choice("auto", BLOCK_SIZES, doc="frames per block from the device (auto: the host's own)"),
        "enabled": Bool(True, doc="listening (off: the device is let go, silence goes out)"),
        "rescan": Trigger(doc="look for devices again and reopen (a server started after the show began)"),
    }

    def reset(self) -> None:
        self._source: LiveSource | None = None
        self._rescans = 0

    @property
    def source(self) -> LiveSource | None:
        """The live stream this node reads (None before its first cook or after close)."""
        return self._source

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if self._source is None:
            self._source = LiveSource()
        self._rescans += bool(params["rescan"])
        block = 0 if params["block_size"] == "auto" else int(params["block_size"])
        self._source.want(Wanted(params["device"], block, params["enabled"], self._rescans))
        span = self._source.take(params["channel"], ctx.dt)
        self._show_status(params)
        samples = span.samples
        level = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        return {"audio": span, "level": level}

    def _show_status(self, params: dict[str, Any]) -> None:
        source = self._source
        opened = source.opened
        if not params["enabled"]:
            self.status = "disabled"
        elif source.problem:
            self.status = NodeStatus.of(source.problem, state=NodeState.WAITING)
        elif opened is None:
            self.status = NodeStatus.of(f"opening {params['device'] or 'the default input'}",
                                        state=NodeState.LOADING)
        else:
            channel = params["channel"]
            hearing = "mix" if channel == 0 else f"channel {min(channel, opened.channels)}"
            block = source.block_frames() or opened.block
            dropouts = source.dropouts()
            self.status = NodeStatus.of(opened.device, f"{opened.rate} Hz", f"{opened.channels} ch ({hearing})",
                                        f"block {block or 'auto'}", f"{dropouts} dropouts" if dropouts else "")
