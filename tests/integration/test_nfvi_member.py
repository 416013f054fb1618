"""A member's NFVI duties at start-up and on infrastructure events, with a real bridge (sim
driver) and a real 3-member etcd: a violated hard placement policy refuses the start (or warns),
and planned maintenance of the active's host makes it switch over before the deadline, whether
the hypervisor (the sim driver) or an operator (the bridge's Operations/PlanMaintenance, as
``vnfha bridge maintenance`` sends it) announces it, and even when the active's event stream
was down at that moment (the bridge replays the pending maintenance when it watches again; the
replay is harmless once the switchover happened). Members run in this process; their "VMs"
are sleepers the sim driver owns, on the hosts under test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time

import pytest

from vnfha import Config, ConfigError, Member, Role
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.nfvi.agent import PlacementRefused
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import NotifiedInstance
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


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


class CuttableLink:
    """A TCP proxy in front of the bridge that the test can cut (open connections are aborted,
    new ones refused) and mend: a member's bridge connection fails on cue, nothing else."""

    def __init__(self, target: str) -> None:
        self._host, port = target.rsplit(":", 1)
        self._port = int(port)
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.address = ""

    async def __aenter__(self) -> CuttableLink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self._cut = True
        for w in tuple(self._writers):
            w.transport.abort()

    def mend(self) -> None:
        self._cut = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


async def test_an_active_that_missed_the_announcement_switches_over_when_it_watches_again(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer],
        caplog: pytest.LogCaptureFixture) -> None:
    """Each member reaches the bridge through a link the test cuts. The maintenance of the
    active's host is announced while the active's link is cut: nobody hears it then (the
    standby is elsewhere); once the link is mended the active watches again, is sent the
    pending maintenance, and hands over. Then both watch again: the replay changes nothing
    (the old active is a standby now, the new one is on another host)."""
    sim, server = bridge
    caplog.set_level(logging.WARNING, logger="vnfha.nfvi")
    for m in ("a", "b"):
        await sim.launch(f"vm-{m}", group=group, member=m, host=f"host-{m}", argv=SLEEPER)

    def told(member: str) -> int:
        return sum(r.name == "vnfha.nfvi" and f"{member}: planned maintenance of host-a"
                   in r.getMessage() for r in caplog.records)

    async with CuttableLink(server.address) as link_a, CuttableLink(server.address) as link_b:
        def cfg(name: str, link: CuttableLink) -> Config:
            return Config(group=group, member=name, etcd_endpoints=etcd3.endpoints,
                          bridge_endpoint=link.address)

        async with Member(cfg("a", link_a)) as a:
            await a.wait_for_role(Role.ACTIVE, 10)
            async with Member(cfg("b", link_b)) as b:
                await b.wait_for_role(Role.STANDBY, 10)
                await until(lambda: server.core.event_watchers == 2,
                            20.0, what="both members watch")
                first = a.epoch
                link_a.cut()
                await until(lambda: server.core.event_watchers == 1,
                            20.0, what="a's stream is down")
                async with BridgeClient.operator(server.address, timeout_s=5) as ops:
                    plan = await ops.plan_maintenance("host-a", 120, "kernel upgrade")
                assert plan.instances == (NotifiedInstance(group, "a", "vm-a"),)
                assert (told("a"), a.role) == (0, Role.ACTIVE)  # a missed it
                link_a.mend()
                await b.wait_for_role(Role.ACTIVE, 20)  # a watched again and handed over
                assert b.epoch > first and told("a") == 1
                await until(lambda: a.role is Role.STANDBY, 20.0, what="a follows b")

                second = b.epoch
                for link in (link_a, link_b):
                    link.cut()
                await until(lambda: server.core.event_watchers == 0, 20.0, what="both streams down")
                for link in (link_a, link_b):
                    link.mend()
                await until(lambda: told("a") == 2, 20.0, what="a is sent the maintenance again")
                hold = time.monotonic() + 1.0  # long enough for a switchover to start
                while time.monotonic() < hold:
                    assert (b.role, b.epoch, a.role) == (Role.ACTIVE, second, Role.STANDBY)
                    await asyncio.sleep(0.02)
                assert server.core.event_watchers == 2 and told("b") == 0


async def test_a_maintenance_announced_first_moves_the_active_once_a_standby_elsewhere_syncs(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    """The maintenance of host-1 is announced before anyone runs. a (host-1) becomes active
    with nobody to hand over to; c, a standby on the same host, changes nothing (handing over
    to it would only move the role to another member that must leave too); once b, on host-2,
    is in sync, a hands over to b, and b, not on host-1, stays."""
    sim, server = bridge
    for m, host in (("a", "host-1"), ("c", "host-1"), ("b", "host-2")):
        await sim.launch(f"vm-{m}", group=group, member=m, host=host, argv=SLEEPER)
    async with BridgeClient.operator(server.address, timeout_s=5) as ops:
        await ops.plan_maintenance("host-1", 120, "firmware")

    def cfg(name: str) -> Config:
        return Config(group=group, member=name, etcd_endpoints=etcd3.endpoints,
                      bridge_endpoint=server.address, redundancy="n-way")

    async with Member(cfg("a")) as a:
        await a.wait_for_role(Role.ACTIVE, 10)
        first = a.epoch
        async with Member(cfg("c")) as c:
            await c.wait_for_role(Role.STANDBY, 10)
            await until(lambda: "c" in a.checkpoint.in_sync, 20.0, what="c in sync")
            await asyncio.sleep(1.0)  # long enough for a switchover to start
            assert (a.role, a.epoch, c.role) == (Role.ACTIVE, first, Role.STANDBY)
            async with Member(cfg("b")) as b:
                await b.wait_for_role(Role.ACTIVE, 20)  # a handed over to b, not to c
                assert b.epoch > first and c.role is Role.STANDBY
                second = b.epoch
                await asyncio.sleep(1.0)
                assert (b.role, b.epoch) == (Role.ACTIVE, second)
