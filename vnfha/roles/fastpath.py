"""The standby lease's etcd side, for the role runtime (:mod:`vnfha.roles.runtime`): the
active's publishes of its in-sync set, and a standby's takeover.

The promises and the argument are in :mod:`vnfha.replication.promise`; this module keeps what
the runtime needs between the monitor's report and the transaction. Guarantees:

- :class:`SyncPublisher`: every publish compares, besides the active key's epoch and lease, the
  in-sync record's revision as this active last knew it (the campaign's own at first). A
  publish whose answer was lost may still be applied later by etcd; compared so, it can never
  land after a later publish was confirmed (that one moved the revision), so etcd's record is
  always one of the sets the active still counts. A publish refused for a moved record reads
  the record's revision back and raises StoreError (the caller retries).

- :meth:`StandbyLeaseTakeover.lapsed` accepts a lapse only for the current active's epoch and
  only while etcd's in-sync record of that epoch lists this member with its current lease
  (:meth:`~StandbyLeaseTakeover.listed`); it is kept until the takeover fails or the epoch
  changes.
- :meth:`~StandbyLeaseTakeover.hold` checks the lapse again and stops this member's promises
  in the same step (no await between them), and gives the in-sync record's revision the
  transaction must compare; :meth:`~StandbyLeaseTakeover.release` lets the promises resume
  only once the transaction certainly failed. A transaction whose answer was lost, and which
  did not win as read back, may still apply later: the promises stay stopped until the watch
  shows the active key or the in-sync record past what it compares
  (:meth:`~StandbyLeaseTakeover.settle`), when it can no longer apply.
"""

from __future__ import annotations

import logging

from vnfha.clock import Clock
from vnfha.errors import NotActive, StoreError
from vnfha.replication.promise import PromiseTimers, may_take_over
from vnfha.replication.standby import Replica
from vnfha.roles.handover import sync_txn
from vnfha.roles.keys import GroupKeys, GroupState
from vnfha.store.base import Store

__all__ = ["StandbyLeaseTakeover", "SyncPublisher"]

log = logging.getLogger("vnfha.member")


class StandbyLeaseTakeover:
    """Member ``me``'s takeovers on the standby lease."""

    def __init__(self, me: str, timers: PromiseTimers, replica: Replica, clock: Clock) -> None:
        self.me = me
        self.timers = timers
        self._replica = replica
        self._clock = clock
        self.lapsed_epoch = 0
        """The epoch whose active this member suspects, its promises to it having run out."""
        self.pending: tuple[int, int] | None = None
        """(epoch, in-sync revision) of a takeover whose answer was lost and may still apply."""

    def listed(self, state: GroupState, lease: int, epoch: int) -> bool:
        """True when etcd's in-sync record, written in ``epoch``, lists this member with
        ``lease``: ``epoch``'s active is then bounded by this member's promises."""
        sync = state.sync
        return (self.timers.on and sync is not None and state.sync_revision >= epoch
                and (self.me, lease) in sync.members)

    def gone_for(self, state: GroupState, lease: int, gone_epoch: int) -> int:
        """The epoch whose active this member may replace: ``gone_epoch`` (proven gone), or the
        current active's, suspected with this member's promises run out while it is listed."""
        active = state.active
        if active is not None:
            epoch = active[1].epoch
            if self.lapsed_epoch == epoch != gone_epoch and self.listed(state, lease, epoch):
                return epoch
        return gone_epoch

    def lapsed(self, state: GroupState, lease: int, epoch: int, gone_epoch: int) -> str | None:
        """The monitor suspects ``epoch``'s active and this member's promises ran out: the
        evidence, when this makes it a candidate for a takeover (once per lapse), else None."""
        active = state.active
        promises = self._replica.promises
        if (active is None or active[1].epoch != epoch or epoch in (self.lapsed_epoch, gone_epoch)
                or promises is None or promises.epoch != epoch):
            return None
        if not may_take_over(suspected=True, lapsed=promises.lapsed(self._clock.monotonic()),
                             listed=self.listed(state, lease, epoch),
                             written_in_epoch=state.sync_revision >= epoch):
            return None
        self.lapsed_epoch = epoch
        return (f"silent, and the standby lease of {self.me} to it lapsed (in sync at "
                f"revision {state.sync_revision})")

    def hold(self, state: GroupState, lease: int, replace_epoch: int, gone_epoch: int) -> int:
        """Before the transaction of a takeover of ``replace_epoch``: 0 when it does not rest on
        the standby lease; else check the lapse once more and stop promising, and return the
        in-sync record's revision to compare; -1 when it may not happen after all."""
        if not replace_epoch or replace_epoch == gone_epoch or replace_epoch != self.lapsed_epoch:
            return 0
        promises = self._replica.promises
        listed = self.listed(state, lease, replace_epoch)
        if (not listed or promises is None or promises.epoch != replace_epoch
                or not promises.hold(self._clock.monotonic())):
            log.info("%s: no takeover on the standby lease after all: %s", self.me,
                     "it promised again since" if listed else "no longer listed as in sync")
            self.lapsed_epoch = 0
            return -1
        return state.sync_revision

    def release(self, sync_revision: int) -> None:
        """The takeover that :meth:`hold` returned ``sync_revision`` for certainly failed:
        promise again (another try needs a new lapse)."""
        if sync_revision > 0 and self._replica.promises is not None:
            self._replica.promises.release()
            self.lapsed_epoch = 0

    def unknown(self, epoch: int, sync_revision: int) -> None:
        """The takeover of ``epoch`` comparing ``sync_revision`` lost its answer and did not win
        as read back; it may still apply: keep the hold until :meth:`settle` sees it cannot."""
        if sync_revision > 0:
            self.pending = (epoch, sync_revision)
            self.lapsed_epoch = 0

    def settle(self, state: GroupState) -> None:
        """After each watch batch: a pending takeover whose compares no longer hold (the active
        key or the in-sync record moved on) can never apply, so promises resume."""
        if self.pending is None:
            return
        epoch, revision = self.pending
        active = state.active_key
        if active is None or active[1].epoch != epoch or state.sync_revision != revision:
            self.pending = None
            promises = self._replica.promises
            if promises is not None and promises.epoch == epoch:
                promises.release()


class SyncPublisher:
    """The active ``me``'s publishes of its in-sync set (see the module docstring)."""

    def __init__(self, me: str, store: Store, keys: GroupKeys) -> None:
        self.me = me
        self._store = store
        self._keys = keys
        self._known = (0, 0)
        """(epoch, the in-sync record's revision) as this active last knew it."""

    async def publish(self, epoch: int, lease: int, entries: tuple[tuple[str, int], ...]
                      ) -> None:
        """Publish ``entries`` as ``epoch``'s in-sync set. NotActive when the key is no longer
        this epoch's; StoreError when etcd did not answer, or the record had moved (retry)."""
        known = self._known[1] if self._known[0] == epoch else epoch  # the campaign wrote it
        res = await self._store.txn(*sync_txn(self._keys, self.me, epoch, lease, entries,
                                               sync_revision=known))
        if res.succeeded:
            self._known = (epoch, res.revision)
            return
        active = await self._store.get(self._keys.active)
        if active is None or active.mod_revision != epoch or active.lease != lease:
            raise NotActive(self.me, "deposed", epoch)
        record = await self._store.get(self._keys.sync)
        self._known = (epoch, record.mod_revision if record is not None else 0)
        raise StoreError(f"the in-sync record moved (revision {known} -> "
                                f"{self._known[1]}: a publish whose answer was lost landed)")
