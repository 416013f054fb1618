"""Every metric a member exposes, and the vocabularies of their labels: data, no recording.

:data:`SPECS` lists every metric (name as exposed, type, labels, meaning, buckets): the
operations guide's table, the Grafana dashboard and the alerting rules are checked against it by
the unit tests, and :class:`vnfha.metrics.MemberMetrics` builds its registry from it. The enums
below are the fixed sets a label's values come from (with :class:`~vnfha.model.Role`,
:class:`~vnfha.model.Ack`, :class:`~vnfha.model.ReasonKind`, :class:`~vnfha.model.Rung`,
:class:`~vnfha.model.LadderAction` and :class:`~vnfha.store.observed.EtcdRequest`), so the
number of series stays bounded.

Nothing here imports ``prometheus_client``; :mod:`vnfha.metrics` re-exports every public name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vnfha.errors import (
    Compacted,
    LeaseNotFound,
    StoreAuthError,
    StoreError,
    StoreNoSpace,
    StoreRequestError,
    StoreUnavailable,
)

__all__ = [
    "SPECS",
    "CheckKind",
    "EtcdErrorKind",
    "MetricSpec",
    "NfviMethod",
    "Refusal",
    "StaleSide",
    "WriteResult",
    "error_kind",
    "sample_names",
]


# -- the label vocabulary ------------------------------------------------------------------------


class CheckKind(enum.StrEnum):
    """Which health check failed."""

    APP = "app"
    """The component's own ``health_check``."""
    PROCESS = "process"
    """The built-in process-alive check."""
    TCP = "tcp"
    """The built-in TCP connect check."""
    GRPC_HEALTH = "grpc-health"
    """The built-in grpc.health.v1 probe."""
    CALLBACK = "callback"
    """A component callback (``on_active``, ...) raised or overran ``callback_timeout_s``."""
    FAULT_REPORT = "fault-report"
    """The component reported a fault itself (``member.report_fault``)."""


class WriteResult(enum.StrEnum):
    """How one checkpoint write ended."""

    OK = "ok"
    """Applied, and protected as its ack mode asked."""
    DEGRADED = "degraded"
    """Applied on the active but returned unprotected (``checkpoint_degrade_ack``)."""
    TIMEOUT = "timeout"
    """Applied on the active, not acknowledged in time: ``AckTimeout`` was raised."""
    NOT_ACTIVE = "not-active"
    """Refused or abandoned because the member was not (or stopped being) the active."""
    REJECTED = "rejected"
    """Refused before applying: a bad name or a value over a limit."""


class NfviMethod(enum.StrEnum):
    """The NFVI bridge's RPCs (``proto/vnfha/nfvi/v1/nfvi.proto``), by method name."""

    ARM = "Arm"
    KICK = "Kick"
    DISARM = "Disarm"
    GET_PLACEMENT = "GetPlacement"
    CHECK_POLICY = "CheckPolicy"
    FENCE = "Fence"
    ESCALATE = "Escalate"
    WATCH_REPAIR = "WatchRepair"
    WATCH_EVENTS = "WatchEvents"


class StaleSide(enum.StrEnum):
    """Where a stale epoch was refused."""

    STANDBY = "standby"
    """This member, as a standby, refused a message from an epoch lower than one it has seen."""
    ACTIVE = "active"
    """A standby told this member, as the active, that its epoch is stale (it was deposed)."""


class Refusal(enum.StrEnum):
    """Why this member's replication endpoint refused a stream (bad input, never a crash)."""

    MALFORMED = "malformed"
    """Bytes that are not a message of the protocol, or a Hello missing what it must carry."""
    WRONG_GROUP = "wrong_group"
    """A Hello for another group."""
    PERMISSION = "permission"
    """Under mutual TLS: a certificate that may not replicate as the member it names."""
    UNAUTHENTICATED = "unauthenticated"
    """No valid proof of this grant's replication secret (``docs/security.md``)."""
    PROTOCOL = "protocol"
    """An ack for another epoch or for a sequence not sent on the stream, a second Hello, ..."""


class EtcdErrorKind(enum.StrEnum):
    """How an etcd request failed (the ``kind`` label of ``vnfha_etcd_errors_total``), by the
    error vnfha raised for it: see :func:`error_kind`."""

    NOSPACE = "nospace"
    """:class:`~vnfha.errors.StoreNoSpace`: etcd's NOSPACE alarm refuses every write."""
    UNAVAILABLE = "unavailable"
    """:class:`~vnfha.errors.StoreUnavailable`: no endpoint answered in time."""
    AUTH = "auth"
    """:class:`~vnfha.errors.StoreAuthError`: credentials or permissions refused."""
    LEASE_NOT_FOUND = "lease_not_found"
    """:class:`~vnfha.errors.LeaseNotFound`: the lease expired or was revoked."""
    COMPACTED = "compacted"
    """:class:`~vnfha.errors.Compacted`: the revision asked for is compacted away."""
    REFUSED = "refused"
    """Any other :class:`~vnfha.errors.StoreRequestError`: etcd refused the request itself."""
    OTHER = "other"
    """Any other :class:`~vnfha.errors.StoreError`."""


_ERROR_KINDS: tuple[tuple[type[StoreError], EtcdErrorKind], ...] = (
    (StoreNoSpace, EtcdErrorKind.NOSPACE),  # before StoreRequestError, its base
    (StoreUnavailable, EtcdErrorKind.UNAVAILABLE),
    (StoreAuthError, EtcdErrorKind.AUTH),
    (LeaseNotFound, EtcdErrorKind.LEASE_NOT_FOUND),
    (Compacted, EtcdErrorKind.COMPACTED),
    (StoreRequestError, EtcdErrorKind.REFUSED),
)


def error_kind(error: StoreError) -> EtcdErrorKind:
    """The ``kind`` label of ``error``: its most specific class in :class:`EtcdErrorKind`."""
    return next((kind for cls, kind in _ERROR_KINDS if isinstance(error, cls)),
                EtcdErrorKind.OTHER)


# -- the metrics ---------------------------------------------------------------------------------

Kind = Literal["counter", "gauge", "histogram"]

_FAILOVER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.5, 2.3, 3.5, 5.0)
"""10 ms .. 5 s; the failover budgets (100 ms, 250 ms, 600 ms, TTL + 300 ms at the default TTL)
are bucket bounds, so "the fraction within budget" is exact."""
_ACK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0)
"""0.1 ms .. 1 s: a loopback ack takes about a millisecond, one over a WAN tens of them."""
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""1 ms .. 10 s: a Kick is a loopback round trip, a Fence may wait for a VM to power off."""
_KEEPALIVE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.0)
"""0.5 ms .. 2 s: a healthy etcd answers in about a millisecond; at the default TTL (2 s) a
round trip near the top bucket leaves the lease no margin."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its ``name`` as it appears in the exposition (counters end in ``_total``),
    its ``kind``, the ``labels`` after ``group`` and ``member``, and what it means."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    meaning: str
    buckets: tuple[float, ...] = ()


BUILD_INFO = MetricSpec("vnfha_build_info", "gauge", ("version", "python"),
                        "Always 1; the labels say which vnfha and Python the member runs.")
ROLE = MetricSpec("vnfha_role", "gauge", ("role",),
                  "1 for the member's current role, 0 for the three others.")
TRANSITIONS = MetricSpec("vnfha_role_transitions_total", "counter",
                         ("from", "to", "reason_kind"), "Role changes, by why they happened.")
EPOCH = MetricSpec("vnfha_epoch", "gauge", (),
                   "The epoch of the active grant this member knows (its own when active).")
FAILOVER = MetricSpec("vnfha_failover_duration_seconds", "histogram", ("reason_kind",),
                      "On the new active: from noticing the old active gone (or the handover) "
                      "to holding the role.", _FAILOVER_BUCKETS)
LAG_ENTRIES = MetricSpec("vnfha_checkpoint_lag_entries", "gauge", ("standby",),
                         "On the active: changes of the epoch a standby has not acknowledged.")
LAG_SECONDS = MetricSpec("vnfha_checkpoint_lag_seconds", "gauge", ("standby",),
                         "On the active: age of the oldest change a standby has not "
                         "acknowledged (0 when caught up).")
WRITES = MetricSpec("vnfha_checkpoint_writes_total", "counter", ("ack", "result"),
                    "Checkpoint writes (put and delete), by ack mode and outcome.")
ACK_LATENCY = MetricSpec("vnfha_checkpoint_ack_latency_seconds", "histogram", ("ack",),
                         "From a write to its acknowledgement as its ack mode asks.",
                         _ACK_BUCKETS)
IN_SYNC = MetricSpec("vnfha_in_sync_standbys", "gauge", (),
                     "On the active: standbys published as in sync (whose acks count).")
HEALTH_FAILURES = MetricSpec("vnfha_health_check_failures_total", "counter", ("check",),
                             "Failed health checks and fault reports, by check.")
ESCALATIONS = MetricSpec("vnfha_escalations_total", "counter", ("rung",),
                         "Recoveries the escalation ladder chose, by rung.")
DECISIONS = MetricSpec("vnfha_ladder_decisions_total", "counter", ("action",),
                       "Decisions of the escalation ladder, by the action taken.")
NFVI_RPC = MetricSpec("vnfha_nfvi_rpc_duration_seconds", "histogram", ("method", "code"),
                      "NFVI bridge calls, by method and gRPC status code.", _RPC_BUCKETS)
STALE = MetricSpec("vnfha_stale_epoch_rejections_total", "counter", ("side",),
                   "Messages refused because they carried a stale epoch.")
REFUSED = MetricSpec("vnfha_replication_refusals_total", "counter", ("reason",),
                     "Replication streams this member refused for bad input, by reason.")

ETCD_ERRORS = MetricSpec("vnfha_etcd_errors_total", "counter", ("request", "kind"),
                         "Failed etcd requests of the member, by kind of request and of error.")
KEEPALIVE = MetricSpec("vnfha_lease_keepalive_seconds", "histogram", (),
                       "Round trip of each answered keepalive of the member's lease, from "
                       "send to answer.", _KEEPALIVE_BUCKETS)
LEASES_LOST = MetricSpec("vnfha_leases_lost_total", "counter", (),
                         "Sessions (leases) of the member lost while in use: local deadline "
                         "passed, or etcd said the lease is gone.")

ADMIN_LOCKED = MetricSpec("vnfha_admin_locked", "gauge", (),
                          "1 while an operator has locked this member out of service "
                          "(vnfha lock GROUP MEMBER), else 0.")
GROUP_PAUSED = MetricSpec("vnfha_group_paused", "gauge", (),
                          "1 while an operator has paused the member's group (vnfha lock "
                          "GROUP): no failover, switchover or ladder action; else 0.")

SERVICE_ADDRESS = MetricSpec("vnfha_service_address_held", "gauge", ("address",),
                             "1 while this member holds the service address (it is active and "
                             "took it), else 0; one series per configured address.")

SPECS: tuple[MetricSpec, ...] = (
    BUILD_INFO, ROLE, TRANSITIONS, EPOCH, FAILOVER, LAG_ENTRIES, LAG_SECONDS, WRITES,
    ACK_LATENCY, IN_SYNC, HEALTH_FAILURES, ESCALATIONS, DECISIONS, NFVI_RPC, STALE, REFUSED,
    ETCD_ERRORS, KEEPALIVE, LEASES_LOST, ADMIN_LOCKED, GROUP_PAUSED, SERVICE_ADDRESS,
)
"""Every metric a member exposes, in the order of the operations guide's table."""

_SUFFIXES: dict[Kind, tuple[str, ...]] = {
    "counter": ("",),  # the spec's name already ends in _total
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
}


def sample_names(specs: Iterable[MetricSpec] = SPECS) -> frozenset[str]:
    """Every series name a query may use: gauges and counters by their name, histograms by
    ``_bucket``, ``_count`` and ``_sum`` (``_created`` series are left out on purpose)."""
    return frozenset(s.name + suffix for s in specs for suffix in _SUFFIXES[s.kind])

