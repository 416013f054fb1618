"""The bridge remembers a planned maintenance until its deadline (real server on 127.0.0.1:0,
sim driver with real processes, the bridge on a FakeClock): a WatchEvents stream opened after
the announcement receives it first, for the hosts where its group has an instance; a newer
announcement for the host replaces it; its deadline, or the host going down, ends it; and an
evacuation avoids a host under maintenance.

"Receives nothing" is shown by a marker: the next event published live is the stream's first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
import test_bridge_operations
from test_bridge_operations import CALL_S, Watch, announced, operator, watching

from vnfha.bridge.core import BridgeLimits
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import EventKind, HostStatus, PlacementPolicy, RepairAction, RepairState
from vnfha.testing import FakeClock
from vnfha.testing.waiting import until

sim = test_bridge_operations.sim  # vfw-a and dns-a on h1, vfw-b on h2, nothing on h3 and h4


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bridge(sim: SimDriver, clock: FakeClock) -> AsyncIterator[BridgeServer]:
    async with BridgeServer(sim, clock=clock) as server:
        yield server


async def first_is_marker(bridge: BridgeServer, watch: Watch, host: str) -> None:
    """Announce ``host`` live: it must be the watch's first event (nothing was replayed)."""
    async with operator(bridge) as ops:
        marker = await ops.plan_maintenance(host, 3600, "marker")
    assert marker.sequence > 0
    assert (await watch.next()).sequence == marker.sequence


async def test_a_late_watcher_receives_the_pending_maintenance(bridge: BridgeServer) -> None:
    async with operator(bridge) as ops:
        plan = await ops.plan_maintenance("h1", 600, "kernel CHG-42")
    async with AsyncExitStack() as stack:
        vfw, dns = await watching(bridge, stack, ("vfw", "vfw-b"), ("dns", "dns-a"))
        await announced(vfw, plan, ("vfw-a",), "kernel CHG-42")  # the very event, replayed
        await announced(dns, plan, ("dns-a",), "kernel CHG-42")
        # then live events, and the replayed one not again
        await first_is_marker(bridge, vfw, "h2")


async def test_the_sim_drivers_announcement_is_remembered_too(bridge: BridgeServer,
                                                              sim: SimDriver) -> None:
    async with AsyncExitStack() as stack:
        (live,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        sim.plan_maintenance("h2", 1_900_000_000.0)
        sent = await live.next()  # routed (and remembered) once the live watcher has it
        (late,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        assert await late.next() == sent
        assert (sent.host, sent.members, sent.deadline_unix_s) == ("h2", ("vfw-b",),
                                                                   1_900_000_000.0)


async def test_after_the_deadline_a_new_watcher_receives_nothing(
        bridge: BridgeServer, clock: FakeClock) -> None:
    async with operator(bridge) as ops:
        await ops.plan_maintenance("h1", 600, "kernel CHG-42")
    clock.jump(599)
    async with AsyncExitStack() as stack:
        (before,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        assert (await before.next()).host == "h1"
        clock.jump(1)  # the deadline: over
        (after,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        await first_is_marker(bridge, after, "h2")


async def test_a_second_announcement_replaces_the_first(bridge: BridgeServer,
                                                        clock: FakeClock) -> None:
    async with operator(bridge) as ops:
        await ops.plan_maintenance("h1", 60, "first")
        second = await ops.plan_maintenance("h1", 600, "postponed")
    clock.jump(61)  # the first deadline has passed, the second has not
    async with AsyncExitStack() as stack:
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        await announced(vfw, second, ("vfw-a",), "postponed")
        await first_is_marker(bridge, vfw, "h2")  # one entry per host: no "first" after it


async def test_another_group_without_an_instance_on_the_host_receives_nothing(
        bridge: BridgeServer) -> None:
    async with operator(bridge) as ops:
        on_h2 = await ops.plan_maintenance("h2", 600, "vfw only")
    async with AsyncExitStack() as stack:
        dns, vfw = await watching(bridge, stack, ("dns", "dns-a"), ("vfw", "vfw-a"))
        assert (await vfw.next()).sequence == on_h2.sequence
        await first_is_marker(bridge, dns, "h1")


async def test_a_host_that_went_down_is_no_longer_pending(bridge: BridgeServer,
                                                          sim: SimDriver) -> None:
    async with operator(bridge) as ops:
        plan = await ops.plan_maintenance("h2", 600, "kernel CHG-42")
    async with AsyncExitStack() as stack:
        (live,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        await announced(live, plan, ("vfw-b",), "kernel CHG-42")
        await sim.fail_host("h2")  # the maintenance began early
        assert [(e.kind, e.host) for e in (await live.next(), await live.next())] == [
            (EventKind.HOST_DOWN, "h2"), (EventKind.VM_CRASHED, "h2")]
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        await first_is_marker(bridge, vfw, "h1")


async def test_an_evacuation_avoids_a_host_under_maintenance(bridge: BridgeServer,
                                                             clock: FakeClock) -> None:
    """vfw-a (h1) is evacuated under anti-affinity (not h2, vfw-b's): h3 and h4 are both empty,
    h3 comes first by name, but it is under maintenance; once that is over, h3 again."""
    async with operator(bridge) as ops:
        await ops.plan_maintenance("h3", 600, "firmware")
    async with BridgeClient(bridge.address, group="vfw", member="vfw-b",
                            timeout_s=CALL_S) as c:
        async def evacuate(key: str, member: str, epoch: int) -> str:
            ticket = await c.escalate(key, "lost its disk", RepairAction.EVACUATE, epoch,
                                      target_member=member,
                                      evacuation_policy=PlacementPolicy.ANTI_AFFINITY)
            async for t in c.watch_repair(ticket.ticket_id, timeout_s=30):
                ticket = t
            assert ticket.state is RepairState.SUCCEEDED, ticket.detail
            return ticket.detail

        detail = await evacuate("k1", "vfw-a", 1)
        assert "to h4" in detail and "avoided h3 under planned maintenance" in detail
        clock.jump(600)
        detail = await evacuate("k2", "vfw-a", 1)  # from h4: h3 is free again
        assert "to h3" in detail and "maintenance" not in detail


async def hosts_seen_by(bridge: BridgeServer, member: str = "vfw-a") -> dict[str, HostStatus]:
    """GetPlacement's hosts, by name, as a member of vfw reads them."""
    async with BridgeClient(bridge.address, group="vfw", member=member, timeout_s=CALL_S) as c:
        return {h.host: h for h in (await c.placement()).hosts}


async def hosts_until(bridge: BridgeServer, done: Callable[[dict[str, HostStatus]], bool]
                      ) -> dict[str, HostStatus]:
    """GetPlacement's hosts once ``done(hosts)`` (a driver event reaches the bridge a moment
    after the driver published it), within the deadline."""
    deadline = time.monotonic() + test_bridge_operations.DEADLINE_S
    while not done(hosts := await hosts_seen_by(bridge)):
        assert time.monotonic() < deadline, f"placement still {hosts}"
        await asyncio.sleep(0.01)
    return hosts


async def test_placement_shows_the_pending_maintenance_until_its_deadline(
        bridge: BridgeServer, clock: FakeClock) -> None:
    async with operator(bridge) as ops:
        plan = await ops.plan_maintenance("h1", 600, "kernel CHG-42")
    hosts = await hosts_seen_by(bridge, "vfw-b")  # any member sees every host's
    h1 = hosts["h1"]
    assert h1.up and h1.maintenance_pending
    assert h1.maintenance_deadline_unix_s == plan.deadline_unix_s  # exactly the event's
    assert h1.maintenance_detail == "planned maintenance: kernel CHG-42"
    assert [h for h, s in hosts.items() if s.maintenance_pending] == ["h1"]
    assert hosts["h2"] == HostStatus("h2", True)
    async with AsyncExitStack() as stack:
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        replayed = await vfw.next()
        assert (replayed.deadline_unix_s, replayed.detail) == (h1.maintenance_deadline_unix_s,
                                                               h1.maintenance_detail)
    clock.jump(599)
    assert (await hosts_seen_by(bridge))["h1"].maintenance_pending
    clock.jump(1)  # the deadline: over
    assert (await hosts_seen_by(bridge))["h1"] == HostStatus("h1", True)


async def test_placement_shows_the_newest_announcement_of_a_host(bridge: BridgeServer,
                                                                 sim: SimDriver) -> None:
    async with operator(bridge) as ops:
        await ops.plan_maintenance("h1", 60, "first")
        second = await ops.plan_maintenance("h1", 6000, "postponed")
    h1 = (await hosts_seen_by(bridge))["h1"]
    assert (h1.maintenance_deadline_unix_s, h1.maintenance_detail) == (
        second.deadline_unix_s, "planned maintenance: postponed")
    sim.plan_maintenance("h3", 1_900_000_000.0)  # the hypervisor's own announcement: shown too
    h3 = (await hosts_until(bridge, lambda hosts: hosts["h3"].maintenance_pending))["h3"]
    assert (h3.maintenance_deadline_unix_s, h3.maintenance_detail) == (
        1_900_000_000.0, "planned maintenance")


async def test_placement_no_longer_shows_it_once_the_host_went_down(bridge: BridgeServer,
                                                                    sim: SimDriver) -> None:
    async with operator(bridge) as ops:
        await ops.plan_maintenance("h2", 600, "kernel CHG-42")
    assert (await hosts_seen_by(bridge))["h2"].maintenance_pending
    async with AsyncExitStack() as stack:
        (live,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        await live.next()  # the replayed announcement
        await sim.fail_host("h2")  # the maintenance began
        assert (await live.next()).kind is EventKind.HOST_DOWN  # routed: the bridge knows
    assert (await hosts_seen_by(bridge))["h2"] == HostStatus("h2", False)
    sim.restore_host("h2")
    hosts = await hosts_until(bridge, lambda hosts: hosts["h2"].up)
    assert hosts["h2"] == HostStatus("h2", True)  # back up: maintained, not pending again


def test_the_bound_is_validated() -> None:
    with pytest.raises(ValueError, match="max_pending_maintenance=0"):
        BridgeLimits(max_pending_maintenance=0)


async def test_a_watcher_that_went_away_is_no_longer_counted(bridge: BridgeServer) -> None:
    """A client that closes its stream (or loses its connection) ends its subscription: the
    bridge stops queueing for it, and ``event_watchers`` (which tests wait on) drops."""
    for _ in range(2):
        async with AsyncExitStack() as stack:
            await watching(bridge, stack, ("vfw", "vfw-a"), ("dns", "dns-a"))
            assert bridge.core.event_watchers == 2
        await until(lambda: bridge.core.event_watchers == 0, what="the closed watches are gone")
