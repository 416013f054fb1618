"""The escalation ladder end to end in a member: a health check that keeps failing restarts the
component (twice), then fails over to the standby, then (now a standby, where failing over means
nothing) escalates to the NFVI bridge, whose sim driver reboots the instance: its process is
restarted. Real etcd (3 members), real bridge and sim driver on 127.0.0.1, members in this
process; each member's "VM" is a sleeper process the sim driver owns (the bridge checks callers
against its inventory and reboots the VM, not the Python object)."""

from __future__ import annotations

import sys

from vnfha import Component, Config, Member, Role
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.health.ladder import Action
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


class Broken(Component):
    """A component whose health check always fails, and which counts its restarts."""

    def __init__(self) -> None:
        self.restarts = 0

    async def health_check(self) -> None:
        raise RuntimeError("database connection lost")

    async def restart(self) -> None:
        self.restarts += 1


async def test_restart_then_failover_then_nfvi_reboot(etcd3: EtcdCluster, group: str) -> None:
    sim = SimDriver()
    try:
        for name in ("a", "b"):
            await sim.launch(f"vm-{name}", group=group, member=name, host=f"host-{name}",
                             argv=SLEEPER)
        async with BridgeServer(sim) as server:
            def cfg(name: str, **kw: object) -> Config:
                return Config(group=group, member=name, etcd_endpoints=etcd3.endpoints,
                              bridge_endpoint=server.address, bridge_timeout_s=2.0,
                              health_check_period_s=0.2, health_check_timeout_s=0.2,
                              health_fail_after=1, health_recover_after=1,
                              ladder_restart_max_count=2, **kw)  # type: ignore[arg-type]

            broken = Broken()
            a = Member(cfg("a", priority=10), broken)
            await a.start()
            try:
                await a.wait_for_role(Role.ACTIVE, 10)
                async with Member(cfg("b")) as b:
                    first_pid = sim.pid("vm-a")
                    # rung 1, twice: restart(); rung 2: fail over to b
                    await b.wait_for_role(Role.ACTIVE, 20)
                    assert broken.restarts == 2
                    assert a.role is not Role.ACTIVE
                    # rung 3: a, now a standby, asks the NFVI to reboot its VM
                    await until(lambda: sim.pid("vm-a") not in (None, first_pid), 20,
                                "the sim driver to reboot vm-a")
                    actions = [e.decision.action for e in a.supervisor.decisions]
                    assert actions[:4] == [Action.RESTART, Action.RESTART, Action.FAILOVER,
                                           Action.ESCALATE], actions
                    assert b.role is Role.ACTIVE  # the standby that took over is untouched
            finally:
                await a.stop()
    finally:
        await sim.close()
