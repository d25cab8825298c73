"""A preset is a saved graph in a folder; switching one swaps graphs between two frames, or morphs (morph.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from autolume_graph.graph import Graph
from autolume_graph.outputs.errors import one_line
from autolume_graph.serialize import GraphFileError, load_graph, save_graph

log = logging.getLogger(__name__)

SUFFIX = ".agraph"


class PresetFolder:
    """The presets of one folder, by name (file stem). A corrupt file is reported, never fatal."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []

    def path(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise GraphFileError(f"{name!r}: not a valid preset name")
        return self.folder / f"{name}{SUFFIX}"

    def save(self, name: str, graph: Graph) -> Path:
        path = self.path(name)
        save_graph(graph, path)
        return path

    def load(self, name: str) -> Graph:
        path = self.path(name)
        if not path.exists():
            raise GraphFileError(f"no preset named {name!r} in {self.folder}")
        return load_graph(path)

    def rename(self, old: str, new: str) -> None:
        target = self.path(new)
        if target.exists():
            raise GraphFileError(f"a preset named {new!r} already exists")
        self.path(old).rename(target)

    def load_all(self) -> tuple[dict[str, Graph], dict[str, str]]:
        """Every preset that loads, and the one-line reason of each that does not: whatever one file does
        (a bug it reaches in a migration or a node type included), the others still load."""
        graphs, failures = {}, {}
        for name in self.names():
            try:
                graphs[name] = self.load(name)
            except GraphFileError as exc:
                failures[name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - contained per file, reported like a refusal
                failures[name] = f"{self.folder / (name + SUFFIX)}: {one_line(exc)}"
                log.warning("preset %s: %s", name, failures[name])
        return graphs, failures
