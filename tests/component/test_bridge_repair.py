"""The bridge's side of self-healing (issue 17, items 2 and 5), through the SDK client against a
real server over the sim driver with real processes: the group's active asks for the repair of
another member's dead instance (accepted in the current epoch, refused in a stale one,
idempotent under its key, whoever asks again), and a repair that would break a hard placement
policy is refused naming the policy and the host, while a soft one is checked after the repair
and reported in the ticket."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeRequestError, StaleEpochRejected
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import (
    InstanceState,
    PlacementPolicy,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
    WatchdogAction,
)

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
DEADLINE_S = 10.0
KEY = "repair/vfw/b/3/1"


@pytest.fixture
async def sim() -> AsyncIterator[SimDriver]:
    driver = SimDriver(hosts=["h1", "h2", "h3"])
    try:
        yield driver
    finally:
        await driver.close()


async def launch(sim: SimDriver, hosts: dict[str, str]) -> BridgeServer:
    for member, host in hosts.items():
        await sim.launch(f"vm-{member}", group="vfw", member=member, host=host, argv=SLEEPER)
    return BridgeServer(sim)


def client(bridge: BridgeServer, member: str) -> BridgeClient:
    return BridgeClient(bridge.address, group="vfw", member=member, timeout_s=5.0)


async def kill(sim: SimDriver, name: str) -> int:
    pid = sim.pid(name)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(500):
        if (await sim.get_instance(name)).state is InstanceState.CRASHED:
            return pid
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never CRASHED")


async def ended(c: BridgeClient, ticket: RepairTicket) -> RepairTicket:
    return [t async for t in c.watch_repair(ticket.ticket_id, timeout_s=DEADLINE_S)][-1]


async def test_the_active_repairs_a_dead_member_once_and_a_stale_active_cannot(
        sim: SimDriver) -> None:
    async with await launch(sim, {"a": "h1", "b": "h2", "c": "h3"}) as bridge, \
            client(bridge, "a") as a, client(bridge, "c") as c:
        await a.arm_watchdog(30.0, WatchdogAction.NONE, 5)  # a is the active of epoch 5
        old = await kill(sim, "vm-b")
        ticket = await a.escalate(KEY, "member b gone", RepairAction.REBOOT, 5,
                                  target_member="b",
                                  evacuation_policy=PlacementPolicy.ANTI_AFFINITY)
        assert (ticket.member, ticket.instance, ticket.action, ticket.owner,
                ticket.owner_name, ticket.epoch) == ("b", "vm-b", RepairAction.REBOOT,
                                                     RepairOwner.NFVI, "nfvi:sim", 5)
        final = await ended(a, ticket)
        assert final.state is RepairState.SUCCEEDED and "running on h2" in final.detail
        assert "placement breaks" not in final.detail  # a, b, c on three hosts
        assert sim.pid("vm-b") not in (None, old)
        again = await a.escalate(KEY, "member b gone", RepairAction.REBOOT, 5,
                                 target_member="b")
        assert again.ticket_id == ticket.ticket_id  # idempotent: no second repair
        await c.arm_watchdog(30.0, WatchdogAction.NONE, 8)  # c is the active of epoch 8 now
        asked_by_c = await c.escalate(KEY, "member b gone", RepairAction.REBOOT, 8,
                                      target_member="b")
        assert asked_by_c.ticket_id == ticket.ticket_id  # a new active: the same ticket
        await kill(sim, "vm-b")
        with pytest.raises(StaleEpochRejected) as stale:  # deposed a may not repair
            await a.escalate("repair/vfw/b/4/1", "member b gone", RepairAction.REBOOT, 5,
                             target_member="b")
        assert (stale.value.epoch, stale.value.highest) == (5, 8)
        assert (await sim.get_instance("vm-b")).state is InstanceState.CRASHED
        with pytest.raises(BridgeRequestError) as unknown:
            await c.escalate("repair/vfw/z/1/1", "gone", RepairAction.REBOOT, 8,
                             target_member="z")
        assert unknown.value.code == "NOT_FOUND"


@pytest.mark.parametrize(("hosts", "policy", "words"), [
    ({"a": "h1", "b": "h1"}, PlacementPolicy.ANTI_AFFINITY,
     ["anti-affinity", "b on h1 would share the host with a", "vm-b"]),
    ({"a": "h1", "c": "h1", "b": "h2"}, PlacementPolicy.AFFINITY,
     ["affinity", "b on h2 would run apart from the group's main host h1", "vm-b"]),
])
async def test_a_repair_that_breaks_a_hard_policy_is_refused_naming_it(
        sim: SimDriver, hosts: dict[str, str], policy: PlacementPolicy,
        words: list[str]) -> None:
    async with await launch(sim, hosts) as bridge, client(bridge, "a") as a:
        await kill(sim, "vm-b")
        with pytest.raises(BridgeRequestError) as refused:
            await a.escalate(KEY, "member b gone", RepairAction.REBOOT, 5, target_member="b",
                             evacuation_policy=policy)
        assert (refused.value.code, refused.value.reason) == ("FAILED_PRECONDITION",
                                                              "placement")
        for word in words:
            assert word in str(refused.value), str(refused.value)
        assert (await sim.get_instance("vm-b")).state is InstanceState.CRASHED  # untouched
        # an evacuation may keep it: b goes where the policy holds
        ticket = await a.escalate(KEY, "member b gone", RepairAction.EVACUATE, 5,
                                  target_member="b", evacuation_policy=policy)
        final = await ended(a, ticket)
        assert final.state is RepairState.SUCCEEDED, final.detail
        assert "placement breaks" not in final.detail
        assert final.host in ({"h1"} if policy is PlacementPolicy.AFFINITY else {"h2", "h3"})


async def test_a_soft_policy_is_checked_after_the_repair(sim: SimDriver) -> None:
    async with await launch(sim, {"a": "h1", "b": "h1"}) as bridge, client(bridge, "a") as a:
        await kill(sim, "vm-b")
        ticket = await a.escalate(KEY, "member b gone", RepairAction.REBOOT, 5,
                                  target_member="b",
                                  evacuation_policy=PlacementPolicy.SOFT_ANTI_AFFINITY)
        final = await ended(a, ticket)
        assert final.state is RepairState.SUCCEEDED
        assert final.detail.endswith("; placement breaks soft-anti-affinity: members a, b "
                                     "share host h1"), final.detail
