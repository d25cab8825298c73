"""Where a graph named on the command line comes from: a file, or a graph shipped with the package.

Why its own module: the command line, the editor and the benchmark all open graphs by name, and
none of them should import another front end to do it.
"""

from __future__ import annotations

from pathlib import Path

from autolume_graph.errors import UserError
from autolume_graph.graph import Graph


def resolve_graph_path(ref: str | None) -> Path:
    """A graph file path, or the name of a shipped graph (`default`)."""
    from importlib import resources

    ref = ref or "default"
    path = Path(ref)
    if path.exists():
        return path
    shipped = resources.files("autolume_graph.graphs") / f"{ref}.agraph"
    if shipped.is_file():
        return Path(str(shipped))
    raise UserError(f"{ref}: no such graph file or shipped graph")


def open_graph(ref: str | None) -> Graph:
    """The graph file or shipped graph `ref` names, loaded (see `autolume_graph.serialize`)."""
    from autolume_graph.serialize import load_graph

    return load_graph(resolve_graph_path(ref))
