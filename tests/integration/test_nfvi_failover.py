"""The NFVI bridge on the failover paths, with real processes: a sim bridge in this process, the
active in a process the sim driver launched (so it can be fenced and reset), a real 3-member
etcd, and a standby member in this process.

- A hung active (SIGSTOP) is fenced through the bridge and its standby takes over at once,
  without waiting for the lease (DESIGN.md's 600 ms path; measured in benchmarks/failover.py).
- A hung active whose standby is absent is reset by the hypervisor watchdog it armed on
  promotion (kicked only after confirmed keepalives): the sim driver restarts its process.
- Planned maintenance of the active's host makes it hand over before the deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from nfvi_rig import wait_active

from vnfha import Config, Member, Role
from vnfha.bridge.drivers.driver import InstanceState
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.member import MemberEvent, RoleChanged
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

# a member with the bridge configured, run by the sim driver as an "instance"
ACTIVE_SCRIPT = """
import asyncio, sys
import vnfha
async def main():
    group, member, etcd, bridge = sys.argv[1:5]
    cfg = vnfha.Config(group=group, member=member, etcd_endpoints=tuple(etcd.split(",")),
                       bridge_endpoint=bridge, priority=int(sys.argv[5]))
    async with vnfha.Member(cfg) as m:
        while True:
            if m.is_active():
                await m.checkpoint.put("s", "k", str(m.epoch).encode())
            await asyncio.sleep(0.01)
asyncio.run(main())
"""


async def launch(sim: SimDriver, server: BridgeServer, etcd: EtcdCluster, group: str,
                 member: str, host: str, priority: int = 100) -> str:
    name = f"vm-{member}"
    await sim.launch(name, group=group, member=member, host=host,
                     argv=[sys.executable, "-c", ACTIVE_SCRIPT, group, member,
                           ",".join(etcd.endpoints), server.address, str(priority)])
    return name


async def test_a_hung_active_is_fenced_and_replaced_without_waiting_for_its_lease(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    sim, server = bridge
    vm = await launch(sim, server, etcd3, group, "a", "host-a")
    await wait_active(etcd3, group, "a")
    # b runs in this process; its "VM" is a sleeper the bridge knows as member b, so b may
    # call the bridge for its group (callers are checked against the inventory)
    await sim.launch("vm-b", group=group, member="b", host="host-b",
                     argv=[sys.executable, "-c", "import time; time.sleep(600)"])
    cfg = Config(group=group, member="b", etcd_endpoints=etcd3.endpoints,
                 bridge_endpoint=server.address)
    roles: list[tuple[float, RoleChanged]] = []

    def record(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            roles.append((time.monotonic(), event))

    async with Member(cfg) as b:
        b.add_listener(record)
        await b.wait_for_role(Role.STANDBY, 15)
        await until(lambda: b.checkpoint.get("s", "k") is not None, 15, "replication from a")
        first_epoch = b.epoch
        pid = sim.pid(vm)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the hang: no crash, nothing refuses a connection
        hung = time.monotonic()
        await b.wait_for_role(Role.ACTIVE, 10)
        took = next(t for t, e in roles if e.role is Role.ACTIVE)
        # suspicion (300 ms) + fence + one transaction; generous for CI; the lease path would
        # take about TTL - margin = 1.8 s
        assert took - hung < 1.2, took - hung
        assert b.epoch > first_epoch
        assert b.monitor is not None and not b.monitor.fence_failed
        async with asyncio.timeout(5):  # fence_mode kill: confirmed by a pause, then powered off
            while (await sim.get_instance(vm)).state is not InstanceState.STOPPED:
                await asyncio.sleep(0.01)
        assert b.nfvi is not None and b.nfvi.fences == 1


async def test_a_hung_active_without_a_standby_is_reset_by_its_watchdog(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer]) -> None:
    sim, server = bridge
    vm = await launch(sim, server, etcd3, group, "a", "host-a")
    await wait_active(etcd3, group, "a")
    await asyncio.sleep(1.5)  # armed on promotion, then kicked after each keepalive
    pid = sim.pid(vm)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    # nothing kicks any more: after watchdog_timeout_s (TTL - margin = 1.8 s) the bridge resets
    # the instance, and the sim driver restarts its process
    await until(lambda: sim.pid(vm) not in (None, pid), 10, "the process to be restarted")
    assert time.monotonic() - stopped > 1.0
    assert (await sim.get_instance(vm)).state is InstanceState.RUNNING
    await wait_active(etcd3, group, "a")  # the restarted member becomes active again
