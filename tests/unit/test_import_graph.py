"""The import graph of ``pyrstmdb`` has no cycles.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``,
written relative or absolute. An edge goes to the module the statement names
(``from a.b import c`` points at ``a.b.c`` when that is a module, else at ``a.b``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pyrstmdb

PACKAGE_ROOT = Path(pyrstmdb.__file__).resolve().parent
PACKAGE = "pyrstmdb"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Map every module of the package to its file."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join([package, *parts])] = path
    return names


def _resolve_relative(current: str, is_package: bool, level: int, module: str | None) -> str:
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that ``name`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(name, is_package, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    edges: set[str] = set()
    for target in targets:
        # ``import a.b.c`` or a name inside a module: point at the deepest module named.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def import_graph(root: Path = PACKAGE_ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root, package)
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or not."""
    seen: set[str] = set()
    pending = list(graph[start])
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            pending.extend(graph[node])
    return seen


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (each sorted)."""
    reach = {name: reachable(graph, name) for name in graph}
    components = {
        tuple(sorted(other for other in reach[name] if name in reach[other]))
        for name in graph
        if name in reach[name]
    }
    return sorted(list(members) for members in components)


def one_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """A concrete cycle inside one component, as a path that returns to its start."""
    inside = set(members)
    start = members[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & inside):
                if child == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = parents[node]
                    return [start, *reversed(path[1:]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def describe(graph: dict[str, set[str]], components: list[list[str]]) -> str:
    return "\n".join(
        " -> ".join(one_cycle(graph, members)) + f"  (component: {', '.join(members)})"
        for members in components
    )


def test_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .b import B\n")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.sub.b import B\n"
        "def f() -> None:\n"
        "    import pkg.c\n"
    )
    (package / "sub" / "b.py").write_text("from .. import a\nB = 1\n")
    (package / "c.py").write_text("from pkg.sub import B\n")
    graph = import_graph(package, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b", "pkg.c"}
    assert graph["pkg.sub.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg.sub"}
    assert graph["pkg.sub"] == {"pkg.sub.b"}
    components = strongly_connected(graph)
    assert components == [["pkg.a", "pkg.c", "pkg.sub", "pkg.sub.b"]]
    assert one_cycle(graph, components[0]) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    components = strongly_connected(graph)
    assert not components, "import cycles:\n" + describe(graph, components)
