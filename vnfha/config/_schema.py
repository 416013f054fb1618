"""The declaration of vnfha's configuration: :class:`Config`, every field with its unit, default
and check, and the relations between fields. Re-exported as :class:`vnfha.config.Config` (and
:class:`vnfha.Config`); reading a TOML file and ``VNFHA_*`` variables is :mod:`vnfha.config._load`.

Guarantees:

- **A Config that exists is valid.** Every field is checked for type and range when the object
  is built (directly, by :meth:`Config.from_mapping`, :meth:`Config.replace` or
  :func:`~vnfha.config.load_config`), the timer relations of :mod:`vnfha.timing` are
  checked against each other, and each failover budget set must be met by its path's worst
  case (:mod:`vnfha.budget`). Anything wrong raises :class:`vnfha.ConfigError` (also a
  ``ValueError``) naming the field and the value; the relations are reported all at once.
  vnfha refuses to start rather than run with timers that cannot keep the lease.
- **Immutable and hashable.** Changes go through :meth:`Config.replace`, which validates again.
- **Secrets stay out of logs.** ``etcd_password`` (and the content of ``etcd_password_file``)
  shows as ``"***"`` in ``repr()``, in :meth:`Config.describe` and in error messages
  (:func:`masked`).
- **Unknown names are refused** (:func:`unknown_field`), in a file, a mapping, the environment
  or :meth:`Config.replace`, with the nearest valid name suggested: a typo must not silently
  leave a default in force.
- **One check per field.** Each field has exactly one entry in the table of checks
  (:mod:`vnfha.config._table`, in declaration order, the order errors are found in; the checks
  themselves are :mod:`vnfha.config._checks`); a field added without one fails at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vnfha.budget import BUDGET_FIELDS, FailoverTimers, budget_refusal
from vnfha.config._check_specs import CheckSpec
from vnfha.config._checks import (
    MASK,
    coerce,
    read_password_file,
)
from vnfha.config._table import CHECKS
from vnfha.errors import ConfigError
from vnfha.model import Redundancy
from vnfha.net.address import ServiceAddress
from vnfha.timing import check_timing, default_keepalive_interval_s, derived_standby_lease_s

__all__ = ["FIELD_NAMES", "FILE_FIELDS", "KINDS", "Config", "build", "masked", "unknown_field"]

_TLS_FILES: Final = ("etcd_ca_file", "etcd_cert_file", "etcd_key_file")
FILE_FIELDS: Final = (*_TLS_FILES, "etcd_password_file", "replication_ca_file",
                      "replication_cert_file", "replication_key_file")
"""The fields that name files (a TOML file's relative paths in them are relative to it)."""


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
    standby_lease_s: float | None = None
    """The standby-granted lease: with each acknowledgement an in-sync standby promises not to
    take over for this long, and the active acts only while it holds such a promise from every
    in-sync standby; a standby whose promise has run out while the active is silent takes over
    at once, without a bridge and without waiting for the etcd lease (docs/failover.md). 0:
    off (a silent active is then replaced after a fence or its etcd lease). None: derived from
    the other timers, :attr:`standby_lease_s_effective` (0.3 s with the defaults)."""
    standby_lease_margin_s: float = 0.05
    """The active stops acting this long before a standby's promise could run out."""
    callback_timeout_s: float = 5.0
    """Longest any one component callback (``on_active``, ``health_check``, ...) may run."""
    metrics_port: int | None = None
    """Port of the Prometheus metrics endpoint, 0..65535 (0: any free port); None: no endpoint."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics endpoint binds: loopback by default; ``0.0.0.0`` or ``::`` for every
    interface (a Prometheus on another host), or one address of this host."""
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
    falls back to the standby lease (or the etcd lease), so it bounds what a dead bridge costs a
    failover."""
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
    service_addresses: tuple[ServiceAddress, ...] = ()
    """Addresses with prefix that follow the active (``"198.51.100.10/24"``, ``"fd00:5a::10/64"``,
    ``"198.51.100.10/24@eth1"`` to name the device; unnamed: the device whose own address is in
    the same subnet): taken and announced before ``on_active``, removed as the active role
    ends. Needs CAP_NET_ADMIN and CAP_NET_RAW; one member of the group per host."""
    service_address_mode: str = "local"
    """Who moves ``service_addresses``: local (this member adds and announces them) or nfvi
    (the bridge binds them to the active's instance, ``Network/MoveAddress``, epoch-fenced;
    for clouds where a guest cannot take an address over by itself; needs a bridge)."""
    address_move_timeout_s: float = 10.0
    """Longest the bridge may take to confirm a move under ``service_address_mode = "nfvi"``
    (a cloud's port update takes seconds)."""
    health_check_period_s: float = 5.0
    """How often the component's ``health_check()`` runs."""
    health_check_timeout_s: float = 2.0
    """Longest one ``health_check()`` may run (counted as a failure when exceeded)."""
    health_fail_after: int = 3
    """Consecutive failed checks before the check is FAILED (a fault for the ladder)."""
    health_recover_after: int = 2
    """Consecutive passed checks before a FAILED check is healthy again."""
    checks: tuple[CheckSpec, ...] = ()
    """Built-in checks (process, tcp, grpc-health) run beside the component's
    ``health_check``, each on its own period, timeout and hysteresis: CheckSpecs, or mappings
    of their keys (in TOML, ``[[checks]]`` tables). Errors name the key: ``checks[1].target``."""
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
    alarm_command: tuple[str, ...] | None = None
    """Command run (no shell) at every ALARM of the ladder, with the alarm as one JSON object
    on its stdin (``docs/ladder.md``): a non-empty list of non-empty argument strings (in the
    environment, one string split like a shell's words); None: none. Its failure is logged at
    WARNING, never fatal."""
    alarm_command_timeout_s: float = 5.0
    """Longest ``alarm_command`` may run; it is killed after that (and logged at WARNING)."""
    poison_policy: str = "hold"
    """What the group does when an active that took over after a failure fails again within
    ``poison_probation_s`` (its inherited state is suspected, ``docs/failover.md``): rollback
    (the next active undoes the checkpoint changes applied from ``poison_window_s`` before
    the first failure, and a failure in probation after that holds the group), hold (no
    automatic takeover: the group is paused with an alarm until ``vnfha unlock GROUP``) or
    off (promote the next member as always). The default, hold, never loses an acknowledged
    write; rollback trades the window's writes for staying in service."""
    poison_probation_s: float = 10.0
    """Probation of an active that took over after a failure: short, as a state that fails
    its actives does so when the successor acts on it, and two unrelated failures this close
    are rare."""
    poison_window_s: float = 10.0
    """How far before the first failure a rollback reaches (on each standby's wall clock)."""
    poison_undo_max_entries: int = 100_000
    """Most changes whose undo information each member keeps for a rollback (oldest dropped
    first; a rollback whose window is no longer covered holds the group instead)."""
    poison_undo_max_bytes: int = 64 << 20
    """Most bytes of old values (and keys) that undo information keeps."""
    repair_after_s: float | None = 10.0
    """With a bridge: how long a member may be gone (its record expired, no clean stop) before
    the active asks the bridge to repair its instance; None: never."""
    failover_budget_crash_ms: float | None = None
    """Longest a failover after the active's crash may take at worst; None: no budget. A
    config whose timers cannot meet it is refused (:mod:`vnfha.budget` computes the worst
    case of each path)."""
    failover_budget_hang_ms: float | None = None
    """The same for a hung or cut-off active: fenced through the bridge when
    ``bridge_endpoint`` is set, by the lease otherwise."""
    failover_budget_switchover_ms: float | None = None
    """The same for a switchover."""

    _password_from_file: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, check in CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        self._check_etcd_security()
        self._check_replication()
        if self.etcd_password_file is not None:
            object.__setattr__(self, "_password_from_file",
                               read_password_file(self.etcd_password_file))
        self._check_timing()
        self._check_bridge()
        self._check_addresses()
        self._check_budgets()

    # -- derived values ---------------------------------------------------------------------

    @property
    def keepalive_interval_s_effective(self) -> float:
        """The keepalive period in force: ``keepalive_interval_s``, or ``lease_ttl_s / 4``."""
        if self.keepalive_interval_s is not None:
            return self.keepalive_interval_s
        return default_keepalive_interval_s(self.lease_ttl_s)

    @property
    def standby_lease_s_effective(self) -> float:
        """The standby lease in force: ``standby_lease_s``, or when None the larger of
        ``suspicion_s`` and 2 x (``heartbeat_interval_s`` + ``standby_lease_margin_s``), and 0
        (off) when that is not shorter than ``lease_ttl_s - lease_margin_s`` (the etcd lease
        is then as fast)."""
        if self.standby_lease_s is not None:
            return self.standby_lease_s
        return derived_standby_lease_s(
            heartbeat_interval_s=self.heartbeat_interval_s, suspicion_s=self.suspicion_s,
            standby_lease_margin_s=self.standby_lease_margin_s, lease_ttl_s=self.lease_ttl_s,
            lease_margin_s=self.lease_margin_s)

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
            if key not in FIELD_NAMES:
                raise unknown_field(key, raw, source)
            values[key] = coerce(key, raw, KINDS[key])
        return build(values, dict.fromkeys(values, source), source)

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied, validated like a new Config (relations included)."""
        for key, value in changes.items():
            if key not in FIELD_NAMES:
                raise unknown_field(key, value, "replace()")
        return dataclasses.replace(self, **changes)

    # -- showing ----------------------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """Every field as plain JSON-able values (enums as their value, the endpoints as a
        list), the password as "***" when set. Without a password,
        ``Config.from_mapping(c.describe()) == c``."""
        out: dict[str, object] = {}
        for name in FIELD_NAMES:
            value = getattr(self, name)
            if name == "etcd_password" and value is not None:
                value = MASK
            elif isinstance(value, Redundancy):
                value = value.value
            elif name == "checks":
                value = [spec.describe() for spec in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    def __repr__(self) -> str:
        shown = (f"{name}={MASK!r}" if name == "etcd_password" and getattr(self, name)
                 else f"{name}={getattr(self, name)!r}" for name in FIELD_NAMES)
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
            shown = MASK if name == "etcd_password" else self.etcd_password_file
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

    def _check_addresses(self) -> None:
        if self.service_address_mode == "nfvi" and self.bridge_endpoint is None:
            raise ConfigError("service_address_mode", self.service_address_mode,
                              "nfvi needs bridge_endpoint: the bridge moves the addresses")
        if self.service_addresses and self.redundancy is Redundancy.N_WAY_ACTIVE:
            raise ConfigError("service_addresses", tuple(map(str, self.service_addresses)),
                              "n-way-active makes every member active: an address can follow "
                              "only one active (use 2n or n-way)")

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
            standby_lease_s=self.standby_lease_s_effective,
            standby_lease_margin_s=self.standby_lease_margin_s,
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

    def _check_budgets(self) -> None:
        """Each failover budget set is met by its path's worst case (:mod:`vnfha.budget`)."""
        refused = budget_refusal(FailoverTimers.of(self),
                                 {name: getattr(self, name) for name in BUDGET_FIELDS},
                                 bridge=self.bridge_endpoint is not None)
        if refused is not None:
            raise ConfigError(*refused)


# -- building from plain values, unknown names ------------------------------------------------


def build(values: dict[str, Any], sources: Mapping[str, str], where: str) -> Config:
    """Config(**values), with a missing required field or a bad value traced to its source
    (``sources``: where each field's value came from; ``where``: every place looked in)."""
    for name in ("group", "member"):
        if name not in values:
            raise ConfigError(name, None, f"required, and not set in {where}")
    try:
        return Config(**values)
    except ConfigError as e:
        source = sources.get(e.field.partition("[")[0])  # checks[1].target: set as checks
        if source is None:
            raise
        raise ConfigError(e.field, e.value, f"{e.problem} (set in {source})") from e



def unknown_field(key: str, value: object, source: str) -> ConfigError:
    """The error for a name that is not a field, with the nearest field suggested."""
    near = difflib.get_close_matches(key, FIELD_NAMES, n=1)
    hint = f"did you mean {near[0]!r}?" if near else f"the fields are {', '.join(FIELD_NAMES)}"
    if isinstance(value, dict):
        hint += " (the file is flat: put every field at the top level, before any [table])"
    return ConfigError(key, masked(key, value, near), f"unknown field {key!r} in {source}; {hint}")


def masked(name: str, value: object, near: list[str]) -> object:
    """``value`` for an error message, masked if it may be a password."""
    if "pass" in name.lower() or (near and near[0] == "etcd_password"):
        return MASK
    return value


_REPLICATION_FILES = ("replication_ca_file", "replication_cert_file", "replication_key_file")


FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(Config) if f.init)
"""Every field's name, in declaration order."""
KINDS: Final = {f.name: str(f.type) for f in dataclasses.fields(Config) if f.init}
"""Each field's annotation as text (``"float | None"``): what :func:`coerce` makes a string."""
if set(CHECKS) != set(FIELD_NAMES):  # pragma: no cover - a field added without its check
    raise RuntimeError(f"config checks out of step with fields: {set(CHECKS) ^ set(FIELD_NAMES)}")
