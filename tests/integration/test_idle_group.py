"""A settled group makes no periodic etcd write (issue 15): its lease keepalives are its only
traffic, so etcd's revision does not move and a fleet of idle groups does not grow etcd's
database. Its own single-member etcd, so that no other test's keys (or their expiring leases)
move the revision."""

from __future__ import annotations

import asyncio

import pytest

from vnfha import Ack, Config, Member, Role
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(120)]

IDLE_S = 30.0


async def revision(store: EtcdStore) -> int:
    return (await store.range("/vnfha/", prefix=True, limit=1)).revision


async def test_an_idle_2n_group_makes_no_etcd_write_for_30_s() -> None:
    with EtcdCluster(1) as etcd:
        endpoints = etcd.endpoints

        def cfg(name: str) -> Config:
            return Config(group="idle", member=name, etcd_endpoints=endpoints)

        async with Member(cfg("a")) as a, Member(cfg("b")) as b, \
                EtcdStore.connect(endpoints) as probe:
            await a.wait_for_role(Role.ACTIVE, 10)
            await b.wait_for_role(Role.STANDBY, 10)
            await a.checkpoint.put("s", "k", b"v", ack=Ack.ONE)  # replication has settled
            await asyncio.sleep(3)  # past the first progress samples
            before = await revision(probe)
            await asyncio.sleep(IDLE_S)
            after = await revision(probe)
            assert after == before, f"the revision moved by {after - before} in {IDLE_S} s"
            assert a.role is Role.ACTIVE and b.role is Role.STANDBY
