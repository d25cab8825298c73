"""Engine overhead per frame for a 50-node graph of cheap nodes, with and without changes each frame.

Run: python benchmarks/bench_engine.py [--frames N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from autolume_graph.commands import SetParam
from autolume_graph.graph import Edge, Graph
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime


def build(n_nodes: int = 50) -> tuple[Graph, str]:
    """A chain of Math nodes fed by a Constant, ending in a sink, plus LFOs that nothing pulls (so cost nothing)."""
    registry = default_registry()
    g = Graph()
    const = g.add_node(registry.create("Constant"), name="const")
    prev = const
    for i in range(n_nodes - 2):
        kind = "LFO" if i % 10 == 9 else "Math"
        node = g.add_node(registry.create(kind), name=f"{kind.lower()}{i}")
        if kind == "Math":
            g.add_edge(Edge(prev.id, "value", node.id, "a"))
            prev = node
    sink = g.add_node(registry.create("Math"), name="out")
    g.add_edge(Edge(prev.id, "value", sink.id, "a"))
    sink.sink = True  # this instance pulls the whole chain, as an output node would
    return g, const.id


def measure(frames: int, change_each_frame: bool) -> list[float]:
    g, const_id = build()
    rt = Runtime(g, fps=0)
    times = []
    for i in range(frames):
        if change_each_frame:
            rt.submit(SetParam(const_id, "value", float(i % 7)))
        t0 = time.perf_counter()
        rt.step()
        times.append((time.perf_counter() - t0) * 1000)
    return times[10:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    for label, change in (("still (nothing changes)", False), ("a parameter changes every frame", True)):
        t = measure(args.frames, change)
        print(f"50 nodes, {label:32s}: mean {statistics.mean(t):.3f} ms  p50 {statistics.median(t):.3f} ms"
              f"  p99 {sorted(t)[int(len(t) * 0.99)]:.3f} ms per frame")


if __name__ == "__main__":
    main()
