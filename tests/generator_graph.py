"""The real generator as an image source for output tests: the tiny reference StyleGAN2 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import Node
from autolume_graph.registry import default_registry


def add(graph: Graph, type_name: str, **values: Any) -> Node:
    node = graph.add_node(default_registry().create(type_name))
    for name, value in values.items():
        node.set_value(name, value)
    return node


def generator_graph(reference_dir: Path, latent: str = "SeedLatent", **latent_values: Any) -> Graph:
    """ModelLoader -> `latent` -> Mapping -> Generate -> Preview, with the model already loaded."""
    graph = Graph()
    loader = add(graph, "ModelLoader", path=str(reference_dir / "sg2_64_tiny.pkl"), device="cpu")
    source = add(graph, latent, **latent_values)
    mapping, generate, preview = add(graph, "Mapping"), add(graph, "Generate"), add(graph, "Preview")
    for edge in (Edge(loader.id, "model", mapping.id, "model"), Edge(loader.id, "model", generate.id, "model"),
                 Edge(source.id, "z", mapping.id, "latent"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    loader.prepare("cpu")
    return graph


def attach(graph: Graph, type_name: str, **values: Any) -> Node:
    """Add an output node fed by the graph's Generate image."""
    node = add(graph, type_name, **values)
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    graph.add_edge(Edge(generate.id, "image", node.id, "image"))
    return node
