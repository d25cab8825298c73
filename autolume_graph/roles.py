"""Node roles: what a node class is for, declared on the class and asked for instead of its name.

A role is a string, so a layer or a user's node file may name its own; these are the ones the engine,
the session, the offline render, the bench and the editor ask for. A role that promises a method or a
parameter says which: the asker relies on it.
"""

from __future__ import annotations


class Role:
    SINK = "sink"
    """Cooked each frame, pulling on its inputs: an output."""
    PREVIEW = "preview"
    """Its image is published to the editor and is what offline renders and the bench write."""
    RECORDER = "recorder"
    """Has `record` and `snapshot` parameters, driven by /autolume/record and /autolume/snapshot."""
    FRAME_SENDER = "frame sender"
    """Sends frames to the network under its `sender_name` parameter (NDI): --ndi-name sets it."""
    OUTPUT_WINDOW = "output window"
    """Opens a window of its own (a projector output)."""
    LOOP_CLOCK = "loop clock"
    """Repeats: `cycle_seconds(params, tempo=None)` says how long one cycle is (render --loop), at `tempo` (the
    wired tempo source's) when it locks to one."""
    KEYFRAMES = "keyframes"
    """Has a `keyframes` DATA parameter: a list of {"seed": n} or {"vector": ...} entries (the editor's list)."""
    LAYER_EDITS = "layer edits"
    """Edits named layers; its status parts list them with markers (the editor shows them one per line)."""
    MIXER = "mixer"
    """Mixes per layer: `mix_keys()` lists the keys of its `mix` parameter (the editor's mix table)."""
    MODEL_SOURCE = "model source"
    """Makes the model other nodes use from its `path` parameter and `model` output (the models browser)."""
    MAPPER = "mapper"
    """Maps a latent through the model; its `psi` parameter is what the bench's OSC probe drives."""
    TEMPO_SOURCE = "tempo source"
    """Follows a clock (Link, MIDI clock): its `tempo` attribute is the latest Tempo (autolume_graph/tempo/
    wires.py) or None before it has one (preset morphs in beats read it)."""
    MORPHS_OUTPUTS = "morphs outputs"
    """In a preset morph (autolume_graph/morph.py) it takes the preset's parameter values at once and
    `morph_outputs(start, now, t, prepared)` blends the outputs it sent at the morph's start into those it
    sends now (latents slerp, models crossfade), each frame on the render thread, cheaply. An optional
    `prepare_morph(start, target)` runs off the render thread first, with the preset's own (prepared) node,
    and returns what the blend needs (`prepared`)."""
