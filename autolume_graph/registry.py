"""Finds every node type: the modules of the bundled node library and of a user folder.

A node file may also declare wire types (types.WireType) and parameter types (params.ParamKind):
loading the file registers them, so one file is a whole plugin (tests/plugins/color_swatch.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
from pathlib import Path

from autolume_graph.node import Node, PlaceholderNode

log = logging.getLogger(__name__)

USER_NODES_ENV = "AUTOLUME_NODES"


def user_nodes_dir() -> Path:
    """Where a user's own node files live (`$AUTOLUME_NODES`, else ~/.autolume-graph/nodes)."""
    return Path(os.environ.get(USER_NODES_ENV, Path.home() / ".autolume-graph" / "nodes"))


class Registry:
    """Node types by name, plus the one-line reasons of modules that failed to load."""

    def __init__(self) -> None:
        self.types: dict[str, type[Node]] = {}
        self.failures: dict[str, str] = {}

    def register(self, cls: type[Node]) -> None:
        self.types[cls.type_name] = cls

    def _collect(self, module: object) -> None:
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Node) and value is not Node
                    and value is not PlaceholderNode and value.__module__ == getattr(module, "__name__", None)):
                self.register(value)

    def load_package(self, package: str = "autolume_graph.nodes") -> None:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            name = f"{package}.{info.name}"
            try:
                self._collect(importlib.import_module(name))
            except Exception as exc:  # one broken node file must not hide the others
                self.failures[name] = f"{type(exc).__name__}: {exc}"
                log.warning("node module %s failed to load: %s", name, exc)

    def load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.py")):
            name = f"autolume_user_nodes.{path.stem}"
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
                self._collect(module)
            except Exception as exc:
                self.failures[str(path)] = f"{type(exc).__name__}: {exc}"
                log.warning("user node file %s failed to load: %s", path, exc)

    def create(self, type_name: str) -> Node:
        try:
            return self.types[type_name]()
        except KeyError:
            raise KeyError(f"unknown node type {type_name!r}") from None


_default: Registry | None = None


def default_registry() -> Registry:
    """The bundled node library and the user's folder, loaded once."""
    global _default
    if _default is None:
        registry = Registry()
        registry.load_package()
        registry.load_folder(user_nodes_dir())
        _default = registry
    return _default
