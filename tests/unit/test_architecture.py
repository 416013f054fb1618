"""The architecture holds: no import cycles inside vnfha (TYPE_CHECKING and function-level
imports included), no module above the size guide, a member.py that is a composition root, and
tests that use public names and the test kit rather than private attributes
(``docs/architecture.md``)."""

from __future__ import annotations

import ast
from pathlib import Path

from test_nfvi_layers import PACKAGE_DIR, imports_in, module_name, within

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = PACKAGE_DIR
MAX_LINES = 600
"""STYLE.md's guide for a module, outside generated code."""
MEMBER_MAX_LINES = 500
MAX_PRIVATE_IN_TESTS = 5


def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")
            if not path.name.endswith("_pb2.py")}


def _graph() -> dict[str, set[str]]:
    """Module -> the vnfha modules it imports anywhere in its text (module level, under
    TYPE_CHECKING, inside functions; read by :func:`test_nfvi_layers.imports_in`), each target
    resolved to a module (``from m import f`` is ``m``). A parent package run implicitly by an
    import is not counted."""
    modules = _modules()

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for found in imports_in(PACKAGE):
        if found.module not in graph:
            continue  # generated code
        for target in found.targets:
            resolved = resolve(target) if within(target, "vnfha") else None
            if resolved is not None and resolved != found.module:
                graph[found.module].add(resolved)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    graph = _graph()
    assert graph["vnfha.member"], "the import graph is empty: the parser is broken"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_above_the_size_guide() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
    assert sizes["vnfha.member"] < MEMBER_MAX_LINES


def _private_accesses(path: Path) -> list[str]:
    """``x._name`` with ``x`` not self/cls, and ``from m import _name``, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__") \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vnfha"):
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}"
                      for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_tests_use_public_names() -> None:
    """Tests reach a member's parts through public hooks (``member.follower``,
    ``member.group_state``, ``vnfha.testing``), not private attributes."""
    found = [hit for path in sorted((ROOT / "tests").rglob("*.py"))
             for hit in _private_accesses(path)]
    assert len(found) < MAX_PRIVATE_IN_TESTS, found
