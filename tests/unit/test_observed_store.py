"""ObservedStore over a MemoryStore on a fake clock: every request passes through unchanged,
every StoreError is reported with its kind of request and re-raised as it came, a failing
listener changes nothing, watches pass through unobserved, close closes the inner store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from vnfha.errors import LeaseNotFound, StoreError, StoreUnavailable
from vnfha.store import Compare, EventType, TxnPut
from vnfha.store.memory import MemoryStore
from vnfha.store.observed import EtcdRequest, ObservedStore
from vnfha.testing import FakeClock

Reported = list[tuple[EtcdRequest, StoreError]]


@pytest.fixture
async def inner() -> AsyncIterator[MemoryStore]:
    async with MemoryStore(FakeClock(start=100.0)) as s:
        yield s


@pytest.fixture
def reported() -> Reported:
    return []


@pytest.fixture
def store(inner: MemoryStore, reported: Reported) -> ObservedStore:
    return ObservedStore(inner, on_error=lambda request, error: reported.append((request, error)))


Call = Callable[[ObservedStore], Awaitable[object]]

CALLS: list[tuple[str, EtcdRequest, Call]] = [
    ("get", EtcdRequest.READ, lambda s: s.get("k")),
    ("range", EtcdRequest.READ, lambda s: s.range("k", prefix=True)),
    ("time_to_live", EtcdRequest.READ, lambda s: s.time_to_live(1)),
    ("status", EtcdRequest.READ, lambda s: s.status()),
    ("put", EtcdRequest.WRITE, lambda s: s.put("k", b"v")),
    ("delete", EtcdRequest.WRITE, lambda s: s.delete("k")),
    ("txn", EtcdRequest.WRITE,
     lambda s: s.txn([Compare.version("k", "==", 0)], [TxnPut("k", b"v")])),
    ("compact", EtcdRequest.WRITE, lambda s: s.compact(1)),
    ("grant", EtcdRequest.LEASE, lambda s: s.grant(5)),
    ("revoke", EtcdRequest.LEASE, lambda s: s.revoke(1)),
    ("keepalive", EtcdRequest.KEEPALIVE, lambda s: s.keepalive(1)),
]


@pytest.mark.parametrize(("method", "request_kind", "call"), CALLS, ids=[c[0] for c in CALLS])
async def test_each_failed_request_is_reported_with_its_kind_then_raised_unchanged(
        store: ObservedStore, inner: MemoryStore, reported: Reported, method: str,
        request_kind: EtcdRequest, call: Call) -> None:
    inner.fail_next()
    with pytest.raises(StoreUnavailable) as raised:
        await call(store)
    assert inner.calls[method] == 1
    assert reported == [(request_kind, raised.value)]
    assert reported[0][1] is raised.value


async def test_requests_pass_through_with_their_results(
        store: ObservedStore, inner: MemoryStore, reported: Reported) -> None:
    lease = await store.grant(5)
    put = await store.put("a/k", b"v", lease=lease.id)
    assert put.revision == inner.revision
    kv = await store.get("a/k")
    assert kv is not None and kv.value == b"v" and kv.lease == lease.id
    assert (await store.range("a/", prefix=True)).count == 1
    txn = await store.txn([Compare.version("a/k", "==", 1)], [TxnPut("a/k", b"w", lease.id)])
    assert txn.succeeded
    assert await store.keepalive(lease.id) == 5
    assert (await store.time_to_live(lease.id, keys=True)).keys == ("a/k",)
    assert (await store.status()).revision == inner.revision
    await store.compact(inner.revision)
    assert (await store.delete("a/", prefix=True)).deleted == 1
    await store.revoke(lease.id)
    assert store.endpoint == inner.endpoint == "memory"
    assert store.inner is inner
    assert reported == []


async def test_an_error_the_store_raises_itself_is_reported(
        store: ObservedStore, reported: Reported) -> None:
    with pytest.raises(LeaseNotFound) as raised:
        await store.revoke(0x77)
    assert reported == [(EtcdRequest.LEASE, raised.value)]


async def test_a_failing_listener_is_logged_and_the_caller_gets_the_stores_error(
        inner: MemoryStore, caplog: pytest.LogCaptureFixture) -> None:
    def broken(request: EtcdRequest, error: StoreError) -> None:
        raise RuntimeError("listener bug")

    store = ObservedStore(inner, on_error=broken)
    inner.fail_next()
    with caplog.at_level(logging.ERROR, logger="vnfha.store"), \
            pytest.raises(StoreUnavailable, match="injected failure"):
        await store.put("k", b"v")
    assert "store error listener" in caplog.text and "listener bug" in caplog.text
    assert (await store.put("k", b"v")).revision == inner.revision  # and the next one works


async def test_the_watch_is_the_inner_stores_and_unobserved(
        store: ObservedStore, inner: MemoryStore, reported: Reported) -> None:
    async with store.watch("k") as watch:
        inner.set_unavailable(True)
        inner.set_unavailable(False)
        await inner.put("k", b"v")
        batch = await anext(aiter(watch))
    assert [(e.type, e.kv.value) for e in batch.events] == [(EventType.PUT, b"v")]
    assert inner.calls["watch"] == 1
    assert reported == []


async def test_close_closes_the_inner_store(store: ObservedStore, inner: MemoryStore,
                                            reported: Reported) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        await inner.get("k")
    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get("k")
    assert [request for request, _ in reported] == [EtcdRequest.READ]
