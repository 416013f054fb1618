"""Ladder counters in the (in-memory) store and the runner around the pure ladder, on a
FakeClock: persistence across restarts and VM reboots, store outages, serialization of calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from vnfha.errors import LadderStateError
from vnfha.health.counters import LadderCounters, ladder_key
from vnfha.health.ladder import (
    DEFAULT_POLICY,
    Action,
    Fault,
    LadderHistory,
    Rung,
    Use,
    from_bytes,
)
from vnfha.health.runner import LadderRunner
from vnfha.model import Role
from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock

WALL = 1_718_000_000.0
KEY = "/vnfha/vfw/ladder/vfw-a"


class Wall:
    """A settable wall clock."""

    def __init__(self, t: float = WALL) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(FakeClock()) as s:
        yield s


def counters(store: MemoryStore) -> LadderCounters:
    return LadderCounters(store, "/vnfha", "vfw", "vfw-a", timeout_s=1.0)


def runner(store: MemoryStore, clock: FakeClock, wall: Wall) -> LadderRunner:
    return LadderRunner(counters(store), DEFAULT_POLICY, clock, wall_clock=wall, name="vfw-a")


async def fault(r: LadderRunner, role: Role = Role.ACTIVE) -> Rung | None:
    return (await r.handle(Fault("db lost"), role=role, has_bridge=True)).rung


# -- counters ------------------------------------------------------------------------------


async def test_counters_round_trip_under_their_key_without_a_lease(store: MemoryStore) -> None:
    c = counters(store)
    assert ladder_key("/vnfha", "vfw", "vfw-a") == c.key == KEY
    assert await c.load(10.0, WALL) == LadderHistory()
    h = LadderHistory((Use(5.0, Rung.RESTART),), 5.0)
    await c.save(h, 10.0, WALL)
    kv = await store.get(KEY)
    assert kv is not None and kv.lease == 0
    assert await c.load(10.0, WALL) == h
    await c.clear()
    assert await c.load(10.0, WALL) == LadderHistory()


async def test_unreadable_counters_name_their_key(store: MemoryStore) -> None:
    await store.put(KEY, b"not json")
    with pytest.raises(LadderStateError) as e:
        await counters(store).load(10.0, WALL)
    assert e.value.key == KEY and "not JSON" in str(e.value)


# -- runner --------------------------------------------------------------------------------


async def test_decisions_are_stored_logged_and_counted(store: MemoryStore,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    clock, wall = FakeClock(), Wall()
    r = runner(store, clock, wall)
    caplog.set_level(logging.WARNING, "vnfha.health")
    rungs = []
    for _ in range(4):
        rungs.append(await fault(r))
        clock.jump(10)
        wall.t += 10
    assert rungs == [Rung.RESTART, Rung.RESTART, Rung.RESTART, Rung.FAILOVER]
    assert r.decisions == {(Action.RESTART, Rung.RESTART): 3, (Action.FAILOVER, Rung.FAILOVER): 1}
    assert "vfw-a: ladder: restart 1 of 3 within 300 s; fault: db lost (report_fault)" \
        in caplog.messages
    assert (store.calls["get"], store.calls["put"]) == (1, 4)  # read once, then known
    kv = await store.get(KEY)
    assert kv is not None
    assert from_bytes(kv.value, clock.monotonic(), wall.t) == r.history


async def test_counts_survive_a_restart_of_the_member(store: MemoryStore) -> None:
    clock, wall = FakeClock(), Wall()
    first = runner(store, clock, wall)
    for _ in range(3):
        assert await fault(first) is Rung.RESTART
    clock.jump(30)
    wall.t += 30
    second = runner(store, clock, wall)  # a new process: nothing in memory
    assert await fault(second) is Rung.FAILOVER


@pytest.mark.parametrize(("offline_s", "rung"), [(100.0, Rung.REBOOT_VM), (400.0, Rung.RESTART)])
async def test_counts_survive_a_vm_reboot_and_still_reset(store: MemoryStore, offline_s: float,
                                                          rung: Rung) -> None:
    """After a reboot the monotonic clock starts again near zero; the wall clock tells how long
    the member was away. 100 s away: restart is still used up (a standby goes to the NFVI);
    400 s away: a clean window, restart is available again."""
    clock, wall = FakeClock(50_000.0), Wall()
    first = runner(store, clock, wall)
    for _ in range(3):
        await fault(first, Role.STANDBY)
    rebooted, wall.t = FakeClock(3.0), wall.t + offline_s
    assert await fault(runner(store, rebooted, wall), Role.STANDBY) is rung


async def test_a_store_outage_delays_the_counters_but_loses_no_use(store: MemoryStore) -> None:
    clock, wall = FakeClock(), Wall()
    first = runner(store, clock, wall)
    await fault(first)
    await fault(first)  # two restarts stored
    second = runner(store, clock, wall)
    store.set_unavailable(True)
    d = await second.handle(Fault("x"), role=Role.ACTIVE, has_bridge=True)
    assert d.action is Action.RESTART and d.attempt == 1  # decided from what it knew
    assert second.store_failures == 1
    store.set_unavailable(False)
    kv = await store.get(KEY)
    assert kv is not None and len(from_bytes(kv.value, clock.monotonic(), wall.t).uses) == 2
    # back: the one made during the outage is replayed onto the stored two: restart is used up
    assert await fault(second) is Rung.FAILOVER
    kv = await store.get(KEY)
    assert kv is not None
    assert from_bytes(kv.value, clock.monotonic(), wall.t).count(Rung.RESTART) == 3


async def test_a_failed_save_is_superseded_by_the_next(store: MemoryStore) -> None:
    clock, wall = FakeClock(), Wall()
    r = runner(store, clock, wall)
    await fault(r)
    store.fail_next(1)  # the next save
    await fault(r)
    assert r.store_failures == 1
    kv = await store.get(KEY)
    assert kv is not None and from_bytes(kv.value, 0, wall.t).count(Rung.RESTART) == 1
    await fault(r)
    kv = await store.get(KEY)
    assert kv is not None and from_bytes(kv.value, 0, wall.t).count(Rung.RESTART) == 3


async def test_unreadable_counters_are_replaced(store: MemoryStore,
                                                caplog: pytest.LogCaptureFixture) -> None:
    await store.put(KEY, b"\x00garbage")
    r = runner(store, FakeClock(), Wall())
    assert await fault(r) is Rung.RESTART
    assert any("unreadable ladder counters" in m for m in caplog.messages)
    kv = await store.get(KEY)
    assert kv is not None and from_bytes(kv.value, 0, WALL).count(Rung.RESTART) == 1


async def test_concurrent_faults_are_decided_one_at_a_time(store: MemoryStore) -> None:
    r = runner(store, FakeClock(), Wall())
    ds = await asyncio.gather(*(r.handle(Fault(str(i)), role=Role.ACTIVE, has_bridge=False)
                                for i in range(4)))
    assert sorted((d.rung, d.attempt) for d in ds) == [
        (Rung.FAILOVER, 1), (Rung.RESTART, 1), (Rung.RESTART, 2), (Rung.RESTART, 3)]


async def test_decisions_before_the_first_read_are_replayed_with_their_resets(
        store: MemoryStore) -> None:
    """Stored: three restarts long ago. While the store is down, a fault 400 s later is decided
    from nothing; once read, the replay puts the clean window where it belongs: the old
    restarts are forgotten, the new one counts."""
    clock, wall = FakeClock(), Wall()
    first = runner(store, clock, wall)
    for _ in range(3):
        await fault(first)
    clock.jump(400)
    wall.t += 400
    second = runner(store, clock, wall)
    store.set_unavailable(True)
    assert await fault(second) is Rung.RESTART
    store.set_unavailable(False)
    clock.jump(10)
    wall.t += 10
    d = await second.handle(Fault("again"), role=Role.ACTIVE, has_bridge=True)
    assert (d.rung, d.attempt) == (Rung.RESTART, 2)
    assert second.history.times(Rung.RESTART) == (1400.0, 1410.0)
