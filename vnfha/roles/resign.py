"""The active's graceful exit: quiesce, hand the checkpoint over, release the key with a hint.

Used by a switchover (an API call or an operator's request in etcd), the ladder's fail-over
rung, a planned maintenance and a clean stop. The choice of the successor and the transactions
are pure (:mod:`vnfha.roles.handover`); this module runs them in order:

1. the member goes QUIESCED at once, keeping its primary: ``on_quiesce`` may still write
   checkpoints (``Member.check_active`` lets them through while :attr:`Resigner.quiescing`);
2. ``on_quiesce`` runs, in callback order; when it returns, no more write is accepted, so the
   epoch's log is final;
3. the successor is waited for, bounded by ``checkpoint_ack_timeout_s``, until it has applied
   every change of this epoch: it takes over with ``on_quiesce``'s last writes, and with every
   write another standby may have acknowledged (none can come after the log closed);
4. one transaction deletes the active key only if it is still this epoch's and this lease's,
   and writes the hint that names the successor (and answers the operator's request);
5. the member decides again only from a snapshot that contains the release, never from the
   stale one that would re-promote it at the epoch it just gave up.

Guarantees: whatever happens (a failed transaction, a store error, a cancel), the primary is
closed when :meth:`Resigner.resign` returns or raises, so no write of the old epoch is
accepted afterwards; the key is never deleted unless it is still this member's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from vnfha.callbacks import CallbackRunner
from vnfha.clock import Clock
from vnfha.errors import SwitchoverError
from vnfha.model import ReasonKind
from vnfha.replication.active import Primary
from vnfha.roles.handover import release_txn, write_probe_txn
from vnfha.roles.keys import GroupKeys, SwitchoverRequest
from vnfha.roles.watch import GroupWatch
from vnfha.store.base import Store

__all__ = ["ResignTimers", "Resigner"]

log = logging.getLogger("vnfha.member")


@dataclass(frozen=True, slots=True)
class ResignTimers:
    """The bounds of a graceful exit: how often its waits poll
    (:func:`vnfha.timing.poll_interval_s`), how long the successor may take to apply the last
    change (``checkpoint_ack_timeout_s``), how long the watch may take to show the release
    (``etcd_request_timeout_s``) and, by default, the successor to take the role
    (``lease_ttl_s``)."""

    poll_s: float
    catch_up_s: float
    release_seen_s: float
    successor_s: float


class Resigner:
    """Runs the graceful exit of the active ``member``. ``quiesce(epoch, reason)`` puts the
    member in QUIESCED keeping its primary; ``settled()`` runs after every attempt (the member
    closes the primary and decides again)."""

    def __init__(self, *, member: str, group: str, timers: ResignTimers, clock: Clock,
                 store: Store, keys: GroupKeys, watch: GroupWatch,
                 primary: Callable[[], Primary | None], callbacks: CallbackRunner,
                 quiesce: Callable[[int, str, ReasonKind], None],
                 settled: Callable[[], None]) -> None:
        self._member = member
        self._group = group
        self._timers = timers
        self._clock = clock
        self._store = store
        self._keys = keys
        self._watch = watch
        self._primary = primary
        self._callbacks = callbacks
        self._quiesce = quiesce
        self._settled = settled
        self.resigning = False
        """True from the start of :meth:`resign` until it has released the key (or failed)."""
        self.quiescing = False
        """True while ``on_quiesce`` runs: the only time a resigning active's checkpoint writes
        are accepted. After it, the log is closed, so the successor is waited for up to the
        last write there will be (a write accepted while waiting could be acknowledged by
        another standby and then lost when the successor, without it, takes over)."""

    async def resign(self, epoch: int, lease: int, target: str | None, reason: str,
                     request: SwitchoverRequest | None = None, *,
                     kind: ReasonKind = ReasonKind.SWITCHOVER) -> bool:
        """Quiesce (a role change of ``kind``), then release the active key of ``epoch`` if it
        is still ours; True if we released it."""
        self.resigning = self.quiescing = True
        try:
            self._quiesce(epoch, reason, kind)
            await self._callbacks.enqueue("on_quiesce")
            self.quiescing = False  # no write from here on: the log the successor needs is final
            await self._hand_over_checkpoint(target)
            res = await self._store.txn(*release_txn(self._keys, self._member, epoch, lease,
                                                     target=target, reason=reason,
                                                     request=request, kind=kind.value))
            if not res.succeeded:
                log.warning("%s: active key was no longer ours (epoch %d) when resigning",
                            self._member, epoch)
            else:
                await self._watch.wait_released(
                    res.revision, poll_s=self._timers.poll_s,
                    timeout_s=self._timers.release_seen_s)
            return res.succeeded
        finally:
            self.resigning = self.quiescing = False
            self._settled()

    async def check_writable(self) -> None:
        """Raise what etcd answers a write with now (StoreNoSpace under its NOSPACE alarm,
        StoreUnavailable when it cannot be reached), before anything changes: a release refused
        after ``on_quiesce`` would leave the member QUIESCED, its epoch given up (never active
        twice in one epoch), and the group without an active until etcd takes writes again."""
        await self._store.txn(*write_probe_txn(self._keys))

    async def wait_new_active(self, target: str, old_epoch: int, timeout_s: float | None,
                              changed: asyncio.Event) -> int:
        """The epoch of the next active after ``old_epoch``, once the watch shows it (``changed``
        is set on every role change); SwitchoverError after ``timeout_s`` (default: the lease
        TTL)."""
        limit = timeout_s if timeout_s is not None else self._timers.successor_s

        async def wait() -> int:
            while True:
                active = self._watch.state.active
                if active is not None and active[1].epoch > old_epoch:
                    return active[1].epoch
                changed.clear()
                await changed.wait()

        try:
            return await self._clock.wait_for(wait(), limit)
        except TimeoutError:
            raise SwitchoverError(self._group, target,
                                  f"no member took the active role within {limit} s") from None

    async def _hand_over_checkpoint(self, target: str | None) -> None:
        """Wait (bounded) until ``target`` has applied every change of this epoch, also when
        its stream is not connected yet (a standby that just joined: handing over without
        waiting for it lost the writes it had not received)."""
        primary = self._primary()
        if primary is None or target is None:
            return
        last = primary.log.last_sequence

        async def caught_up() -> None:
            while primary.tracker.acked.get(target, 0) < last and not primary.closed:
                await self._clock.sleep(self._timers.poll_s)

        try:
            await self._clock.wait_for(caught_up(), self._timers.catch_up_s)
        except TimeoutError:
            log.warning("%s: %s had not applied sequence %d of epoch %d when handing over",
                        self._member, target, last, primary.epoch)
