"""The I/O of poisoned-state protection around a takeover: the verdict of
:mod:`vnfha.roles.poison` applied to a member's campaign.

- :meth:`PoisonGuard.before_takeover` runs in the campaign, before its transaction: it judges
  from the group snapshot (the failed active's :class:`~vnfha.roles.poison.Probation`, carried
  in its active key) and the campaign's cause. TAKE_OVER and ROLLBACK return the probation the
  new key carries; HOLD writes the hold instead and returns None (no campaign).
- **The hold** is one transaction, only while the active key is still the failed one's (or
  absent) and the group is not paused yet (so it is raised once, by one member): the group's
  pause (``admin/paused``, what ``vnfha lock GROUP`` writes, so
  ``vnfha status`` shows it and ``vnfha unlock GROUP`` releases it) and a record of the held
  epoch (``admin/poison-hold``, kept after the release). The member that wrote it raises the
  alarm: an :class:`~vnfha.events.AlarmRaised` to the listeners, ``alarm_command`` with the
  alarm on stdin, a RECORDED ticket at the bridge (Escalate NONE), and a history record with
  no new active. After the operator's release the same failed epoch is taken over as always.
- **The rollback** (:meth:`PoisonGuard.roll_back`) runs when the new active's Primary opens,
  before ``on_active`` is queued: the undo plan's compensating changes are written as the new
  epoch's first checkpoint changes, so every standby applies them too. The component learns
  the keys from its :class:`~vnfha.component.Assignment` (``rolled_back``).

Nothing here ever raises into the campaign but a store error on the hold's transaction (the
role loop retries); the alarm's parts log their failures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from vnfha.clock import Clock
from vnfha.config import Config
from vnfha.events import AlarmRaised, MemberEvent
from vnfha.health.alarm import announce_alarm, record_alarm
from vnfha.model import Redundancy
from vnfha.nfvi.client import NfviPort
from vnfha.replication.state import Change, CheckpointData
from vnfha.replication.undo import UndoLog
from vnfha.roles.history import FailoverRecord, Timeline, write_record
from vnfha.roles.keys import AdminLock, GroupKeys, GroupState
from vnfha.roles.poison import (
    Judgement,
    PoisonPolicy,
    PoisonSettings,
    Probation,
    Verdict,
    judge,
)
from vnfha.store.base import Compare, Store, TxnPut

__all__ = ["Held", "PoisonGuard", "guard_from_config"]

log = logging.getLogger("vnfha.member")


class PoisonGuard:
    """Poisoned-state protection for member ``me`` (see the module docstring). ``undo`` is the
    undo log attached to the member's checkpoint data (None: policy not ``rollback``);
    ``bridge`` the NFVI port told of a hold (None: no bridge); ``spawn`` owns a task."""

    def __init__(self, *, me: str, group: str, settings: PoisonSettings, store: Store,
                 keys: GroupKeys, clock: Clock, undo: UndoLog | None,
                 emit: Callable[[MemberEvent], None], bridge: NfviPort | None,
                 alarm_command: Sequence[str] | None, alarm_command_timeout_s: float,
                 wall: Callable[[], float] = time.time) -> None:
        self.me, self.group, self.settings = me, group, settings
        self._store, self._keys, self._clock, self.undo = store, keys, clock, undo
        self._emit, self._bridge, self._wall = emit, bridge, wall
        self._command, self._command_timeout_s = alarm_command, alarm_command_timeout_s
        self._pending: tuple[str, Judgement] | None = None
        self.holds = 0
        """Holds this member wrote."""

    async def before_takeover(self, state: GroupState, replace_epoch: int,
                              timeline: Timeline | None, secret: str,
                              spawn: Callable[[asyncio.Task[Any]], None], *,
                              healthy: bool = True) -> Probation | None:
        """The probation the campaign's key carries, or raises :class:`Held` when the group is
        held instead (written here). ``secret`` is the campaign's new key secret: a rollback
        is applied only by the Primary of that grant. A member taking over while its own
        checks fail (``healthy`` false: availability first) starts no probation: its own
        failure would say nothing about the state it inherits."""
        self._pending = None
        cause = timeline.cause.value if timeline is not None else ""
        active = state.active
        if replace_epoch and active is not None and active[1].epoch == replace_epoch:
            previous = active[0].probation
        else:
            previous = state.last_probation
        now = self._wall()
        j = judge(self.settings, previous=previous, cause=cause, now=now,
                  undo_since=self.undo.since if self.undo is not None else None)
        if j.verdict is Verdict.HOLD:
            assert timeline is not None  # a failure has a timeline
            if not await self._released(timeline.from_epoch):
                await self._hold(j, timeline, replace_epoch, spawn)
                raise Held(j.reason)
            log.warning("%s: the hold of epoch %d was released by an operator: taking over "
                        "(%s)", self.me, timeline.from_epoch, j.reason)
            return Probation(since=now, first_failure=now)
        if j.verdict is Verdict.TAKE_OVER and not healthy:
            return None
        if j.verdict is Verdict.ROLLBACK:
            log.error("%s: poisoned state suspected: %s", self.me, j.reason)
            self._pending = (secret, j)
            if timeline is not None and "poisoned state" not in timeline.reason:
                timeline.reason += f"; poisoned state suspected, rolled back to {j.cutoff:.3f}"
        return j.probation

    def roll_back(self, secret: str, write: Callable[[Change], object]) -> tuple[str, ...]:
        """Write the pending rollback's changes through ``write`` (the new Primary's) if it
        belongs to the grant of ``secret``; the ``section/key`` names restored."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != secret or not secret:
            return ()
        cutoff = pending[1].cutoff
        plan = self.undo.plan(cutoff) if self.undo is not None and cutoff is not None else None
        if plan is None:
            log.error("%s: the rollback to %s could not be planned (the undo information no "
                      "longer reaches back to it): serving the state as it is", self.me, cutoff)
            return ()
        for change in plan:
            write(change)
        names = tuple(f"{c.section}/{c.key}" for c in plan)
        log.error("%s: rolled back %d keys to their values at %.3f: %s", self.me, len(names),
                  cutoff, ", ".join(names[:20]) + (" ..." if len(names) > 20 else ""))
        return names

    async def _released(self, failed_epoch: int) -> bool:
        """True if this failed epoch was held once, and the operator released it since (the
        hold's record read first: both are written in one transaction)."""
        kv = await self._store.get(self._keys.poison_hold)
        if kv is None or kv.value.decode(errors="replace") != str(failed_epoch):
            return False
        return await self._store.get(self._keys.paused) is None

    async def _hold(self, j: Judgement, timeline: Timeline, replace_epoch: int,
                    spawn: Callable[[asyncio.Task[Any]], None]) -> None:
        keys, epoch = self._keys, timeline.from_epoch
        reason = (f"held by {self.me}: {j.reason}; release with `vnfha unlock {self.group}` "
                  "once the state is repaired")
        compare = (Compare.mod_revision(keys.active, "==", replace_epoch) if replace_epoch
                   else Compare.create_revision(keys.active, "==", 0))
        # once: another member that judged the same may have held it already
        res = await self._store.txn([compare, Compare.create_revision(keys.paused, "==", 0)], [
            TxnPut(keys.paused, AdminLock(by=f"vnfha ({self.me})", at=self._wall(),
                                          reason=reason).encode()),
            TxnPut(keys.poison_hold, str(epoch).encode())])
        if not res.succeeded:
            return  # the key changed meanwhile: another member acted
        self.holds += 1
        log.error("member=%s group=%s ALARM: %s", self.me, self.group, reason)
        alarm = AlarmRaised(member=self.me, group=self.group, epoch=epoch, reason=reason,
                            fault=f"{timeline.from_member} failed in probation ({timeline.cause})",
                            at=self._wall())
        announce_alarm(alarm, tell=self._emit, command=self._command,
                       timeout_s=self._command_timeout_s, clock=self._clock,
                       start=lambda coro, name: spawn(asyncio.create_task(coro, name=name)))
        spawn(asyncio.create_task(self._tell(alarm, res.revision, timeline),
                                  name=f"{self.me}-hold-{epoch}"))

    async def _tell(self, alarm: AlarmRaised, revision: int, timeline: Timeline) -> None:
        """The hold's history record, and its ticket at the bridge."""
        await write_record(self._store, self._keys, FailoverRecord(
            epoch=revision, to_member="", from_member=timeline.from_member,
            from_epoch=timeline.from_epoch, cause=timeline.cause.value, at=alarm.at,
            reason=f"HELD, no takeover: {alarm.reason}"[:200]))
        if self._bridge is not None and self._bridge.configured:
            await record_alarm(self._bridge, f"poison-hold/{self.group}/{timeline.from_epoch}",
                               alarm, timeline.from_epoch)


class Held(Exception):
    """The campaign did not run: the group is held (the reason is the message)."""


def guard_from_config(config: Config, data: CheckpointData, *, store: Store, keys: GroupKeys,
                      clock: Clock, emit: Callable[[MemberEvent], None],
                      bridge: NfviPort | None) -> PoisonGuard | None:
    """The guard ``config`` asks for (None: ``poison_policy = "off"``, or N_WAY_ACTIVE, where
    nobody takes over), with its undo log attached to ``data`` under ``rollback``."""
    policy = PoisonPolicy(config.poison_policy)
    if policy is PoisonPolicy.OFF or config.redundancy is Redundancy.N_WAY_ACTIVE:
        return None
    undo = None
    if policy is PoisonPolicy.ROLLBACK:
        undo = UndoLog(max_entries=config.poison_undo_max_entries,
                       max_bytes=config.poison_undo_max_bytes)
        data.undo = undo
    return PoisonGuard(
        me=config.member, group=config.group, store=store, keys=keys, clock=clock, undo=undo,
        settings=PoisonSettings(policy, config.poison_probation_s, config.poison_window_s),
        emit=emit, bridge=bridge, alarm_command=config.alarm_command,
        alarm_command_timeout_s=config.alarm_command_timeout_s)
