"""Promise 1: any node that raises keeps the last good frame on every output, shows the error, recovers.

Every registered node type is placed in a real graph on the tiny reference model, pulled by a
sink, and its instance's `cook` is replaced by one that raises (fault injection).
"""

from __future__ import annotations

import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from generator_graph import add, attach, generator_graph

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.params import ParamType
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime

INJECTED = "injected fault"
SINKS_BESIDE_PREVIEW = ("NDIOut", "OutputWindow", "Recorder", "OSCOut")
# Recovered without a visible change: the same model again, and a mix of a model with itself.
# no MIDI arrives and no audio device exists in that test: their values stay 0 (silence) before and after
SAME_PICTURE = ("ModelLoader", "ModelMix", "MIDIIn", "MIDIClock", "AudioIn")


def _of(graph: Graph, type_name: str) -> Node:
    return next(n for n in graph.nodes.values() if n.type_name == type_name)


def _into_psi(graph: Graph, type_name: str, **values: Any) -> Node:
    """A signal node wired into Mapping's psi (a wire into a parameter)."""
    node = add(graph, type_name, **values)
    graph.add_edge(Edge(node.id, "value", _of(graph, "Mapping").id, "psi"))
    return node


def _tempo_into_psi(graph: Graph, type_name: str, **values: Any) -> Node:
    """A tempo source whose phase in the bar moves Mapping's psi."""
    node = add(graph, type_name, **values)
    graph.add_edge(Edge(node.id, "phase", _of(graph, "Mapping").id, "psi"))
    return node


def _midi_clock(graph: Graph) -> Node:
    """A MIDI clock (none arrives: its beat stays 0) whose beat moves Mapping's psi."""
    node = add(graph, "MIDIClock", port="agtest-fault:no-such-port")
    graph.add_edge(Edge(node.id, "beat", _of(graph, "Mapping").id, "psi"))
    return node


def _audio_in(graph: Graph) -> Node:
    """AudioIn on a device no machine has (no server needed): silence goes out, its level into Mapping's psi."""
    node = add(graph, "AudioIn", device="agtest-no-such-input")
    graph.add_edge(Edge(node.id, "level", _of(graph, "Mapping").id, "psi"))
    return node


def _adjust_input(graph: Graph) -> Node:
    node = add(graph, "AdjustInput", slider0=1.0)
    graph.add_edge(Edge(_of(graph, "Mapping").id, "w", node.id, "w"))
    graph.add_edge(Edge(node.id, "w", _of(graph, "Generate").id, "w"))
    return node


def _layer_transform(graph: Graph) -> Node:
    node = add(graph, "LayerTransform", target="16", amount=20.0)
    graph.add_edge(Edge(_of(graph, "ModelLoader").id, "model", node.id, "model"))
    graph.add_edge(Edge(node.id, "edits", _of(graph, "Generate").id, "edits"))
    return node


def _osc_out(graph: Graph) -> Node:
    """An OSCOut sending an LFO's value (to a port nobody listens on)."""
    node = add(graph, "OSCOut", port=9, every_frame=True)
    lfo = add(graph, "LFO")
    graph.add_edge(Edge(lfo.id, "value", node.id, "value"))
    return node


def _model_mix(graph: Graph) -> Node:
    node = add(graph, "ModelMix", crossfade=0.5)
    loader = _of(graph, "ModelLoader")
    for port in ("a", "b"):
        graph.add_edge(Edge(loader.id, "model", node.id, port))
    for consumer in ("Mapping", "Generate"):
        graph.add_edge(Edge(node.id, "model", _of(graph, consumer).id, "model"))
    return node


def _on_the_picture(graph: Graph, type_name: str, **values: Any) -> Node:
    """An image node between Generate and Preview (both of Blend's inputs from Generate)."""
    node = add(graph, type_name, **values)
    generate, preview = _of(graph, "Generate"), _of(graph, "Preview")
    graph.remove_edge(next(e for e in graph.edges if e.dst == preview.id))
    for port in node.inputs:
        graph.add_edge(Edge(generate.id, "image", node.id, port))
    graph.add_edge(Edge(node.id, "image", preview.id, "image"))
    return node


def _audio(graph: Graph, type_name: str) -> Node:
    """An AudioFile playing a swelling tone, analysed, its level wired into Mapping's psi."""
    path = Path(tempfile.mkdtemp()) / "swell.wav"
    t = np.arange(10 * 48000) / 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        tone = (0.5 + 0.4 * np.sin(np.pi * t)) * np.sin(2 * np.pi * 440 * t)
        out.writeframes((tone * 32767).astype("<i2").tobytes())
    source = add(graph, "AudioFile", path=str(path))
    source.prepare("cpu")
    analysis = add(graph, "AudioAnalysis")
    graph.add_edge(Edge(source.id, "audio", analysis.id, "audio"))
    graph.add_edge(Edge(analysis.id, "rms", _of(graph, "Mapping").id, "psi"))
    return source if type_name == "AudioFile" else analysis


# How to place each type: a latent source replaces SeedLatent; others are added to the base graph.
LATENT_SOURCES = ("SeedLatent", "VectorLatent", "NoiseLoop", "KeyframeLoop")
PLACE: dict[str, Callable[[Graph], Node]] = {
    **{t: (lambda graph, t=t: _of(graph, t)) for t in (*LATENT_SOURCES, "ModelLoader", "Mapping", "Generate",
                                                       "Preview")},
    "Constant": lambda graph: _into_psi(graph, "Constant", value=0.8),
    "LFO": lambda graph: _into_psi(graph, "LFO", offset=0.8, amplitude=0.2),
    "Math": lambda graph: _into_psi(graph, "Math", a=0.5, b=0.3),
    "OSCIn": lambda graph: _into_psi(graph, "OSCIn", value=0.8),
    "OSCOut": _osc_out,
    "AdjustInput": _adjust_input,
    "LayerTransform": _layer_transform,
    "ModelMix": _model_mix,
    "NDIOut": lambda graph: attach(graph, "NDIOut", sender_name="agtest-fault", enabled=False),
    "OutputWindow": lambda graph: attach(graph, "OutputWindow", enabled=False),
    "Recorder": lambda graph: attach(graph, "Recorder"),
    "Fit": lambda graph: _on_the_picture(graph, "Fit", width=96, height=64),
    "Blend": lambda graph: _on_the_picture(graph, "Blend", mode="add"),
    "Color": lambda graph: _on_the_picture(graph, "Color"),
    "Feedback": lambda graph: _on_the_picture(graph, "Feedback"),
    "AudioFile": lambda graph: _audio(graph, "AudioFile"),
    "AudioAnalysis": lambda graph: _audio(graph, "AudioAnalysis"),
    "Tempo": lambda graph: _tempo_into_psi(graph, "Tempo"),
    "Link": lambda graph: _tempo_into_psi(graph, "Link", enabled=False),
    "MIDIIn": lambda graph: _into_psi(graph, "MIDIIn", port="agtest-fault:no-such-port"),
    "MIDIClock": _midi_clock,
    "AudioIn": _audio_in,
}

# A parameter change that makes the node cook again: (node type or None for itself, param, [values]).
POKE: dict[str, tuple[str | None, str, tuple[Any, Any]]] = {
    "MIDIIn": (None, "number", (10, 11)),
    "AudioIn": (None, "channel", (1, 2)),
    "MIDIClock": (None, "beats_per_bar", (3, 5)),
    "ModelLoader": (None, "device", ("auto", "cpu")),
    "Preview": ("Generate", "noise_strength", (0.5, 0.7)),
    "NDIOut": (None, "sender_name", ("agtest-fault2", "agtest-fault3")),
    "OutputWindow": (None, "monitor", (2, 3)),
    "Recorder": (None, "snapshot_dir", ("a", "b")),
    "OSCOut": (None, "address", ("/a", "/b")),
    "VectorLatent": (None, "randomize", (True, True)),
    "AudioFile": (None, "seek", (2.0, 5.0)),  # past the end would loop back to the picture kept as good
}


def _poke(graph: Graph, node: Node, phase: int) -> Node:
    """Change a parameter so `node` must cook (its first float unless POKE says otherwise); the node changed."""
    if node.type_name in POKE:
        owner, name, values = POKE[node.type_name]
        target = _of(graph, owner) if owner else node
    else:
        target, name = node, next(k for k, p in node.params.items() if p.type is ParamType.FLOAT)
        param = node.params[name]
        values = tuple(param.coerce(param.min + f * (param.max - param.min)) for f in (0.35, 0.45))
    assert target.set_value(name, values[phase])
    return target


def _raise(*_: Any, **__: Any) -> dict[str, Any]:
    raise RuntimeError(INJECTED)


def _same_image(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or torch.equal(a, b)


def test_every_registered_type_is_covered() -> None:
    assert set(default_registry().types) == set(PLACE)


@pytest.mark.parametrize("type_name", sorted(PLACE))
def test_a_raising_node_keeps_the_last_frame_and_recovers(type_name: str, reference_dir: Path) -> None:
    is_sink = type_name in SINKS_BESIDE_PREVIEW
    latent = type_name if type_name in LATENT_SOURCES else "SeedLatent"
    graph = generator_graph(reference_dir, latent=latent, **({"anim": True} if is_sink else {}))
    node = PLACE[type_name](graph)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        for _ in range(3):
            runtime.step()
        assert all(n.error == "" for n in graph.nodes.values()), {n.name: n.error for n in graph.nodes.values()}
        good = runtime.snapshot.published["preview"]
        kept = {n.id: dict(n.last_outputs) for n in graph.nodes.values()}
        cooks = node.cook_count

        node.cook = _raise  # fault injection on this instance only
        poked = _poke(graph, node, 0)
        images = [runtime.step().published["preview"] for _ in range(3)]
        assert node.cook_count > cooks, "the faulty node was not cooked"
        assert node.error == f"RuntimeError: {INJECTED}"
        assert runtime.snapshot.nodes[node.id].error == node.error
        if is_sink:  # its own failure stops no one: the picture moves on
            assert len({id(image) for image in images}) == 3
        else:  # every output holds its last good value
            assert all(_same_image(image, good) for image in images)
            for n in graph.nodes.values():
                if n is not node and (n is poked or n.time_dependent):
                    continue  # changed on purpose (or by the clock) upstream; its change must not get through
                assert n.last_outputs.keys() == kept[n.id].keys()
                assert all(n.last_outputs[k] is v for k, v in kept[n.id].items()), n.name

        del node.cook  # the cause goes away
        cooks = node.cook_count
        _poke(graph, node, 1)
        runtime.step()
        runtime.step()
        assert node.cook_count > cooks and node.error == "" and runtime.snapshot.nodes[node.id].error == ""
        assert all(n.error == "" for n in graph.nodes.values())
        if not is_sink and type_name not in SAME_PICTURE:  # the recovered node's new result reaches the picture
            assert not _same_image(runtime.snapshot.published["preview"], good)
    finally:
        runtime.close()
