"""The architecture holds: no import cycles inside vnfha (TYPE_CHECKING and function-level
imports included), no module above the size guide, a member.py that is a composition root, and
tests that use public names and the test kit rather than private attributes
(``docs/architecture.md``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "vnfha"
MAX_LINES = 600
"""STYLE.md's guide for a module, outside generated code."""
MEMBER_MAX_LINES = 500
MAX_PRIVATE_IN_TESTS = 5


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name.endswith("_pb2.py"):
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The vnfha modules ``name`` imports anywhere in its text (module level, under
    TYPE_CHECKING, inside functions), resolved to modules (``from m import f`` is ``m``). A
    parent package run implicitly by an import is not counted."""
    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for target in targets:
            if target == "vnfha" or target.startswith("vnfha."):
                resolved = resolve(target)
                if resolved is not None and resolved != name:
                    out.add(resolved)
    return out


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
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
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
