"""The import graph of the project: the core never reaches Dagster, stages import one way, no circles.

Walks the source with `ast` (nothing is imported), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from factory_assets.core.paths import REPO_ROOT

PACKAGES = ("factory_assets", "resources", "serving")
STAGE_ORDER = ("car", "prep", "model", "release", "status")
"""The core's stage packages in flow order: each may import the base and the stages before it."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every project module and the project modules (or external top-level names) it imports."""
    paths = {_module_name(p): p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        edges: set[str] = set()
        for name in _imports(path, module):
            if name in paths:
                edges.add(name)
            elif name.split(".")[0] not in PACKAGES:
                edges.add(name.split(".")[0])
        graph[module] = edges - {module}
    return graph


GRAPH = import_graph()


def _reaches(start: str, target: str) -> list[str] | None:
    """A path of imports from `start` to the external package `target`, or None."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in GRAPH.get(path[-1], ()):
            if nxt == target:
                return [*path, nxt]
            if nxt in GRAPH and nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


def _stage(module: str) -> str | None:
    """The core stage package a module belongs to, "base" for the shared base, None outside the core."""
    parts = module.split(".")
    if parts[:2] != ["factory_assets", "core"]:
        return None
    return parts[2] if len(parts) > 2 and parts[2] in STAGE_ORDER else "base"


CORE = sorted(m for m in GRAPH if m.startswith("factory_assets.core"))


def test_the_walk_sees_the_whole_project():
    assert len(CORE) > 40, f"only {len(CORE)} core modules found: the walk is broken"
    assert "dagster" in GRAPH["factory_assets.definitions"], "the shell's dagster import was not seen"


@pytest.mark.parametrize("module", CORE)
def test_no_core_module_reaches_dagster(module):
    path = _reaches(module, "dagster")
    assert path is None, f"{module} reaches Dagster: {' -> '.join(path or [])}"


@pytest.mark.parametrize("module", CORE)
def test_core_imports_go_one_way(module):
    own = _stage(module)
    allowed = {"base"} if own == "base" else {"base", *STAGE_ORDER[: STAGE_ORDER.index(own) + 1]}
    wrong = sorted(
        name for name in GRAPH[module] if name.startswith("factory_assets.") and _stage(name) not in allowed
    )
    assert not wrong, f"{module} ({own}) imports {wrong}; it may import only {sorted(allowed)}"


def test_nothing_in_the_core_or_its_resources_imports_the_demo():
    users = sorted(
        m
        for m, edges in GRAPH.items()
        if not m.startswith(("factory_assets.demo", "factory_assets.cli"))
        and any(e.startswith("factory_assets.demo") for e in edges)
    )
    assert not users, f"only the CLI's demo command may import the demo generator: {users}"


def _cycle() -> list[str] | None:
    """One import circle among project modules (Tarjan-free DFS with colours), or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(e for e in GRAPH[node] if e in GRAPH):
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in colour and (found := visit(node)):
            return found
    return None


def test_no_import_circle_anywhere():
    cycle = _cycle()
    assert cycle is None, f"import circle: {' -> '.join(cycle or [])}"


def test_the_checker_finds_a_circle_when_there_is_one(monkeypatch):
    monkeypatch.setitem(
        GRAPH,
        "factory_assets.core.specs",
        {*GRAPH["factory_assets.core.specs"], "factory_assets.core.warehouse"},
    )
    monkeypatch.setitem(
        GRAPH,
        "factory_assets.core.warehouse",
        {*GRAPH["factory_assets.core.warehouse"], "factory_assets.core.specs"},
    )
    assert _cycle() is not None
