"""One Store contract, run against the in-memory store and against real etcd (1 and 3 members).

Every test here must pass on all three; a test that cannot be expressed for one of them belongs
in tests/integration instead. Revisions are store-wide and the etcd clusters are shared by the
whole run, so tests reason about revisions they observed, never about absolute numbers, and use
a key prefix of their own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from vnfha.errors import Compacted, LeaseNotFound, StoreRequestError
from vnfha.store import (
    Compare,
    Event,
    EventType,
    PutResult,
    RangeResult,
    Store,
    TxnDelete,
    TxnGet,
    TxnPut,
    Watch,
)
from vnfha.store.etcd import EtcdStore
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

_ids = itertools.count()


@dataclass
class Harness:
    """The store under test, a second client of the same store, and how time passes."""

    store: Store
    other: Store
    kind: str
    prefix: str
    clock: FakeClock | None

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def let_time_pass(self, seconds: float) -> None:
        """Fake stores jump their clock; real ones wait for real."""
        if self.clock is not None:
            await self.clock.advance(seconds, step=0.05)
        else:
            await asyncio.sleep(seconds)

    async def events(self, watch: Watch, count: int, timeout_s: float = 10.0) -> list[Event]:
        """The next ``count`` events of ``watch`` (across batches)."""
        out: list[Event] = []

        async def collect() -> None:
            async for batch in watch:
                out.extend(batch.events)
                if len(out) >= count:
                    return

        await asyncio.wait_for(collect(), timeout_s)
        return out


@pytest.fixture(params=["memory", "etcd-1", "etcd-3"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    prefix = f"/contract/{request.node.name}/{next(_ids)}/"
    if request.param == "memory":
        clock = FakeClock()
        async with MemoryStore(clock, min_lease_ttl_s=1) as store:
            yield Harness(store, store, "memory", prefix, clock)
        return
    cluster = request.getfixturevalue("etcd1" if request.param == "etcd-1" else "etcd3")
    endpoints = cluster.endpoints
    async with (
        EtcdStore.connect(endpoints, request_timeout_s=3.0) as store,
        EtcdStore.connect(tuple(reversed(endpoints)), request_timeout_s=3.0) as other,
    ):
        yield Harness(store, other, request.param, prefix, None)


# -- revisions ---------------------------------------------------------------------------------


async def test_each_mutation_raises_the_revision_by_one(h: Harness) -> None:
    k = h.key("a")
    r1 = await h.store.put(k, b"1")
    r2 = await h.store.put(k, b"2")
    assert r2.revision == r1.revision + 1
    kv = await h.store.get(k)
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (
        b"2", r1.revision, r2.revision, 2)
    # a delete of nothing changes nothing
    d0 = await h.store.delete(h.key("absent"))
    assert (d0.deleted, d0.revision) == (0, r2.revision)
    d1 = await h.store.delete(k)
    assert (d1.deleted, d1.revision) == (1, r2.revision + 1)
    assert await h.store.get(k) is None
    # re-creating starts a new life: version 1, new create revision
    r3 = await h.store.put(k, b"3")
    kv = await h.store.get(k)
    assert kv is not None
    assert (kv.create_revision, kv.version) == (r3.revision, 1)


async def test_put_returns_the_previous_value_when_asked(h: Harness) -> None:
    k = h.key("p")
    first = await h.store.put(k, b"old", prev_kv=True)
    assert first.prev_kv is None
    second = await h.store.put(k, b"new", prev_kv=True)
    assert second.prev_kv is not None and second.prev_kv.value == b"old"


async def test_range_prefix_limit_count_and_past_revisions(h: Harness) -> None:
    revs = [(await h.store.put(h.key(f"r/{i}"), str(i).encode())).revision for i in range(5)]
    await h.store.put(h.key("rx"), b"outside the prefix")
    got = await h.store.range(h.key("r/"), prefix=True)
    assert [kv.key for kv in got.kvs] == [h.key(f"r/{i}") for i in range(5)]
    assert got.count == 5 and not got.more
    limited = await h.store.range(h.key("r/"), prefix=True, limit=2)
    assert len(limited.kvs) == 2 and limited.count == 5 and limited.more
    await h.store.put(h.key("r/0"), b"changed")
    old = await h.store.range(h.key("r/"), prefix=True, revision=revs[2])
    assert [kv.value for kv in old.kvs] == [b"0", b"1", b"2"]
    with pytest.raises(StoreRequestError):
        await h.store.range(h.key("r/"), prefix=True, revision=got.revision + 1000)


# -- transactions ------------------------------------------------------------------------------


async def test_txn_create_if_absent_is_a_compare_and_swap(h: Harness) -> None:
    k = h.key("leader")
    absent = Compare.create_revision(k, "==", 0)
    won = await h.store.txn([absent], [TxnPut(k, b"me")], [TxnGet(k)])
    assert won.succeeded and isinstance(won.responses[0], PutResult)
    lost = await h.other.txn([absent], [TxnPut(k, b"other")], [TxnGet(k)])
    assert not lost.succeeded
    seen = lost.responses[0]
    assert isinstance(seen, RangeResult) and seen.kvs[0].value == b"me"
    assert seen.kvs[0].create_revision == won.revision


@pytest.mark.parametrize(
    ("make", "holds"),
    [
        (lambda k, kv: Compare.mod_revision(k, "==", kv.mod_revision), True),
        (lambda k, kv: Compare.mod_revision(k, "<", kv.mod_revision), False),
        (lambda k, kv: Compare.mod_revision(k, ">", kv.mod_revision - 1), True),
        (lambda k, kv: Compare.create_revision(k, "!=", 0), True),
        (lambda k, kv: Compare.version(k, "==", 2), True),
        (lambda k, kv: Compare.version(k, ">", 2), False),
        (lambda k, kv: Compare.value_of(k, "==", b"v2"), True),
        (lambda k, kv: Compare.value_of(k, "!=", b"v2"), False),
        (lambda k, kv: Compare.value_of(k, ">", b"v1"), True),
        (lambda k, kv: Compare.lease(k, "==", 0), True),
    ],
)
async def test_txn_compares(h: Harness, make: object, holds: bool) -> None:
    k = h.key("c")
    await h.store.put(k, b"v1")
    await h.store.put(k, b"v2")
    kv = await h.store.get(k)
    assert kv is not None
    result = await h.store.txn([make(k, kv)])  # type: ignore[operator]
    assert result.succeeded is holds


async def test_txn_compares_on_a_missing_key(h: Harness) -> None:
    k = h.key("missing")
    for cmp, holds in [
        (Compare.version(k, "==", 0), True),
        (Compare.mod_revision(k, "==", 0), True),
        (Compare.lease(k, "==", 0), True),
        (Compare.value_of(k, "==", b""), False),
    ]:
        assert (await h.store.txn([cmp])).succeeded is holds, cmp


async def test_txn_applies_all_its_ops_at_one_revision(h: Harness) -> None:
    before = await h.store.put(h.key("t/gone"), b"x")
    result = await h.store.txn(
        [], [TxnPut(h.key("t/a"), b"a"), TxnPut(h.key("t/b"), b"b"), TxnDelete(h.key("t/gone")),
             TxnGet(h.key("t/"), prefix=True)],
    )
    assert result.succeeded and result.revision == before.revision + 1
    a, b = await h.store.get(h.key("t/a")), await h.store.get(h.key("t/b"))
    assert a is not None and b is not None
    assert a.mod_revision == b.mod_revision == result.revision
    listing = result.responses[3]
    assert isinstance(listing, RangeResult)
    assert [kv.key for kv in listing.kvs] == [h.key("t/a"), h.key("t/b")]


async def test_txn_with_a_duplicate_key_is_refused(h: Harness) -> None:
    k = h.key("dup")
    with pytest.raises(StoreRequestError):
        await h.store.txn([], [TxnPut(k, b"1"), TxnPut(k, b"2")])
    assert await h.store.get(k) is None


# -- leases ------------------------------------------------------------------------------------


async def test_grant_reports_the_ttl_granted_and_time_to_live_agrees(h: Harness) -> None:
    lease = await h.store.grant(1)
    assert lease.ttl_s >= 1
    await h.store.put(h.key("l"), b"x", lease=lease.id)
    info = await h.other.time_to_live(lease.id, keys=True)
    assert info.granted_ttl_s == lease.ttl_s
    assert 0 <= info.ttl_s <= lease.ttl_s
    assert info.keys == (h.key("l"),)
    kv = await h.store.get(h.key("l"))
    assert kv is not None and kv.lease == lease.id


async def test_keepalive_keeps_the_lease_and_its_keys(h: Harness) -> None:
    lease = await h.store.grant(1)
    await h.store.put(h.key("kept"), b"x", lease=lease.id)
    for _ in range(8):  # 2.4 s, more than twice the TTL
        await h.let_time_pass(0.3)
        assert await h.store.keepalive(lease.id) == lease.ttl_s
    assert await h.store.get(h.key("kept")) is not None


async def test_expiry_deletes_the_keys_and_watchers_see_it(h: Harness) -> None:
    lease = await h.store.grant(1)
    a = await h.store.put(h.key("e/a"), b"a", lease=lease.id)
    await h.store.put(h.key("e/b"), b"b", lease=lease.id)
    async with h.other.watch(h.key("e/"), prefix=True, start_revision=a.revision) as w:
        puts = await h.events(w, 2)
        assert [e.type for e in puts] == [EventType.PUT, EventType.PUT]
        await h.let_time_pass(lease.ttl_s + 1.0)
        deletes = await h.events(w, 2)
    assert {e.kv.key for e in deletes} == {h.key("e/a"), h.key("e/b")}
    assert all(e.type is EventType.DELETE for e in deletes)
    assert deletes[0].kv.mod_revision == deletes[1].kv.mod_revision  # one revision
    assert await h.store.get(h.key("e/a")) is None
    with pytest.raises(LeaseNotFound):
        await h.store.keepalive(lease.id)


async def test_revoke_by_another_client_deletes_the_keys(h: Harness) -> None:
    lease = await h.store.grant(5)
    put = await h.store.put(h.key("rv"), b"x", lease=lease.id)
    async with h.store.watch(h.key("rv"), start_revision=put.revision + 1) as w:
        await h.other.revoke(lease.id)
        (event,) = await h.events(w, 1)
    assert event.type is EventType.DELETE and event.kv.key == h.key("rv")
    with pytest.raises(LeaseNotFound):
        await h.store.keepalive(lease.id)
    with pytest.raises(LeaseNotFound):
        await h.store.time_to_live(lease.id)
    with pytest.raises(LeaseNotFound):
        await h.other.revoke(lease.id)


async def test_put_with_an_unknown_lease_is_refused(h: Harness) -> None:
    with pytest.raises(StoreRequestError):
        await h.store.put(h.key("orphan"), b"x", lease=0x1234_5678_9ABC)
    assert await h.store.get(h.key("orphan")) is None


# -- watches -----------------------------------------------------------------------------------


async def test_watch_from_a_past_revision_replays_in_order(h: Harness) -> None:
    k = h.key("w/")
    first = await h.store.put(k + "1", b"a")
    await h.store.put(k + "1", b"b")
    await h.store.delete(k + "1")
    await h.store.put(h.key("not-watched"), b"x")
    async with h.other.watch(k, prefix=True, start_revision=first.revision, prev_kv=True) as w:
        await h.store.put(k + "2", b"live")
        events = await h.events(w, 4)
    assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (EventType.PUT, k + "1", b"a"),
        (EventType.PUT, k + "1", b"b"),
        (EventType.DELETE, k + "1", b""),
        (EventType.PUT, k + "2", b"live"),
    ]
    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(revisions) and revisions[0] == first.revision
    assert events[1].prev_kv is not None and events[1].prev_kv.value == b"a"
    assert events[2].prev_kv is not None and events[2].prev_kv.value == b"b"


async def test_watch_from_now_sees_only_later_events(h: Harness) -> None:
    k = h.key("now")
    await h.store.put(k, b"before")
    async with h.store.watch(k) as w:
        await h.store.put(k, b"after")
        (event,) = await h.events(w, 1)
    assert event.kv.value == b"after"


async def test_cancel_ends_the_iteration(h: Harness) -> None:
    w = h.store.watch(h.key("c"))
    async with w:
        await w.cancel()
        batches = [b async for b in w]
    assert batches == []


async def test_compaction_is_reported(h: Harness) -> None:
    k = h.key("cmp")
    old = await h.store.put(k, b"1")
    await h.store.put(k, b"2")
    latest = await h.store.put(k, b"3")
    await h.store.compact(latest.revision)
    with pytest.raises(Compacted) as raised:
        async with h.store.watch(k, start_revision=old.revision) as w:
            await h.events(w, 1, timeout_s=5.0)
    assert raised.value.requested_revision == old.revision
    with pytest.raises(Compacted):
        await h.store.range(k, revision=old.revision)
    # compacting again at or below the compacted revision is reported the same way
    with pytest.raises(Compacted):
        await h.store.compact(old.revision)
    # ...and a compaction in the future is refused
    with pytest.raises(StoreRequestError):
        await h.store.compact(latest.revision + 1000)
    # the history from the compaction point on is still there
    async with h.store.watch(k, start_revision=latest.revision) as w:
        (event,) = await h.events(w, 1)
    assert event.kv.value == b"3"


async def test_status_names_the_endpoint_and_a_current_revision(h: Harness) -> None:
    put = await h.store.put(h.key("s"), b"x")
    status = await h.store.status()
    assert status.endpoint == h.store.endpoint
    assert status.revision >= put.revision
