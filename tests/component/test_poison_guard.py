"""The poison guard's I/O on a store (:mod:`vnfha.roles.poison_guard`): a hold is written once
even when every surviving member judges it, it pauses the group and raises one alarm, the
operator's release lets the same failed epoch be taken over, and a rollback's changes go
through the new grant's writer only."""

from __future__ import annotations

import asyncio
from typing import Any

from vnfha.events import AlarmRaised, MemberEvent
from vnfha.replication.state import Change, CheckpointData
from vnfha.replication.undo import UndoLog
from vnfha.roles.history import Cause, Timeline, read_history
from vnfha.roles.keys import ActiveRecord, AdminLock, GroupKeys, GroupState, new_secret
from vnfha.roles.poison import PoisonPolicy, PoisonSettings, Probation
from vnfha.roles.poison_guard import Held, PoisonGuard
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "g")
NOW = 1_800_000_000.0


class Wall:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def guard(store: MemoryStore, clock: FakeClock, me: str, policy: PoisonPolicy,
          events: list[MemberEvent], wall: Wall, undo: UndoLog | None = None) -> PoisonGuard:
    return PoisonGuard(me=me, group="g", settings=PoisonSettings(policy, 10.0, 5.0),
                       store=store, keys=KEYS, clock=clock, undo=undo, emit=events.append,
                       bridge=None, alarm_command=None, alarm_command_timeout_s=1.0, wall=wall)


def state_with_failed_active(epoch: int) -> GroupState:
    """The group as a standby sees it when the active ``b`` of ``epoch``, on probation since
    1 s ago, has just crashed."""
    state = GroupState(KEYS)
    record = ActiveRecord("b", "127.0.0.1:1", new_secret(),
                          Probation(since=NOW - 1.0, first_failure=NOW - 1.0))
    state.set_active(record, 0x22, epoch)
    state.leases["b"] = 0x22
    return state


def crash_of(epoch: int) -> Timeline:
    return Timeline(noticed=0.0, from_member="b", from_epoch=epoch, cause=Cause.CRASH,
                    reason="its endpoint refused the connection")


async def test_a_hold_is_written_once_with_one_alarm_and_released_by_the_operator(
        store: MemoryStore, clock: FakeClock) -> None:
    await store.put(KEYS.active, b"{}")  # the failed active's key, at some revision
    epoch = (await store.get(KEYS.active)).mod_revision  # type: ignore[union-attr]
    wall, events_c, events_d = Wall(), [], []  # type: ignore[var-annotated]
    c = guard(store, clock, "c", PoisonPolicy.HOLD, events_c, wall)
    d = guard(store, clock, "d", PoisonPolicy.HOLD, events_d, wall)
    tasks: list[asyncio.Task[Any]] = []
    state = state_with_failed_active(epoch)
    outcomes = await asyncio.gather(
        *(g.before_takeover(state, epoch, crash_of(epoch), new_secret(), tasks.append)
          for g in (c, d)), return_exceptions=True)
    assert all(isinstance(o, Held) for o in outcomes), outcomes
    await asyncio.gather(*tasks)
    assert c.holds + d.holds == 1
    alarms = [e for e in events_c + events_d if isinstance(e, AlarmRaised)]
    assert len(alarms) == 1 and "probation" in alarms[0].reason
    paused = await store.get(KEYS.paused)
    assert paused is not None and "vnfha unlock g" in AdminLock.decode(paused.value).reason
    held = await read_history(store, KEYS)
    assert held[0].to_member == "" and held[0].reason.startswith("HELD")
    # still paused: judged again (the watch has not shown the pause yet), still held, quietly
    try:
        await c.before_takeover(state, epoch, crash_of(epoch), new_secret(), tasks.append)
        raise AssertionError("took over while held")
    except Held:
        pass
    assert c.holds + d.holds == 1
    await store.delete(KEYS.paused)  # the operator's `vnfha unlock g`
    probation = await c.before_takeover(state, epoch, crash_of(epoch), new_secret(),
                                        tasks.append)
    assert probation == Probation(since=NOW, first_failure=NOW)


async def test_a_rollback_is_written_by_the_new_grant_only(store: MemoryStore,
                                                           clock: FakeClock) -> None:
    wall = Wall()
    wall.now = NOW - 60.0  # the member (and its undo log) started a minute ago
    data = CheckpointData()
    data.undo = undo = UndoLog(max_entries=100, max_bytes=1 << 20, wall=wall)
    wall.now = NOW - 30.0
    data.apply(Change("s", "old", b"1"))  # long before the window
    wall.now = NOW - 2.0
    data.apply(Change("s", "poison", b"!"))  # inside it (first failure NOW - 1, window 5 s)
    data.apply(Change("s", "old", b"2"))
    wall.now = NOW
    c = guard(store, clock, "c", PoisonPolicy.ROLLBACK, [], wall, undo)
    secret = new_secret()
    probation = await c.before_takeover(state_with_failed_active(5), 5, crash_of(5), secret,
                                        lambda t: None)
    assert probation is not None and probation.rolled_back and probation.failures == 2
    written: list[Change] = []
    assert c.roll_back(new_secret(), written.append) == ()  # another grant's Primary: nothing
    probation = await c.before_takeover(state_with_failed_active(5), 5, crash_of(5), secret,
                                        lambda t: None)
    assert c.roll_back(secret, written.append) == ("s/poison", "s/old")
    assert written == [Change("s", "poison", None), Change("s", "old", b"1")]
    assert c.roll_back(secret, written.append) == ()  # once


async def test_a_member_taking_over_with_failing_checks_starts_no_probation(
        store: MemoryStore, clock: FakeClock) -> None:
    """Its own failure (the ladder resigning it) would say nothing about the state."""
    c = guard(store, clock, "c", PoisonPolicy.HOLD, [], Wall())
    state = GroupState(KEYS)
    state.set_active(ActiveRecord("b", "", new_secret()), 0x22, 5)
    state.leases["b"] = 0x22
    assert await c.before_takeover(state, 5, crash_of(5), new_secret(), lambda t: None,
                                   healthy=False) is None
    assert await c.before_takeover(state, 5, crash_of(5), new_secret(),
                                   lambda t: None) == Probation(since=NOW, first_failure=NOW)
