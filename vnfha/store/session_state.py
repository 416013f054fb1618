"""PURE: the state of a lease-holding session, as a function of what its keepalives saw.

No I/O, no clock reads: every function takes ``now`` and returns a new frozen
:class:`SessionView`. :class:`vnfha.store.session.Session` runs the keepalive loop and feeds
these functions; tests drive them directly with numbers.

States (kazoo's vocabulary), and what each *permits*:

=========== ===================================================== ===========================
state       meaning                                               what the holder may do
=========== ===================================================== ===========================
CONNECTED   the last keepalive was acknowledged, deadline ahead   act on what the lease holds
SUSPENDED   a keepalive failed or went unanswered; deadline ahead act, but expect to lose it;
                                                                   start nothing long
LOST        the deadline passed, or etcd said the lease is gone   nothing: stop acting now
=========== ===================================================== ===========================

Invariants (checked by tests):

- The deadline is ``send_time + granted_ttl - margin`` of the latest *acknowledged* keepalive,
  anchored at the time the request was **sent**, never when the reply arrived: etcd renews at
  some moment after the send, so the lease lives at least until ``send_time + ttl``.
- The deadline never moves backwards (a late reply to an older request cannot shorten it, and
  cannot lengthen it past what its own send time allows).
- LOST is final. A session that lost its lease never becomes CONNECTED again: whatever the
  lease protected may already belong to someone else, so the holder must start a new session.
- ``now >= deadline`` always means LOST, whatever else happened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = ["SessionState", "SessionView", "on_ack", "on_failure", "on_lease_gone", "on_tick",
           "started"]


class SessionState(enum.StrEnum):
    """CONNECTED / SUSPENDED / LOST (see the module docstring for what each permits)."""

    CONNECTED = "connected"
    SUSPENDED = "suspended"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class SessionView:
    """A snapshot of a session: its lease, its local deadline and its state, with the reason
    for the last change."""

    lease_id: int
    granted_ttl_s: int
    margin_s: float
    deadline: float
    state: SessionState
    reason: str
    last_ack_send_time: float
    failures: int = 0

    def remaining(self, now: float) -> float:
        """Seconds until the local deadline (negative once passed)."""
        return self.deadline - now


def started(lease_id: int, granted_ttl_s: int, margin_s: float, send_time: float) -> SessionView:
    """The view right after LeaseGrant returned; ``send_time`` is when the grant was sent."""
    if granted_ttl_s <= 0:
        raise ValueError(f"granted TTL must be positive, got {granted_ttl_s}")
    if not 0 <= margin_s < granted_ttl_s:
        raise ValueError(f"margin_s={margin_s} must be in [0, granted TTL {granted_ttl_s})")
    return SessionView(
        lease_id=lease_id,
        granted_ttl_s=granted_ttl_s,
        margin_s=margin_s,
        deadline=send_time + granted_ttl_s - margin_s,
        state=SessionState.CONNECTED,
        reason="lease granted",
        last_ack_send_time=send_time,
    )


def on_tick(view: SessionView, now: float) -> SessionView:
    """Re-evaluate at ``now``: past the deadline the session is LOST."""
    if view.state is SessionState.LOST or now < view.deadline:
        return view
    return replace(view, state=SessionState.LOST,
                   reason=f"local deadline passed {now - view.deadline:.3f} s ago "
                          f"with no acknowledged keepalive")


def on_ack(view: SessionView, send_time: float, ttl_s: int, now: float) -> SessionView:
    """A keepalive sent at ``send_time`` was acknowledged with ``ttl_s`` (etcd's reply TTL)."""
    view = on_tick(view, now)
    if view.state is SessionState.LOST:
        return view
    if ttl_s <= 0:
        return on_lease_gone(view, "etcd answered the keepalive with TTL <= 0")
    deadline = max(view.deadline, send_time + ttl_s - view.margin_s)
    if now >= deadline:
        return on_tick(replace(view, deadline=deadline), now)
    reason = view.reason if view.state is SessionState.CONNECTED else "keepalive acknowledged"
    return replace(
        view,
        granted_ttl_s=ttl_s,
        deadline=deadline,
        state=SessionState.CONNECTED,
        reason=reason,
        last_ack_send_time=max(view.last_ack_send_time, send_time),
        failures=0,
    )


def on_failure(view: SessionView, now: float, error: str) -> SessionView:
    """A keepalive failed or went unanswered (``error`` says how)."""
    view = on_tick(view, now)
    if view.state is SessionState.LOST:
        return view
    return replace(view, state=SessionState.SUSPENDED, reason=f"keepalive failed: {error}",
                   failures=view.failures + 1)


def on_lease_gone(view: SessionView, reason: str) -> SessionView:
    """etcd says the lease does not exist (expired or revoked): LOST at once."""
    if view.state is SessionState.LOST:
        return view
    return replace(view, state=SessionState.LOST, reason=reason)
