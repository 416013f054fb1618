"""MemoryStore on a fake clock: MVCC and txn details, exact lease expiry, the fault hooks, watch
resumption, and a model check of put/delete/txn against a plain dict.

The Store contract itself (shared with etcd) is in tests/contract; this file covers what only
the memory store has (fault hooks, exactness on a fake clock) and details the contract leaves
to etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnfha.errors import (
    Compacted,
    ConfigError,
    LeaseNotFound,
    StoreRequestError,
    StoreUnavailable,
)
from vnfha.store import (
    Compare,
    DeleteResult,
    EventType,
    PutResult,
    RangeResult,
    TxnDelete,
    TxnGet,
    TxnPut,
    WatchBatch,
)
from vnfha.store.memory import MemoryStore, MemoryWatch
from vnfha.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[MemoryStore]:
    async with MemoryStore(clock, min_lease_ttl_s=1, request_timeout_s=1.0) as s:
        yield s


def next_batch(w: MemoryWatch) -> asyncio.Future[WatchBatch]:
    """The watch's next batch, awaited in the background."""
    return asyncio.ensure_future(anext(w))


# -- MVCC and transactions ---------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"min_lease_ttl_s": 0}, "min_lease_ttl_s"),
    ({"request_timeout_s": 0.0}, "request_timeout_s"),
])
def test_invalid_settings_are_refused(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        MemoryStore(FakeClock(), **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == name


async def test_fresh_store_is_at_revision_one(store: MemoryStore) -> None:
    status = await store.status()
    assert (status.endpoint, status.version, status.revision) == ("memory", "memory", 1)
    assert (await store.put("k", b"v")).revision == 2


async def test_past_revisions_compaction_and_future_revisions(store: MemoryStore) -> None:
    r1 = (await store.put("k", b"1")).revision
    r2 = (await store.put("k", b"2")).revision
    r3 = (await store.delete("k")).revision
    r4 = (await store.put("k", b"4")).revision
    values = [[kv.value for kv in (await store.range("k", revision=r)).kvs]
              for r in (r1, r2, r3, r4)]
    assert values == [[b"1"], [b"2"], [], [b"4"]]
    kv = await store.get("k")
    assert kv is not None and (kv.create_revision, kv.version) == (r4, 1)
    with pytest.raises(StoreRequestError):
        await store.range("k", revision=r4 + 1)

    await store.compact(r3)  # the key is deleted at r3: reading at r3 must still work
    assert (await store.range("k", revision=r3)).kvs == ()
    assert (await store.range("k", revision=r4)).kvs[0].value == b"4"
    with pytest.raises(Compacted) as raised:
        await store.range("k", revision=r2)
    assert (raised.value.requested_revision, raised.value.compact_revision) == (r2, r3)


async def test_compaction_keeps_the_value_live_at_the_compaction_point(
    store: MemoryStore,
) -> None:
    await store.put("a", b"old")
    kept = await store.put("b", b"b")
    await store.put("c", b"c")
    await store.compact(kept.revision + 1)
    got = await store.range("a", revision=kept.revision + 1)
    assert [kv.value for kv in got.kvs] == [b"old"]


async def test_keys_are_ordered_as_utf8_bytes(store: MemoryStore) -> None:
    # "\udcff" is the raw byte 0xFF (surrogateescape): after U+E000 (EE 80 80) as bytes,
    # although its code point is smaller.
    for key in ["p/\udcff", "p/\ue000", "p/z", "p/a"]:
        await store.put(key, b"x")
    got = await store.range("p/", prefix=True)
    assert [kv.key for kv in got.kvs] == ["p/a", "p/z", "p/\ue000", "p/\udcff"]


async def test_limit_reports_more_and_the_total_count(store: MemoryStore) -> None:
    for i in range(3):
        await store.put(f"l/{i}", b"x")
    exact = await store.range("l/", prefix=True, limit=3)
    assert (len(exact.kvs), exact.count, exact.more) == (3, 3, False)
    cut = await store.range("l/", prefix=True, limit=1)
    assert ([kv.key for kv in cut.kvs], cut.count, cut.more) == (["l/0"], 3, True)


async def test_the_empty_key_is_refused_as_by_etcd(store: MemoryStore) -> None:
    with pytest.raises(StoreRequestError):
        await store.put("", b"x")
    with pytest.raises(StoreRequestError):
        await store.range("", prefix=True)


async def test_txn_reads_see_earlier_writes_of_the_same_txn(store: MemoryStore) -> None:
    start = store.revision
    result = await store.txn([], [TxnGet("t/", prefix=True), TxnPut("t/a", b"a"),
                                  TxnGet("t/", prefix=True)])
    before, put, after = result.responses
    assert isinstance(before, RangeResult) and before.kvs == () and before.revision == start
    assert isinstance(put, PutResult) and put.revision == start + 1
    assert isinstance(after, RangeResult) and [kv.value for kv in after.kvs] == [b"a"]
    assert result.revision == start + 1


async def test_txn_compares_see_the_state_before_any_op(store: MemoryStore) -> None:
    await store.put("x", b"1")
    result = await store.txn([Compare.value_of("x", "==", b"1")],
                             [TxnPut("x", b"2"), TxnPut("y", b"y")])
    assert result.succeeded
    # the same compare, now false: the failure branch runs
    again = await store.txn([Compare.value_of("x", "==", b"1")], [TxnPut("x", b"3")],
                            [TxnGet("x")])
    assert not again.succeeded
    (got,) = again.responses
    assert isinstance(got, RangeResult) and got.kvs[0].value == b"2"


async def test_txn_that_changes_nothing_keeps_the_revision(store: MemoryStore) -> None:
    start = store.revision
    result = await store.txn([], [TxnDelete("absent"), TxnGet("absent")])
    assert result.revision == start and store.revision == start
    deleted = result.responses[0]
    assert isinstance(deleted, DeleteResult) and deleted.deleted == 0


@pytest.mark.parametrize(
    "ops",
    [
        [TxnPut("d", b"1"), TxnPut("d", b"2")],
        [TxnDelete("d/", prefix=True), TxnPut("d/x", b"1")],
        [TxnPut("d", b"1"), TxnDelete("d")],
    ],
)
async def test_txn_overlapping_writes_are_refused_in_either_branch(
    store: MemoryStore, ops: list[TxnPut | TxnDelete]
) -> None:
    start = store.revision
    with pytest.raises(StoreRequestError, match="duplicate key"):
        await store.txn([], ops)
    # etcd checks the branch not taken too
    with pytest.raises(StoreRequestError, match="duplicate key"):
        await store.txn([], [TxnPut("other", b"x")], ops)
    assert store.revision == start and await store.get("other") is None


async def test_a_put_with_an_unknown_lease_is_refused_before_anything_is_applied(
    store: MemoryStore,
) -> None:
    start = store.revision
    with pytest.raises(StoreRequestError, match="requested lease not found"):
        await store.txn([], [TxnPut("a", b"a"), TxnPut("b", b"b", lease=77)])
    assert store.revision == start and await store.get("a") is None


# -- leases ------------------------------------------------------------------------------------


async def test_grant_raises_small_ttls_to_the_minimum(clock: FakeClock) -> None:
    async with MemoryStore(clock, min_lease_ttl_s=3) as store:
        ttls = [(await store.grant(ttl)).ttl_s for ttl in (-1, 0, 2, 3, 7)]
        assert ttls == [3, 3, 3, 3, 7]
        with pytest.raises(StoreRequestError):
            await store.grant(9_000_000_001)


async def test_lease_ids_are_random_positive_and_unique(store: MemoryStore) -> None:
    ids = [(await store.grant(5)).id for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(0 < i < 2**63 for i in ids)
    assert max(ids) > 2**40  # not a counter from 1


async def test_expiry_is_exact_on_the_fake_clock(store: MemoryStore, clock: FakeClock) -> None:
    lease = await store.grant(2)
    await store.put("e/a", b"a", lease=lease.id)
    await store.put("e/b", b"b", lease=lease.id)
    await store.put("e/free", b"f")
    async with store.watch("e/", prefix=True) as w:
        await clock.advance(2 - 1e-6)
        assert await store.get("e/a") is not None
        assert (await store.time_to_live(lease.id)).ttl_s == 0  # truncated, as etcd does
        before = store.revision
        batch = next_batch(w)
        await clock.advance(1e-6)
        # gone by the background task alone, no request needed, in one revision
        assert store.revision == before + 1
        assert batch.done()
        events = batch.result().events
    assert [(e.type, e.kv.key) for e in events] == [
        (EventType.DELETE, "e/a"), (EventType.DELETE, "e/b")]
    assert {e.kv.mod_revision for e in events} == {before + 1}
    assert await store.get("e/free") is not None
    with pytest.raises(LeaseNotFound):
        await store.keepalive(lease.id)


async def test_a_request_after_the_deadline_never_sees_the_lease(
    store: MemoryStore, clock: FakeClock
) -> None:
    lease = await store.grant(1)
    await store.put("k", b"v", lease=lease.id)
    clock.jump(1.0)  # no settling: the expiry task has not run yet
    assert await store.get("k") is None
    with pytest.raises(LeaseNotFound):
        await store.time_to_live(lease.id)


async def test_keepalive_moves_the_deadline(store: MemoryStore, clock: FakeClock) -> None:
    lease = await store.grant(2)
    await store.put("k", b"v", lease=lease.id)
    await clock.advance(1.5)
    assert await store.keepalive(lease.id) == 2
    assert (await store.time_to_live(lease.id)).ttl_s == 2
    await clock.advance(2 - 1e-6)  # past the first deadline, before the new one
    assert store.revision == 2 and await store.get("k") is not None
    await clock.advance(1e-6)
    assert store.revision == 3


async def test_a_shorter_new_lease_rearms_the_expiry_task(
    store: MemoryStore, clock: FakeClock
) -> None:
    long = await store.grant(10)
    await store.put("long", b"l", lease=long.id)
    await clock.advance(0.5)
    short = await store.grant(1)
    await store.put("short", b"s", lease=short.id)
    before = store.revision
    await clock.advance(1.0)
    assert store.revision == before + 1  # deleted at t+1, without any request
    assert await store.get("short") is None and await store.get("long") is not None


async def test_time_to_live_truncates_and_lists_keys_in_order(
    store: MemoryStore, clock: FakeClock
) -> None:
    lease = await store.grant(3)
    for key in ("z", "a", "m"):
        await store.put(key, b"x", lease=lease.id)
    info = await store.time_to_live(lease.id, keys=True)
    assert (info.ttl_s, info.granted_ttl_s, info.keys) == (3, 3, ("a", "m", "z"))
    await clock.advance(0.5)
    assert (await store.time_to_live(lease.id)).ttl_s == 2
    assert (await store.time_to_live(lease.id)).keys == ()


async def test_rebinding_a_key_takes_it_off_its_old_lease(
    store: MemoryStore, clock: FakeClock
) -> None:
    lease = await store.grant(1)
    await store.put("k", b"leased", lease=lease.id)
    await store.put("k", b"free")
    assert (await store.time_to_live(lease.id, keys=True)).keys == ()
    await clock.advance(1.0)
    kv = await store.get("k")
    assert kv is not None and (kv.value, kv.lease) == (b"free", 0)


async def test_revoke_deletes_in_one_revision_and_only_if_there_are_keys(
    store: MemoryStore,
) -> None:
    empty = await store.grant(5)
    start = store.revision
    await store.revoke(empty.id)
    assert store.revision == start
    full = await store.grant(5)
    await store.put("a", b"a", lease=full.id)
    await store.put("b", b"b", lease=full.id)
    await store.revoke(full.id)
    assert store.revision == start + 3
    assert (await store.range("a")).kvs == () and (await store.range("b")).kvs == ()
    for call in (store.revoke, store.keepalive, store.time_to_live):
        with pytest.raises(LeaseNotFound) as raised:
            await call(full.id)
        assert raised.value.lease_id == full.id


# -- fault hooks -------------------------------------------------------------------------------


async def test_unavailable_refuses_every_request_at_once(store: MemoryStore) -> None:
    lease = await store.grant(5)
    store.set_unavailable(True)
    calls = [store.get("k"), store.put("k", b"v"), store.txn([], [TxnPut("k", b"v")]),
             store.keepalive(lease.id), store.grant(1), store.status()]
    for call in calls:
        with pytest.raises(StoreUnavailable) as raised:
            await call
        assert raised.value.outcome_unknown is False
    store.set_unavailable(False)
    assert await store.get("k") is None
    assert store.calls["get"] == 2 and store.calls["put"] == 1 and store.calls["grant"] == 2


async def test_pause_blocks_requests_until_resumed(store: MemoryStore, clock: FakeClock) -> None:
    store.pause()
    put = asyncio.create_task(store.put("k", b"v"))
    await clock.advance(0.9)
    assert not put.done()
    store.resume()
    await clock.settle()
    assert put.done() and put.result().revision == 2


async def test_paused_requests_time_out_on_the_clock(store: MemoryStore, clock: FakeClock) -> None:
    store.pause()
    write = asyncio.create_task(store.put("k", b"v"))
    read = asyncio.create_task(store.get("k"))
    quick = asyncio.create_task(store.delete("k", timeout_s=0.25))
    await clock.advance(0.25)
    assert quick.done() and not write.done()
    with pytest.raises(StoreUnavailable) as deleted:
        quick.result()
    assert deleted.value.outcome_unknown is True
    await clock.advance(0.75)
    with pytest.raises(StoreUnavailable) as written:
        write.result()
    with pytest.raises(StoreUnavailable) as got:
        read.result()
    assert written.value.outcome_unknown is True  # a write: the client cannot know
    assert got.value.outcome_unknown is False
    store.resume()
    assert await store.get("k") is None and store.revision == 1  # timed out: never applied


async def test_leases_expire_while_paused(store: MemoryStore, clock: FakeClock) -> None:
    lease = await store.grant(1)
    await store.put("k", b"v", lease=lease.id)
    store.pause()
    keepalive = asyncio.create_task(store.keepalive(lease.id, timeout_s=5.0))
    await clock.advance(1.0)
    assert store.revision == 3  # the keys went at the deadline, while paused
    store.resume()
    with pytest.raises(LeaseNotFound):
        await keepalive


async def test_fail_next_without_applying(store: MemoryStore) -> None:
    store.fail_next(2, outcome_unknown=True)
    with pytest.raises(StoreUnavailable) as first:
        await store.put("k", b"1")
    with pytest.raises(StoreUnavailable) as second:
        await store.get("k")
    assert first.value.outcome_unknown and second.value.outcome_unknown
    assert await store.get("k") is None and store.revision == 1


async def test_fail_next_applied_loses_only_the_reply(store: MemoryStore) -> None:
    store.fail_next(applied=True)
    with pytest.raises(StoreUnavailable) as raised:
        await store.put("k", b"1")
    assert raised.value.outcome_unknown is True
    kv = await store.get("k")
    assert kv is not None and kv.value == b"1"
    # a lost keepalive reply: the lease was renewed all the same
    lease = await store.grant(2)
    store.fail_next(applied=True)
    with pytest.raises(StoreUnavailable) as lost:
        await store.keepalive(lease.id)
    assert lost.value.outcome_unknown is False  # not a write
    assert store.calls["keepalive"] == 1


async def test_fail_next_queues_up_and_then_stops(store: MemoryStore) -> None:
    store.fail_next()
    store.fail_next(applied=True)
    with pytest.raises(StoreUnavailable):
        await store.put("a", b"a")
    with pytest.raises(StoreUnavailable):
        await store.put("b", b"b")
    await store.put("c", b"c")
    assert await store.get("a") is None  # failed before being applied
    assert await store.get("b") is not None  # applied, reply lost
    assert await store.get("c") is not None  # the queue is empty again


async def test_a_watch_resumes_after_unavailability_without_loss(
    store: MemoryStore, clock: FakeClock
) -> None:
    lease = await store.grant(1)
    await store.put("w/lease", b"l", lease=lease.id)
    async with store.watch("w/", prefix=True, start_revision=2, prev_kv=True) as w:
        seen: list[tuple[EventType, str, int]] = []
        first = await next_batch(w)
        seen += [(e.type, e.kv.key, e.kv.mod_revision) for e in first.events]
        await store.put("w/a", b"1")  # committed, not yet delivered when the partition starts
        store.set_unavailable(True)
        pending = next_batch(w)
        await clock.advance(1.0)  # the lease expires during the partition
        assert not pending.done()
        store.set_unavailable(False)
        await clock.settle()
        assert pending.done()
        seen += [(e.type, e.kv.key, e.kv.mod_revision) for e in pending.result().events]
        await store.put("w/a", b"2")
        last = await next_batch(w)
        seen += [(e.type, e.kv.key, e.kv.mod_revision) for e in last.events]
    assert seen == [
        (EventType.PUT, "w/lease", 2),
        (EventType.PUT, "w/a", 3),
        (EventType.DELETE, "w/lease", 4),
        (EventType.PUT, "w/a", 5),
    ]
    assert last.events[0].prev_kv is not None and last.events[0].prev_kv.value == b"1"


async def test_a_paused_store_stalls_watches_until_resumed(
    store: MemoryStore, clock: FakeClock
) -> None:
    async with store.watch("k") as w:
        await store.put("k", b"1")
        store.pause()
        pending = next_batch(w)
        await clock.advance(10.0)
        assert not pending.done()
        store.resume()
        batch = await pending
    assert [e.kv.value for e in batch.events] == [b"1"]


# -- watches -----------------------------------------------------------------------------------


async def test_a_watch_from_now_starts_when_entered(store: MemoryStore) -> None:
    w = store.watch("k")
    await store.put("k", b"before enter")
    async with w:
        await store.put("k", b"after enter")
        batch = await next_batch(w)
    assert [e.kv.value for e in batch.events] == [b"after enter"]
    assert batch.revision == store.revision


async def test_events_carry_prev_kv_only_when_asked(store: MemoryStore) -> None:
    await store.put("k", b"1")
    async with store.watch("k", start_revision=2) as plain, \
            store.watch("k", start_revision=2, prev_kv=True) as rich:
        await store.put("k", b"2")
        plain_events = (await next_batch(plain)).events
        rich_events = (await next_batch(rich)).events
    assert [e.prev_kv for e in plain_events] == [None, None]
    assert rich_events[0].prev_kv is None  # a creation has no previous value
    assert rich_events[1].prev_kv is not None and rich_events[1].prev_kv.value == b"1"


async def test_a_compacted_watch_raises_once_then_ends(store: MemoryStore) -> None:
    await store.put("k", b"1")
    await store.put("k", b"2")
    await store.compact(3)
    w = store.watch("k", start_revision=2)
    with pytest.raises(Compacted) as raised:
        await anext(w)
    assert (raised.value.requested_revision, raised.value.compact_revision) == (2, 3)
    with pytest.raises(StopAsyncIteration):
        await anext(w)
    with pytest.raises(Compacted):
        await store.compact(3)


async def test_cancel_from_another_task_ends_a_waiting_iteration(store: MemoryStore) -> None:
    w = store.watch("k")
    async with w:
        waiting = next_batch(w)
        await asyncio.sleep(0)
        await w.cancel()
        with pytest.raises(StopAsyncIteration):
            await waiting
    assert store.calls["watch"] == 1


async def test_close_ends_watches_and_fails_requests(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    lease = await store.grant(5)
    w = store.watch("k")
    async with w:
        waiting = next_batch(w)
        store.pause()
        blocked = asyncio.create_task(store.get("k"))
        await asyncio.sleep(0)
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await waiting
        with pytest.raises(StoreUnavailable, match="closed"):
            await blocked
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.keepalive(lease.id)


# -- model check -------------------------------------------------------------------------------

KEYS = ["k/a", "k/ab", "k/b", "k/b/c", "k/é"]
VALUES = [b"", b"0", b"1", b"2"]


@dataclass
class Model:
    """Plain dicts: key -> (value, create_revision, mod_revision, version), per revision."""

    revision: int = 1
    live: dict[str, tuple[bytes, int, int, int]] = field(default_factory=dict)
    past: dict[int, dict[str, tuple[bytes, int, int, int]]] = field(default_factory=dict)

    def put(self, key: str, value: bytes, rev: int) -> None:
        old = self.live.get(key)
        self.live[key] = (value, old[1] if old else rev, rev, old[3] + 1 if old else 1)

    def matching(self, key: str, prefix: bool) -> list[str]:
        return sorted(k for k in self.live
                      if (k.encode().startswith(key.encode()) if prefix else k == key))

    def holds(self, cmp: tuple[str, str, int | bytes]) -> bool:
        kind, key, value = cmp
        old = self.live.get(key)
        if kind == "value":
            return old is not None and old[0] == value
        return (old[3] if old else 0) == value

    def commit(self, changed: bool) -> None:
        if changed:
            self.revision += 1
            self.past[self.revision] = dict(self.live)


ops_on_keys = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.booleans()),
    st.tuples(st.just("get"), st.sampled_from(KEYS), st.booleans()),
)
compares = st.one_of(
    st.tuples(st.just("version"), st.sampled_from(KEYS), st.integers(0, 2)),
    st.tuples(st.just("value"), st.sampled_from(KEYS), st.sampled_from(VALUES)),
)
steps = st.one_of(
    ops_on_keys,
    st.tuples(st.just("txn"), st.lists(compares, max_size=2),
              st.lists(ops_on_keys, max_size=4), st.lists(ops_on_keys, max_size=3)),
)


def as_op(op: tuple[str, str, object]) -> TxnPut | TxnDelete | TxnGet:
    kind, key, arg = op
    if kind == "put":
        assert isinstance(arg, bytes)
        return TxnPut(key, arg)
    assert isinstance(arg, bool)
    return TxnDelete(key, prefix=arg) if kind == "delete" else TxnGet(key, prefix=arg)


def as_compare(cmp: tuple[str, str, int | bytes]) -> Compare:
    kind, key, value = cmp
    if kind == "value":
        assert isinstance(value, bytes)
        return Compare.value_of(key, "==", value)
    assert isinstance(value, int)
    return Compare.version(key, "==", value)


def overlapping(ops: list[tuple[str, str, object]]) -> bool:
    """The model's version of etcd's duplicate-key rule."""
    puts = [key for kind, key, _ in ops if kind == "put"]
    deletes = [(key, arg) for kind, key, arg in ops if kind == "delete"]
    return len(set(puts)) < len(puts) or any(
        (p.encode().startswith(d.encode()) if prefix else p == d)
        for p in puts for d, prefix in deletes)


async def run_against_model(steps_: list[tuple[object, ...]]) -> None:
    model = Model()
    model.past[1] = {}
    async with MemoryStore(FakeClock()) as store:
        for step in steps_:
            kind = step[0]
            if kind == "put":
                _, key, value = step
                result = await store.put(key, value)
                model.put(key, value, model.revision + 1)
                model.commit(True)
                assert result.revision == model.revision
            elif kind == "delete":
                _, key, prefix = step
                gone = model.matching(key, prefix)
                deleted = await store.delete(key, prefix=prefix)
                for k in gone:
                    del model.live[k]
                model.commit(bool(gone))
                assert (deleted.deleted, deleted.revision) == (len(gone), model.revision)
            elif kind == "get":
                _, key, prefix = step
                got = await store.range(key, prefix=prefix)
                assert [kv.key for kv in got.kvs] == model.matching(key, prefix)
            else:
                _, cmps, success, failure = step
                await check_txn(store, model, cmps, success, failure)
            assert store.revision == model.revision
            everything = await store.range("k/", prefix=True)
            assert {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
                    for kv in everything.kvs} == model.live
        for rev, state in model.past.items():
            got = await store.range("k/", prefix=True, revision=rev)
            assert {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
                    for kv in got.kvs} == state, rev


async def check_txn(store: MemoryStore, model: Model, cmps: list, success: list,
                    failure: list) -> None:
    call = store.txn([as_compare(c) for c in cmps], [as_op(o) for o in success],
                     [as_op(o) for o in failure])
    if overlapping(success) or overlapping(failure):
        with pytest.raises(StoreRequestError):
            await call
        return
    result = await call
    holds = all(model.holds(c) for c in cmps)
    assert result.succeeded is holds
    rev, changed, reads = model.revision + 1, False, []
    for kind, key, arg in success if holds else failure:
        if kind == "put":
            model.put(key, arg, rev)
            changed = True
        elif kind == "delete":
            for k in model.matching(key, arg):
                del model.live[k]
                changed = True
        else:
            reads.append([(k, model.live[k][0]) for k in model.matching(key, arg)])
    model.commit(changed)
    assert result.revision == model.revision
    got = [[(kv.key, kv.value) for kv in r.kvs] for r in result.responses
           if isinstance(r, RangeResult)]
    assert got == reads


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, max_size=25))
def test_put_delete_txn_agree_with_a_dict_model(steps_: list[tuple[object, ...]]) -> None:
    asyncio.run(run_against_model(steps_))
