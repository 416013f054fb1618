"""The active's replication progress: each standby's lag in the metrics and in etcd (as
``vnfha status`` reads it), a stale epoch's record ignored, series dropped when a standby goes
(two real members with real replication, on the in-memory store)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator

import pytest

from vnfha import Ack, Config, Member, Role
from vnfha.admin import group_status, lag_text
from vnfha.metrics import MemberMetrics
from vnfha.roles.keys import ActiveRecord, GroupKeys, MemberRecord, ProgressRecord, new_secret
from vnfha.store.memory import MemoryStore

KEYS = GroupKeys("/vnfha", "vfw")


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as s:
        yield s


INTERVAL_S = 0.1


def cfg(name: str) -> Config:
    return Config(group="vfw", member=name, metrics_port=0, progress_interval_s=INTERVAL_S)


def scrape(member: Member) -> str:
    assert isinstance(member.metrics, MemberMetrics) and member.metrics.port
    with urllib.request.urlopen(f"http://127.0.0.1:{member.metrics.port}/metrics",
                                timeout=5) as reply:
        return reply.read().decode()


async def published(store: MemoryStore, names: list[str]) -> tuple[ProgressRecord, int]:
    """The progress record once it lists exactly the standbys ``names``, and its revision."""
    async with asyncio.timeout(5):
        while True:
            kv = await store.get(KEYS.progress)
            if kv is not None:
                record = ProgressRecord.decode(kv.value)
                if [name for name, _, _ in record.standbys] == names:
                    return record, kv.mod_revision
            await asyncio.sleep(0.02)


async def test_the_active_publishes_its_standbys_lag_when_it_changes(store: MemoryStore) -> None:
    async with Member(cfg("a"), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        async with Member(cfg("b"), store=store) as b:
            await b.wait_for_role(Role.STANDBY, 5)
            record, revision = await published(store, ["b"])
            assert (record.active, record.epoch) == ("a", a.epoch)
            assert (await store.get(KEYS.progress)).lease == a.lease_id  # type: ignore[union-attr]
            # busy with a caught-up standby, then idle: the record says the same, so it is not
            # written again (a settled group makes no periodic etcd write)
            for i in range(20):
                await a.checkpoint.put("s", f"k{i}", b"v", ack=Ack.ONE)
            await asyncio.sleep(4 * INTERVAL_S)
            kv = await store.get(KEYS.progress)
            assert kv is not None and kv.mod_revision == revision

            status = await group_status(store, "/vnfha", "vfw")
            by_name = {m.member: m for m in status.members}
            assert by_name["b"].lag_entries == 0 and by_name["b"].lag_seconds == 0.0
            assert lag_text(by_name["b"]) == "0" and lag_text(by_name["a"]) == "-"
            assert status.sequence == record.sequence

            text = await asyncio.to_thread(scrape, a)
            assert 'vnfha_checkpoint_lag_entries{group="vfw",member="a",standby="b"} 0.0' in text
            b.follower.pause()  # b stops streaming: a change, so it is written
            _, gone = await published(store, [])
            b.follower.resume()  # and back again
            _, back = await published(store, ["b"])
            assert revision < gone < back
        # b left: its series goes at the next sample
        async with asyncio.timeout(5):
            while 'standby="b"' in await asyncio.to_thread(scrape, a):
                await asyncio.sleep(0.05)


async def test_only_a_record_of_the_current_epoch_shows_lag(store: MemoryStore) -> None:
    leases = {name: (await store.grant(60)).id for name in ("a", "b")}
    for name, lease in leases.items():
        await store.put(KEYS.member(name), MemberRecord(name, "2n").encode(), lease=lease)
    epoch = (await store.put(KEYS.active, ActiveRecord("a", secret=new_secret()).encode(),
                             lease=leases["a"])).revision
    await store.put(KEYS.progress, ProgressRecord("a", epoch - 1, 9, (("b", 3, 0.5),)).encode())
    status = await group_status(store, "/vnfha", "vfw")
    assert status.epoch == epoch
    assert all(m.lag_entries is None for m in status.members) and status.sequence is None
    assert [lag_text(m) for m in status.members] == ["-", "?"]

    await store.put(KEYS.progress, ProgressRecord("a", epoch, 9, (("b", 3, 0.5),)).encode())
    status = await group_status(store, "/vnfha", "vfw")
    b = next(m for m in status.members if m.member == "b")
    assert (b.lag_entries, b.lag_seconds, status.sequence) == (3, 0.5, 9)
    assert lag_text(b) == "3 / 500.0 ms"
    await store.put(KEYS.progress, b"{not json")
    status = await group_status(store, "/vnfha", "vfw")
    assert all(m.lag_entries is None for m in status.members)


async def test_no_progress_without_an_interval(store: MemoryStore) -> None:
    off = Config(group="vfw", member="a", progress_interval_s=None)
    async with Member(off, store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        assert a.progress is None
        await asyncio.sleep(0.3)
        assert await store.get(KEYS.progress) is None
