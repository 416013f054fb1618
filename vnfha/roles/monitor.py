"""A standby's watch over the active it follows: detect silence, then prove it can no longer act.

This is the runtime half of DESIGN.md section 4's detection column; the decisions are pure
(:mod:`vnfha.roles.suspicion`, :mod:`vnfha.roles.expiry`) and this module only samples, polls
and reports. The other detection path, a crashed process whose endpoint refuses connections,
lives in :class:`vnfha.replication.standby.Replica` (it needs no waiting at all).

Timeline for a silent active (defaults: heartbeat 50 ms, suspicion 300 ms, TTL 2 s, margin
200 ms), from the moment it stops:

1. every 50 ms the monitor checks whether the stream delivered anything; after 6 missed slots
   (300 ms) it SUSPECTS the active;
2. without an NFVI fencer (or once fencing failed) and with the standby lease on
   (:mod:`vnfha.replication.promise`), once this standby's own promise has run out it tells the
   member (``on_lapsed``), which takes over at once if etcd lists it as in sync (about 300 ms
   with the defaults; the lease polls below go on meanwhile, in case it may not). With a
   fencer the fence comes first: the bridge then stops the old instance, which the standby
   lease alone cannot (a frozen process acts again for a moment when it resumes);
3. with an NFVI fencer configured, it asks the bridge to fence the active; a confirmed fence is
   proof, reported at once (the sub-600 ms path);
4. otherwise (or if fencing fails) it polls the active's lease every 50 ms until the
   :class:`~vnfha.roles.expiry.ExpiryTracker` proves the active's local deadline has passed, then
   reports it (about ``TTL - margin`` after the active's last keepalive, before etcd itself
   revokes the lease and deletes the key);
5. if the stream comes back (3 heard slots in a row) it trusts the active again and stops.

Guarantees:

- Suspicion alone never leads to a report: a report carries a proof (a fence confirmed by the
  bridge, or the expiry proof), so packet loss on the replication link that stalls the stream
  costs lease polls, never a failover without a bridge.
- At most one report per monitored epoch; the member decides what to do with it (only the
  best-ranked eligible standby takes over, in one transaction that compares the epoch).
- Store errors while polling are logged and skipped; they can only delay a proof (the polls
  then lie too far apart and the tracker restarts), never produce one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vnfha.clock import Clock
from vnfha.errors import LeaseNotFound, StoreError, VnfhaError
from vnfha.replication.standby import Replica
from vnfha.roles.expiry import ExpiryProof, ExpiryTracker, Poll
from vnfha.roles.suspicion import SilenceDetector, Suspicion, SuspicionPolicy
from vnfha.store.base import Store

__all__ = ["ActiveMonitor", "Fencer", "MonitorTimers"]

log = logging.getLogger("vnfha.monitor")

Fencer = Callable[[str, int, str], Awaitable[str]]
"""``await fence(member, epoch, reason)``: fence the active through the NFVI bridge; returns a
description of what the bridge confirmed, raises :class:`vnfha.VnfhaError` if it did not."""


@dataclass(frozen=True, slots=True)
class MonitorTimers:
    """The timers the monitor runs on (from :class:`vnfha.Config`)."""

    heartbeat_interval_s: float
    suspicion_s: float
    lease_margin_s: float
    request_timeout_s: float


class ActiveMonitor:
    """Watches one active (``member``, ``epoch``, ``lease``) for one standby; :meth:`run` until
    cancelled or until it has reported."""

    def __init__(self, *, me: str, member: str, epoch: int, lease: int, replica: Replica,
                 store: Store, clock: Clock, timers: MonitorTimers,
                 on_gone: Callable[[int, str], None], fencer: Fencer | None = None,
                 on_lapsed: Callable[[int], None] | None = None) -> None:
        self.me, self.member, self.epoch, self.lease = me, member, epoch, lease
        self._replica = replica
        self._store = store
        self._clock = clock
        self._timers = timers
        self._on_gone = on_gone
        self._fencer = fencer
        self._on_lapsed = on_lapsed
        self.detector = SilenceDetector(SuspicionPolicy.from_timers(
            timers.heartbeat_interval_s, timers.suspicion_s))
        self.tracker = ExpiryTracker(timers.lease_margin_s, guard_s=timers.heartbeat_interval_s)
        self.suspected_at: float | None = None
        self.fence_failed = False

    async def run(self) -> None:
        """Sample every heartbeat interval; report at most once."""
        slot = self._timers.heartbeat_interval_s
        seen = self._replica.messages
        while True:
            await self._clock.sleep(slot)
            heard, seen = self._replica.messages != seen, self._replica.messages
            before = self.detector.state
            state = self.detector.slot(heard)
            if state is not before:
                log.warning("%s: the active %s (epoch %d) is %s: %s", self.me, self.member,
                            self.epoch, state.value, self.detector.reason)
            if state is Suspicion.TRUSTED:
                self.tracker.reset()
                self.suspected_at = None
                continue
            if self.suspected_at is None:
                self.suspected_at = self._clock.monotonic()
            promises = self._replica.promises
            fencing = self._fencer is not None and not self.fence_failed
            if self._on_lapsed is not None and not fencing and promises is not None and \
                    promises.epoch == self.epoch and promises.lapsed(self._clock.monotonic()):
                self._on_lapsed(self.epoch)
            evidence = await self._prove()
            if evidence is not None:
                self._on_gone(self.epoch, evidence)
                return

    async def _prove(self) -> str | None:
        """One step of proving the suspected active can no longer act; the evidence, if any."""
        if self._fencer is not None and not self.fence_failed:
            try:
                what = await self._fencer(self.member, self.epoch, self.detector.reason)
            except VnfhaError as e:
                self.fence_failed = True  # fall back to the lease: slower, but still safe
                log.warning("%s: fencing %s (epoch %d) failed: %s; waiting for its lease",
                            self.me, self.member, self.epoch, e)
            else:
                return f"fenced by the NFVI bridge: {what}"
        send = self._clock.monotonic()
        try:
            info = await self._store.time_to_live(self.lease,
                                                  timeout_s=self._timers.request_timeout_s)
        except LeaseNotFound:
            return None  # etcd revoked it: the key's deletion reaches the member by its watch
        except StoreError as e:
            log.info("%s: polling the lease of %s failed: %s", self.me, self.member, e)
            return None
        state = self.tracker.observe(Poll(send, self._clock.monotonic(), info.ttl_s,
                                          info.granted_ttl_s))
        if state is ExpiryProof.PROVEN:
            return self.tracker.reason
        return None
