"""Validated configuration: :class:`Config`, and :func:`load_config` (a TOML file + ``VNFHA_*``).

Guarantees:

- **A Config that exists is valid.** Every field is checked for type and range when the object
  is built (directly, by :meth:`Config.from_mapping`, :meth:`Config.replace` or
  :func:`load_config`), and the timer relations of :mod:`vnfha.timing` are checked against each
  other. Anything wrong raises :class:`vnfha.ConfigError` (also a ``ValueError``) naming the
  field and the value; the relations are reported all at once. vnfha refuses to start rather
  than run with timers that cannot keep the lease.
- **Immutable and hashable.** Changes go through :meth:`Config.replace`, which validates again.
- **Secrets stay out of logs.** ``etcd_password`` (and the content of ``etcd_password_file``)
  shows as ``"***"`` in ``repr()``, in :meth:`Config.describe` and in error messages.
- **Unknown names are refused**, in a file, a mapping or the environment, with the nearest valid
  name suggested: a typo must not silently leave a default in force.

Precedence in :func:`load_config`: defaults < the TOML file < ``VNFHA_<FIELD>`` environment
variables. ``docs/configuration.md`` lists every field with its unit and default.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from vnfha.errors import ConfigError
from vnfha.model import Redundancy
from vnfha.timing import check_timing, default_keepalive_interval_s

__all__ = ["ENV_PREFIX", "OTHER_ENV_VARS", "Config", "load_config"]

ENV_PREFIX: Final = "VNFHA_"
"""Environment variables ``VNFHA_<FIELD IN UPPER CASE>`` override fields in load_config."""

OTHER_ENV_VARS: Final = frozenset({"VNFHA_ETCD_BIN", "VNFHA_ETCDCTL_BIN", "VNFHA_REQUIRE_LIBVIRT",
                                   "VNFHA_REQUIRE_PROMTOOL"})
"""``VNFHA_*`` variables that are not config fields (read by ``vnfha.testing.etcd``, and by the
test suite: ``VNFHA_REQUIRE_LIBVIRT`` and ``VNFHA_REQUIRE_PROMTOOL``, which CI sets); ignored by
load_config. Any other unknown ``VNFHA_*`` variable is refused as a probable typo."""

_MASK: Final = "***"
_NAME_RE: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_HOST_RE: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
_PORT_RE: Final = re.compile(r"[0-9]{1,5}")
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_TLS_FILES: Final = ("etcd_ca_file", "etcd_cert_file", "etcd_key_file")
_FILE_FIELDS: Final = (*_TLS_FILES, "etcd_password_file", "replication_ca_file",
                       "replication_cert_file", "replication_key_file")
_BOOLS: Final = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Config:
    """Everything one member needs to run, validated when built (see the module docstring).

    Durations are in seconds (``_s``); ``lease_ttl_s`` is whole seconds because etcd leases
    are. Optional fields take ``None`` for "not set".
    """

    group: str
    """The VNF's group name: lowercase letters, digits and '-', 1-63 characters, starting and
    ending with a letter or digit (a DNS label). Members of one group share roles."""
    member: str
    """This instance's name within the group; same rules as ``group``."""
    etcd_endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    """etcd client endpoints, each ``host:port`` (IPv6 as ``[::1]:2379``); no duplicates. A list
    or a comma-separated string is accepted and stored as a tuple."""
    listen: str = "127.0.0.1:0"
    """``host:port`` this member's replication (gRPC) server binds; port 0 picks a free one."""
    redundancy: Redundancy = Redundancy.TWO_N
    """The redundancy model. Strings are accepted: the value (``"2n"``, ``"n-way"``,
    ``"n-way-active"``, ``"no-redundancy"``), with ``_`` for ``-``, or the enum name."""
    priority: int = 0
    """0..1000; between equally up-to-date standbys, the higher priority takes over first."""
    no_failover: bool = False
    """When true this member never takes the active role by failover (it may still be a
    standby and receive checkpoints)."""
    key_prefix: str = "/vnfha"
    """etcd key prefix under which vnfha keeps its keys: starts with '/', no trailing '/', no
    whitespace. An etcd role limited to this prefix is enough for vnfha."""
    etcd_tls: bool = False
    """Talk TLS to etcd. Required (not implied) when any of the etcd_*_file TLS fields is set."""
    etcd_ca_file: str | None = None
    """PEM file of the CA that signed etcd's server certificate; None: the system's roots."""
    etcd_cert_file: str | None = None
    """PEM client certificate for etcd; given together with ``etcd_key_file``."""
    etcd_key_file: str | None = None
    """PEM private key of ``etcd_cert_file``."""
    etcd_username: str | None = None
    """etcd user; needs ``etcd_password`` or ``etcd_password_file``."""
    etcd_password: str | None = None
    """etcd password; shown as "***" everywhere. Prefer ``etcd_password_file``."""
    etcd_password_file: str | None = None
    """File holding the etcd password (one trailing newline is dropped). It is read once, when
    the Config is built; not together with ``etcd_password``."""
    etcd_request_timeout_s: float = 0.5
    """Deadline of one etcd request (and of one keepalive round trip)."""
    etcd_connect_timeout_s: float = 1.0
    """Deadline for connecting (and authenticating) to one etcd endpoint."""
    heartbeat_interval_s: float = 0.05
    """How often the active sends a heartbeat on each replication stream."""
    suspicion_s: float = 0.3
    """Heartbeat silence after which a standby suspects the active is gone."""
    lease_ttl_s: int = 2
    """TTL of the etcd lease behind membership and the active key, whole seconds, >= 1."""
    keepalive_interval_s: float | None = None
    """Lease keepalive period; None: ``lease_ttl_s / 4``. The interval in force is
    :attr:`keepalive_interval_s_effective`."""
    lease_margin_s: float = 0.2
    """Safety margin: the active stops acting this long before its lease could expire."""
    callback_timeout_s: float = 5.0
    """Longest any one component callback (``on_active``, ``health_check``, ...) may run."""
    metrics_port: int | None = None
    """Port of the Prometheus metrics endpoint, 0..65535 (0: any free port); None: no endpoint."""
    checkpoint_ack_timeout_s: float = 1.0
    """How long an ``Ack.ONE`` / ``Ack.ALL`` checkpoint write waits for its standbys."""
    checkpoint_degrade_ack: bool = False
    """When no standby acknowledges in time, return as ``Ack.NONE`` would (counted and logged)
    instead of raising AckTimeout."""
    checkpoint_max_key_bytes: int = 1024
    """Largest checkpoint key, in UTF-8 bytes."""
    checkpoint_max_value_bytes: int = 1 << 20
    """Largest checkpoint value, in bytes (1 MiB)."""
    checkpoint_max_section_bytes: int = 64 << 20
    """Largest checkpoint section (keys plus values), in bytes (64 MiB)."""
    checkpoint_max_message_bytes: int = 4 << 20
    """Largest replication message, in bytes (4 MiB, gRPC's default); batches and snapshot
    chunks are cut to fit."""
    checkpoint_max_backlog_entries: int = 100_000
    """Changes the active keeps for standbys that are behind; one that needs an older change
    gets a snapshot instead, so a slow standby never grows the active's memory without bound."""
    progress_interval_s: float | None = 1.0
    """How often the active samples each standby's checkpoint lag (entries and seconds) into
    its metrics and publishes it in etcd for ``vnfha status``; at least ``heartbeat_interval_s``.
    None: neither (one etcd write per interval per group is the cost)."""
    replication_ca_file: str | None = None
    """CA that signs the members' replication certificates. With ``replication_cert_file`` and
    ``replication_key_file`` it makes replication mutual TLS: the active then accepts only peers
    whose certificate's common name is a member of its group."""
    replication_cert_file: str | None = None
    """This member's replication certificate (server and client), PEM."""
    replication_key_file: str | None = None
    """The key of ``replication_cert_file``, PEM."""
    bridge_endpoint: str | None = None
    """``host:port`` of the NFVI bridge (``vnfha bridge serve``); None: no bridge (no watchdog,
    no fencing: a silent active is replaced only after its lease deadline)."""
    bridge_timeout_s: float = 0.2
    """Deadline of one bridge call, retries included. A Fence that does not succeed within it
    falls back to the lease path, so it bounds what a dead bridge costs a failover."""
    bridge_ca_file: str | None = None
    """CA of the bridge's certificate: TLS to the bridge. With ``bridge_cert_file`` and
    ``bridge_key_file``: mutual TLS (the certificate's CN must be the member's name)."""
    bridge_cert_file: str | None = None
    """This member's client certificate for the bridge, PEM."""
    bridge_key_file: str | None = None
    """The key of ``bridge_cert_file``, PEM."""
    watchdog_timeout_s: float | None = None
    """Hypervisor watchdog period while active (kicked after each confirmed keepalive); None:
    ``lease_ttl_s - lease_margin_s``. Must exceed ``keepalive_interval_s +
    etcd_request_timeout_s`` (or it fires between kicks) and be at most ``lease_ttl_s``."""
    watchdog_action: str = "reset"
    """What the bridge does when the watchdog expires: reset, poweroff, pause or none."""
    fence_mode: str = "kill"
    """How a standby has a silent active fenced: kill (power off) or stop (freeze)."""
    placement_policy: str | None = None
    """Checked at start-up against the bridge's placement of the group: anti-affinity,
    affinity, soft-anti-affinity or soft-affinity; None: not checked."""
    placement_violation: str = "warn"
    """What a violated hard ``placement_policy`` does at start-up: warn (log and run) or
    refuse (the member does not start)."""
    health_check_period_s: float = 5.0
    """How often the component's ``health_check()`` runs."""
    health_check_timeout_s: float = 2.0
    """Longest one ``health_check()`` may run (counted as a failure when exceeded)."""
    health_fail_after: int = 3
    """Consecutive failed checks before the check is FAILED (a fault for the ladder)."""
    health_recover_after: int = 2
    """Consecutive passed checks before a FAILED check is healthy again."""
    ladder_restart_max_count: int = 3
    """Restarts of the component (its ``restart()``) within ``ladder_restart_probation_s``
    before the ladder climbs to failover; 0 disables the rung."""
    ladder_restart_probation_s: float = 300.0
    """Window of the restart rung; its count resets after a fault-free window this long."""
    ladder_failover_max_count: int = 2
    """Failovers (resign to a standby) within the probation window; 0 disables the rung."""
    ladder_failover_probation_s: float = 600.0
    """Window of the failover rung."""
    ladder_reboot_vm_max_count: int = 1
    """VM reboots asked of the NFVI within the probation window; 0 disables the rung."""
    ladder_reboot_vm_probation_s: float = 1800.0
    """Window of the VM reboot rung."""
    ladder_evacuate_vm_max_count: int = 1
    """VM evacuations asked of the NFVI within the probation window; 0 disables the rung."""
    ladder_evacuate_vm_probation_s: float = 3600.0
    """Window of the evacuation rung. Past every rung: alarm only."""

    _password_from_file: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        self._check_etcd_security()
        self._check_replication()
        if self.etcd_password_file is not None:
            object.__setattr__(self, "_password_from_file",
                               _read_password_file(self.etcd_password_file))
        self._check_timing()
        self._check_bridge()

    # -- derived values ---------------------------------------------------------------------

    @property
    def keepalive_interval_s_effective(self) -> float:
        """The keepalive period in force: ``keepalive_interval_s``, or ``lease_ttl_s / 4``."""
        if self.keepalive_interval_s is not None:
            return self.keepalive_interval_s
        return default_keepalive_interval_s(self.lease_ttl_s)

    @property
    def standby_silence_s(self) -> float:
        """Half the lease TTL: an active drops a standby that has answered nothing (no ack, no
        answer to a heartbeat) for this long from its in-sync set, so ``Ack.ONE``/``ALL`` writes
        stop waiting for a frozen or vanished standby; it is also the HTTP/2 keepalive period of
        replication connections (:func:`vnfha.replication.wire.keepalive_options`). Derived, not
        configurable."""
        return self.lease_ttl_s / 2

    @property
    def etcd_password_effective(self) -> str | None:
        """The etcd password in force: ``etcd_password``, or the content of
        ``etcd_password_file`` as read when this Config was built; None without auth."""
        return self.etcd_password if self.etcd_password is not None else self._password_from_file

    # -- building and copying ---------------------------------------------------------------

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], *, source: str = "<mapping>") -> Config:
        """A Config from plain values, as a TOML file or the environment gives them.

        Strings are coerced to the field's type (``"3"`` -> 3, ``"true"``/``"yes"``/``"1"`` ->
        True, ``"a:1,b:2"`` -> a tuple of endpoints), and an empty string unsets an optional
        field. Unknown keys are refused with the nearest field name suggested, e.g. ``unknown
        field 'lease_ttl' in vnfha.toml; did you mean 'lease_ttl_s'?``. ``source`` names where
        the values came from, in error messages.
        """
        values: dict[str, object] = {}
        for key, raw in mapping.items():
            if not isinstance(key, str):
                raise ConfigError(str(key), raw, f"field names are strings (in {source})")
            if key not in _FIELD_NAMES:
                raise _unknown_field(key, raw, source)
            values[key] = _coerce(key, raw)
        return _build(values, dict.fromkeys(values, source), source)

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied, validated like a new Config (relations included)."""
        for key, value in changes.items():
            if key not in _FIELD_NAMES:
                raise _unknown_field(key, value, "replace()")
        return dataclasses.replace(self, **changes)

    # -- showing ----------------------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """Every field as plain JSON-able values (enums as their value, the endpoints as a
        list), the password as "***" when set. Without a password,
        ``Config.from_mapping(c.describe()) == c``."""
        out: dict[str, object] = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if name == "etcd_password" and value is not None:
                value = _MASK
            elif isinstance(value, Redundancy):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    def __repr__(self) -> str:
        shown = (f"{name}={_MASK!r}" if name == "etcd_password" and getattr(self, name)
                 else f"{name}={getattr(self, name)!r}" for name in _FIELD_NAMES)
        return f"Config({', '.join(shown)})"

    # -- cross-field checks -----------------------------------------------------------------

    def _check_etcd_security(self) -> None:
        """TLS files need etcd_tls; cert and key go together; auth needs user and password."""
        if (self.etcd_cert_file is None) != (self.etcd_key_file is None):
            name = "etcd_cert_file" if self.etcd_cert_file is not None else "etcd_key_file"
            raise ConfigError(name, getattr(self, name),
                              "etcd_cert_file and etcd_key_file go together: give both or neither")
        for name in _TLS_FILES:
            path = getattr(self, name)
            if path is None:
                continue
            if not self.etcd_tls:
                raise ConfigError("etcd_tls", False,
                                  f"{name}={path!r} is set, which needs etcd_tls=true")
            if not (os.path.isfile(path) and os.access(path, os.R_OK)):
                raise ConfigError(name, path, "no such readable file")
        if self.etcd_password is not None and self.etcd_password_file is not None:
            raise ConfigError("etcd_password_file", self.etcd_password_file,
                              "give etcd_password or etcd_password_file, not both")
        has_password = self.etcd_password is not None or self.etcd_password_file is not None
        if self.etcd_username is not None and not has_password:
            raise ConfigError("etcd_username", self.etcd_username,
                              "needs etcd_password or etcd_password_file")
        if self.etcd_username is None and has_password:
            name = "etcd_password" if self.etcd_password is not None else "etcd_password_file"
            shown = _MASK if name == "etcd_password" else self.etcd_password_file
            raise ConfigError(name, shown, "needs etcd_username")

    def _check_replication(self) -> None:
        """Replication TLS: all three files or none, each readable; limits that fit together;
        the progress interval no shorter than a heartbeat."""
        files = {name: getattr(self, name) for name in _REPLICATION_FILES}
        given = [name for name, path in files.items() if path is not None]
        if given and len(given) != len(files):
            missing = [name for name in files if name not in given]
            raise ConfigError(given[0], files[given[0]], f"replication TLS needs all of "
                              f"{', '.join(files)} (missing: {', '.join(missing)})")
        for name in given:
            if not (os.path.isfile(files[name]) and os.access(files[name], os.R_OK)):
                raise ConfigError(name, files[name], "no such readable file")
        if self.progress_interval_s is not None and \
                self.progress_interval_s < self.heartbeat_interval_s:
            raise ConfigError("progress_interval_s", self.progress_interval_s,
                              f"must be at least heartbeat_interval_s "
                              f"({self.heartbeat_interval_s}), or None to publish no progress")
        need = self.checkpoint_max_key_bytes + self.checkpoint_max_value_bytes + 1024
        if self.checkpoint_max_message_bytes < need:
            raise ConfigError("checkpoint_max_message_bytes", self.checkpoint_max_message_bytes,
                              f"must hold one change of the largest key and value: at least "
                              f"checkpoint_max_key_bytes + checkpoint_max_value_bytes + 1024 "
                              f"= {need}")

    def _check_bridge(self) -> None:
        """Bridge TLS files readable, cert and key together and only with a CA; the watchdog
        period between a keepalive round and the lease; health timeout within its period."""
        if (self.bridge_cert_file is None) != (self.bridge_key_file is None):
            name = "bridge_cert_file" if self.bridge_cert_file is not None else "bridge_key_file"
            raise ConfigError(name, getattr(self, name),
                              "bridge_cert_file and bridge_key_file go together")
        if self.bridge_cert_file is not None and self.bridge_ca_file is None:
            raise ConfigError("bridge_cert_file", self.bridge_cert_file,
                              "mutual TLS to the bridge needs bridge_ca_file too")
        for name in ("bridge_ca_file", "bridge_cert_file", "bridge_key_file"):
            path = getattr(self, name)
            if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
                raise ConfigError(name, path, "no such readable file")
        if self.bridge_endpoint is None and (self.bridge_ca_file or self.placement_policy):
            name = "bridge_ca_file" if self.bridge_ca_file else "placement_policy"
            raise ConfigError(name, getattr(self, name), "needs bridge_endpoint")
        low = self.keepalive_interval_s_effective + self.etcd_request_timeout_s
        wd = self.watchdog_timeout_s_effective
        if (self.bridge_endpoint or self.watchdog_timeout_s) and not low < wd <= self.lease_ttl_s:
            raise ConfigError("watchdog_timeout_s", wd,
                              f"must be greater than keepalive_interval_s + "
                              f"etcd_request_timeout_s ({low:g}: it is kicked only after a "
                              f"confirmed keepalive) and at most lease_ttl_s "
                              f"({self.lease_ttl_s})")
        if self.health_check_timeout_s > self.health_check_period_s:
            raise ConfigError("health_check_timeout_s", self.health_check_timeout_s,
                              f"must be at most health_check_period_s "
                              f"({self.health_check_period_s})")

    @property
    def watchdog_timeout_s_effective(self) -> float:
        """The watchdog period in force: ``watchdog_timeout_s``, or ``lease_ttl_s -
        lease_margin_s`` (the active is reset by the layer below no later than it would have
        demoted itself)."""
        if self.watchdog_timeout_s is not None:
            return self.watchdog_timeout_s
        return self.lease_ttl_s - self.lease_margin_s

    def _check_timing(self) -> None:
        """Every violated relation of :mod:`vnfha.timing`, in one error."""
        problems = check_timing(
            heartbeat_interval_s=self.heartbeat_interval_s,
            suspicion_s=self.suspicion_s,
            lease_ttl_s=self.lease_ttl_s,
            keepalive_interval_s=self.keepalive_interval_s_effective,
            lease_margin_s=self.lease_margin_s,
            etcd_request_timeout_s=self.etcd_request_timeout_s,
            keepalive_derived=self.keepalive_interval_s is None,
        )
        if not problems:
            return
        first = problems[0].field
        value = (self.keepalive_interval_s_effective if first == "keepalive_interval_s"
                 else getattr(self, first))
        if len(problems) == 1:
            text = problems[0].message
        else:
            text = f"{len(problems)} timing relations violated: " + "; ".join(
                f"({i}) {p.message}" for i, p in enumerate(problems, 1))
        raise ConfigError(first, value, text)


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """A Config from a flat TOML file, then ``VNFHA_<FIELD>`` environment overrides.

    The file holds top-level ``field = value`` lines only (no tables); relative paths in its
    ``*_file`` fields are relative to the file's directory. ``path=None`` reads only the
    environment. ``environ`` defaults to ``os.environ``; a variable ``VNFHA_LEASE_TTL_S=3``
    overrides ``lease_ttl_s``, and an empty value unsets an optional field. ``VNFHA_*`` variables
    that are neither fields nor in :data:`OTHER_ENV_VARS` are refused, with a suggestion.

    A missing or unreadable file, invalid TOML (the message has tomllib's line and column), an
    unknown name and a bad value all raise :class:`vnfha.ConfigError` naming where it came from.
    """
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    where: list[str] = []
    if path is not None:
        file = Path(path)
        where.append(str(file))
        for key, raw in _read_toml(file).items():
            if key not in _FIELD_NAMES:
                raise _unknown_field(key, raw, str(file))
            value = _coerce(key, raw)
            if key in _FILE_FIELDS and isinstance(value, str) and value:
                value = str(file.absolute().parent / value)
            values[key], sources[key] = value, str(file)
    env = os.environ if environ is None else environ
    for var in sorted(env):
        field_name = _env_field(var, env[var])
        if field_name is not None:
            values[field_name] = _coerce(field_name, env[var])
            sources[field_name] = f"environment variable {var}"
    where.append("the environment")
    return _build(values, sources, " or ".join(where))


# -- building ---------------------------------------------------------------------------------


def _build(values: dict[str, Any], sources: Mapping[str, str], where: str) -> Config:
    """Config(**values), with a missing required field or a bad value traced to its source."""
    for name in ("group", "member"):
        if name not in values:
            raise ConfigError(name, None, f"required, and not set in {where}")
    try:
        return Config(**values)
    except ConfigError as e:
        source = sources.get(e.field)
        if source is None:
            raise
        raise ConfigError(e.field, e.value, f"{e.problem} (set in {source})") from e


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError("config_file", str(file), f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError("config_file", str(file), f"not UTF-8 text: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config_file", str(file), f"invalid TOML: {e}") from e


def _env_field(name: str, raw: str) -> str | None:
    """The field a ``VNFHA_*`` variable sets; None for other variables (ignored)."""
    if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARS:
        return None
    key = name[len(ENV_PREFIX):].lower()
    if key in _FIELD_NAMES and name == ENV_PREFIX + key.upper():
        return key
    near = difflib.get_close_matches(key, _FIELD_NAMES, n=1)
    hint = (f"did you mean {ENV_PREFIX}{near[0].upper()}?" if near
            else f"the fields are {', '.join(_FIELD_NAMES)}")
    others = " and ".join(sorted(OTHER_ENV_VARS))
    raise ConfigError(name, _shown(name, raw, near),
                      f"unknown environment variable {name}; {hint} ({ENV_PREFIX}* variables "
                      f"set config fields; {others} are the only others allowed)")


def _unknown_field(key: str, value: object, source: str) -> ConfigError:
    near = difflib.get_close_matches(key, _FIELD_NAMES, n=1)
    hint = f"did you mean {near[0]!r}?" if near else f"the fields are {', '.join(_FIELD_NAMES)}"
    if isinstance(value, dict):
        hint += " (the file is flat: put every field at the top level, before any [table])"
    return ConfigError(key, _shown(key, value, near), f"unknown field {key!r} in {source}; {hint}")


def _shown(name: str, value: object, near: list[str]) -> object:
    """``value`` for an error message, masked if it may be a password."""
    if "pass" in name.lower() or (near and near[0] == "etcd_password"):
        return _MASK
    return value


# -- coercion of file and environment values (strings become the field's type) ---------------


def _coerce(name: str, raw: object) -> object:
    """``raw`` as the field's type when it is a string; anything else is left for validation."""
    kind = _KINDS[name]
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if kind.endswith("| None") and text == "":
        return None
    base = kind.removesuffix(" | None")
    if base == "int":
        if not _INT_RE.fullmatch(text):
            raise ConfigError(name, raw, "expected an integer")
        return int(text)
    if base == "float":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(name, raw, "expected a number of seconds") from None
    if base == "bool":
        if text.lower() not in _BOOLS:
            raise ConfigError(name, raw, "expected true/false (also yes/no, on/off, 1/0)")
        return _BOOLS[text.lower()]
    return raw


# -- per-field checks (each returns the normalised value or raises ConfigError) ---------------


def _wrong_type(name: str, value: object, expected: str) -> ConfigError:
    shown = _MASK if name == "etcd_password" else value
    return ConfigError(name, shown, f"expected {expected}, got {type(value).__name__}")


def _name(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(name, value, "a string")
    if not _NAME_RE.fullmatch(value):
        raise ConfigError(name, value, "must be 1-63 characters of a-z, 0-9 and '-', starting "
                                       "and ending with a letter or digit (like a DNS label)")
    return value


def _host_port(name: str, value: object, *, min_port: int) -> str:
    if not isinstance(value, str):
        raise _wrong_type(name, value, "a 'host:port' string")
    if "://" in value:
        raise ConfigError(name, value, "give host:port without a scheme "
                                       "(TLS to etcd is etcd_tls=true)")
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(name, value, "expected [IPv6 address]:port, as [::1]:2379") from None
    else:
        host, sep, port = value.rpartition(":")
        if ":" in host:
            raise ConfigError(name, value, "write an IPv6 address in brackets, as [::1]:2379")
        if sep and not _HOST_RE.fullmatch(host):
            raise ConfigError(name, value, f"host {host!r} is not a host name or IPv4 address")
    if not sep:
        raise ConfigError(name, value, "expected host:port")
    if not _PORT_RE.fullmatch(port) or not min_port <= int(port) <= 65535:
        raise ConfigError(name, value, f"port must be a number in {min_port}..65535")
    return value


def _endpoints(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",")] if value.strip() else []
    if not isinstance(value, list | tuple):
        raise _wrong_type(name, value, "a list of 'host:port' or a comma-separated string")
    items = tuple(_host_port(name, item, min_port=1) for item in value)
    if not items:
        raise ConfigError(name, value, "at least one endpoint is needed")
    seen: set[str] = set()
    for item in items:
        if item.lower() in seen:
            raise ConfigError(name, items, f"{item!r} is listed twice")
        seen.add(item.lower())
    return items


def _listen(name: str, value: object) -> str:
    return _host_port(name, value, min_port=0)


def _redundancy(name: str, value: object) -> Redundancy:
    if isinstance(value, Redundancy):
        return value
    if isinstance(value, str):
        text = value.strip()
        for model in Redundancy:
            if text.lower().replace("_", "-") == model.value or text.upper() == model.name:
                return model
    allowed = ", ".join(repr(m.value) for m in Redundancy)
    raise ConfigError(name, value, f"expected one of {allowed}")


def _int_in(low: int, high: int | None) -> Callable[[str, object], int]:
    def check(name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, value, "an integer")
        if value < low or (high is not None and value > high):
            raise ConfigError(name, value, f"must be in {low}..{high}" if high is not None
                              else f"must be at least {low}")
        return value
    return check


def _optional(check: Callable[[str, object], object]) -> Callable[[str, object], object]:
    def optional(name: str, value: object) -> object:
        return None if value is None else check(name, value)
    return optional


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(name, value, "true or false")
    return value


def _duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(name, value, "a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, value, "must be a finite number of seconds greater than 0")
    return float(value)


def _choice(*allowed: str) -> Callable[[str, object], str]:
    def check(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise _wrong_type(name, value, "a string")
        text = value.strip().lower().replace("_", "-")
        if text not in allowed:
            raise ConfigError(name, value, f"must be one of {', '.join(map(repr, allowed))}")
        return text
    return check


def _text(name: str, value: object) -> str:
    """A non-empty string without control characters (paths, user names, passwords)."""
    if not isinstance(value, str):
        raise _wrong_type(name, value, "a string")
    shown = _MASK if name == "etcd_password" else value
    if not value:
        raise ConfigError(name, shown, "must not be empty (leave it unset instead)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(name, shown, "must not contain control characters")
    return value


def _key_prefix(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(name, value, "a string")
    if not value.startswith("/") or value.endswith("/") or any(c.isspace() for c in value):
        raise ConfigError(name, value, "must start with '/', not end with '/', and contain no "
                                       "whitespace (e.g. '/vnfha')")
    return value


def _read_password_file(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("etcd_password_file", path,
                          f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise ConfigError("etcd_password_file", path, "not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError("etcd_password_file", path, "the file is empty")
    return text


_REPLICATION_FILES = ("replication_ca_file", "replication_cert_file", "replication_key_file")

_CHECKS: Final[dict[str, Callable[[str, object], object]]] = {
    "group": _name,
    "member": _name,
    "etcd_endpoints": _endpoints,
    "listen": _listen,
    "redundancy": _redundancy,
    "priority": _int_in(0, 1000),
    "no_failover": _bool,
    "key_prefix": _key_prefix,
    "etcd_tls": _bool,
    "etcd_ca_file": _optional(_text),
    "etcd_cert_file": _optional(_text),
    "etcd_key_file": _optional(_text),
    "etcd_username": _optional(_text),
    "etcd_password": _optional(_text),
    "etcd_password_file": _optional(_text),
    "etcd_request_timeout_s": _duration,
    "etcd_connect_timeout_s": _duration,
    "heartbeat_interval_s": _duration,
    "suspicion_s": _duration,
    "lease_ttl_s": _int_in(1, None),
    "keepalive_interval_s": _optional(_duration),
    "lease_margin_s": _duration,
    "callback_timeout_s": _duration,
    "metrics_port": _optional(_int_in(0, 65535)),
    "checkpoint_ack_timeout_s": _duration,
    "checkpoint_degrade_ack": _bool,
    "checkpoint_max_key_bytes": _int_in(1, None),
    "checkpoint_max_value_bytes": _int_in(1, None),
    "checkpoint_max_section_bytes": _int_in(1, None),
    "checkpoint_max_message_bytes": _int_in(1, None),
    "checkpoint_max_backlog_entries": _int_in(1, None),
    "progress_interval_s": _optional(_duration),
    "replication_ca_file": _optional(_text),
    "replication_cert_file": _optional(_text),
    "replication_key_file": _optional(_text),
    "bridge_endpoint": _optional(lambda n, v: _host_port(n, v, min_port=1)),
    "bridge_timeout_s": _duration,
    "bridge_ca_file": _optional(_text),
    "bridge_cert_file": _optional(_text),
    "bridge_key_file": _optional(_text),
    "watchdog_timeout_s": _optional(_duration),
    "watchdog_action": _choice("reset", "poweroff", "pause", "none"),
    "fence_mode": _choice("kill", "stop"),
    "placement_policy": _optional(_choice("anti-affinity", "affinity", "soft-anti-affinity",
                                          "soft-affinity")),
    "placement_violation": _choice("warn", "refuse"),
    "health_check_period_s": _duration,
    "health_check_timeout_s": _duration,
    "health_fail_after": _int_in(1, 1000),
    "health_recover_after": _int_in(1, 1000),
    "ladder_restart_max_count": _int_in(0, 1000),
    "ladder_restart_probation_s": _duration,
    "ladder_failover_max_count": _int_in(0, 1000),
    "ladder_failover_probation_s": _duration,
    "ladder_reboot_vm_max_count": _int_in(0, 1000),
    "ladder_reboot_vm_probation_s": _duration,
    "ladder_evacuate_vm_max_count": _int_in(0, 1000),
    "ladder_evacuate_vm_probation_s": _duration,
}
"""One check per field, in declaration order (the order errors are found in)."""

_FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(Config) if f.init)
_KINDS: Final = {f.name: str(f.type) for f in dataclasses.fields(Config) if f.init}
if set(_CHECKS) != set(_FIELD_NAMES):  # pragma: no cover - a field added without its check
    raise RuntimeError(f"config checks out of step with fields: {set(_CHECKS) ^ set(_FIELD_NAMES)}")
