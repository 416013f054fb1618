"""A standby takes over on the NFVI's word (issue 17, item 4), with a real bridge (sim driver)
and a real 3-member etcd: the active's VM is reported VM_CRASHED in the active's epoch and the
standby takes over at once, citing the report, although the active's member (in this process,
standing in for a process the crash would have ended) still heartbeats: no suspicion, no fence
and no lease path could have moved it; the old active is then deposed by the new key."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import pytest

from vnfha import Config, Member, Role
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.member import MemberEvent, RoleChanged
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


async def test_a_crash_report_about_the_active_is_proof_enough(
        etcd3: EtcdCluster, group: str, bridge: tuple[SimDriver, BridgeServer],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="vnfha.member")
    sim, server = bridge
    for m, host in (("a", "host-a"), ("b", "host-b")):
        await sim.launch(f"vm-{m}", group=group, member=m, host=host, argv=SLEEPER)

    def cfg(member: str, priority: int) -> Config:
        return Config(group=group, member=member, etcd_endpoints=etcd3.endpoints,
                      bridge_endpoint=server.address, priority=priority)

    roles: list[tuple[float, RoleChanged]] = []

    def record(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            roles.append((time.monotonic(), event))

    async with Member(cfg("a", 200)) as a:
        await a.wait_for_role(Role.ACTIVE, 15)
        async with Member(cfg("b", 100)) as b:
            b.add_listener(record)
            await b.wait_for_role(Role.STANDBY, 15)
            assert a.nfvi is not None
            await until(lambda: a.nfvi is not None and a.nfvi.armed_epoch == a.epoch, 10,
                        "a's watchdog armed in its epoch")
            await until(lambda: server.core.event_watchers >= 2, 10, "both event watches")
            old_epoch = a.epoch
            pid = sim.pid("vm-a")
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # the sim reports VM_CRASHED for vm-a
            crashed = time.monotonic()
            await b.wait_for_role(Role.ACTIVE, 10)
            took = next(t for t, e in roles if e.role is Role.ACTIVE)
            assert took - crashed < 1.0, took - crashed  # suspicion alone would never come
            assert b.epoch > old_epoch
            proof = (f"b: active a (epoch {old_epoch}) is gone: the NFVI bridge reports "
                     f"VM_CRASHED for vm-a (epoch {old_epoch})")
            assert proof in caplog.messages, caplog.messages
            await until(lambda: not a.is_active(), 10, "a deposed")
            assert b.nfvi is not None and b.nfvi.fences == 0  # no fence was needed
