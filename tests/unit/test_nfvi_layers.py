"""The NFVI code's two sides stay apart (``vnfha/nfvi/__init__.py``, ``vnfha/bridge/__init__.py``).

- The member's side and the shared message code (``vnfha/nfvi/``) import nothing from the
  bridge (``vnfha.bridge`` or any module under it): a member never loads the bridge's code.
- The bridge uses the shared code (``model``, ``wire``) only, never the member's side
  (``vnfha.nfvi.client``, ``vnfha.nfvi.agent``).
- Only the bridge imports the drivers (``vnfha.bridge.drivers``): a module of ``vnfha`` outside
  ``vnfha/bridge/`` may not, except the programs built on the SDK (``vnfha.apps``: the demo and
  the fence benchmark run a bridge over the simulator in their own process). ``vnfha bridge
  serve`` reaches the drivers through ``vnfha.bridge.serve``.

Imports are read with :mod:`ast`, so every import counts: at the top, under
``if TYPE_CHECKING:``, inside a function (the CLI imports lazily), relative ones, and
``importlib.import_module`` / ``__import__`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import vnfha

PACKAGE_DIR = Path(vnfha.__file__).parent
SOURCE_ROOT = PACKAGE_DIR.parent

BRIDGE = "vnfha.bridge"
DRIVERS = "vnfha.bridge.drivers"
MEMBER_SIDE = ("vnfha.nfvi.client", "vnfha.nfvi.agent")

DRIVER_USERS_OUTSIDE_THE_BRIDGE = {
    "vnfha.apps": "programs built on the SDK: `vnfha demo` and `vnfha bench fence` run a bridge "
                  "over the simulator in their own process",
}
"""Packages (or modules) outside ``vnfha/bridge/`` allowed to import the drivers, and why."""


@dataclass(frozen=True)
class Import:
    """One import statement: the module that makes it, where, the statement, and the modules it
    may load (``targets``, absolute)."""

    module: str
    path: str
    line: int
    statement: str
    targets: tuple[str, ...]

    def reaches(self, package: str) -> str | None:
        """The first of ``targets`` that is ``package`` or under it, or None."""
        return next((t for t in self.targets if within(t, package)), None)

    def describe(self, package: str) -> str:
        return (f"{self.module} ({self.path}:{self.line}) imports {self.reaches(package)}: "
                f"{self.statement}")


def module_name(path: Path) -> str:
    """``vnfha/nfvi/client.py`` -> ``vnfha.nfvi.client``; a package's ``__init__``: the
    package's name."""
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False,
               path: str = "<string>") -> Iterator[Import]:
    """Every import statement of ``source`` (``module`` is its name, for relative imports). For
    ``from a import b`` the targets are ``a`` and ``a.b``, since ``b`` may be a submodule."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, filename=path)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "__import__"))):
            targets = [node.args[0].value]
        if targets:
            yield Import(module, path, node.lineno, ast.unparse(node), tuple(targets))


def imports_in(directory: Path) -> Iterator[Import]:
    """The imports of every module under ``directory``."""
    for file in sorted(directory.rglob("*.py")):
        yield from imports_of(file.read_text(encoding="utf-8"), module_name(file),
                              is_package=file.name == "__init__.py",
                              path=str(file.relative_to(SOURCE_ROOT)))


def within(target: str, package: str) -> bool:
    """Whether ``target`` is ``package`` or a module under it."""
    return target == package or target.startswith(package + ".")


def offending(found: Iterator[Import], package: str, rule: str) -> str:
    """The failure message: the rule, then one line per import of ``package`` in ``found``."""
    lines = sorted(i.describe(package) for i in found if i.reaches(package))
    return rule + ":\n  " + "\n  ".join(lines) if lines else ""


def test_the_member_side_never_imports_the_bridge() -> None:
    message = offending(imports_in(PACKAGE_DIR / "nfvi"), BRIDGE,
                        f"vnfha/nfvi/ must not import {BRIDGE} (move what both sides need "
                        "into vnfha.nfvi.model or vnfha.nfvi.wire)")
    assert not message, message


def test_the_bridge_never_imports_the_member_side() -> None:
    for side in MEMBER_SIDE:
        message = offending(imports_in(PACKAGE_DIR / "bridge"), side,
                            "vnfha/bridge/ may use vnfha.nfvi's shared code (model, wire), "
                            f"not the member's side ({side})")
        assert not message, message


def driver_imports_outside_the_bridge() -> Iterator[Import]:
    bridge_dir = PACKAGE_DIR / "bridge"
    for file in sorted(PACKAGE_DIR.rglob("*.py")):
        if file.is_relative_to(bridge_dir):
            continue
        for i in imports_of(file.read_text(encoding="utf-8"), module_name(file),
                            is_package=file.name == "__init__.py",
                            path=str(file.relative_to(SOURCE_ROOT))):
            if i.reaches(DRIVERS):
                yield i


def test_only_the_bridge_imports_the_drivers() -> None:
    found = (i for i in driver_imports_outside_the_bridge()
             if not any(within(i.module, allowed) for allowed in DRIVER_USERS_OUTSIDE_THE_BRIDGE))
    message = offending(found, DRIVERS, f"only vnfha/bridge/ may import {DRIVERS} (the CLI "
                        "goes through vnfha.bridge.serve)")
    assert not message, message


def test_every_exception_still_imports_the_drivers() -> None:
    users = {i.module for i in driver_imports_outside_the_bridge()}
    stale = sorted(allowed for allowed in DRIVER_USERS_OUTSIDE_THE_BRIDGE
                   if not any(within(user, allowed) for user in users))
    assert not stale, f"no longer import {DRIVERS}; drop them from the exceptions: {stale}"


def test_the_checker_sees_every_kind_of_import() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from vnfha.bridge.core import BridgeCore
from .. import bridge
from ..bridge.drivers import sim
def lazy():
    import vnfha.bridge.serve
    importlib.import_module("vnfha.bridge.state")
from vnfha.nfvi import wire
"""
    found = list(imports_of(source, "vnfha.nfvi.client", path="vnfha/nfvi/client.py"))
    assert {(i.line, i.reaches(BRIDGE)) for i in found if i.reaches(BRIDGE)} == {
        (4, "vnfha.bridge.core"), (5, "vnfha.bridge"), (6, "vnfha.bridge.drivers"),
        (8, "vnfha.bridge.serve"), (9, "vnfha.bridge.state")}
    message = offending(iter(found), BRIDGE, "rule")
    assert ("vnfha.nfvi.client (vnfha/nfvi/client.py:4) imports vnfha.bridge.core: "
            "from vnfha.bridge.core import BridgeCore") in message
    assert "client.py:10" not in message
