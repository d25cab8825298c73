"""Where nodes go on the canvas: the nearest free spot for new nodes, and framing the whole graph.

Dear PyGui 2.3's node editor has neither zoom nor a panning API, so framing moves the nodes
instead, as one undoable `MoveNodes` edit (the view follows because it bumps the structure version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autolume_graph.commands import Command
from autolume_graph.graph import Graph

Point = tuple[float, float]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in node-editor coordinates
GAP = 16.0  # the space kept between nodes
STEP = 24.0  # how far apart the candidate spots are
RINGS = 80  # how far out (in steps) the search goes before giving up


def overlaps(a: Rect, b: Rect, gap: float = GAP) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def shifted(rect: Rect, dx: float, dy: float) -> Rect:
    return rect[0] + dx, rect[1] + dy, rect[2] + dx, rect[3] + dy


def free_offset(wanted: list[Rect], taken: list[Rect]) -> Point:
    """The smallest shift down and/or right of the group `wanted` that overlaps no `taken` (nearest first)."""
    def free(dx: float, dy: float) -> bool:
        return not any(overlaps(shifted(rect, dx, dy), other) for rect in wanted for other in taken)

    for ring in range(RINGS + 1):
        spots = [(i, ring) for i in range(ring + 1)] + [(ring, j) for j in range(ring)]
        for i, j in sorted(spots, key=lambda s: s[0] ** 2 + s[1] ** 2):
            if free(i * STEP, j * STEP):
                return i * STEP, j * STEP
    return 0.0, 0.0


def bounds(rects: list[Rect]) -> Rect:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def frame_offset(rects: list[Rect], area: Rect, margin: float = 24.0) -> Point:
    """The shift that centres all `rects` in `area` (top-left aligned when they are larger than it)."""
    x0, y0, x1, y1 = bounds(rects)
    dx = area[0] + max(margin, (area[2] - area[0] - (x1 - x0)) / 2) - x0
    dy = area[1] + max(margin, (area[3] - area[1] - (y1 - y0)) / 2) - y0
    return dx, dy


@dataclass
class MoveNodes(Command):
    """New canvas positions for some nodes, undoable as one step (framing the graph)."""

    positions: dict[str, Point]
    _old: dict[str, list[float] | None] = field(default_factory=dict)

    def apply(self, graph: Graph) -> None:
        self._old = {node_id: graph.node(node_id).ui.get("pos") for node_id in self.positions}
        for node_id, pos in self.positions.items():
            graph.nodes[node_id].ui["pos"] = [*pos]
        graph.structure_version += 1

    def revert(self, graph: Graph) -> None:
        for node_id, pos in self._old.items():
            if node_id in graph.nodes:
                if pos is None:
                    graph.nodes[node_id].ui.pop("pos", None)
                else:
                    graph.nodes[node_id].ui["pos"] = pos
        graph.structure_version += 1
