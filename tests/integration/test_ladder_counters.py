"""Ladder counters on a real etcd: a member that restarts (a new process, a new connection)
continues its ladder where the previous incarnation left it, and the key has no lease."""

from __future__ import annotations

import pytest

from vnfha.health.counters import LadderCounters
from vnfha.health.ladder import DEFAULT_POLICY, Fault, Rung, from_bytes
from vnfha.health.runner import LadderRunner
from vnfha.model import Role
from vnfha.store.etcd import EtcdStore
from vnfha.testing.clock import FakeClock
from vnfha.testing.etcd import EtcdCluster

pytestmark = pytest.mark.etcd


async def test_counts_survive_a_restart_on_real_etcd(etcd1: EtcdCluster, group: str) -> None:
    wall = [1_718_000_000.0]
    clock = FakeClock()

    async def incarnation(faults: int) -> list[Rung | None]:
        async with EtcdStore.connect(etcd1.endpoints, request_timeout_s=3.0) as store:
            runner = LadderRunner(LadderCounters(store, "/vnfha", group, "vfw-a"),
                                  DEFAULT_POLICY, clock, wall_clock=lambda: wall[0])
            rungs = []
            for _ in range(faults):
                d = await runner.handle(Fault("db lost"), role=Role.ACTIVE, has_bridge=True)
                rungs.append(d.rung)
                clock.jump(10)
                wall[0] += 10
            assert runner.store_failures == 0
            return rungs

    assert await incarnation(3) == [Rung.RESTART] * 3
    assert await incarnation(2) == [Rung.FAILOVER] * 2  # the restarts were remembered
    async with EtcdStore.connect(etcd1.endpoints, request_timeout_s=3.0) as store:
        kv = await store.get(f"/vnfha/{group}/ladder/vfw-a")
        assert kv is not None and kv.lease == 0
        history = from_bytes(kv.value, clock.monotonic(), wall[0])
        assert (history.count(Rung.RESTART), history.count(Rung.FAILOVER)) == (3, 2)
