"""PURE: proving, from etcd's coarse lease TTL answers, that a silent active can no longer act.

Without an NFVI bridge to fence it, a silent active (frozen, hung, cut off) is safe to replace
only once its own local deadline has passed: the active stops acting at ``s + TTL - margin``,
where ``s`` is when it *sent* its last acknowledged keepalive (:mod:`vnfha.store.session_state`).
etcd deletes its key later still: after the lease's expiry ``E >= s + TTL`` *and* the next run
of etcd's revocation loop, which runs every 500 ms, so waiting for the key's deletion costs up
to half a second more than the lease. This module lets a suspicious standby take over at
``E - margin`` instead, which is after the active's deadline and before etcd revokes.

How. The standby polls ``LeaseTimeToLive`` of the active's lease. etcd answers whole seconds,
truncated toward zero: an answer ``v`` processed at time ``p`` means the true remaining time is
below ``v + 1``, so ``E < p + v + 1 <= recv + v + 1`` (``recv``: when the reply arrived, on the
standby's monotonic clock). The tightest such bound over the polls of one *run* is ``bound``.

A refresh (a keepalive that etcd accepted, or an etcd leader change, which extends every lease)
moves ``E`` to at least ``r + granted`` (``r``: when etcd processed it). Polls catch every
refresh, provided the bound came from an answer ``v_i <= granted - 2``: a poll processed within
one second after the refresh answers ``v >= granted - 1``, and since it was sent after the
bounding poll's reply, ``send + v >= recv_i + v_i + 1 = bound``, which is impossible without a
refresh. An answer of ``granted - 1`` bounds nothing: a refresh right after it moves ``E`` up to
a second past ``recv + v + 1`` while every later answer still looks consistent (hypothesis found
exactly that: a proof 50 ms before the active's deadline). So a run stays valid only while

- consecutive polls are less than ``1 - guard`` seconds apart (send of one to the reply of the
  next), and
- every answer is consistent with ``bound`` (``send + v < bound``);

only answers of at most ``granted - 2`` start a run or lower its bound. Otherwise the run
restarts from the latest poll (or waits for such an answer). The proof is a consistent poll
*sent* at or after ``bound - margin + guard``: every refresh the active could have acted on was
processed by etcd before its local deadline, hence before that poll, which would have shown it;
and the active's deadline is at most ``E - margin < bound - margin``. ``guard`` covers
clock-rate differences between hosts and the time the takeover transaction takes.

Assumptions, stated in ``docs/failover.md``: every member of a group uses the same
``lease_margin_s``; monotonic clocks on different hosts run at the same rate to within
``guard`` over one TTL. With a granted TTL below 2 s the answers carry no information (always 0)
and no proof is ever given: the standby waits for etcd to delete the key, as before.

Guarantees (tested with hypothesis against a simulated lease in ``tests/unit``): a proof is never
given while the simulated active's deadline lies ahead, whatever the refresh times and poll
schedule; without refreshes and with regular polls, a proof is given within one poll interval
after ``E - margin + guard``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ExpiryProof", "ExpiryTracker", "Poll"]


def _informative(poll: Poll) -> bool:
    """Whether ``poll``'s answer may bound the expiry: at most ``granted - 2`` whole seconds
    left. Only such a bound lets the next poll see a refresh (see the module docstring)."""
    return poll.ttl_s <= poll.granted_ttl_s - 2


class ExpiryProof(enum.StrEnum):
    """Where the tracker stands."""

    UNKNOWN = "unknown"
    """No run yet, or the run was just restarted."""
    BOUNDED = "bounded"
    """A run is valid and bounds the expiry; not yet provably past the active's deadline."""
    PROVEN = "proven"
    """The active's local deadline has certainly passed, and no refresh can revive it."""


@dataclass(frozen=True, slots=True)
class Poll:
    """One ``LeaseTimeToLive`` answer: sent and received at these monotonic times, remaining
    ``ttl_s`` (etcd's truncated whole seconds) of a lease granted ``granted_ttl_s``."""

    send: float
    recv: float
    ttl_s: int
    granted_ttl_s: int


@dataclass(slots=True)
class ExpiryTracker:
    """Feed it every poll of one lease, in order; read :attr:`state` and :attr:`reason`."""

    margin_s: float
    guard_s: float
    state: ExpiryProof = ExpiryProof.UNKNOWN
    reason: str = "no poll yet"
    bound: float | None = None
    _last_send: float | None = None

    def __post_init__(self) -> None:
        if self.margin_s < 0 or self.guard_s <= 0:
            raise ValueError(f"margin_s={self.margin_s} must be >= 0 and guard_s={self.guard_s} "
                             "> 0")

    def observe(self, poll: Poll) -> ExpiryProof:
        """Take one answer into account; returns the new state."""
        if self.state is ExpiryProof.PROVEN:
            return self.state
        if poll.granted_ttl_s < 2:
            self._restart(poll, f"granted TTL {poll.granted_ttl_s} s is too short to read an "
                          "expiry from whole-second answers")
            return self.state
        max_gap = 1 - self.guard_s
        if self.bound is None or self._last_send is None:
            self._restart(poll, "first poll of this run")
        elif poll.recv - self._last_send >= max_gap:
            self._restart(poll, f"polls {poll.recv - self._last_send:.3f} s apart (limit "
                          f"{max_gap:.3f} s): a refresh could hide between them")
        elif poll.send + poll.ttl_s >= self.bound:
            self._restart(poll, f"lease refreshed: {poll.ttl_s} s left at {poll.send:.3f}, "
                          f"beyond the bound {self.bound:.3f}")
        else:
            if _informative(poll):
                self.bound = min(self.bound, poll.recv + poll.ttl_s + 1)
            self._last_send = poll.send
            if poll.send >= self.bound - self.margin_s + self.guard_s:
                self.state = ExpiryProof.PROVEN
                self.reason = (f"lease expires before {self.bound:.3f}; no refresh seen since; "
                               f"the active's deadline (margin {self.margin_s} s) has passed")
        return self.state

    def _restart(self, poll: Poll, why: str) -> None:
        """Start a run at ``poll`` if its answer can bound the expiry, else wait for one."""
        if poll.granted_ttl_s < 2 or not _informative(poll):
            self.bound = None
            self._last_send = None
            self.state = ExpiryProof.UNKNOWN
            self.reason = (f"no run ({why}); {poll.ttl_s} s left of {poll.granted_ttl_s}: "
                           "waiting for an answer of at most granted - 2 s")
            return
        self.bound = poll.recv + poll.ttl_s + 1
        self._last_send = poll.send
        self.state = ExpiryProof.BOUNDED
        self.reason = f"run restarted ({why}); expiry before {self.bound:.3f}"

    def reset(self) -> None:
        """Forget the run (the active changed, or the stream came back)."""
        self.state = ExpiryProof.UNKNOWN
        self.reason = "reset"
        self.bound = None
        self._last_send = None
