"""Builds the graphs shipped in this folder; run `python -m autolume_graph.graphs.shipped` to rewrite them."""

from __future__ import annotations

from pathlib import Path

from autolume_graph.graph import Edge, Graph
from autolume_graph.registry import default_registry
from autolume_graph.serialize import save_graph

HERE = Path(__file__).resolve().parent


def build_default() -> Graph:
    """The embedded default model, an animated seed, diversity 0.8, out to the preview and NDI."""
    registry = default_registry()
    graph = Graph()
    layout = {
        "model": ("ModelLoader", (20, 20), {"path": "default"}),
        "seed": ("SeedLatent", (20, 200), {"seed": 7.0, "anim": True, "speed": 0.25}),
        "mapping": ("Mapping", (300, 120), {"psi": 0.8}),
        "generate": ("Generate", (560, 60), {}),
        "preview": ("Preview", (860, 40), {}),
        "ndi": ("NDIOut", (860, 220), {"sender_name": "autolume-graph"}),
    }
    nodes = {}
    for name, (type_name, pos, values) in layout.items():
        node = registry.create(type_name)
        for param, value in values.items():
            node.set_value(param, value)
        node.ui = {"pos": list(pos)}
        nodes[name] = graph.add_node(node, name=name)
    for src, src_port, dst, dst_port in [
        ("model", "model", "seed", "model"),
        ("model", "model", "mapping", "model"),
        ("model", "model", "generate", "model"),
        ("seed", "z", "mapping", "latent"),
        ("mapping", "w", "generate", "w"),
        ("generate", "image", "preview", "image"),
        ("generate", "image", "ndi", "image"),
    ]:
        graph.add_edge(Edge(nodes[src].id, src_port, nodes[dst].id, dst_port))
    graph.settings = {"osc_host": "127.0.0.1", "osc_port": 1338}
    return graph


SHIPPED = {"default": build_default}


def main() -> None:
    for name, build in SHIPPED.items():
        save_graph(build(), HERE / f"{name}.agraph")
        print(f"wrote {HERE / f'{name}.agraph'}")


if __name__ == "__main__":
    main()
