"""PURE: the standby-granted lease: promises a standby makes, and what the active may do with them.

No I/O, no clock reads: every method takes ``now`` (monotonic seconds) and the runtime feeds
it (:mod:`vnfha.replication.standby` on the standby, :mod:`vnfha.replication.active` on the
active, :mod:`vnfha.roles.runtime` for the takeover). ``docs/failover.md`` has the argument in
long form; here it is in short.

**The promise.** With each acknowledgement it sends, an in-sync standby promises the active of
one epoch: "I will not take over before ``lease_s`` after this ack". The ack echoes the send
stamp of the latest message the standby had received from the active (a Heartbeat or a Deltas).
The standby keeps the latest end of its promises, :attr:`StandbyPromises.until`.

**The active's bound.** For each standby the active keeps ``stamp + lease_s - margin_s`` of its
latest promise (:class:`PromiseLedger`): the stamp is the active's own clock at the send, the
standby received that message later and promised later still, so with clocks that run at the
same rate (to within ``margin_s`` over one lease) the active's bound comes before the
standby's promise ends. The active may act only before the earliest bound of the standbys it
*counts*: every standby in the in-sync set it last published in etcd, and every one a publish
under way may add. It drops a standby from the in-sync set (a transaction fenced by its epoch)
once half the lease passed without a new promise, which leaves the other half, less the margin,
for that transaction to land; only once etcd confirmed the drop does it stop counting it.

**The takeover.** A standby may replace the active key without a bridge and before the etcd
lease expires only when (:func:`may_take_over`): it suspects the active, its own promise has
run out, and etcd's in-sync set, as written in the current epoch, lists it with its current
lease. It then takes the key in one transaction that also compares the in-sync record's
revision (:func:`vnfha.roles.handover.campaign_txn`), and from the moment it decides until that
transaction's outcome is known it promises nothing (:meth:`StandbyPromises.hold`).

Why exactly one of them acts, in every order of events:

- The standby's transaction succeeds only if the in-sync record is unchanged since it read
  itself in it, so the active still counted it when the transaction applied: the active's
  bound from this standby's promises lies before their end, which lies before the decision,
  which lies before the transaction. The active had stopped acting.
- If the active dropped the standby first, the record changed and the takeover fails; if the
  takeover applied first, the drop (compared on the active key's epoch) fails. etcd orders the
  two transactions, and exactly one wins.
- A promise granted after the decision could let a resumed active act past the takeover: none
  is granted while :meth:`StandbyPromises.hold` is in force, and a promise granted before the
  decision is already counted in :attr:`StandbyPromises.until`, so the decision waits for it.
- A crashed or partitioned standby stops nothing: the active drops it while it still holds its
  promise, and then does not count it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["OFF", "PromiseLedger", "PromiseTimers", "StandbyPromises", "may_take_over"]


@dataclass(frozen=True, slots=True)
class PromiseTimers:
    """``lease_s``: what one acknowledgement promises (0: the standby lease is off);
    ``margin_s``: how much sooner than a promise's end the active stops."""

    lease_s: float
    margin_s: float

    @property
    def on(self) -> bool:
        """Whether the standby lease is in force (``lease_s`` above 0)."""
        return self.lease_s > 0

    @property
    def drop_lead_s(self) -> float:
        """How long before a standby's bound the active drops it from the in-sync set: half the
        lease, less the margin (the drop then starts half a lease after the promise's stamp)."""
        return self.lease_s / 2 - self.margin_s


OFF = PromiseTimers(0.0, 0.0)
"""The standby lease turned off."""


class StandbyPromises:
    """One standby's promises to the active of ``epoch``: kept across its streams in that
    epoch, since a promise binds the standby, not the stream."""

    def __init__(self, epoch: int, lease_s: float) -> None:
        self.epoch = epoch
        self.lease_s = lease_s
        self.until = -math.inf
        """The end of the latest promise (-inf: none granted yet)."""
        self.held = False
        """A takeover resting on a lapsed promise is under way: nothing is promised."""

    def grant(self, now: float) -> float:
        """The promise an acknowledgement sent ``now`` carries, in seconds (0: none, while a
        takeover is under way or when the standby lease is off); counted in :attr:`until`."""
        if self.held or self.lease_s <= 0:
            return 0.0
        self.until = max(self.until, now + self.lease_s)
        return self.lease_s

    def lapsed(self, now: float) -> bool:
        """True once every promise granted has run out (and at least one was)."""
        return self.until != -math.inf and now >= self.until

    def hold(self, now: float) -> bool:
        """Start a takeover on the lapse: True, and nothing is promised until :meth:`release`,
        when every promise has run out at ``now``; False (and nothing changes) otherwise."""
        if not self.lapsed(now):
            return False
        self.held = True
        return True

    def release(self) -> None:
        """The takeover certainly failed: promises may be granted again (each new one moves
        :attr:`until`, so a later takeover waits for it)."""
        self.held = False


class PromiseLedger:
    """The active's side: each standby's bound, and the standbys it counts."""

    def __init__(self, timers: PromiseTimers) -> None:
        self.timers = timers
        self.bounds: dict[str, float] = {}
        """Per standby: the active must not act at or after this (its latest promise's stamp
        plus the promise, less the margin)."""
        self.counted: frozenset[str] = frozenset()
        """The standbys whose promises bound the active: the published in-sync set and any a
        publish under way may add."""
        self._deadline = math.inf
        """:meth:`acting_deadline`, kept current by every change of a bound or of the set
        counted (it is read on every write of the active)."""

    def promised(self, member: str, stamp: float, promise_s: float) -> None:
        """``member`` acknowledged the message stamped ``stamp`` (this active's clock at its
        send) with a promise of ``promise_s`` (at most :attr:`PromiseTimers.lease_s` counts)."""
        if promise_s <= 0:
            return
        bound = stamp + min(promise_s, self.timers.lease_s) - self.timers.margin_s
        if bound > self.bounds.get(member, -math.inf):
            self.bounds[member] = bound
            if member in self.counted:
                self._refresh()

    def bound(self, member: str) -> float:
        """``member``'s bound (-inf: no promise from it yet)."""
        return self.bounds.get(member, -math.inf)

    def may_count(self, member: str, now: float) -> bool:
        """True when ``member`` may be (re-)added to the in-sync set now: the standby lease is
        off, or its promise holds for longer than the drop lead."""
        return not self.timers.on or self.bound(member) - self.timers.drop_lead_s > now

    def publishing(self, wanted: frozenset[str]) -> None:
        """A publish of ``wanted`` is about to be sent: count its members from now (it may apply
        even if its answer never comes)."""
        self.counted = self.counted | wanted
        self._refresh()

    def published(self, members: frozenset[str]) -> None:
        """etcd confirmed ``members`` as the in-sync set: count exactly those."""
        self.counted = members
        self._refresh()

    def acting_deadline(self) -> float:
        """The active may act only before this (inf when it counts no standby, or the lease is
        off)."""
        return self._deadline

    def _refresh(self) -> None:
        self._deadline = math.inf if not self.timers.on or not self.counted else min(
            self.bound(m) for m in self.counted)

    def due_drops(self, wanted: frozenset[str], now: float) -> frozenset[str]:
        """The standbys of ``wanted`` to drop from the in-sync set now: no fresh promise."""
        if not self.timers.on:
            return frozenset()
        lead = self.timers.drop_lead_s
        return frozenset(m for m in wanted if now >= self.bound(m) - lead)

    def next_drop(self, wanted: frozenset[str]) -> float:
        """When the first of ``wanted`` becomes due to be dropped (inf: never, or none)."""
        if not self.timers.on or not wanted:
            return math.inf
        return min(self.bound(m) for m in wanted) - self.timers.drop_lead_s


def may_take_over(*, suspected: bool, lapsed: bool, listed: bool, written_in_epoch: bool) -> bool:
    """Whether a standby may take over on the standby lease: it suspects the active, its own
    promise ran out, and etcd's in-sync record lists it (with its current lease) and was written
    in the current epoch (a record from an earlier epoch binds no active of this one)."""
    return suspected and lapsed and listed and written_in_epoch
