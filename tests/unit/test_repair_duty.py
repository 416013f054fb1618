"""The active's repair duty (issue 17, item 2) on a FakeClock with the in-memory store and a fake
bridge: a member gone ``repair_after_s`` without a clean stop is repaired once (its record for
``vnfha status`` written, and deleted when it is back); a clean stop, a lock or a pause is
never repaired; a deposed active stops asking; a new active asks with the same key. And what
``vnfha status`` says of a group running without redundancy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from vnfha.admin import group_status
from vnfha.errors import StaleEpochRejected
from vnfha.health.counters import LadderCounters
from vnfha.health.incarnation import Life, LifeState
from vnfha.health.ladder import LadderHistory
from vnfha.nfvi.model import (
    PlacementPolicy,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
)
from vnfha.roles.keys import (
    ActiveRecord,
    AdminLock,
    GroupKeys,
    GroupState,
    MemberRecord,
    new_secret,
)
from vnfha.roles.repair import RepairDuty
from vnfha.roles.repair_book import RepairRecord, repairs_prefix
from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")
AFTER = 10.0
WALL = 1_718_000_000.0


class FakePort:
    """A bridge: one ticket per key (QUEUED, then as the test sets it); ``error`` raised."""

    def __init__(self) -> None:
        self.asks: list[tuple[str, str, RepairAction, int, str | None, Any]] = []
        self.tickets: dict[str, RepairTicket] = {}
        self.error: Exception | None = None

    @property
    def configured(self) -> bool:
        return True

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       call_timeout_s: float | None = None, target_member: str | None = None,
                       evacuation_policy: PlacementPolicy | None = None) -> RepairTicket:
        self.asks.append((idempotency_key, fault, requested, epoch, target_member,
                          evacuation_policy))
        if self.error is not None:
            raise self.error
        return self.tickets.setdefault(idempotency_key, RepairTicket(
            f"t-{len(self.tickets) + 1}", idempotency_key, "vfw", target_member or "",
            f"vm-{target_member}", RepairAction.REBOOT, RepairOwner.NFVI, "nfvi:fake",
            RepairState.QUEUED, "queued", "h1", epoch))


@dataclass
class Env:
    clock: FakeClock
    store: MemoryStore
    port: FakePort
    state: GroupState = field(default_factory=lambda: GroupState(KEYS))
    epoch: int = 7
    active: bool = True
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def duty(self) -> RepairDuty:
        return RepairDuty(me="a", keys=KEYS, store=self.store, clock=self.clock,
                          port=self.port, repair_after_s=AFTER,
                          policy=PlacementPolicy.ANTI_AFFINITY, state=lambda: self.state,
                          epoch=lambda: self.epoch, may_act=lambda: self.active,
                          adopt=self.tasks.append, wall_clock=lambda: WALL)

    def present(self, *names: str) -> None:
        self.state.members = {n: (MemberRecord(n, "2n"), 1) for n in names}

    async def life(self, member: str, life: Life) -> None:
        await LadderCounters(self.store, KEYS.prefix, KEYS.group, member).save(
            LadderHistory(), 0.0, WALL, life)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = FakeClock()
    async with MemoryStore(clock) as store:
        e = Env(clock, store, FakePort())
        yield e
        for task in e.tasks:
            task.cancel()
        await asyncio.gather(*e.tasks, return_exceptions=True)


async def settle(duty: RepairDuty, seconds: float, env: Env) -> None:
    duty.turn()
    for _ in range(50):
        await asyncio.sleep(0)
    await env.clock.advance(seconds)
    for _ in range(50):
        await asyncio.sleep(0)


async def records(env: Env) -> list[RepairRecord]:
    found = await env.store.range(repairs_prefix(KEYS.prefix, KEYS.group), prefix=True)
    return [RepairRecord.decode(kv.value) for kv in found.kvs]


async def test_a_member_gone_without_a_clean_stop_is_repaired_once(env: Env) -> None:
    await env.life("b", Life(3, LifeState.RUNNING))
    env.present("a", "b")
    duty = env.duty()
    await settle(duty, 0.0, env)
    env.present("a")  # b's record expired
    await settle(duty, AFTER - 1, env)
    assert env.port.asks == []
    await settle(duty, 1.0, env)
    assert len(env.port.asks) == 1
    key, fault, action, epoch, target, policy = env.port.asks[0]
    assert (key, action, epoch, target, policy) == (
        "repair/vfw/b/3/1", RepairAction.REBOOT, 7, "b", PlacementPolicy.ANTI_AFFINITY)
    assert "member b of vfw gone for 10.0 s without a clean stop (incarnation 3)" in fault
    assert "the active a (epoch 7) asks for its repair" in fault
    (record,) = await records(env)
    assert (record.member, record.ticket, record.by, record.epoch) == ("b", "t-1", "a", 7)
    await settle(duty, AFTER, env)  # still open: asked again, same key (reads its state)
    assert [a[0] for a in env.port.asks] == ["repair/vfw/b/3/1"] * 2
    env.present("a", "b")  # back
    await settle(duty, AFTER, env)
    assert len(env.port.asks) == 2 and await records(env) == []


@pytest.mark.parametrize("why", ["stopped", "no-record", "locked", "paused"])
async def test_never_a_clean_stop_a_lock_or_a_pause(env: Env, why: str) -> None:
    if why != "no-record":
        await env.life("b", Life(3, LifeState.STOPPED if why == "stopped"
                                 else LifeState.RUNNING))
    if why == "locked":
        env.state.locks["b"] = AdminLock(by="ops")
    if why == "paused":
        env.state.paused = AdminLock(by="ops")
    env.present("a", "b")
    duty = env.duty()
    await settle(duty, 0.0, env)
    env.present("a")
    for _ in range(3):
        await settle(duty, AFTER, env)
    assert env.port.asks == []
    if why in ("locked", "paused"):  # it waits: lifted, the repair is asked
        env.state.locks.clear()
        env.state.paused = None
        await settle(duty, AFTER, env)
        assert [a[0] for a in env.port.asks] == ["repair/vfw/b/3/1"]


async def test_a_deposed_active_stops_and_a_new_one_asks_with_the_same_key(env: Env) -> None:
    await env.life("b", Life(3, LifeState.RUNNING))
    env.present("a")  # b gone before this member became active: learnt from its ladder key
    env.port.error = StaleEpochRejected("stale", method="Escalate", target="fake", group="vfw",
                                        member="a", epoch=7, highest=9)
    duty = env.duty()
    await settle(duty, AFTER, env)
    assert len(env.port.asks) == 1
    await settle(duty, 3 * AFTER, env)
    assert len(env.port.asks) == 1  # it stopped asking
    env.port.error = None
    env.epoch = 9  # a new grant (this member again, or another: the same record, the same key)
    await settle(duty, 0.0, env)
    await settle(duty, AFTER, env)
    assert [a[0] for a in env.port.asks] == ["repair/vfw/b/3/1"] * 2
    assert env.port.asks[1][3] == 9


async def test_a_member_that_is_not_active_asks_nothing(env: Env) -> None:
    await env.life("b", Life(3, LifeState.RUNNING))
    env.present("a")
    duty = env.duty()
    env.active = False
    await settle(duty, 2 * AFTER, env)
    assert env.port.asks == []


# -- vnfha status ----------------------------------------------------------------------------------


async def put_active(store: MemoryStore, *members: str) -> int:
    lease = (await store.grant(60)).id
    for m in members:
        role = "active" if m == members[0] else "standby"
        await store.put(KEYS.member(m), MemberRecord(m, "2n", role=role).encode(),
                        lease=lease if m == members[0] else (await store.grant(60)).id)
    put = await store.put(KEYS.active, ActiveRecord(members[0], "x:1", new_secret()).encode(),
                          lease=lease)
    return put.revision


async def test_status_says_the_group_runs_without_redundancy(env: Env) -> None:
    epoch = await put_active(env.store, "a")
    await env.life("b", Life(3, LifeState.RUNNING))
    await env.life("c", Life(1, LifeState.STOPPED))
    status = await group_status(env.store, "/vnfha", "vfw")
    assert status.without_redundancy and status.gone == ("b",)
    (note,) = [n for n in status.notes() if "WITHOUT REDUNDANCY" in n]
    assert note.startswith("RUNNING WITHOUT REDUNDANCY: a has no standby; gone without a "
                           "clean stop: b (")
    assert "docs/ladder.md#self-healing" in note
    record = RepairRecord("b", 3, 1, "t-4", "reboot", "queued", "nfvi:sim", "a", epoch, WALL)
    stale = RepairRecord("b", 3, 1, "t-2", "reboot", "failed", "nfvi:sim", "a", epoch - 1, WALL)
    await env.store.put(repairs_prefix("/vnfha", "vfw") + "b", record.encode())
    await env.store.put(repairs_prefix("/vnfha", "vfw") + "x", stale.encode())
    status = await group_status(env.store, "/vnfha", "vfw")
    assert status.repairs == (record.describe(),) and record.describe() in status.notes()
    assert "the active has asked the NFVI bridge to repair them" in " ".join(status.notes())
    assert status.as_json()["gone"] == ["b"]


async def test_status_with_a_standby_has_no_such_note(env: Env) -> None:
    await put_active(env.store, "a", "b")
    status = await group_status(env.store, "/vnfha", "vfw")
    assert not status.without_redundancy
    assert not [n for n in status.notes() if "REDUNDANCY" in n]
