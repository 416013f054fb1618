"""The member runtime on the in-memory store and a fake clock: election, handover, being
deposed, losing the session, and components that misbehave."""

from __future__ import annotations

import asyncio

import pytest

from vnfha import Config, NotActive, Redundancy, Role, SwitchoverError
from vnfha.component import Assignment, Component
from vnfha.member import CallbackFailed, Member, MemberEvent, RoleChanged
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock


class Recorder(Component):
    def __init__(self, *, fail: str | None = None, hang: str | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail, self.hang = fail, hang

    async def _do(self, name: str, epoch: int) -> None:
        self.calls.append((name, epoch))
        if name == self.fail:
            raise RuntimeError(f"{name} broke")
        if name == self.hang:
            self.hang = None  # once: on a fake clock nobody would advance time to time it out
            await asyncio.Event().wait()

    async def on_active(self, a: Assignment) -> None:
        await self._do("on_active", a.epoch)

    async def on_standby(self, a: Assignment) -> None:
        await self._do("on_standby", a.epoch)

    async def on_quiesce(self) -> None:
        await self._do("on_quiesce", 0)


def config(name: str, **kw: object) -> Config:
    return Config(group="vfw", member=name, **kw)  # type: ignore[arg-type]


async def test_first_member_is_active_second_is_standby(
    clock: FakeClock, store: MemoryStore
) -> None:
    ca, cb = Recorder(), Recorder()
    async with Member(config("a"), ca, store=store, clock=clock) as a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        async with Member(config("b"), cb, store=store, clock=clock) as b:
            await clock.advance_until(lambda: b.role is Role.STANDBY)
            assert b.epoch == a.epoch > 0
            assert a.check_active() == a.epoch
            with pytest.raises(NotActive):
                b.check_active()
            await clock.advance_until(lambda: ("on_active", a.epoch) in ca.calls)
            await clock.advance_until(lambda: ("on_standby", a.epoch) in cb.calls)


async def test_switchover_to_named_member_and_epoch_grows(
    clock: FakeClock, store: MemoryStore
) -> None:
    ca = Recorder()
    async with (Member(config("a"), ca, store=store, clock=clock) as a,
                Member(config("b"), store=store, clock=clock) as b,
                Member(config("c", redundancy=Redundancy.TWO_N), store=store, clock=clock) as c):
        await clock.advance_until(lambda: a.role is Role.ACTIVE and b.role is Role.STANDBY
                    and c.role is Role.SPARE)
        old = a.epoch
        task = asyncio.create_task(a.switchover(to="c"))
        await clock.advance_until(task.done)
        new_epoch = task.result()
        assert new_epoch > old
        assert c.role is Role.ACTIVE and c.epoch == new_epoch
        assert a.role in (Role.STANDBY, Role.SPARE)
        assert ("on_quiesce", 0) in ca.calls
        with pytest.raises(NotActive):
            await a.switchover()


async def test_switchover_refusals(clock: FakeClock, store: MemoryStore) -> None:
    async with Member(config("a"), store=store, clock=clock) as a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        with pytest.raises(SwitchoverError, match="no eligible standby"):
            await a.switchover()
        with pytest.raises(SwitchoverError, match="no such member"):
            await a.switchover(to="zz")
        with pytest.raises(SwitchoverError, match="already active"):
            await a.switchover(to="a")
        async with Member(config("b", no_failover=True), store=store, clock=clock):
            await clock.advance_until(lambda: len(a.group_state.members) == 2)
            with pytest.raises(SwitchoverError, match="no-failover"):
                await a.switchover(to="b")
        assert a.role is Role.ACTIVE  # a refusal changes nothing


async def test_active_deposed_when_its_key_is_deleted_stops_at_once(
    clock: FakeClock, store: MemoryStore
) -> None:
    events: list[MemberEvent] = []
    async with Member(config("a"), store=store, clock=clock) as a:
        a.add_listener(events.append)
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        old = a.epoch
        await store.delete("/vnfha/vfw/active")  # an operator, or a fencing NFVI, takes it
        await clock.advance_until(lambda: any(isinstance(e, RoleChanged)
                                              and e.previous is Role.ACTIVE for e in events))
        demotion = next(e for e in events if isinstance(e, RoleChanged)
                        and e.previous is Role.ACTIVE)
        assert demotion.role is Role.QUIESCED and "deleted" in demotion.reason
        # alone in the group, it campaigns again and gets a new, higher epoch
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        assert a.epoch > old


async def test_lost_session_quiesces_then_rejoins_as_new_incarnation(
    clock: FakeClock, store: MemoryStore
) -> None:
    async with Member(config("a"), store=store, clock=clock) as a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        first_lease, old = a.lease_id, a.epoch
        store.pause()  # etcd stops answering; the lease runs out on the clock
        await clock.advance_until(lambda: a.role is Role.QUIESCED, limit_s=3)
        store.resume()
        await clock.advance_until(lambda: a.role is Role.ACTIVE, limit_s=10)
        assert a.lease_id != first_lease and a.epoch > old


async def test_role_read_past_the_deadline_demotes_before_returning(
    clock: FakeClock, store: MemoryStore
) -> None:
    async with Member(config("a"), store=store, clock=clock) as a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        clock.jump(10)  # a long pause: nothing has run yet
        assert not a.is_active()
        assert a.role is Role.QUIESCED  # set by the read above, before any await


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_misbehaving_callbacks_are_reported_and_do_not_stop_the_member(
    clock: FakeClock, store: MemoryStore, mode: str
) -> None:
    comp = Recorder(**{mode: "on_active"})  # type: ignore[arg-type]
    failures: list[CallbackFailed] = []
    cfg = config("a", callback_timeout_s=1.0)
    async with Member(cfg, comp, store=store, clock=clock) as a:
        a.add_listener(lambda e: failures.append(e) if isinstance(e, CallbackFailed) else None)
        await clock.advance_until(lambda: bool(failures), limit_s=3)
        assert failures[0].callback == "on_active"
        assert failures[0].timed_out is (mode == "hang")
        assert a.role is Role.ACTIVE and a.callback_failures == 1
        # the member keeps working: a second member joins and a switchover still happens
        async with Member(config("b"), store=store, clock=clock) as b:
            await clock.advance_until(lambda: b.role is Role.STANDBY)
            task = asyncio.create_task(a.switchover())
            await clock.advance_until(task.done)
            assert b.role is Role.ACTIVE


async def test_n_way_active_and_no_redundancy(clock: FakeClock, store: MemoryStore) -> None:
    nwa = Redundancy.N_WAY_ACTIVE
    changes: list[MemberEvent] = []
    a = Member(config("a", redundancy=nwa), store=store, clock=clock)
    a.add_listener(changes.append)  # before start: every change is seen
    async with a:
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        async with Member(config("b", redundancy=nwa), store=store, clock=clock) as b:
            await clock.advance_until(lambda: b.role is Role.ACTIVE)
            await clock.advance(1.0)
            assert a.role is Role.ACTIVE and a.epoch != b.epoch
        # others joining and leaving never disturb an all-active member
        assert [e.role for e in changes if isinstance(e, RoleChanged)] == [Role.ACTIVE]
    async with MemoryStore(clock) as other:
        nr = Redundancy.NO_REDUNDANCY
        async with (Member(config("a", redundancy=nr), store=other, clock=clock) as a,
                    Member(config("b", redundancy=nr), store=other, clock=clock) as b):
            await clock.advance_until(lambda: a.role is Role.ACTIVE and b.role is Role.SPARE)
