"""A member's NFVI duties at start-up and on infrastructure events, with a real bridge (sim
driver) and a real 3-member etcd: a violated hard placement policy refuses the start (or warns),
and planned maintenance of the active's host makes it switch over before the deadline, whether
the hypervisor (the sim driver) or an operator (the bridge's Operations/PlanMaintenance, as
``vnfha bridge maintenance`` sends it) announces it. Members run in this process; their "VMs"
are sleepers the sim driver owns, on the hosts under test."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest

from vnfha import Config, ConfigError, Member, Role
from vnfha.nfvi.agent import PlacementRefused
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import NotifiedInstance
from vnfha.nfvi.server import BridgeServer
from vnfha.nfvi.sim import SimDriver
from vnfha.testing.etcd import EtcdCluster

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
async def bridge() -> AsyncIterator[tuple[SimDriver, BridgeServer]]:
    sim = SimDriver()
    async with BridgeServer(sim) as server:
        try:
            yield sim, server
        finally:
            await sim.close()


async def test_a_violated_anti_affinity_refuses_or_warns(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    sim, server = bridge
    for m in ("a", "b"):  # both on one host: anti-affinity is violated
        await sim.launch(f"vm-{m}", group=group, member=m, host="host-1", argv=SLEEPER)

    def cfg(violation: str) -> Config:
        return Config(group=group, member="a", etcd_endpoints=etcd3.endpoints,
                      bridge_endpoint=server.address, placement_policy="anti-affinity",
                      placement_violation=violation)

    with pytest.raises(PlacementRefused) as refused:
        async with Member(cfg("refuse")):
            pass
    assert isinstance(refused.value, ConfigError)
    assert "host-1" in str(refused.value) and refused.value.field == "placement_policy"
    async with Member(cfg("warn")) as a:  # warn: it runs
        await a.wait_for_role(Role.ACTIVE, 10)
        assert a.nfvi is not None and a.nfvi.host == "host-1"


async def announce(by: str, sim: SimDriver, server: BridgeServer, group: str) -> None:
    """Maintenance of the standby's host (nothing to do), then of the active's (hand over),
    announced by the sim driver or by an operator through the bridge."""
    if by == "sim":
        sim.plan_maintenance("host-b", time.time() + 60)
        sim.plan_maintenance("host-a", time.time() + 60)
        return
    deadline = time.monotonic() + 10  # both members' event watches are open (else they miss it)
    while server.core.event_watchers < 2:
        assert time.monotonic() < deadline, "the members never watched the bridge's events"
        await asyncio.sleep(0.02)
    async with BridgeClient.operator(server.address, timeout_s=5) as ops:
        plan = await ops.plan_maintenance("host-b", 60, "standby host first")
        assert plan.instances == (NotifiedInstance(group, "b", "vm-b"),)
        plan = await ops.plan_maintenance("host-a", 60, "kernel upgrade")
        assert plan.instances == (NotifiedInstance(group, "a", "vm-a"),)
        assert plan.deadline_unix_s > time.time() + 50


@pytest.mark.parametrize("by", ["sim", "operator"])
async def test_planned_maintenance_of_the_active_host_switches_over(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer], by: str) -> None:
    sim, server = bridge
    for m in ("a", "b"):
        await sim.launch(f"vm-{m}", group=group, member=m, host=f"host-{m}", argv=SLEEPER)

    def cfg(name: str) -> Config:
        return Config(group=group, member=name, etcd_endpoints=etcd3.endpoints,
                      bridge_endpoint=server.address, placement_policy="anti-affinity",
                      placement_violation="refuse")

    async with Member(cfg("a")) as a:
        await a.wait_for_role(Role.ACTIVE, 10)
        async with Member(cfg("b")) as b:
            await b.wait_for_role(Role.STANDBY, 10)
            await a.checkpoint.put("s", "k", b"before the maintenance")
            first = a.epoch
            await announce(by, sim, server, group)
            await b.wait_for_role(Role.ACTIVE, 10)
            assert b.epoch > first
            assert b.checkpoint.get("s", "k") == b"before the maintenance"
            assert a.role is not Role.ACTIVE
