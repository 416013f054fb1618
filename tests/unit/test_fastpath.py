"""The standby lease's etcd side (``vnfha/roles/fastpath.py``) on an in-memory store: publishes
of the in-sync set compared with the record's revision, so one whose answer was lost cannot land
after a later one; a standby's takeover that may still apply keeps its promises stopped until
the watch shows it cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from vnfha.errors import NotActive, StoreError
from vnfha.replication.promise import PromiseTimers, StandbyPromises
from vnfha.roles.fastpath import StandbyLeaseTakeover, SyncPublisher
from vnfha.roles.handover import campaign_txn, sync_txn
from vnfha.roles.keys import ActiveRecord, GroupKeys, GroupState, SyncRecord, new_secret
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

KEYS = GroupKeys("/vnfha", "vfw")


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(FakeClock()) as s:
        yield s


async def active(store: MemoryStore) -> tuple[int, int]:
    """``a`` holds the active key: its epoch and lease (the campaign reset the in-sync set)."""
    lease = (await store.grant(10)).id
    res = await store.txn(*campaign_txn(KEYS, ActiveRecord("a", "a:1"), lease))
    assert res.succeeded
    return res.revision, lease


async def test_a_publish_lost_in_flight_cannot_land_after_a_later_one(store: MemoryStore) -> None:
    epoch, lease = await active(store)
    pub = SyncPublisher("a", store, KEYS)
    # the first publish (listing b) is compared with the campaign's revision; say its answer
    # was lost and etcd has not applied it yet: the next one, without b, compares the same
    await pub.publish(epoch, lease, ())
    late = await store.txn(*sync_txn(KEYS, "a", epoch, lease, (("b", 2),), sync_revision=epoch))
    assert not late.succeeded  # the confirmed publish moved the revision
    record = await store.get(KEYS.sync)
    assert record is not None and SyncRecord.decode(record.value).members == ()


async def test_a_moved_record_is_read_back_and_the_next_publish_lands(store: MemoryStore) -> None:
    epoch, lease = await active(store)
    pub = SyncPublisher("a", store, KEYS)
    # a publish whose answer was lost landed before this one: refused, the revision learnt
    await store.txn(*sync_txn(KEYS, "a", epoch, lease, (("b", 2),), sync_revision=epoch))
    with pytest.raises(StoreError, match="the in-sync record moved"):
        await pub.publish(epoch, lease, (("c", 3),))
    await pub.publish(epoch, lease, (("c", 3),))
    record = await store.get(KEYS.sync)
    assert record is not None and SyncRecord.decode(record.value).members == (("c", 3),)


async def test_a_deposed_active_publishes_nothing(store: MemoryStore) -> None:
    epoch, lease = await active(store)
    other = (await store.grant(10)).id
    assert (await store.txn(*campaign_txn(KEYS, ActiveRecord("b", "b:1"), other, epoch))).succeeded
    with pytest.raises(NotActive):
        await SyncPublisher("a", store, KEYS).publish(epoch, lease, (("b", 2),))


def state(epoch: int, sync_revision: int, listed: tuple[tuple[str, int], ...]) -> GroupState:
    s = GroupState(KEYS)
    s.set_active(ActiveRecord("a", "a:1", new_secret()), 1, epoch)
    s.leases["a"] = 1
    s.sync, s.sync_revision = SyncRecord("a", listed), sync_revision
    return s


def takeover(promises: StandbyPromises, clock: FakeClock) -> StandbyLeaseTakeover:
    replica: Any = SimpleNamespace(promises=promises)
    return StandbyLeaseTakeover("b", PromiseTimers(0.3, 0.05), replica, clock)


async def test_a_takeover_rests_on_the_lapse_only_while_listed_in_this_epoch() -> None:
    clock = FakeClock()
    promises = StandbyPromises(10, 0.3)
    promises.grant(clock.monotonic())
    fast = takeover(promises, clock)
    listed = state(10, 11, (("b", 2),))
    assert fast.lapsed(listed, 2, 10, 0) is None  # the promise holds
    await clock.advance(0.3)
    assert fast.lapsed(state(10, 9, (("b", 2),)), 2, 10, 0) is None  # a record of before
    assert fast.lapsed(state(10, 11, (("b", 3),)), 2, 10, 0) is None  # another incarnation
    assert "standby lease" in (fast.lapsed(listed, 2, 10, 0) or "")
    assert fast.gone_for(listed, 2, 0) == 10
    assert fast.hold(listed, 2, 10, 0) == 11 and promises.grant(clock.monotonic()) == 0


async def test_an_answer_lost_keeps_the_promises_stopped_until_the_takeover_cannot_apply() -> None:
    clock = FakeClock()
    promises = StandbyPromises(10, 0.3)
    promises.grant(clock.monotonic())
    await clock.advance(0.3)
    fast = takeover(promises, clock)
    listed = state(10, 11, (("b", 2),))
    assert fast.lapsed(listed, 2, 10, 0) is not None
    assert fast.hold(listed, 2, 10, 0) == 11
    fast.unknown(10, 11)
    fast.settle(listed)  # nothing moved: it may still apply
    assert promises.held and promises.grant(clock.monotonic()) == 0
    fast.settle(state(10, 12, ()))  # the active dropped b: the compare can no longer hold
    assert not promises.held and promises.grant(clock.monotonic()) == 0.3
