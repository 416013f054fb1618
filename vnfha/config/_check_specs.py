"""Built-in health checks as configuration: :class:`CheckSpec`, one check a member runs beside
its component's ``health_check``, and :func:`check_specs`, the check of ``Config.checks``.

A spec is data: the kind of check (``process``, ``tcp``, ``grpc-health``), what it looks at,
and how it is run and judged (its own period, timeout and hysteresis, as
:class:`~vnfha.health.verdict.CheckPolicy` takes them). Specs come from ``Config.checks`` (in
TOML an array of tables) and from the component (``Component.checks()``); the member's
supervisor turns each into a running check (:func:`vnfha.health.checks.from_spec`).

Guarantees:

- **A CheckSpec that exists is valid**: a known kind; a target of the kind's form (a pid or an
  absolute pidfile path for ``process``, ``host:port`` for ``tcp`` and ``grpc-health``);
  ``service`` only for ``grpc-health``; durations finite and positive with ``timeout_s <=
  period_s`` (runs never overlap); streaks in 1..1000; a name of 1-128 characters from
  ``A-Z a-z 0-9 _ . : / @ [ ] -`` (no comma or space: ``vnfha status`` joins names with
  commas), not ``health_check`` (the component's own check runs under that name). Anything
  else raises :class:`~vnfha.ConfigError` naming the key and the value; in a Config the key is
  a path, ``checks[1].target``.
- **Named by default** after the kind and target (``tcp-127.0.0.1:5432``), as the built-in
  checks name themselves. Names are unique within ``Config.checks``.
- **Unknown keys are refused** with the nearest key suggested: a typo must not leave a default
  in force.
- **Bounded**: at most :data:`MAX_CHECKS` checks (each is one task of the member). Failures are
  counted in metrics by kind, never by name, so names do not grow a label's values.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from vnfha.config._checks import choice, coerce, duration, host_port, int_in, wrong_type
from vnfha.errors import ConfigError
from vnfha.health.verdict import MAX_STREAK, CheckPolicy
from vnfha.model import Recovery

__all__ = ["CHECK_KINDS", "MAX_CHECKS", "RESERVED_NAME", "CheckSpec", "check_specs"]

CHECK_KINDS: Final = ("process", "tcp", "grpc-health")
"""The kinds of built-in check (each is a ``check`` label value of the failure counter)."""
MAX_CHECKS: Final = 64
"""The most checks one member runs from its config (and as many from its component)."""
RESERVED_NAME: Final = "health_check"
"""The name the component's own ``health_check`` runs under; no spec may take it."""
DEFAULT_TIMEOUT_S: Final = 2.0
"""A check's ``timeout_s`` when not given (or its ``period_s``, if shorter)."""
MAX_PID: Final = 1 << 22
"""The largest pid Linux hands out (``pid_max`` can be raised no higher)."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@\[\]-]{0,127}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """One built-in health check, validated when built (see the module's guarantees).

    ``kind`` is ``"process"`` (``target``: a pid, or the absolute path of a pidfile read on
    every run), ``"tcp"`` (``target``: ``host:port`` accepts a connection) or
    ``"grpc-health"`` (``target``: ``host:port`` answers grpc.health.v1 ``Check(service)``
    with SERVING; ``service`` ``""`` asks about the whole server). It runs every ``period_s``,
    each run bounded by ``timeout_s``; ``fail_after`` failures in a row make it FAILING (a fault
    for the ladder, with ``recommended`` as the floor of the recovery), ``recover_after``
    passes in a row make it healthy again.
    """

    kind: str
    target: str
    name: str = ""
    """Shown in logs, the member's record and ``vnfha status``; ``""``: ``<kind>-<target>``
    (``grpc-<target>/<service>`` for grpc-health), as the built-in checks name themselves."""
    service: str = ""
    period_s: float = 5.0
    timeout_s: float | None = None
    """At most ``period_s``; ``None``: :data:`DEFAULT_TIMEOUT_S`, or ``period_s`` if shorter.
    Always a number once built."""
    fail_after: int = 3
    recover_after: int = 2
    recommended: Recovery = Recovery.NONE

    def __post_init__(self) -> None:
        kind = choice(*CHECK_KINDS)("kind", self.kind)
        set_ = object.__setattr__
        set_(self, "kind", kind)
        set_(self, "target", _target(kind, self.target))
        if not isinstance(self.service, str):
            raise wrong_type("service", self.service, "a string")
        if self.service and kind != "grpc-health":
            raise ConfigError("service", self.service, "only a grpc-health check has a service")
        if any(ord(c) < 33 or ord(c) == 127 for c in self.service):
            raise ConfigError("service", self.service, "must not contain spaces or control "
                                                       "characters")
        set_(self, "period_s", duration("period_s", self.period_s))
        timeout = min(DEFAULT_TIMEOUT_S, self.period_s) if self.timeout_s is None \
            else duration("timeout_s", self.timeout_s)
        set_(self, "timeout_s", timeout)
        for key in ("fail_after", "recover_after"):
            int_in(1, MAX_STREAK)(key, getattr(self, key))
        if timeout > self.period_s:
            raise ConfigError("timeout_s", timeout,
                              f"must be at most period_s ({self.period_s:g}): runs would overlap")
        set_(self, "recommended", _recovery("recommended", self.recommended))
        set_(self, "name", _name(self.name or self._default_name()))

    def _default_name(self) -> str:
        if self.kind == "grpc-health":
            return f"grpc-{self.target}" + (f"/{self.service}" if self.service else "")
        return f"{self.kind}-{self.target}"

    @property
    def policy(self) -> CheckPolicy:
        """How the check is run and judged, as the health monitor takes it."""
        assert self.timeout_s is not None  # set when built
        return CheckPolicy(fail_after=self.fail_after, recover_after=self.recover_after,
                           period_s=self.period_s, timeout_s=self.timeout_s)

    def describe(self) -> dict[str, object]:
        """Every key as a plain JSON-able value; ``CheckSpec(**spec.describe()) == spec``
        (``recommended`` as its string)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["recommended"] = self.recommended.value
        return out


SPEC_KEYS: Final = tuple(f.name for f in dataclasses.fields(CheckSpec))
_KEY_KINDS: Final = {f.name: str(f.type) for f in dataclasses.fields(CheckSpec)}


def _target(kind: str, value: object) -> str:
    """A pid or absolute pidfile path (process), or ``host:port`` (tcp, grpc-health)."""
    if kind == "process":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise wrong_type("target", value, "a pid or an absolute pidfile path")
        if value.isascii() and value.isdigit():
            if not 1 <= int(value) <= MAX_PID:
                raise ConfigError("target", value, f"a pid is in 1..{MAX_PID}")
            return value
        if not value.startswith("/") or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ConfigError("target", value, "expected a pid (digits) or the absolute path "
                                               "of a pidfile")
        return value
    if isinstance(value, str) and "://" in value:
        raise ConfigError("target", value, "give host:port without a scheme")
    return host_port("target", value, min_port=1)


def _recovery(key: str, value: object) -> Recovery:
    if isinstance(value, Recovery):
        return value
    return Recovery(choice(*(r.value for r in Recovery))(key, value))


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise wrong_type("name", value, "a string")
    if not _NAME_RE.fullmatch(value):
        raise ConfigError("name", value, "must be 1-128 characters of A-Z, a-z, 0-9 and "
                                         "_ . : / @ [ ] -, starting with a letter or digit")
    if value == RESERVED_NAME:
        raise ConfigError("name", value, "is the name of the component's own health_check")
    return value


# -- Config.checks ------------------------------------------------------------------------------


def check_specs(name: str, value: object) -> tuple[CheckSpec, ...]:
    """The check of ``Config.checks``: a tuple of CheckSpecs from a list of CheckSpecs or
    mappings (TOML tables), or from a string holding a TOML array of tables (an environment
    variable; blank: no checks). Errors name the path of the offending key, ``checks[1].target``."""
    if isinstance(value, str):
        value = _parse(name, value)
    if isinstance(value, Mapping):
        raise ConfigError(name, value, "expected an array of tables: a [[checks]] header (two "
                                       "brackets) for each check, or checks = [{...}, ...]")
    if not isinstance(value, list | tuple):
        raise wrong_type(name, value, "a list of checks (tables)")
    if len(value) > MAX_CHECKS:
        raise ConfigError(name, f"{len(value)} checks", f"at most {MAX_CHECKS} checks")
    specs: list[CheckSpec] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        spec = _spec(where, item)
        if spec.name in seen:
            raise ConfigError(f"{where}.name", spec.name, f"{name}[{seen[spec.name]}] has this "
                              "name too: check names must be unique")
        seen[spec.name] = i
        specs.append(spec)
    return tuple(specs)


def _parse(name: str, text: str) -> object:
    if not text.strip():
        return []
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(name, text, f"expected a TOML array of tables, as "
                                      f"[{{kind = \"tcp\", target = \"127.0.0.1:5432\"}}]: {e}"
                          ) from None


def _spec(where: str, item: object) -> CheckSpec:
    """One CheckSpec from a CheckSpec or a mapping, errors prefixed with ``where``."""
    if isinstance(item, CheckSpec):
        return item
    if not isinstance(item, Mapping):
        raise wrong_type(where, item, "a table of check settings (kind, target, ...)")
    values: dict[str, Any] = {}
    for key, raw in item.items():
        if key not in SPEC_KEYS:
            near = difflib.get_close_matches(str(key), SPEC_KEYS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"the keys are {', '.join(SPEC_KEYS)}"
            raise ConfigError(f"{where}.{key}", raw, f"unknown key {key!r} in a check; {hint}")
        values[key] = coerce(f"{where}.{key}", raw, _KEY_KINDS[key])
    for key in ("kind", "target"):
        if key not in values:
            raise ConfigError(f"{where}.{key}", None, "required in every check")
    try:
        return CheckSpec(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}.{e.field}", e.value, e.problem) from e
