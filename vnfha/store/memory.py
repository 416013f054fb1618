"""An in-process :class:`~vnfha.store.base.Store` with etcd v3's semantics, on an injected clock.

``MemoryStore`` keeps the contract of :mod:`vnfha.store.base` exactly as etcd does (the same
suite, ``tests/contract``, runs against both), so most tests of the layers above run without
etcd, in microseconds, and deterministically on a :class:`~vnfha.testing.FakeClock`.

What it guarantees:

- **Full MVCC.** A fresh store is at revision 1; every revision's state is kept until compacted,
  so ``range(..., revision=N)`` reads the past. Keys are ordered as UTF-8 bytes. The revisions,
  transactions and request checks are the pure core in :mod:`vnfha.store._mvcc`; this module
  adds time (leases, timeouts), watches and the fault hooks on top of it.
- **Exact lease expiry.** A lease granted (or kept alive) at ``t`` with granted TTL ``g`` is gone
  for every request made at or after ``t + g`` on the injected clock, and never before (up to
  a nanosecond of float rounding). A background task deletes the keys of an expired lease in
  one revision at its deadline, so watchers see the DELETE events without any request.
- **Errors as the etcd adapter raises them**: StoreRequestError for refused requests (including
  a put with an unknown lease, which etcd refuses as "requested lease not found"), LeaseNotFound
  for lease calls on a gone lease, Compacted for reads of compacted history.

Fault hooks, for tests of the layers above (see each method):

- :meth:`MemoryStore.set_unavailable` -- a partition: every request fails at once, watches
  stall, the store itself runs on (leases expire).
- :meth:`MemoryStore.pause` / :meth:`MemoryStore.resume` -- a SIGSTOPped etcd: requests hang
  until resumed or until their timeout, then fail; leases expire meanwhile.
- :meth:`MemoryStore.fail_next` -- the next requests fail, before or after being applied.
- :attr:`MemoryStore.calls` counts requests by method name.

Where this store is *not* etcd: there is one member (``status`` reports member, leader and term
1); request size limits are not enforced; a request that times out while paused is never
applied (a real etcd might apply it when it is continued).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

from vnfha.clock import Clock, SystemClock
from vnfha.errors import (
    Compacted,
    ConfigError,
    LeaseNotFound,
    StoreError,
    StoreUnavailable,
)
from vnfha.store._mvcc import (
    History,
    Span,
    Write,
    check_key,
    check_txn,
    holds,
    in_span,
    key_span,
    refuse,
)
from vnfha.store.base import (
    Compare,
    DeleteResult,
    KeyValue,
    Lease,
    LeaseInfo,
    Op,
    PutResult,
    RangeResult,
    StoreStatus,
    TxnDelete,
    TxnGet,
    TxnPut,
    TxnResult,
    WatchBatch,
    decode_key,
    encode_key,
)

if TYPE_CHECKING:
    from vnfha.store.base import Store

__all__ = ["MemoryStore", "MemoryWatch"]

T = TypeVar("T")

# Requests that change the store: a failure after sending them leaves the outcome unknown.
# The same split as EtcdStore's ``write=`` flag.
_WRITES = frozenset({"put", "delete", "txn", "compact", "revoke"})
_MAX_LEASE_TTL_S = 9_000_000_000  # etcd's lease.MaxLeaseTTL
# Deadlines are compared with this slack so that float rounding in ``now + delay`` can never
# push a wake-up past the deadline a test advances the clock to.
_SLACK_S = 1e-9


@dataclass(slots=True)
class _Lease:
    id: int
    granted_ttl_s: int
    deadline: float
    keys: set[bytes] = dataclasses.field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Fault:
    outcome_unknown: bool
    applied: bool


class MemoryStore:
    """The Store in process (see the module docstring for its guarantees and fault hooks).

    ``clock`` drives lease expiry and request timeouts; ``min_lease_ttl_s`` is the smallest TTL
    granted (etcd raises smaller requests to its minimum silently); ``request_timeout_s`` is
    the default ``timeout_s`` of every request. Use it as ``async with`` (or call
    :meth:`close`): it owns a background task for lease expiry.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        min_lease_ttl_s: int = 1,
        request_timeout_s: float = 1.0,
        endpoint: str = "memory",
    ) -> None:
        if min_lease_ttl_s < 1:
            raise ConfigError("min_lease_ttl_s", min_lease_ttl_s, "must be at least 1")
        if request_timeout_s <= 0:
            raise ConfigError("request_timeout_s", request_timeout_s, "must be positive")
        self._clock: Clock = clock or SystemClock()
        self._min_ttl_s = min_lease_ttl_s
        self._timeout_s = request_timeout_s
        self._endpoint = endpoint
        self._h = History()
        self._leases: dict[int, _Lease] = {}
        self._issued: set[int] = set()
        self._rng = random.Random()
        self._changed = asyncio.Event()  # replaced on every change; watches wait on it
        self._lease_wake = asyncio.Event()  # the earliest lease deadline may have moved
        self._expiry_task: asyncio.Task[None] | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._unavailable = False
        self._faults: collections.deque[_Fault] = collections.deque()
        self._closed = False
        self.calls: collections.Counter[str] = collections.Counter()
        """How many requests each method received (``calls["put"]``), failed ones included;
        ``calls["watch"]`` counts watches opened."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        """The name given at construction (``"memory"``)."""
        return self._endpoint

    @property
    def revision(self) -> int:
        """The current store revision (a test helper; not a request, never fails)."""
        return self._h.revision

    # -- fault hooks -------------------------------------------------------------------------

    def set_unavailable(self, flag: bool) -> None:
        """Model a partition from the store. While set, every request raises
        ``StoreUnavailable(outcome_unknown=False)`` at once and is not applied, and watches
        deliver nothing; the store runs on (leases expire, their keys are deleted). Once
        cleared, watches resume where they were: no event is lost or repeated."""
        self._unavailable = flag
        self._notify()

    def pause(self) -> None:
        """Model a SIGSTOPped etcd. Requests wait until :meth:`resume`, then run normally; one
        still waiting after its ``timeout_s`` (on the injected clock) is not applied and raises
        ``StoreUnavailable``, with ``outcome_unknown=True`` for writes (put, delete, txn,
        compact, revoke) as a client could not know. Watches stall; leases keep expiring on
        the clock, as on a cluster whose other members still run."""
        self._resumed.clear()

    def resume(self) -> None:
        """End :meth:`pause`: waiting requests proceed, stalled watches catch up."""
        self._resumed.set()
        self._notify()

    def fail_next(self, count: int = 1, *, outcome_unknown: bool = False,
                  applied: bool = False) -> None:
        """Make the next ``count`` requests (of any method) raise ``StoreUnavailable``.

        With ``applied=False`` the request has no effect and the error carries
        ``outcome_unknown`` as given. With ``applied=True`` it takes effect first and only the
        reply is lost; for writes the error then always says ``outcome_unknown=True``, since
        a store that applied a write never claims it did not. Calls accumulate in a queue.
        """
        if count < 0:
            raise ValueError(f"count={count}: must not be negative")
        self._faults.extend([_Fault(outcome_unknown, applied)] * count)

    # -- the request path --------------------------------------------------------------------

    def _unavailable_error(self, method: str, why: str, unknown: bool) -> StoreUnavailable:
        return StoreUnavailable(f"{method}: {why}", endpoint=self._endpoint,
                                endpoints=(self._endpoint,), outcome_unknown=unknown)

    async def _admit(self, method: str, timeout_s: float | None) -> None:
        """Wait while paused; raise if closed, unavailable or timed out."""
        if not self._closed and not self._unavailable and not self._resumed.is_set():
            timeout = self._timeout_s if timeout_s is None else timeout_s
            try:
                await self._clock.wait_for(self._resumed.wait(), timeout)
            except TimeoutError as e:
                raise self._unavailable_error(
                    method, f"no answer within {timeout} s (store paused)", method in _WRITES
                ) from e
        if self._closed:
            raise self._unavailable_error(method, "the memory store is closed", False)
        if self._unavailable:
            raise self._unavailable_error(method, "store unavailable (set_unavailable)", False)

    async def _request(self, method: str, timeout_s: float | None, run: Callable[[], T]) -> T:
        """Count, gate, expire due leases, inject a queued fault, then ``run()`` the request."""
        self.calls[method] += 1
        await asyncio.sleep(0)  # a request is never answered without yielding to the loop
        await self._admit(method, timeout_s)
        self._expire_due()
        if not self._faults:
            return run()
        fault = self._faults.popleft()
        if not fault.applied:
            raise self._unavailable_error(method, "injected failure", fault.outcome_unknown)
        unknown = fault.outcome_unknown or method in _WRITES
        try:
            run()
        except StoreError as e:
            raise self._unavailable_error(method, "injected lost reply", unknown) from e
        raise self._unavailable_error(method, "injected lost reply", unknown)

    def _notify(self) -> None:
        """Wake every watch waiting for a change."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _commit(self, write: Write) -> None:
        if write.commit():
            self._notify()

    # -- KV ----------------------------------------------------------------------------------

    async def get(self, key: str, *, timeout_s: float | None = None) -> KeyValue | None:
        """The key's current value, or None."""
        result = await self._request("get", timeout_s, lambda: self._range(key, False, 0, 0))
        return result.kvs[0] if result.kvs else None

    async def range(
        self, key: str, *, prefix: bool = False, limit: int = 0, revision: int = 0,
        timeout_s: float | None = None,
    ) -> RangeResult:
        """Keys equal to ``key`` (or under the prefix) at ``revision`` (0 = latest).
        StoreRequestError for a future revision, Compacted for one below the compaction."""
        return await self._request(
            "range", timeout_s, lambda: self._range(key, prefix, limit, revision))

    def _range(self, key: str, prefix: bool, limit: int, revision: int) -> RangeResult:
        check_key(key)
        if revision > self._h.revision:
            raise refuse(f"mvcc: required revision is a future revision ({revision})")
        if 0 < revision < self._h.compacted:
            raise Compacted(revision, self._h.compacted, endpoint=self._endpoint)
        kvs = self._h.read(key_span(key, prefix), revision if revision > 0 else self._h.revision)
        more = 0 < limit < len(kvs)
        return RangeResult(kvs=tuple(kvs[:limit] if more else kvs), revision=self._h.revision,
                           count=len(kvs), more=more)

    async def put(
        self, key: str, value: bytes, *, lease: int = 0, prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> PutResult:
        """Set ``key``, bound to ``lease`` if non-zero; StoreRequestError if the lease is gone."""

        def run() -> PutResult:
            check_key(key)
            self._check_lease(lease)
            write = Write(self._h)
            prev = self._put(write, key, value, lease)
            self._commit(write)
            return PutResult(revision=self._h.revision, prev_kv=prev if prev_kv else None)

        return await self._request("put", timeout_s, run)

    def _check_lease(self, lease: int) -> None:
        if lease and lease not in self._leases:
            raise refuse(f"etcdserver: requested lease not found ({lease:#x})")

    def _put(self, write: Write, key: str, value: bytes, lease: int) -> KeyValue | None:
        """Put through ``write``, moving the key between leases' key sets."""
        prev = write.put(key, value, lease)
        raw = encode_key(key)
        if prev is not None and prev.lease and prev.lease in self._leases:
            self._leases[prev.lease].keys.discard(raw)
        if lease:
            self._leases[lease].keys.add(raw)
        return prev

    def _delete(self, write: Write, span: Span) -> list[KeyValue]:
        """Delete through ``write``, unbinding the keys from their leases."""
        gone = write.delete(span)
        for kv in gone:
            if kv.lease in self._leases:
                self._leases[kv.lease].keys.discard(encode_key(kv.key))
        return gone

    async def delete(
        self, key: str, *, prefix: bool = False, prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> DeleteResult:
        """Delete ``key`` (or the prefix); deleting nothing leaves the revision as it is."""

        def run() -> DeleteResult:
            check_key(key)
            write = Write(self._h)
            gone = self._delete(write, key_span(key, prefix))
            self._commit(write)
            return DeleteResult(revision=self._h.revision, deleted=len(gone),
                                prev_kvs=tuple(gone) if prev_kv else ())

        return await self._request("delete", timeout_s, run)

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op] = (),
        failure: Sequence[Op] = (), *, timeout_s: float | None = None,
    ) -> TxnResult:
        """Evaluate ``compares`` and apply one branch, all at one revision (see module doc).

        Refused with StoreRequestError, before anything is evaluated, if either branch puts a
        key twice or puts a key it also deletes, or names an empty key; if a put of the taken
        branch names a lease that is gone, before anything is applied."""
        return await self._request("txn", timeout_s,
                                   lambda: self._txn(compares, success, failure))

    def _txn(self, compares: Sequence[Compare], success: Sequence[Op],
             failure: Sequence[Op]) -> TxnResult:
        check_txn(compares, success, failure)
        succeeded = all(holds(self._h, cmp) for cmp in compares)
        ops = success if succeeded else failure
        for op in ops:
            if isinstance(op, TxnPut):
                self._check_lease(op.lease)
        write = Write(self._h)
        responses = tuple(self._apply(write, op) for op in ops)
        self._commit(write)
        return TxnResult(succeeded=succeeded, revision=self._h.revision, responses=responses)

    def _apply(self, write: Write, op: Op) -> RangeResult | PutResult | DeleteResult:
        if isinstance(op, TxnPut):
            self._put(write, op.key, op.value, op.lease)
            return PutResult(revision=write.revision)
        if isinstance(op, TxnDelete):
            gone = self._delete(write, key_span(op.key, op.prefix))
            return DeleteResult(revision=write.read_revision, deleted=len(gone))
        if isinstance(op, TxnGet):
            kvs = self._h.read(key_span(op.key, op.prefix), write.read_revision)
            return RangeResult(kvs=tuple(kvs), revision=write.read_revision, count=len(kvs))
        raise TypeError(f"not a txn operation: {op!r}")

    async def compact(self, revision: int, *, timeout_s: float | None = None) -> None:
        """Discard history before ``revision``: reads and watches from ``revision`` on still
        work. StoreRequestError for a future revision, Compacted if already compacted there."""

        def run() -> None:
            if revision > self._h.revision:
                raise refuse(f"mvcc: required revision is a future revision ({revision})")
            if revision <= self._h.compacted:
                raise Compacted(revision, self._h.compacted, endpoint=self._endpoint)
            self._h.compact(revision)
            self._notify()

        await self._request("compact", timeout_s, run)

    # -- leases ------------------------------------------------------------------------------

    async def grant(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        """A new lease of ``max(ttl_s, min_lease_ttl_s)`` seconds (a TTL <= 0 gets the
        minimum, as in etcd), with a random positive 63-bit id never issued before."""

        def run() -> Lease:
            if ttl_s > _MAX_LEASE_TTL_S:
                raise refuse(f"etcdserver: too large lease TTL ({ttl_s})")
            granted = max(ttl_s, self._min_ttl_s)
            lease_id = 0
            while lease_id == 0 or lease_id in self._issued:
                lease_id = self._rng.getrandbits(63)
            self._issued.add(lease_id)
            self._leases[lease_id] = _Lease(lease_id, granted, self._clock.monotonic() + granted)
            self._lease_wake.set()
            if self._expiry_task is None:
                self._expiry_task = asyncio.get_running_loop().create_task(
                    self._expire_loop(), name=f"memory-store-expiry-{self._endpoint}")
            return Lease(id=lease_id, ttl_s=granted)

        return await self._request("grant", timeout_s, run)

    def _lease(self, lease_id: int) -> _Lease:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(lease_id, endpoint=self._endpoint)
        return lease

    async def revoke(self, lease_id: int, *, timeout_s: float | None = None) -> None:
        """Revoke the lease, deleting its keys in one revision (none if it had no keys).
        LeaseNotFound if it is already gone."""
        await self._request("revoke", timeout_s, lambda: self._drop(self._lease(lease_id)))

    async def keepalive(self, lease_id: int, *, timeout_s: float | None = None) -> int:
        """Move the lease's deadline to now + its granted TTL; returns that TTL.
        LeaseNotFound if it is gone."""

        def run() -> int:
            lease = self._lease(lease_id)
            # A later deadline needs no wake-up: the expiry task re-reads them when it wakes.
            lease.deadline = self._clock.monotonic() + lease.granted_ttl_s
            return lease.granted_ttl_s

        return await self._request("keepalive", timeout_s, run)

    async def time_to_live(
        self, lease_id: int, *, keys: bool = False, timeout_s: float | None = None
    ) -> LeaseInfo:
        """The remaining TTL in whole seconds, truncated as etcd does
        (``int64(Remaining().Seconds())``: 0.9 s left reads 0), the granted TTL and, if asked,
        the bound keys in key order. LeaseNotFound if it is gone."""

        def run() -> LeaseInfo:
            lease = self._lease(lease_id)
            remaining = max(0, int(lease.deadline - self._clock.monotonic()))
            bound = tuple(decode_key(raw) for raw in sorted(lease.keys)) if keys else ()
            return LeaseInfo(id=lease_id, ttl_s=remaining, granted_ttl_s=lease.granted_ttl_s,
                             keys=bound)

        return await self._request("time_to_live", timeout_s, run)

    def _drop(self, lease: _Lease) -> None:
        """Forget ``lease`` and delete its keys in one revision, in key order (as etcd)."""
        del self._leases[lease.id]
        write = Write(self._h)
        for raw in sorted(lease.keys):
            write.delete((raw, b""))
        self._commit(write)
        self._lease_wake.set()

    def _expire_due(self) -> None:
        """Drop every lease whose deadline has come, earliest first, one revision each."""
        now = self._clock.monotonic()
        due = [lease for lease in self._leases.values() if lease.deadline <= now + 2 * _SLACK_S]
        for lease in sorted(due, key=lambda lease: (lease.deadline, lease.id)):
            self._drop(lease)

    async def _expire_loop(self) -> None:
        """Sleep on the clock until the earliest deadline, re-arming when it moves."""
        while not self._closed:
            self._lease_wake.clear()
            self._expire_due()
            if not self._leases:
                await self._lease_wake.wait()
                continue
            earliest = min(lease.deadline for lease in self._leases.values())
            delay = earliest - self._clock.monotonic() - _SLACK_S
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(self._lease_wake.wait(), delay)

    # -- watch, status, close ----------------------------------------------------------------

    def watch(
        self, key: str, *, prefix: bool = False, start_revision: int = 0, prev_kv: bool = False
    ) -> MemoryWatch:
        """A watch of ``key`` (or the prefix); see :class:`MemoryWatch`."""
        self.calls["watch"] += 1
        return MemoryWatch(self, key_span(key, prefix), start_revision, prev_kv)

    async def status(self, *, timeout_s: float | None = None) -> StoreStatus:
        """This store as a one-member cluster that leads itself: member, leader, term 1."""
        return await self._request("status", timeout_s, lambda: StoreStatus(
            endpoint=self._endpoint, version="memory", revision=self._h.revision,
            member_id=1, leader_id=1, raft_term=1))

    async def close(self) -> None:
        """End every watch, fail every waiting request, stop lease expiry. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._resumed.set()
        self._lease_wake.set()
        self._notify()
        task, self._expiry_task = self._expiry_task, None
        if task is not None:
            await task


class MemoryWatch:
    """A watch on a :class:`MemoryStore` (implements :class:`vnfha.store.base.Watch`).

    With ``start_revision`` 0 it starts after the store's revision when it is entered (or
    first iterated), as etcd's does when its stream is created. Each batch holds every
    matching event not yet delivered, in revision order, never splitting a revision; its
    ``revision`` is the store's at send. Iteration raises Compacted (once, then ends) if the
    next revision it needs is below the compaction; watching from exactly the compaction
    revision works. While the store is unavailable or paused nothing is delivered, and
    nothing is lost. :meth:`cancel` or closing the store ends the iteration.
    """

    def __init__(self, store: MemoryStore, span: Span, start_revision: int,
                 prev_kv: bool) -> None:
        self._store = store
        self._span = span
        self._next = max(0, start_revision)
        self._prev_kv = prev_kv
        self._cancelled = False

    @property
    def next_revision(self) -> int:
        """The first revision not yet delivered (0 until the watch has started)."""
        return self._next

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cancel()

    def __aiter__(self) -> Self:
        return self

    def _start(self) -> None:
        if self._next == 0:
            self._next = self._store._h.revision + 1

    async def __anext__(self) -> WatchBatch:
        store = self._store
        self._start()
        while True:
            if self._cancelled or store._closed:
                raise StopAsyncIteration
            if not store._unavailable and store._resumed.is_set():
                history = store._h
                if self._next < history.compacted:
                    self._cancelled = True
                    raise Compacted(self._next, history.compacted, endpoint=store.endpoint)
                batch = self._take(history)
                if batch is not None:
                    return batch
            await store._changed.wait()

    def _take(self, history: History) -> WatchBatch | None:
        events = [ev for raw, ev in history.events_from(self._next) if in_span(raw, self._span)]
        self._next = history.revision + 1
        if not events:
            return None
        if not self._prev_kv:
            events = [dataclasses.replace(ev, prev_kv=None) for ev in events]
        return WatchBatch(events=tuple(events), revision=history.revision)

    async def cancel(self) -> None:
        """Stop the watch; iteration ends (StopAsyncIteration). Idempotent."""
        self._cancelled = True
        self._store._notify()


if TYPE_CHECKING:

    def _is_a_store(store: MemoryStore) -> Store:
        return store
