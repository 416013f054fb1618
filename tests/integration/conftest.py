"""Fixtures for integration tests: a fresh group name per test, member processes on the
shared 3-member etcd that are killed when the test ends, and a sim bridge."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

Spawn = Callable[..., MemberProcess]

_groups = itertools.count()


@pytest.fixture
def group() -> str:
    return f"g{next(_groups)}-{int(time.time() * 1000) % 100000}"


@pytest.fixture
def spawn(etcd3: EtcdCluster, group: str) -> Iterator[Spawn]:
    procs: list[MemberProcess] = []

    def start(name: str, *extra: str) -> MemberProcess:
        proc = MemberProcess(group, name, etcd3.endpoints, *extra)
        procs.append(proc)
        proc.wait_for(lambda e: e["event"] == "ready", 20, "ready")
        return proc

    yield start
    for proc in procs:
        proc.kill()




@pytest.fixture
async def bridge() -> AsyncIterator[tuple[SimDriver, BridgeServer]]:
    """An NFVI bridge over the sim driver, in the test's process, on 127.0.0.1:0; every
    instance the test launched is killed at the end."""
    sim = SimDriver()
    async with BridgeServer(sim) as server:
        try:
            yield sim, server
        finally:
            await sim.close()
