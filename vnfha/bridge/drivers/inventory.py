"""The simulator's inventory file: hosts and the instances to launch (``--instances FILE.toml``).

::

    hosts = ["host-1", "host-2", "host-3"]     # optional: hosts known from the start

    [[instances]]
    name = "vfw-a"                             # the instance (VM) name
    group = "vfw"                              # the vnfha group and member it runs
    member = "vfw-a"
    host = "host-1"
    argv = ["python", "examples/hello_vnf.py", "--member", "vfw-a"]
    env = { VNFHA_MEMBER = "vfw-a" }           # optional, added to the bridge's environment
    cwd = "."                                  # optional, relative to the file's directory

Guarantees: :func:`load_inventory` refuses (``ConfigError`` naming the entry and field) an
unknown key, a missing or empty required field, a value of the wrong type, and duplicate
instance names or duplicate (group, member) pairs; nothing is launched from a file that does
not load. Parsing is pure; :func:`launch_inventory` does the launching.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.errors import ConfigError

__all__ = ["Inventory", "InstanceSpec", "launch_inventory", "load_inventory", "parse_inventory"]

_REQUIRED = ("name", "group", "member", "host", "argv")
_OPTIONAL = ("env", "cwd")


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """One instance to launch."""

    name: str
    group: str
    member: str
    host: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None


@dataclass(frozen=True, slots=True)
class Inventory:
    """Hosts known from the start, and the instances to launch in order."""

    hosts: tuple[str, ...]
    instances: tuple[InstanceSpec, ...]


def _strings(where: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(where, value, "must be a list of non-empty strings")
    if not value and not allow_empty:
        raise ConfigError(where, value, "must not be empty")
    return tuple(value)


def _instance(i: int, entry: Any, base: Path) -> InstanceSpec:
    where = f"instances[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(where, entry, "must be a table")
    unknown = sorted(set(entry) - {*_REQUIRED, *_OPTIONAL})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", entry[unknown[0]],
                          f"unknown key (known: {', '.join((*_REQUIRED, *_OPTIONAL))})")
    for key in ("name", "group", "member", "host"):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.{key}", value, "required, a non-empty string")
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in env.items()):
        raise ConfigError(f"{where}.env", env, "must be a table of strings")
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ConfigError(f"{where}.cwd", cwd, "must be a string")
    return InstanceSpec(entry["name"], entry["group"], entry["member"], entry["host"],
                        _strings(f"{where}.argv", entry.get("argv")), dict(env),
                        None if cwd is None else str(base / cwd))


def parse_inventory(data: Mapping[str, Any], *, base: Path) -> Inventory:
    """Validate a parsed TOML document; ``base`` resolves relative ``cwd`` values."""
    unknown = sorted(set(data) - {"hosts", "instances"})
    if unknown:
        raise ConfigError(unknown[0], data[unknown[0]], "unknown key (known: hosts, instances)")
    hosts = _strings("hosts", data.get("hosts", []), allow_empty=True)
    raw = data.get("instances", [])
    if not isinstance(raw, list):
        raise ConfigError("instances", raw, "must be an array of tables ([[instances]])")
    specs = tuple(_instance(i, e, base) for i, e in enumerate(raw))
    names: set[str] = set()
    members: set[tuple[str, str]] = set()
    for i, spec in enumerate(specs):
        if spec.name in names:
            raise ConfigError(f"instances[{i}].name", spec.name, "duplicate instance name")
        if (spec.group, spec.member) in members:
            raise ConfigError(f"instances[{i}].member", spec.member,
                              f"member already has an instance in group {spec.group!r}")
        names.add(spec.name)
        members.add((spec.group, spec.member))
    return Inventory(hosts, specs)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file (see the module docstring)."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except OSError as e:
        raise ConfigError("--instances", str(file), f"cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("--instances", str(file), f"not valid TOML: {e}") from e
    return parse_inventory(data, base=file.resolve().parent)


async def launch_inventory(sim: SimDriver, inventory: Inventory) -> None:
    """Make the hosts known, then launch every instance in order."""
    for host in inventory.hosts:
        sim.add_host(host)
    for spec in inventory.instances:
        await sim.launch(spec.name, group=spec.group, member=spec.member, host=spec.host,
                         argv=spec.argv, env=spec.env, cwd=spec.cwd)
