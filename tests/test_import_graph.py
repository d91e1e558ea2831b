"""The import structure of ``ml``, read from the source (AST), not from running it.

* The package-level import graph is acyclic: a node is a sub-package (``ml.dosing``,
  ``ml.tracking``, ...) or a top-level module (``ml._atomic``); an edge A -> B is an import of B by
  a module of A. Both graphs are checked: module-level imports (including under ``if``/``try``),
  and every import, lazy ones inside functions included (a lazy import hides a cycle from Python,
  not from the design). ``ml.dosing -> ml.tracking -> ml.dosing`` would be a cycle.
* MLflow is imported (anywhere, lazily too) only by ``ml.tracking`` and the command line
  ``ml.cli``, and the dosing engine does not import ``ml.tracking`` at all: window sources are
  resolved at the edge (``ml.tracking.load_window_source``).
* Nobody outside ``ml.tracking`` imports its private modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ML = Path(__file__).resolve().parents[1] / "ml"


def _module_name(path: Path) -> tuple[str, str]:
    """The dotted name of a source file and of the package its relative imports start from."""
    parts = list(path.relative_to(ML.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _imports(node, package: str, top_level_only: bool):
    """Absolute names imported by ``node``'s statements (not inside functions or classes when
    ``top_level_only``)."""
    for child in ast.iter_child_nodes(node):
        if top_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(child, ast.Import):
            yield from (a.name for a in child.names)
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                module = ".".join(base + ([child.module] if child.module else []))
            else:
                module = child.module or ""
            yield module
            yield from (f"{module}.{a.name}" for a in child.names)  # ``from ml import tracking``
        else:
            yield from _imports(child, package, top_level_only)


def _node(name: str) -> str:
    """The graph node of a dotted ``ml`` name: ``ml.<first part>``."""
    return ".".join(name.split(".")[:2])


def _sources():
    return [(p, *_module_name(p)) for p in sorted(ML.rglob("*.py"))]


def package_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    known = {_node(name) for _, name, _ in _sources()}
    for path, name, package in _sources():
        for target in _imports(ast.parse(path.read_text()), package, top_level_only=top_level_only):
            if target.startswith("ml.") and _node(target) in known and _node(target) != _node(name):
                graph[_node(name)].add(_node(target))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        path.pop()
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"ml.dosing": {"ml.tracking"}, "ml.tracking": {"ml.dosing"}}) == [
        "ml.dosing", "ml.tracking", "ml.dosing"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_relative_imports_resolve_to_their_package():
    tree = ast.parse("from ._window import x\nfrom .. import pk\nimport ml.cohort\n")
    assert set(_imports(tree, "ml.dosing", True)) == {"ml.dosing._window", "ml.dosing._window.x", "ml", "ml.pk",
                                                      "ml.cohort"}


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level imports", "lazy imports too"])
def test_the_package_import_graph_is_acyclic(top_level_only):
    graph = package_graph(top_level_only)
    assert graph["ml.tracking"] >= {"ml.dosing"}  # the edge depends on the engine, not the other way round
    assert find_cycle(graph) is None, f"import cycle between packages of ml: {' -> '.join(find_cycle(graph))}"


def test_the_run_record_is_read_and_written_without_the_pipeline_and_report_importing_each_other():
    graph = package_graph(top_level_only=False)
    assert "ml.record" in graph["ml.experiments"] and "ml.record" in graph["ml.report"]
    assert "ml.experiments" not in graph["ml.report"]
    assert graph["ml.record"] <= {"ml._atomic"}  # the contract depends on nothing but the atomic writer


#: the one private import allowed: every command bounds MLflow's HTTP retries (environment defaults) before it
#: runs, and importing the package ml.tracking there would load MLflow for `atgwin simulate` and `validate` too
_LIGHT = {("ml.cli", "ml.tracking._store"), ("ml.cli", "ml.tracking._store.bounded_http")}


def test_mlflow_is_imported_only_at_the_edge():
    allowed = ("ml.tracking", "ml.cli")
    offenders, private = [], []
    for path, name, package in _sources():
        names = set(_imports(ast.parse(path.read_text()), package, top_level_only=False))
        if any(n == "mlflow" or n.startswith("mlflow.") for n in names) and _node(name) not in allowed:
            offenders.append(name)
        if _node(name) == "ml.dosing" and any(_node(n) == "ml.tracking" for n in names if n.startswith("ml.")):
            offenders.append(f"{name} (imports ml.tracking)")
        private += [f"{name} -> {n}" for n in sorted(names)
                    if _node(name) != "ml.tracking" and n.startswith("ml.tracking._") and (name, n) not in _LIGHT]
    assert not offenders, f"MLflow (or ml.tracking) imported outside the edge: {offenders}"
    assert not private, f"private modules of ml.tracking imported from outside it: {private}"
