"""A member's incarnations through the runner and the supervisor (issue 17, item 3), on a
FakeClock with the in-memory store: the previous incarnation's death and its crash failovers
are counted once at start (a failed write counts nothing and is retried), a death past the
restarts is carried out (the VM reboot asked of the bridge, its end marked as that repair's),
a clean exit is recorded, and the member's placement policy goes with its escalations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from test_supervisor import WALL, FakeControl, FakeNfvi, RecordedMetrics, until

from vnfha.config import Config
from vnfha.errors import BridgeRequestError, StoreError
from vnfha.health.counters import LadderCounters, read_life
from vnfha.health.incarnation import Failover, Life, LifeState
from vnfha.health.ladder import Action, Fault, LadderHistory, Rung, Use
from vnfha.health.runner import LadderRunner
from vnfha.health.supervisor import Supervisor
from vnfha.model import Role
from vnfha.nfvi.model import PlacementPolicy, RepairAction, RepairState, RepairTicket
from vnfha.roles.history import FailoverRecord, write_record
from vnfha.roles.keys import GroupKeys
from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock
from vnfha.wiring import ladder_policy, supervisor_settings

CONFIG = Config(group="vfw", member="vfw-a", ladder_restart_max_count=2,
                placement_policy="anti-affinity", bridge_endpoint="127.0.0.1:1")
POLICY = ladder_policy(CONFIG)
RUNNING, REPAIRING, STOPPED = LifeState.RUNNING, LifeState.REPAIRING, LifeState.STOPPED


class PolicyNfvi(FakeNfvi):
    """The fake bridge, keeping the evacuation policy of every escalation."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.policies: list[PlacementPolicy | None] = []

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       call_timeout_s: float | None = None, **kw: Any) -> RepairTicket:
        self.policies.append(kw.get("evacuation_policy"))
        return await super().escalate(idempotency_key, fault, requested, epoch, tried=tried)


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(FakeClock()) as s:
        yield s


def counters(store: MemoryStore) -> LadderCounters:
    return LadderCounters(store, "/vnfha", "vfw", "vfw-a")


def runner(store: MemoryStore, clock: FakeClock) -> LadderRunner:
    return LadderRunner(counters(store), POLICY, clock, wall_clock=lambda: WALL,
                        name="vfw-a")


async def stored(store: MemoryStore) -> Life | None:
    return await read_life(store, "/vnfha", "vfw", "vfw-a")


async def began(r: LadderRunner, failovers: list[Failover] | None = None) -> Any:
    return await r.begin(failovers or [], role=Role.STANDBY, has_bridge=True, standby_ready=False)


# -- the runner ----------------------------------------------------------------------------------


@pytest.mark.parametrize("applied", [False, True])
async def test_a_start_whose_write_fails_is_retried_and_counts_once(
        store: MemoryStore, applied: bool) -> None:
    await counters(store).save(LadderHistory(), 0.0, WALL, Life(4, RUNNING))
    r = runner(store, FakeClock())
    await r.handle(Fault("first, so the counters are read"), role=Role.STANDBY,
                   has_bridge=True)
    store.fail_next(applied=applied)  # applied: only the reply is lost
    with pytest.raises(StoreError):
        await began(r)
    assert r.life == Life(4, RUNNING) and r.history.count(Rung.RESTART) == 1
    assert await stored(store) == (Life(5, RUNNING) if applied else Life(4, RUNNING))
    start = await began(r)  # the retry counts the death once
    assert start.life == Life(5, RUNNING) and await stored(store) == Life(5, RUNNING)
    assert r.history.count(Rung.RESTART) == 2
    with pytest.raises(RuntimeError, match="begun already"):
        await began(r)


async def test_a_start_that_never_read_the_store_raises(store: MemoryStore) -> None:
    r = runner(store, FakeClock())
    store.set_unavailable(True)
    with pytest.raises(StoreError):
        await began(r)
    store.set_unavailable(False)
    assert (await began(r)).life == Life(1, RUNNING)


async def test_marks_come_only_after_the_start_and_survive_a_new_runner(
        store: MemoryStore) -> None:
    await counters(store).save(LadderHistory(), 0.0, WALL, Life(2, RUNNING))
    first = runner(store, FakeClock())
    assert not await first.mark(STOPPED)  # never began: the dead incarnation's record stays
    assert await stored(store) == Life(2, RUNNING)
    await began(first)
    assert await first.mark(REPAIRING) and await stored(store) == Life(3, REPAIRING)
    await first.handle(Fault("db"), role=Role.STANDBY, has_bridge=True)  # keeps the life
    assert await stored(store) == Life(3, REPAIRING)
    again = runner(store, FakeClock())
    start = await began(again)  # ended by its own repair: not a death
    assert start.decision is None and start.life == Life(4, RUNNING)


async def test_each_crash_failover_epoch_is_counted_once(store: MemoryStore) -> None:
    records = [Failover(7, "crash", WALL), Failover(8, "switchover", WALL)]
    first = await began(runner(store, FakeClock()), records)
    assert first.failovers == (7,) and first.life.counted_epoch == 7
    again = await began(runner(store, FakeClock()), records)
    assert again.failovers == () and again.history.count(Rung.FAILOVER) == 1


# -- the supervisor ------------------------------------------------------------------------------


def supervisor(store: MemoryStore, clock: FakeClock, control: FakeControl,
               nfvi: Any) -> Supervisor:
    return Supervisor(control, settings=supervisor_settings(CONFIG), store=store, clock=clock,
                      nfvi=nfvi, metrics=RecordedMetrics(), health_check=None,
                      wall_clock=lambda: WALL + clock.monotonic(), rewatch_s=1.0)


async def test_a_third_death_asks_the_bridge_to_reboot_the_vm(store: MemoryStore) -> None:
    """Two restarts already counted (two deaths); the third death is past them: the standby
    asks for its VM's reboot, with its placement policy, marked as the end to come."""
    clock = FakeClock()
    now = clock.monotonic()
    history = LadderHistory((Use(now - 20, Rung.RESTART), Use(now - 10, Rung.RESTART)),
                            now - 10)
    await counters(store).save(history, now, WALL + now, Life(3, RUNNING))
    control, nfvi = FakeControl(role=Role.STANDBY, standby=False), PolicyNfvi(clock)
    async with supervisor(store, clock, control, nfvi) as sup:
        await until(lambda: len(sup.decisions) == 1, "the start's decision")
        done = sup.decisions[0]
        assert (done.action, done.decision.rung) == (Action.ESCALATE, Rung.REBOOT_VM)
        assert "incarnation 3 of vfw-a ended without a clean stop" in done.decision.reason
        assert [e[2] for e in nfvi.escalations] == [RepairAction.REBOOT]
        assert nfvi.policies == [PlacementPolicy.ANTI_AFFINITY]
        assert await stored(store) == Life(4, REPAIRING)
        nfvi.finish("T-1", RepairState.FAILED)  # a new fault: the evacuation
        await until(lambda: len(sup.decisions) == 2, "the failed repair's fault")
        assert sup.decisions[1].decision.rung is Rung.EVACUATE_VM and sup.open_ticket == "T-2"
        assert nfvi.policies[-1] is PlacementPolicy.ANTI_AFFINITY
        nfvi.finish("T-2")  # it outlived that repair: its end is no longer the repair's
        await until(lambda: sup.open_ticket is None, "the ticket ended")
        assert await stored(store) == Life(4, RUNNING)
    assert await stored(store) == Life(4, STOPPED)  # a clean exit
    assert control.restarts == 0  # a death's restart is never done again


async def test_a_refused_reboot_leaves_the_incarnation_running(store: MemoryStore) -> None:
    """The bridge refuses (a hard placement policy): no repair will end this incarnation, so a
    later end is a death again; the refusal is a failed recovery (the ladder climbs)."""
    clock = FakeClock()
    now = clock.monotonic()
    history = LadderHistory((Use(now - 20, Rung.RESTART), Use(now - 10, Rung.RESTART)),
                            now - 10)
    await counters(store).save(history, now, WALL + now, Life(3, RUNNING))
    control, nfvi = FakeControl(role=Role.STANDBY, standby=False), PolicyNfvi(clock)
    nfvi.error = BridgeRequestError("anti-affinity: b on h1 would share the host with a",
                                    method="Escalate", target="fake",
                                    code="FAILED_PRECONDITION", reason="placement")
    async with supervisor(store, clock, control, nfvi) as sup:
        await until(lambda: len(sup.decisions) >= 2, "the start's decision and the next")
        assert sup.decisions[0].outcome.startswith("failed: BridgeRequestError")
        assert sup.decisions[1].decision.fault.source == "recovery:escalate"
        assert (await stored(store)).state is RUNNING  # type: ignore[union-attr]


async def test_a_death_within_the_restarts_is_counted_not_redone(store: MemoryStore) -> None:
    clock = FakeClock()
    await counters(store).save(LadderHistory(), 0.0, WALL, Life(1, RUNNING))
    control, nfvi = FakeControl(role=Role.STANDBY), PolicyNfvi(clock)
    async with supervisor(store, clock, control, nfvi) as sup:
        await until(lambda: len(sup.decisions) == 1, "the start's decision")
        assert sup.decisions[0].outcome == "counted: the process was restarted"
        assert control.restarts == 0 and nfvi.escalations == []


async def test_the_start_counts_the_groups_crash_failovers_of_this_member(
        store: MemoryStore) -> None:
    clock = FakeClock()
    await write_record(store, GroupKeys("/vnfha", "vfw"), FailoverRecord(
        epoch=12, to_member="vfw-b", from_member="vfw-a", from_epoch=9, cause="crash",
        at=WALL + clock.monotonic() - 5))
    control, nfvi = FakeControl(role=Role.STANDBY), PolicyNfvi(clock)
    async with supervisor(store, clock, control, nfvi) as sup:
        await until(lambda: sup.runner.life.incarnation == 1, "the start recorded")
        assert sup.runner.history.count(Rung.FAILOVER) == 1
        assert sup.runner.life.counted_epoch == 9


async def test_the_start_waits_for_the_store_and_for_the_pause(store: MemoryStore) -> None:
    clock = FakeClock()
    control, nfvi = FakeControl(role=Role.STANDBY, is_paused=True), PolicyNfvi(clock)
    async with supervisor(store, clock, control, nfvi) as sup:
        await clock.advance(5.0)
        assert await stored(store) is None
        control.is_paused = False
        store.set_unavailable(True)
        await clock.advance(5.0)
        assert sup.runner.life.incarnation == 0
        store.set_unavailable(False)
        await clock.advance(2.0)
        await until(lambda: sup.runner.life.incarnation == 1, "recorded once reachable")
        assert await stored(store) == Life(1, RUNNING)
    await asyncio.sleep(0)
