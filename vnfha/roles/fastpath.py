"""A standby's takeover on the standby lease, for the role runtime (:mod:`vnfha.roles.runtime`).

The promises and the argument are in :mod:`vnfha.replication.promise`; this module keeps what
the runtime needs between the monitor's report and the transaction. Guarantees:

- :meth:`StandbyLeaseTakeover.lapsed` accepts a lapse only for the current active's epoch and
  only while etcd's in-sync record of that epoch lists this member with its current lease
  (:meth:`~StandbyLeaseTakeover.listed`); it is kept until the takeover fails or the epoch
  changes.
- :meth:`~StandbyLeaseTakeover.hold` checks the lapse again and stops this member's promises
  in the same step (no await between them), and gives the in-sync record's revision the
  transaction must compare; :meth:`~StandbyLeaseTakeover.release` lets the promises resume
  only once the transaction certainly failed.
"""

from __future__ import annotations

import logging

from vnfha.clock import Clock
from vnfha.replication.promise import PromiseTimers, may_take_over
from vnfha.replication.standby import Replica
from vnfha.roles.keys import GroupState

__all__ = ["StandbyLeaseTakeover"]

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
