"""``service_address_mode = "nfvi"`` (issue 18, item 3) with a real bridge over the sim driver
and a real 3-member etcd: the NFVI binds the service address to each new active's instance
before ``on_active`` (``Network/MoveAddress``, fenced by the epoch), a switchover and a crash
move it to the successor, and the deposed active's epoch can no longer move it back. Members
run in this process; their "VMs" are sleepers the sim driver owns."""

from __future__ import annotations

import sys

import pytest

from vnfha import Assignment, Component, Config, Member, Role
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import StaleEpochRejected
from vnfha.net import ServiceAddress
from vnfha.nfvi.client import BridgeClient
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
ADDRESS = ServiceAddress.parse("198.51.100.100/24")


class Witness(Component):
    """Records, in ``on_active``, which instance the NFVI binds the address to right then."""

    def __init__(self, sim: SimDriver) -> None:
        self.sim = sim
        self.seen: list[tuple[int, str | None]] = []

    async def on_active(self, a: Assignment) -> None:
        self.seen.append((a.epoch, await self.sim.address_holder(ADDRESS)))


async def test_the_nfvi_moves_the_address_to_each_new_active(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    sim, server = bridge
    for m in ("a", "b"):
        await sim.launch(f"vm-{m}", group=group, member=m, host=f"host-{m}", argv=SLEEPER)

    def cfg(name: str) -> Config:
        return Config(group=group, member=name, etcd_endpoints=etcd3.endpoints,
                      bridge_endpoint=server.address, service_addresses=(ADDRESS,),
                      service_address_mode="nfvi", poison_policy="off")

    wa, wb = Witness(sim), Witness(sim)
    async with Member(cfg("a"), wa) as a:
        await a.wait_for_role(Role.ACTIVE, 10)
        await until(lambda: bool(wa.seen), 5, "a's on_active")
        assert wa.seen == [(a.epoch, "vm-a")]  # bound before on_active ran
        async with Member(cfg("b"), wb) as b:
            await b.wait_for_role(Role.STANDBY, 10)
            first = a.epoch
            await a.switchover(to="b")
            await until(lambda: bool(wb.seen), 10, "b's on_active")
            assert wb.seen == [(b.epoch, "vm-b")] and b.epoch > first
            # the deposed epoch cannot move it back
            async with BridgeClient(server.address, group=group, member="a",
                                    timeout_s=5) as old:
                with pytest.raises(StaleEpochRejected):
                    await old.move_address(ADDRESS, first)
            assert await sim.address_holder(ADDRESS) == "vm-b"


async def test_a_member_the_nfvi_cannot_move_the_address_to_does_not_serve(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer],
        caplog: pytest.LogCaptureFixture) -> None:
    sim, server = bridge
    other = f"{group}x"  # another group's instance holds the address: the bridge refuses
    await sim.launch("vm-x", group=other, member="x", host="host-x", argv=SLEEPER)
    await sim.launch("vm-a", group=group, member="a", host="host-a", argv=SLEEPER)
    async with BridgeClient(server.address, group=other, member="x", timeout_s=5) as x:
        await x.move_address(ADDRESS, 1)
    w = Witness(sim)
    cfg = Config(group=group, member="a", etcd_endpoints=etcd3.endpoints,
                 bridge_endpoint=server.address, service_addresses=(ADDRESS,),
                 service_address_mode="nfvi")
    async with Member(cfg, w) as a:
        await a.wait_for_role(Role.ACTIVE, 10)
        await until(lambda: "the NFVI did not move" in caplog.text, 10, "the refusal")
        assert "not active in epoch" in caplog.text and "held by instance 'vm-x'" in caplog.text
        assert w.seen == []  # on_active never ran
        assert await sim.address_holder(ADDRESS) == "vm-x"
