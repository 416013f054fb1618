"""A bridge restarted on the same state file (``--state-file``) keeps what it must (real server
on 127.0.0.1:0 each time, one sim driver with real processes outliving the bridge, as a
hypervisor would; FakeClock monotonic clocks, a fake wall clock): a deposed active's stale epoch
is still refused, a duplicate escalation gets its ticket back (an interrupted repair FAILED), a
pending maintenance is replayed to new watchers and an expired one is not. Watchdogs are not
kept. A bridge without a state file forgets, as before (the control)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
import test_bridge_operations
from test_bridge_operations import CALL_S, announced, operator, watching

from vnfha.bridge import state as state_module
from vnfha.bridge.core import BridgeLimits
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.serve import ServeOptions, make_server
from vnfha.bridge.server import BridgeServer
from vnfha.bridge.state import BridgeState, StateStore
from vnfha.bridge.tickets import RESTARTED
from vnfha.errors import BridgeRequestError, StaleEpochRejected
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import (
    EventKind,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
    WatchdogAction,
)
from vnfha.testing import FakeClock

sim = test_bridge_operations.sim  # vfw-a and dns-a on h1, vfw-b on h2, nothing on h3 and h4

WALL = 1_750_000_000.0
Start = Callable[..., AbstractAsyncContextManager[BridgeServer]]


@pytest.fixture
def wall() -> list[float]:
    return [WALL]


@pytest.fixture
def start(sim: SimDriver, tmp_path: Path, wall: list[float]) -> Start:
    """``start()``: a new bridge on the same state file (each with its own monotonic clock, as
    a new process); ``start(state=False)``: one without a state file."""
    starts = iter(range(1, 100))

    @asynccontextmanager
    async def running(*, state: bool = True) -> AsyncIterator[BridgeServer]:
        server = make_server(sim, ServeOptions(driver="sim", listen="127.0.0.1:0"),
                             clock=FakeClock(start=1000.0 * next(starts)),
                             wall_clock=lambda: wall[0],
                             state=StateStore(tmp_path / "bridge.json") if state else None)
        async with server:
            yield server
    return running


def member(bridge: BridgeServer, name: str, group: str = "vfw") -> BridgeClient:
    return BridgeClient(bridge.address, group=group, member=name, timeout_s=CALL_S)


async def test_a_stale_epoch_is_refused_after_a_restart(start: Start, tmp_path: Path) -> None:
    async with start() as bridge, member(bridge, "vfw-b") as new_active:
        await new_active.arm_watchdog(60, WatchdogAction.NONE, 5)
        # saved before the reply, not only at shutdown
        saved = StateStore(tmp_path / "bridge.json").load()
        assert saved is not None and saved.epochs == {"vfw": 5}
    async with start() as bridge:
        async with member(bridge, "vfw-a") as deposed:
            with pytest.raises(StaleEpochRejected) as caught:
                await deposed.arm_watchdog(60, WatchdogAction.RESET, 4)
        cause = caught.value.__cause__
        assert isinstance(cause, grpc.aio.AioRpcError)
        assert cause.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.highest == 5 and "epoch 4 is stale" in str(caught.value)
        async with member(bridge, "vfw-b") as new_active:
            with pytest.raises(BridgeRequestError) as not_armed:  # watchdogs are not kept
                await new_active.kick(5)
            assert not_armed.value.reason == "not-armed"
            await new_active.arm_watchdog(60, WatchdogAction.NONE, 5)


async def test_a_raised_epoch_is_not_acted_on_before_it_is_saved(
        start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the file cannot be written, a request that raises the epoch is refused (INTERNAL),
    and so is the next one at that epoch (the raise is still not on disk); requests that change
    nothing write nothing."""
    writes: list[Path] = []
    failing = [False]
    replace_durably = state_module.replace_durably

    def counted(path: Path, data: bytes) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        writes.append(path)
        replace_durably(path, data)

    monkeypatch.setattr(state_module, "replace_durably", counted)
    async with start() as bridge, member(bridge, "vfw-b") as new_active:
        await new_active.arm_watchdog(60, WatchdogAction.NONE, 4)
        before = len(writes)
        await new_active.kick(4)
        await new_active.arm_watchdog(60, WatchdogAction.NONE, 4)
        await new_active.placement()
        assert len(writes) == before  # nothing changed: nothing written
        failing[0] = True
        for _ in range(2):
            with pytest.raises(BridgeRequestError) as caught:
                await new_active.arm_watchdog(60, WatchdogAction.NONE, 5)
            assert caught.value.code == "INTERNAL"
            assert "could not save its state" in str(caught.value)
            assert "No space left on device" in str(caught.value)
        failing[0] = False
        await new_active.arm_watchdog(60, WatchdogAction.NONE, 5)
        saved = StateStore(tmp_path / "bridge.json").load()
        assert saved is not None and saved.epochs == {"vfw": 5}


async def test_without_a_state_file_a_restart_forgets_the_epoch(start: Start) -> None:
    async with start(state=False) as bridge, member(bridge, "vfw-b") as new_active:
        await new_active.arm_watchdog(60, WatchdogAction.NONE, 5)
    async with start(state=False) as bridge, member(bridge, "vfw-a") as deposed:
        status = await deposed.arm_watchdog(60, WatchdogAction.NONE, 4)  # the hole, reopened
        assert status.armed


async def test_a_duplicate_escalation_gets_its_ticket_back_after_a_restart(
        start: Start, sim: SimDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = asyncio.Event()
    reset = sim.reset

    async def held_reset(name: str) -> None:  # a reboot that does not finish before the stop
        await gate.wait()
        await reset(name)

    monkeypatch.setattr(sim, "reset", held_reset)
    async with start() as bridge, member(bridge, "vfw-a") as vfw_a:
        recorded = await vfw_a.escalate("k-report", "db lost", RepairAction.NONE, 3)
        reboot = await vfw_a.escalate("k-reboot", "hung", RepairAction.REBOOT, 3)
        async for t in vfw_a.watch_repair(reboot.ticket_id, timeout_s=30):
            if t.state is RepairState.IN_PROGRESS:
                break
    gate.set()
    async with start() as bridge, member(bridge, "vfw-a") as vfw_a:
        again = await vfw_a.escalate("k-report", "db lost", RepairAction.NONE, 3)
        assert again == recorded
        interrupted = await vfw_a.escalate("k-reboot", "hung", RepairAction.REBOOT, 3)
        assert interrupted.ticket_id == reboot.ticket_id
        assert (interrupted.state, interrupted.detail) == (RepairState.FAILED, RESTARTED)
        # nothing holds vm-vfw-a any more: a new escalation repairs it, under a new id
        fresh = await vfw_a.escalate("k-reboot-2", "hung", RepairAction.REBOOT, 3)
        assert fresh.ticket_id not in (recorded.ticket_id, reboot.ticket_id)
        async for t in vfw_a.watch_repair(fresh.ticket_id, timeout_s=30):
            fresh = t
        assert fresh.state is RepairState.SUCCEEDED, fresh.detail


async def test_a_pending_maintenance_is_replayed_after_a_restart_an_expired_one_not(
        start: Start, wall: list[float]) -> None:
    async with start() as bridge, operator(bridge) as ops:
        kept = await ops.plan_maintenance("h1", 600, "kernel CHG-42")
        await ops.plan_maintenance("h2", 60, "firmware")
    wall[0] += 120  # the bridge was down for two minutes: h2's deadline passed, h1's has not
    async with start() as bridge, AsyncExitStack() as stack:
        vfw, dns = await watching(bridge, stack, ("vfw", "vfw-b"), ("dns", "dns-a"))
        await announced(vfw, kept, ("vfw-a",), "kernel CHG-42")  # the very event
        await announced(dns, kept, ("dns-a",), "kernel CHG-42")
        # h2's would come next if it had been kept: a live marker comes first instead (numbered
        # above the replayed event, so the stream does not mistake it for that one)
        async with operator(bridge) as ops:
            marker = await ops.plan_maintenance("h2", 600, "marker")
        assert marker.sequence > kept.sequence
        event = await vfw.next()
        assert (event.kind, event.sequence) == (EventKind.MAINTENANCE_PLANNED, marker.sequence)
    wall[0] += 500  # now h1's has passed too; the marker's is still ahead (by 100 s)
    async with start() as bridge, AsyncExitStack() as stack:
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        assert (await vfw.next()).sequence == marker.sequence


async def test_save_latency_on_a_new_epoch(start: Start, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    """100 Arms over loopback, each with a new epoch: each waits for the state file's save
    (temporary file, fsync, rename, directory fsync) before its reply."""
    samples = []
    async with start() as bridge, member(bridge, "vfw-a") as active:
        await active.placement()  # connect first: the channel set-up is not a save
        for epoch in range(1, 101):
            began = time.perf_counter()
            await active.arm_watchdog(60, WatchdogAction.NONE, epoch)
            samples.append(time.perf_counter() - began)
    saved = StateStore(tmp_path / "bridge.json").load()
    assert saved is not None and saved.epochs == {"vfw": 100}
    median, worst = statistics.median(samples), max(samples)
    with capsys.disabled():
        print(f"\nArm with a new epoch (state saved before the reply), {len(samples)} calls: "
              f"median {median * 1000:.2f} ms, max {worst * 1000:.2f} ms")
    assert median < 0.1  # generous: a fence with a new epoch shares the 600 ms failover budget


def constant(state: BridgeState) -> Callable[[], BridgeState]:
    return lambda: state


async def test_a_save_of_the_most_tickets_barely_stalls_the_loop(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The store at its bound (BridgeLimits.max_tickets tickets, a 2.5 MB file), saved as the
    core does (the same ticket objects, one of them changed per save), while a ticker measures
    how late the event loop runs: encoding a ticket once keeps each save's hold of the
    interpreter lock short."""
    tickets = [RepairTicket(f"t-{i}", f"vfw-a-{i}", "vfw", "vfw-a", "vm-vfw-a",
                            RepairAction.REBOOT, RepairOwner.NFVI, "nfvi:sim",
                            RepairState.SUCCEEDED, "rebooted vm-vfw-a on h1; running on h1", "h1",
                            7, 3) for i in range(1, BridgeLimits().max_tickets + 1)]
    store = StateStore(tmp_path / "bridge.json")
    await store.save(constant(BridgeState({"vfw": 0}, tuple(tickets), len(tickets) + 1)))
    late: list[float] = []
    ticking = True

    async def ticker() -> None:
        while ticking:
            began = time.perf_counter()
            await asyncio.sleep(0.001)
            late.append(time.perf_counter() - began - 0.001)

    tick = asyncio.create_task(ticker())
    samples = []
    for epoch in range(1, 21):
        tickets[-1] = replace(tickets[-1], version=tickets[-1].version + 1)
        state = BridgeState({"vfw": epoch}, tuple(tickets), len(tickets) + 1)
        began = time.perf_counter()
        await store.save(constant(state))
        samples.append(time.perf_counter() - began)
    ticking = False
    await tick
    with capsys.disabled():
        print(f"\nsave with {len(tickets)} tickets, {len(samples)} saves: median "
              f"{statistics.median(samples) * 1000:.2f} ms, max {max(samples) * 1000:.2f} ms; "
              f"event loop late by at most {max(late) * 1000:.2f} ms")
    assert max(late) < 0.25  # generous (shared CI machines); a whole json.dumps took ~50 ms
