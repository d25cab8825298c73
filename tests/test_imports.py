"""No import cycles between the project's modules, counting imports inside functions too.

Why inside functions as well: a lazy import hides a cycle from the interpreter but not from the
design; two modules that need each other are one idea split in two (or one of them is in the
wrong layer). A call given a project module's full name as its first argument
(``importlib.import_module("autolume_graph.ui.app")``, the CLI's ``_lazy``) counts as an import of it.
Imports under ``if TYPE_CHECKING:`` are left out: they never run and only name types.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"autolume_graph": ROOT / "autolume_graph", "autolume_graph.nodes": ROOT / "nodes",
            "autolume_graph.graphs": ROOT / "graphs"}


def project_modules() -> dict[str, Path]:
    """Every module's dotted name and file, the nodes and graphs folders under their installed names."""
    modules: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom | str]:
    """Every import that can run, at any depth (functions, classes, try blocks); a module named by a
    call's first argument as its name string."""
    found: list[ast.Import | ast.ImportFrom | str] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            found.append(node.args[0].value)
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (`from a import b` counts as a.b where b is a module)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, str):
                targets = [node]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import x\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n")
    (tmp_path / "d.py").write_text("import importlib\ndef g():\n    return importlib.import_module('e')\n")
    (tmp_path / "e.py").write_text("import d\n")
    modules = {p.stem: p for p in tmp_path.glob("*.py")}
    assert cycles(import_graph(modules)) == [["a", "b"], ["d", "e"]]


def test_no_import_cycles_between_project_modules() -> None:
    modules = project_modules()
    assert "autolume_graph.cli" in modules and "autolume_graph.nodes.recorder" in modules
    found = cycles(import_graph(modules))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(group) for group in found)
