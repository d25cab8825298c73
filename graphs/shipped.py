"""Builds the graphs shipped in this folder; run `python -m autolume_graph.graphs.shipped` to rewrite them."""

from __future__ import annotations

from pathlib import Path

from autolume_graph.graph import Edge, Graph
from autolume_graph.registry import default_registry
from autolume_graph.serialize import save_graph

HERE = Path(__file__).resolve().parent


DEFAULT_LAYOUT = {  # name: (type, position, values)
    "model": ("ModelLoader", (20, 20), {"path": "default"}),
    "seed": ("SeedLatent", (20, 200), {"seed": 7.0, "anim": True, "speed": 0.25}),
    "mapping": ("Mapping", (300, 120), {"psi": 0.8}),
    "generate": ("Generate", (560, 60), {}),
    "preview": ("Preview", (860, 40), {}),
    "ndi": ("NDIOut", (860, 220), {"sender_name": "autolume-graph"}),
}
DEFAULT_WIRES = [
    ("model", "model", "seed", "model"),
    ("model", "model", "mapping", "model"),
    ("model", "model", "generate", "model"),
    ("seed", "z", "mapping", "latent"),
    ("mapping", "w", "generate", "w"),
    ("generate", "image", "preview", "image"),
    ("generate", "image", "ndi", "image"),
]


def build_default() -> Graph:
    """The embedded default model, an animated seed, diversity 0.8, out to the preview and NDI."""
    return _built(DEFAULT_LAYOUT, DEFAULT_WIRES)


def build_audio_reactive() -> Graph:
    """The default graph played by sound: the built-in demo beat (AudioFile "demo"; point it at your own
    file) analysed; its level drives the noise strength and its peaks flash the picture's brightness."""
    return _audio_reactive("AudioFile", {"path": "demo"})


def _audio_reactive(source: str, values: dict) -> Graph:
    """The default graph with the audio of a `source` node (made with `values`) driving the picture."""
    layout = {**DEFAULT_LAYOUT,
              "audio": (source, (20, 420), values),
              "analysis": ("AudioAnalysis", (300, 420), {}),
              "noise_gain": ("Math", (560, 420), {"op": "multiply", "b": 4.0}),
              "color": ("Color", (860, 420), {})}
    wires = [w for w in DEFAULT_WIRES if w[0] != "generate"] + [
        ("generate", "image", "color", "image"),
        ("color", "image", "preview", "image"),
        ("color", "image", "ndi", "image"),
        ("audio", "audio", "analysis", "audio"),
        ("analysis", "rms", "noise_gain", "a"),
        ("noise_gain", "value", "generate", "noise_strength"),
        ("analysis", "peak", "color", "brightness"),
    ]
    return _built(layout, wires)


def build_audio_in_reactive() -> Graph:
    """The audio-reactive graph played by live sound: AudioIn on the default input (choose a device on the
    node) instead of the demo beat. Without an input device the node says why and the picture goes on."""
    return _audio_reactive("AudioIn", {})


def _built(layout: dict, wires: list[tuple[str, str, str, str]]) -> Graph:
    """Nodes by name (type, position, values) and wires (source, port, target, port)."""
    registry = default_registry()
    graph = Graph()
    nodes = {}
    for name, (type_name, pos, values) in layout.items():
        node = registry.create(type_name)
        for param, value in values.items():
            node.set_value(param, value)
        node.ui = {"pos": list(pos)}
        nodes[name] = graph.add_node(node, name=name)
    for src, src_port, dst, dst_port in wires:
        graph.add_edge(Edge(nodes[src].id, src_port, nodes[dst].id, dst_port))
    graph.settings = {"osc_host": "127.0.0.1", "osc_port": 1338}
    return graph


SHIPPED = {"default": build_default, "audio-reactive": build_audio_reactive,
           "audio-in-reactive": build_audio_in_reactive}


def main() -> None:
    for name, build in SHIPPED.items():
        save_graph(build(), HERE / f"{name}.agraph")
        print(f"wrote {HERE / f'{name}.agraph'}")


if __name__ == "__main__":
    main()
