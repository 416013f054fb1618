"""The one exception tree of vnfha.

Every error vnfha raises on purpose derives from :class:`VnfhaError`, carries the ids involved as
attributes (not only in its message), and keeps its cause (``raise X(...) from e``)::

    VnfhaError
    ├── ConfigError              a config value is invalid or two values contradict each other
    │   └── GroupConfigMismatch  this member's settings differ from its group's members'
    ├── StoreError               talking to the coordination store (etcd) failed
    │   ├── StoreUnavailable     no endpoint answered in time; ``outcome_unknown`` for writes
    │   ├── StoreAuthError       credentials refused, or the user lacks a permission
    │   ├── StoreRequestError    the store refused the request itself (bad argument, too large)
    │   │   └── StoreNoSpace     etcd's NOSPACE alarm is raised: it refuses every write
    │   ├── LeaseNotFound        the lease expired or was revoked
    │   └── Compacted            a watch asked for history the store has compacted away
    ├── SessionLost              the session's lease is gone, or its local deadline has passed
    ├── EtcdLaunchError          the local etcd could not be started (no binary, port taken, ...)
    ├── NotActive                a write was attempted by a member that does not hold ACTIVE
    ├── SwitchoverError          a switchover was refused (no eligible target) or did not finish
    ├── LockError                an operator's lock was refused, or did not take effect in time
    ├── CheckpointError          a checkpoint write was refused or not acknowledged
    │   ├── CheckpointLimitError a key, value, section or message over its configured limit
    │   └── AckTimeout           an Ack.ONE / Ack.ALL write not acknowledged in time
    ├── HealthCheckFailed        a health check found its target unhealthy (``check``, ``reason``)
    ├── LadderStateError         stored escalation-ladder counters are unreadable (bad bytes)
    └── NfviError                a call to the NFVI bridge failed (``method``, ``target``)
        ├── BridgeUnavailable    no answer within the deadline; ``outcome_unknown`` for actions
        ├── StaleEpochRejected   the bridge has seen a higher epoch: the caller is deposed
        ├── RepairInProgress     another ticket owns the instance's repair (``ticket``, ``owner``)
        └── BridgeRequestError   the bridge refused the request (``code``, ``reason``)

``ConfigError`` is also a ``ValueError``, and ``StoreUnavailable`` and ``BridgeUnavailable`` also
``ConnectionError``, so code that already catches the built-in kinds keeps working.
"""

from __future__ import annotations

__all__ = [
    "AckTimeout",
    "BridgeRequestError",
    "BridgeUnavailable",
    "CheckpointError",
    "CheckpointLimitError",
    "Compacted",
    "ConfigError",
    "EtcdLaunchError",
    "GroupConfigMismatch",
    "HealthCheckFailed",
    "LadderStateError",
    "LeaseNotFound",
    "LockError",
    "NfviError",
    "NotActive",
    "RepairInProgress",
    "SessionLost",
    "StaleEpochRejected",
    "StoreAuthError",
    "StoreError",
    "StoreNoSpace",
    "StoreRequestError",
    "StoreUnavailable",
    "SwitchoverError",
    "VnfhaError",
]


class VnfhaError(Exception):
    """Root of every error vnfha raises on purpose."""


class ConfigError(VnfhaError, ValueError):
    """A configuration value is invalid, or two values contradict each other.

    ``field`` names the offending setting (for relations, the first of them) and ``value`` holds
    what was given, so a caller can point the operator at the exact line to fix.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


class GroupConfigMismatch(ConfigError):
    """This member's ``field`` (``value``) differs from member ``other``'s (``theirs``) in
    ``group``: every member of a group must share it (:mod:`vnfha.roles.agreement`), so the
    member refuses to join."""

    def __init__(self, group: str, field: str, value: str, other: str, theirs: str) -> None:
        self.group = group
        self.other = other
        self.theirs = theirs
        super().__init__(field, value, f"member {other} of group {group} has {field}={theirs}; "
                         "every member of a group must share it: this member does not join")


class StoreError(VnfhaError):
    """Talking to the coordination store failed. ``endpoint`` is the one involved, if known."""

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        self.endpoint = endpoint
        suffix = f" (endpoint {endpoint})" if endpoint else ""
        super().__init__(message + suffix)


class StoreUnavailable(StoreError, ConnectionError):
    """No endpoint answered within the deadline.

    ``outcome_unknown`` is true for a write (put, delete, txn) that may have been applied before
    the connection failed: vnfha never retries such a write blindly, the caller must read back.
    ``endpoints`` lists every endpoint tried.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        endpoints: tuple[str, ...] = (),
        outcome_unknown: bool = False,
    ) -> None:
        self.endpoints = endpoints
        self.outcome_unknown = outcome_unknown
        super().__init__(message, endpoint=endpoint)


class StoreAuthError(StoreError):
    """The store refused the credentials, or the authenticated user lacks a permission."""


class StoreRequestError(StoreError):
    """The store refused the request itself (invalid argument, request too large, ...)."""


class StoreNoSpace(StoreRequestError):
    """etcd's NOSPACE alarm is raised (its database reached ``--quota-backend-bytes``): etcd
    refuses every write, lease grants included, until an operator cures it, while reads,
    deletes and keepalives still pass. ``details`` holds etcd's own words.

    Nothing was applied: the request may be sent again once the alarm is disarmed.
    """

    CURE = ("an operator frees space, compacts, defragments and runs `etcdctl alarm disarm` "
            "(docs/operations.md, 'etcd for vnfha')")
    """What ends the alarm, named in every message."""

    def __init__(self, details: str, *, endpoint: str | None = None) -> None:
        self.details = details
        super().__init__(f"etcd raised its NOSPACE alarm (database space exceeded): it refuses "
                         f"every write until {self.CURE}; etcd said: {details}",
                         endpoint=endpoint)


class LeaseNotFound(StoreError):
    """The lease ``lease_id`` does not exist any more: it expired or was revoked."""

    def __init__(self, lease_id: int, *, endpoint: str | None = None) -> None:
        self.lease_id = lease_id
        super().__init__(f"lease {lease_id:#x} not found (expired or revoked)", endpoint=endpoint)


class Compacted(StoreError):
    """A watch asked to start at a revision older than ``compact_revision``.

    The history before ``compact_revision`` is gone; the watcher must re-read the current state
    and watch again from the revision of that read.
    """

    def __init__(
        self, requested_revision: int, compact_revision: int, *, endpoint: str | None = None
    ) -> None:
        self.requested_revision = requested_revision
        self.compact_revision = compact_revision
        super().__init__(
            f"revision {requested_revision} is compacted (oldest kept is {compact_revision})",
            endpoint=endpoint,
        )


class SessionLost(VnfhaError):
    """The session's lease ``lease_id`` is gone, or its local deadline has passed.

    Nothing held through the session (the active role above all) may be assumed valid any more.
    """

    def __init__(self, lease_id: int, reason: str) -> None:
        self.lease_id = lease_id
        self.reason = reason
        super().__init__(f"session lease {lease_id:#x} lost: {reason}")


class EtcdLaunchError(VnfhaError):
    """A local etcd could not be started. ``log_tail`` holds the end of its log, if it ran."""

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        self.log_tail = log_tail
        text = message if not log_tail else f"{message}\n--- etcd log (tail) ---\n{log_tail}"
        super().__init__(text)


class NotActive(VnfhaError):
    """A write was attempted by ``member``, which does not hold the ACTIVE role (now ``role``)."""

    def __init__(self, member: str, role: str, epoch: int) -> None:
        self.member = member
        self.role = role
        self.epoch = epoch
        super().__init__(f"member {member!r} is not active (role {role}, epoch {epoch})")


class SwitchoverError(VnfhaError):
    """A switchover in ``group`` was refused or did not complete; ``target`` is the member asked
    for (None for "the best standby")."""

    def __init__(self, group: str, target: str | None, problem: str) -> None:
        self.group = group
        self.target = target
        self.problem = problem
        to = f" to {target!r}" if target else ""
        super().__init__(f"switchover of group {group!r}{to}: {problem}")


class LockError(VnfhaError):
    """An operator's lock (``vnfha lock``) of ``member`` of ``group`` (None: the group's pause)
    was refused, or did not take effect in time; ``problem`` says why."""

    def __init__(self, group: str, member: str | None, problem: str) -> None:
        self.group = group
        self.member = member
        self.problem = problem
        what = f"member {member} of group {group}" if member else f"group {group}"
        super().__init__(f"lock of {what}: {problem}")


class CheckpointError(VnfhaError):
    """A checkpoint write was refused or not acknowledged; nothing was lost by the refusal."""


class CheckpointLimitError(CheckpointError, ValueError):
    """``what`` (e.g. "value of sessions/k1") is ``size`` bytes, over ``limit`` = ``maximum``."""

    def __init__(self, limit: str, what: str, size: int, maximum: int) -> None:
        self.limit = limit
        self.what = what
        self.size = size
        self.maximum = maximum
        super().__init__(f"{what} is {size} bytes, over {limit}={maximum}")


class AckTimeout(CheckpointError):
    """Write ``sequence`` of ``epoch`` was applied on the active but not acknowledged as ``ack``
    asks within ``timeout_s``; ``in_sync`` lists the standbys that counted. The write stays in
    the active's state and is still replicated: the caller learns only that it is not (yet)
    protected against a failover."""

    def __init__(self, ack: str, epoch: int, sequence: int, timeout_s: float,
                 in_sync: tuple[str, ...]) -> None:
        self.ack = ack
        self.epoch = epoch
        self.sequence = sequence
        self.timeout_s = timeout_s
        self.in_sync = in_sync
        who = ", ".join(in_sync) if in_sync else "no standby is in sync"
        super().__init__(f"checkpoint write {epoch}/{sequence} not acknowledged (ack={ack}) "
                         f"within {timeout_s} s ({who})")


# -- health checks and the escalation ladder (vnfha.health) ----------------------------------


class HealthCheckFailed(VnfhaError):
    """The health check ``check`` found its target unhealthy; ``reason`` says how (it is what
    the monitor logs and what the ladder's fault carries)."""

    def __init__(self, check: str, reason: str) -> None:
        self.check = check
        self.reason = reason
        super().__init__(f"health check {check!r} failed: {reason}")


class LadderStateError(VnfhaError, ValueError):
    """Stored ladder counters (``key``, if known) could not be decoded: ``problem`` says what is
    wrong with them. The runtime starts from empty counters and overwrites the key."""

    def __init__(self, problem: str, *, key: str | None = None) -> None:
        self.problem = problem
        self.key = key
        where = f" at {key!r}" if key else ""
        super().__init__(f"unreadable ladder counters{where}: {problem}")


# -- the NFVI bridge client (vnfha.nfvi.client) ----------------------------------------------


class NfviError(VnfhaError):
    """A call ``method`` (e.g. ``"Fence"``) to the NFVI bridge at ``target`` failed."""

    def __init__(self, message: str, *, method: str, target: str) -> None:
        self.method = method
        self.target = target
        super().__init__(f"NFVI bridge {target} {method}: {message}")


class BridgeUnavailable(NfviError, ConnectionError):
    """The bridge did not answer ``method`` within ``timeout_s`` (retries included, for the
    idempotent calls). ``outcome_unknown`` is true when the request may have been carried out."""

    def __init__(self, message: str, *, method: str, target: str, timeout_s: float,
                 outcome_unknown: bool) -> None:
        self.timeout_s = timeout_s
        self.outcome_unknown = outcome_unknown
        super().__init__(message, method=method, target=target)


class StaleEpochRejected(NfviError):
    """The bridge refused ``epoch`` of ``member`` in ``group``: it has seen ``highest``, so this
    member's grant is superseded and it must stop acting as active."""

    def __init__(self, message: str, *, method: str, target: str, group: str, member: str,
                 epoch: int, highest: int | None) -> None:
        self.group = group
        self.member = member
        self.epoch = epoch
        self.highest = highest
        super().__init__(message, method=method, target=target)


class RepairInProgress(NfviError):
    """An escalation was refused: ticket ``ticket``, owned by ``owner``, is already repairing
    the instance. Watch that ticket instead of repairing too."""

    def __init__(self, message: str, *, method: str, target: str, ticket: str,
                 owner: str) -> None:
        self.ticket = ticket
        self.owner = owner
        super().__init__(message, method=method, target=target)


class BridgeRequestError(NfviError):
    """The bridge refused the request with status ``code`` (a ``grpc.StatusCode`` name such as
    ``"NOT_FOUND"``); ``reason`` is its ``vnfha-reason`` qualifier (e.g. ``"not-armed"``), if
    any."""

    def __init__(self, message: str, *, method: str, target: str, code: str,
                 reason: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(message, method=method, target=target)
