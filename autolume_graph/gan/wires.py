"""The GAN layer's wire types, declared beside the networks they carry (the engine knows none of them)."""

from __future__ import annotations

from autolume_graph.types import WireType

MODEL = WireType("model", "a loaded generator")
LATENT = WireType("latent", "a Latent (gan/latent_value.py): weighted z and w terms, each mapped or used as w")
W = WireType("w", "per-layer w [1, num_ws, w_dim] on the device")
EDITS = WireType("edits", "layer transforms, per-layer noise and the layer view, in order")
