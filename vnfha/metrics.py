"""A member's Prometheus metrics: every metric defined once, on a registry of its own.

This is the only module that imports ``prometheus_client``. The runtime records through the
typed methods of :class:`Metrics`: :class:`MemberMetrics` records them, :class:`NullMetrics`
(for a member configured without metrics) only checks them; nothing else touches a metric
object.

Guarantees:

- **One registry per member.** Each :class:`MemberMetrics` owns a ``CollectorRegistry``, so
  several members in one process (tests, demos) never collide, and every series carries the
  ``group`` and ``member`` labels, so one Prometheus can scrape a whole group.
- **Bounded label values.** Every label value a caller passes comes from a fixed vocabulary
  (the enums of :mod:`vnfha.metric_specs`, :class:`~vnfha.model.Role`,
  :class:`~vnfha.model.Ack`, :class:`~vnfha.store.observed.EtcdRequest`) or is a member name
  checked like the group's own; anything else raises :class:`~vnfha.errors.ConfigError` (a
  ``ValueError``) naming the label and the value, and records nothing. Free text, such as a
  role change's reason, never becomes a label.
- **Series exist before their first event.** Labels drawn from small enums are created at
  zero, so ``increase()`` sees the first escalation and an alert can tell "zero" from "absent".
- **The exporter is owned.** :meth:`MemberMetrics.serve` starts one HTTP endpoint in a daemon
  thread; :meth:`MemberMetrics.close` stops it and releases the port, and is idempotent.

:data:`SPECS` lists every metric (name as exposed, type, labels, meaning): the operations
guide's table and the Grafana dashboard are checked against it by the unit tests. It and the
label vocabularies are defined in :mod:`vnfha.metric_specs` (no ``prometheus_client`` there)
and re-exported here.
"""

from __future__ import annotations

import enum
import importlib.metadata
import platform
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from vnfha._metrics_http import Exporter
from vnfha.errors import ConfigError
from vnfha.metric_specs import (
    ACK_LATENCY,
    ADMIN_LOCKED,
    BUILD_INFO,
    DECISIONS,
    EPOCH,
    ESCALATIONS,
    ETCD_ERRORS,
    FAILOVER,
    GROUP_PAUSED,
    HEALTH_FAILURES,
    IN_SYNC,
    KEEPALIVE,
    LAG_ENTRIES,
    LAG_SECONDS,
    LEASES_LOST,
    NFVI_RPC,
    REFUSED,
    ROLE,
    SERVICE_ADDRESS,
    SPECS,
    STALE,
    TRANSITIONS,
    WRITES,
    CheckKind,
    EtcdErrorKind,
    MetricSpec,
    NfviMethod,
    Refusal,
    StaleSide,
    WriteResult,
    error_kind,
    sample_names,
)
from vnfha.model import Ack, LadderAction, ReasonKind, Role, Rung, check_name
from vnfha.store.observed import EtcdRequest

__all__ = [
    "SPECS",
    "CheckKind",
    "EtcdErrorKind",
    "EtcdRequest",
    "LadderAction",
    "MemberMetrics",
    "MetricSpec",
    "Metrics",
    "NfviMethod",
    "NullMetrics",
    "ReasonKind",
    "Refusal",
    "Rung",
    "StaleSide",
    "WriteResult",
    "error_kind",
    "sample_names",
]


# -- validation (the metrics and their label vocabularies are in vnfha.metric_specs) -----------


_FAILOVER_KINDS = frozenset({ReasonKind.ELECTED, ReasonKind.TAKEOVER, ReasonKind.SWITCHOVER})
"""The reason kinds with which a member becomes active: the paths a failover duration can take."""

_GRPC_CODES = frozenset({
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
})
"""gRPC's status code names (``grpc.StatusCode.X.name``), the values of the ``code`` label."""

_E = TypeVar("_E", bound=enum.Enum)


def _label(vocabulary: type[_E], label: str, value: object) -> _E:
    """``value`` as a member of ``vocabulary`` (a member or its string value), else ConfigError
    naming the label, the value and the allowed values."""
    if type(value) is vocabulary:  # already a member (the hot path: checkpoint writes)
        return value
    try:
        return vocabulary(value)
    except ValueError:
        allowed = ", ".join(str(v.value) for v in vocabulary)
        raise ConfigError(label, value, f"must be one of {allowed}") from None


def _grpc_code(code: str) -> str:
    if code not in _GRPC_CODES:
        raise ConfigError("code", code, "must be a gRPC status code name, such as OK or "
                          "UNAVAILABLE (grpc.StatusCode.X.name)")
    return code


def _non_negative(field: str, value: float) -> float:
    if not value >= 0:  # also refuses NaN
        raise ConfigError(field, value, "must be >= 0")
    return value


def _version() -> str:
    try:
        return importlib.metadata.version("vnfha")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# -- recording -----------------------------------------------------------------------------------


class Metrics:
    """What the runtime records, method by method. This base validates every argument exactly
    as :class:`MemberMetrics` does and records nothing, so a wrong call fails in every test,
    with metrics configured or without. Type a member's metrics as ``Metrics``."""

    def role_changed(self, previous: Role | str, role: Role | str, epoch: int,
                     reason_kind: ReasonKind | str) -> None:
        """On every role or epoch change (each ``RoleChanged`` event): set ``vnfha_role`` and
        ``vnfha_epoch``; count a transition when the role differs. Leaving ACTIVE clears the
        per-standby lag series and the in-sync count (only an active has standbys)."""
        _label(Role, "previous", previous)
        _label(Role, "role", role)
        _label(ReasonKind, "reason_kind", reason_kind)
        _non_negative("epoch", epoch)

    def failover_completed(self, reason_kind: ReasonKind | str, seconds: float) -> None:
        """On the new active, once it holds the role: how long the failover took.
        ``reason_kind`` is how it became active (elected, takeover or switchover)."""
        kind = _label(ReasonKind, "reason_kind", reason_kind)
        if kind not in _FAILOVER_KINDS:
            raise ConfigError("reason_kind", reason_kind, "must be how a member becomes "
                              "active: elected, takeover or switchover")
        _non_negative("seconds", seconds)

    def checkpoint_lag(self, standby: str, entries: int, seconds: float) -> None:
        """On the active: how far ``standby`` is behind, in changes and in seconds."""
        check_name("standby", standby)
        _non_negative("entries", entries)
        _non_negative("seconds", seconds)

    def standby_gone(self, standby: str) -> None:
        """On the active: ``standby`` no longer follows; drop its lag series."""
        check_name("standby", standby)

    def in_sync_standbys(self, count: int) -> None:
        """On the active, after each publication of the in-sync set: its size."""
        _non_negative("count", count)

    def checkpoint_write(self, ack: Ack | str, result: WriteResult | str,
                         ack_latency_s: float | None = None) -> None:
        """After each checkpoint write: count it; ``ack_latency_s`` (from the write to its
        acknowledgement, for ONE/ALL writes that were acknowledged) feeds the latency
        histogram."""
        if type(ack) is not Ack:  # members pass as they are: this runs for every write
            _label(Ack, "ack", ack)
        if type(result) is not WriteResult:
            _label(WriteResult, "result", result)
        if ack_latency_s is not None:
            _non_negative("ack_latency_s", ack_latency_s)

    def health_check_failed(self, check: CheckKind | str) -> None:
        """After each failed health check, callback failure or fault report."""
        _label(CheckKind, "check", check)

    def escalated(self, rung: Rung | str) -> None:
        """After each decision of the ladder that uses a rung (every action but WAIT)."""
        _label(Rung, "rung", rung)

    def ladder_decided(self, action: LadderAction | str) -> None:
        """After each decision of the ladder, with its action (WAIT included)."""
        _label(LadderAction, "action", action)

    def nfvi_rpc(self, method: NfviMethod | str, code: str, seconds: float) -> None:
        """After each NFVI bridge call: its method, gRPC status code name and duration (for a
        stream, the time to its first message or its end)."""
        _label(NfviMethod, "method", method)
        _grpc_code(code)
        _non_negative("seconds", seconds)

    def stale_epoch_rejected(self, side: StaleSide | str) -> None:
        """When a stale epoch is refused (see :class:`StaleSide`)."""
        _label(StaleSide, "side", side)

    def replication_refused(self, reason: Refusal | str) -> None:
        """When the replication endpoint refuses a stream (see :class:`Refusal`)."""
        _label(Refusal, "reason", reason)

    def etcd_error(self, request: EtcdRequest | str, kind: EtcdErrorKind | str) -> None:
        """After each failed etcd request of the member: what kind of request (see
        :class:`EtcdRequest`) and how it failed (:func:`error_kind` of the error)."""
        _label(EtcdRequest, "request", request)
        _label(EtcdErrorKind, "kind", kind)

    def lease_keepalive(self, seconds: float) -> None:
        """After each answered keepalive of the member's session: its round trip."""
        _non_negative("seconds", seconds)

    def lease_lost(self) -> None:
        """When a session of the member is lost while in use (not by the member's own close)."""

    def admin_state(self, locked: bool, paused: bool) -> None:
        """On every publication of the member's record: whether an operator has locked it out
        of service, and whether its group is paused."""

    def service_address(self, address: str, held: bool) -> None:
        """This member took (``held``) or gave up service address ``address``."""

    def serve(self, port: int, host: str = "127.0.0.1", *, poll_s: float = 0.05) -> int:
        """Serves nothing: returns 0 (no port is bound)."""
        return 0

    def close(self) -> None:
        """Nothing to close."""


class NullMetrics(Metrics):
    """The metrics of a member configured without them: validates, records nothing, serves
    nothing (the null object)."""


class MemberMetrics(Metrics):
    """The metrics of member ``member`` of ``group``, on :attr:`registry`, starting in
    ``role`` (a member joins as SPARE). ``version`` defaults to the installed vnfha's.

    Thread-safe (``prometheus_client`` metrics are): the runtime records from the event loop
    while the exporter thread reads. Checkpoint writes, the one per-write metric, are tallied
    in plain ints by that one recording thread and added to their counter whenever the
    registry is read (a scrape, :meth:`exposition`, ``registry.collect()``), so every read
    sees every write recorded before it.
    """

    def __init__(self, group: str, member: str, *, version: str | None = None,
                 role: Role | str = Role.SPARE) -> None:
        self.group = check_name("group", group)
        self.member = check_name("member", member)
        self.registry = CollectorRegistry(auto_describe=True)
        """This member's registry: every metric of :data:`SPECS`, and nothing else."""
        self._server: Exporter | None = None
        self._lagging: set[str] = set()
        self._lock = threading.Lock()
        self._gauge(BUILD_INFO).labels(group, member, version or _version(),
                                       platform.python_version()).set(1)
        self._role = self._gauge(ROLE)
        self._transitions = self._counter(TRANSITIONS)
        self._epoch = self._gauge(EPOCH).labels(group, member)
        self._failover = self._histogram(FAILOVER)
        self._lag_entries = self._gauge(LAG_ENTRIES)
        self._lag_seconds = self._gauge(LAG_SECONDS)
        self._writes = Counter(WRITES.name, WRITES.meaning, self._labels(WRITES), registry=None)
        self.registry.register(_ExportFirst(self._writes, self._export_writes))
        self._write_counts: dict[tuple[Ack, WriteResult], Counter] = {}
        self._tally: dict[tuple[Ack, WriteResult], int] = {}
        """Writes recorded, by (ack, result); only the recording thread changes it, and adds
        a key only under ``_lock``."""
        self._exported: dict[tuple[Ack, WriteResult], int] = {}
        """How much of ``_tally`` is in the counter; changed only under ``_lock``."""
        self._latencies: dict[Ack, Histogram] = {}
        self._ack_latency = self._histogram(ACK_LATENCY)
        self._in_sync = self._gauge(IN_SYNC).labels(group, member)
        self._health = self._counter(HEALTH_FAILURES)
        self._escalations = self._counter(ESCALATIONS)
        self._decisions = self._counter(DECISIONS)
        self._nfvi = self._histogram(NFVI_RPC)
        self._stale = self._counter(STALE)
        self._refused = self._counter(REFUSED)
        self._etcd_errors = self._counter(ETCD_ERRORS)
        for request in EtcdRequest:
            for kind in EtcdErrorKind:
                self._etcd_errors.labels(group, member, request.value, kind.value)
        self._keepalive = self._histogram(KEEPALIVE).labels(group, member)
        self._leases_lost = self._counter(LEASES_LOST).labels(group, member)
        self._locked = self._gauge(ADMIN_LOCKED).labels(group, member)
        self._paused = self._gauge(GROUP_PAUSED).labels(group, member)
        self._addresses = self._gauge(SERVICE_ADDRESS)
        self._locked.set(0)
        self._paused.set(0)
        for counter, vocabulary in ((self._health, CheckKind), (self._escalations, Rung),
                                    (self._decisions, LadderAction), (self._stale, StaleSide),
                                    (self._refused, Refusal)):
            for value in vocabulary:
                counter.labels(group, member, value.value)
        self._set_role(_label(Role, "role", role))
        self._in_sync.set(0)

    def _labels(self, spec: MetricSpec) -> tuple[str, ...]:
        return ("group", "member", *spec.labels)

    def _gauge(self, spec: MetricSpec) -> Gauge:
        return Gauge(spec.name, spec.meaning, self._labels(spec), registry=self.registry)

    def _counter(self, spec: MetricSpec) -> Counter:
        return Counter(spec.name, spec.meaning, self._labels(spec), registry=self.registry)

    def _histogram(self, spec: MetricSpec) -> Histogram:
        return Histogram(spec.name, spec.meaning, self._labels(spec), registry=self.registry,
                         buckets=spec.buckets)

    def _set_role(self, role: Role) -> None:
        for r in Role:
            self._role.labels(self.group, self.member, r.value).set(1 if r is role else 0)

    # -- recording (each validates first, through Metrics, then records) ---------------------

    def role_changed(self, previous: Role | str, role: Role | str, epoch: int,
                     reason_kind: ReasonKind | str) -> None:
        super().role_changed(previous, role, epoch, reason_kind)
        before, after = Role(previous), Role(role)
        self._set_role(after)
        self._epoch.set(epoch)
        if after is not before:
            self._transitions.labels(self.group, self.member, before.value, after.value,
                                     ReasonKind(reason_kind).value).inc()
        if before is Role.ACTIVE and after is not Role.ACTIVE:
            with self._lock:
                lagging, self._lagging = self._lagging, set()
            for standby in lagging:
                self._drop_lag(standby)
            self._in_sync.set(0)

    def failover_completed(self, reason_kind: ReasonKind | str, seconds: float) -> None:
        super().failover_completed(reason_kind, seconds)
        self._failover.labels(self.group, self.member,
                              ReasonKind(reason_kind).value).observe(seconds)

    def checkpoint_lag(self, standby: str, entries: int, seconds: float) -> None:
        super().checkpoint_lag(standby, entries, seconds)
        with self._lock:
            self._lagging.add(standby)
        self._lag_entries.labels(self.group, self.member, standby).set(entries)
        self._lag_seconds.labels(self.group, self.member, standby).set(seconds)

    def standby_gone(self, standby: str) -> None:
        super().standby_gone(standby)
        with self._lock:
            known = standby in self._lagging
            self._lagging.discard(standby)
        if known:
            self._drop_lag(standby)

    def _drop_lag(self, standby: str) -> None:
        self._lag_entries.remove(self.group, self.member, standby)
        self._lag_seconds.remove(self.group, self.member, standby)

    def in_sync_standbys(self, count: int) -> None:
        super().in_sync_standbys(count)
        self._in_sync.set(count)

    def checkpoint_write(self, ack: Ack | str, result: WriteResult | str,
                         ack_latency_s: float | None = None) -> None:
        tally = self._tally
        if ack_latency_s is None and type(ack) is Ack and type(result) is WriteResult:
            key = (ack, result)
            if key in tally:
                # the hot path (every Ack.NONE write): valid as they are, and a plain count
                # (a counter's inc() takes a lock and costs several times more)
                tally[key] += 1
                return
        super().checkpoint_write(ack, result, ack_latency_s)
        mode, outcome = Ack(ack), WriteResult(result)
        key = (mode, outcome)
        if key not in tally:
            with self._lock:  # the series exists from its first write, as any counter's
                self._write_counts[key] = self._writes.labels(self.group, self.member,
                                                              mode.value, outcome.value)
                tally[key] = 0
        tally[key] += 1
        if ack_latency_s is not None:
            latency = self._latencies.get(mode)
            if latency is None:
                latency = self._latencies[mode] = self._ack_latency.labels(
                    self.group, self.member, mode.value)
            latency.observe(ack_latency_s)

    def _export_writes(self) -> None:
        """Add the writes tallied since the last read to their counter (any thread)."""
        with self._lock:
            for key, total in self._tally.items():  # keys are added only under this lock
                done = self._exported.get(key, 0)
                if total > done:
                    self._write_counts[key].inc(total - done)
                    self._exported[key] = total

    def health_check_failed(self, check: CheckKind | str) -> None:
        super().health_check_failed(check)
        self._health.labels(self.group, self.member, CheckKind(check).value).inc()

    def escalated(self, rung: Rung | str) -> None:
        super().escalated(rung)
        self._escalations.labels(self.group, self.member, Rung(rung).value).inc()

    def ladder_decided(self, action: LadderAction | str) -> None:
        super().ladder_decided(action)
        self._decisions.labels(self.group, self.member, LadderAction(action).value).inc()

    def nfvi_rpc(self, method: NfviMethod | str, code: str, seconds: float) -> None:
        super().nfvi_rpc(method, code, seconds)
        self._nfvi.labels(self.group, self.member, NfviMethod(method).value,
                          code).observe(seconds)

    def stale_epoch_rejected(self, side: StaleSide | str) -> None:
        super().stale_epoch_rejected(side)
        self._stale.labels(self.group, self.member, StaleSide(side).value).inc()

    def replication_refused(self, reason: Refusal | str) -> None:
        super().replication_refused(reason)
        self._refused.labels(self.group, self.member, Refusal(reason).value).inc()

    def etcd_error(self, request: EtcdRequest | str, kind: EtcdErrorKind | str) -> None:
        super().etcd_error(request, kind)
        self._etcd_errors.labels(self.group, self.member, EtcdRequest(request).value,
                                 EtcdErrorKind(kind).value).inc()

    def lease_keepalive(self, seconds: float) -> None:
        super().lease_keepalive(seconds)
        self._keepalive.observe(seconds)

    def lease_lost(self) -> None:
        super().lease_lost()
        self._leases_lost.inc()

    def admin_state(self, locked: bool, paused: bool) -> None:
        super().admin_state(locked, paused)
        self._locked.set(1 if locked else 0)
        self._paused.set(1 if paused else 0)

    def service_address(self, address: str, held: bool) -> None:
        super().service_address(address, held)
        self._addresses.labels(self.group, self.member, address).set(1 if held else 0)

    # -- exposition ------------------------------------------------------------------------------

    def exposition(self) -> str:
        """The registry in Prometheus' text format, as a scrape would see it."""
        return generate_latest(self.registry).decode()

    def serve(self, port: int, host: str = "127.0.0.1", *, poll_s: float = 0.05) -> int:
        """Serve this registry over HTTP on ``host``:``port`` (0: any free port) at every path
        (``/metrics`` by convention), in a daemon thread; returns the port bound.

        ConfigError if already serving or the port is out of range; OSError (``EADDRINUSE``)
        if the port is taken. ``poll_s`` bounds how long :meth:`close` blocks.
        """
        if self._server is not None:
            raise ConfigError("metrics_port", port, f"already serving on port {self._server.port}")
        if not 0 <= port <= 65535:
            raise ConfigError("metrics_port", port, "must be 0..65535 (0: any free port)")
        self._server = Exporter(self.registry, host, port, poll_s)
        return self._server.port

    @property
    def port(self) -> int | None:
        """The port being served, or None."""
        return self._server.port if self._server is not None else None

    def close(self) -> None:
        """Stop serving and release the port (waits at most about ``poll_s``). Idempotent;
        recording keeps working after it."""
        server, self._server = self._server, None
        if server is not None:
            server.close()


class _ExportFirst(Collector):
    """``metric`` on a registry, brought up to date by ``export`` before every read of it."""

    def __init__(self, metric: Counter, export: Callable[[], None]) -> None:
        self._metric = metric
        self._export = export

    def describe(self) -> Iterable[Metric]:
        return self._metric.describe()

    def collect(self) -> Iterable[Metric]:
        self._export()
        return self._metric.collect()
