"""The audio layer's wire type, declared beside the nodes that make and read it."""

from __future__ import annotations

from autolume_graph.types import WireType

AUDIO = WireType("audio", "an AudioSpan (audio/file_source.py): the mono samples a source played this frame")
