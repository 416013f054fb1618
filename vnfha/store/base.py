"""The Store protocol: what vnfha needs from its coordination store, and the values it returns.

Two implementations keep this contract, checked by one suite (``tests/contract``):
:class:`vnfha.store.etcd.EtcdStore` (etcd's gRPC API) and
:class:`vnfha.store.memory.MemoryStore` (in-process, on an injected clock, with fault hooks).

The semantics are etcd v3's, and every implementation guarantees them:

- **Revisions.** One store-wide revision counter. Every successful mutation (a put, a delete that
  removed at least one key, a txn with at least one such operation) raises it by exactly one;
  reads and no-op deletes do not. A key's ``create_revision`` is the revision that created it
  (since it last did not exist), ``mod_revision`` the last that changed it, ``version`` counts
  changes since creation. A fresh store is at revision 1.
- **Transactions** are atomic: the compares are evaluated and one branch applied at one
  revision. A txn is never retried blindly by vnfha; on a lost reply the caller gets
  ``StoreUnavailable(outcome_unknown=True)`` and must read back.
- **Leases.** ``grant`` returns the TTL the store actually granted, which may be *larger* than
  asked (etcd raises it to its minimum silently). When a lease expires or is revoked, every key
  bound to it is deleted in one revision and watchers see DELETE events for them.
- **Watches** deliver every event at or after ``start_revision`` in revision order, at most once,
  grouped in batches; a start revision older than the compacted one raises ``Compacted``.
- **Errors** are vnfha's (``vnfha.errors``), never the transport's.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "CompareOp",
    "CompareTarget",
    "Compare",
    "DeleteResult",
    "Event",
    "EventType",
    "KeyValue",
    "Lease",
    "LeaseInfo",
    "Op",
    "PutResult",
    "RangeResult",
    "Store",
    "StoreStatus",
    "TxnDelete",
    "TxnGet",
    "TxnPut",
    "TxnResult",
    "Watch",
    "WatchBatch",
    "decode_key",
    "encode_key",
    "prefix_end",
]


def encode_key(key: str) -> bytes:
    """A key's bytes on the wire: UTF-8, with ``surrogateescape`` so any byte key round-trips."""
    return key.encode("utf-8", "surrogateescape")


def decode_key(raw: bytes) -> str:
    """The inverse of :func:`encode_key`."""
    return raw.decode("utf-8", "surrogateescape")


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key that starts with ``prefix`` (etcd's range_end).

    Keys are compared as UTF-8 bytes. ``prefix_end("a/") == "a0"``. The empty prefix means
    "every key", which etcd spells as range_end ``"\\0"``.
    """
    raw = bytearray(encode_key(prefix))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return decode_key(bytes(raw))
        raw.pop()
    return "\0"


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as the store holds it at some revision."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class EventType(enum.Enum):
    """What happened to a key."""

    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    """A change seen by a watch. For DELETE, ``kv.value`` is empty and ``kv.mod_revision`` is the
    deleting revision; ``prev_kv`` is set only when the watch asked for it."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events delivered together; all share revisions <= ``revision`` (the store's at send)."""

    events: tuple[Event, ...]
    revision: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    """A read: ``kvs`` in key order, the store ``revision`` it was read at, the total ``count``
    of matching keys and whether ``more`` were left out by ``limit``."""

    kvs: tuple[KeyValue, ...]
    revision: int
    count: int
    more: bool = False


@dataclass(frozen=True, slots=True)
class PutResult:
    """The revision the put was applied at, and the previous value if asked for."""

    revision: int
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """The store revision after the delete, how many keys it removed, and their last values
    if asked for."""

    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...] = ()


class CompareTarget(enum.Enum):
    """Which attribute of a key a txn compare looks at."""

    VERSION = "version"
    CREATE_REVISION = "create_revision"
    MOD_REVISION = "mod_revision"
    VALUE = "value"
    LEASE = "lease"


class CompareOp(enum.Enum):
    """How a txn compare relates the key's attribute to the given value."""

    EQUAL = "=="
    NOT_EQUAL = "!="
    GREATER = ">"
    LESS = "<"


@dataclass(frozen=True, slots=True)
class Compare:
    """``key``'s ``target`` ``op`` ``value``. A missing key has version, revisions and lease 0
    (and compares on VALUE against a missing key are false), exactly as in etcd."""

    key: str
    target: CompareTarget
    op: CompareOp
    value: int | bytes

    def __post_init__(self) -> None:
        wants_bytes = self.target is CompareTarget.VALUE
        if wants_bytes != isinstance(self.value, bytes):
            kind = "bytes" if wants_bytes else "int"
            raise TypeError(f"compare on {self.target.value} needs a {kind}, got {self.value!r}")

    @classmethod
    def create_revision(cls, key: str, op: str, value: int) -> Compare:
        """``Compare.create_revision("k", "==", 0)``: the key does not exist."""
        return cls(key, CompareTarget.CREATE_REVISION, CompareOp(op), value)

    @classmethod
    def mod_revision(cls, key: str, op: str, value: int) -> Compare:
        """Compare the key's last-modified revision."""
        return cls(key, CompareTarget.MOD_REVISION, CompareOp(op), value)

    @classmethod
    def version(cls, key: str, op: str, value: int) -> Compare:
        """Compare the key's version (0 when absent)."""
        return cls(key, CompareTarget.VERSION, CompareOp(op), value)

    @classmethod
    def value_of(cls, key: str, op: str, value: bytes) -> Compare:
        """Compare the key's value bytes."""
        return cls(key, CompareTarget.VALUE, CompareOp(op), value)

    @classmethod
    def lease(cls, key: str, op: str, value: int) -> Compare:
        """Compare the lease the key is bound to (0 for none)."""
        return cls(key, CompareTarget.LEASE, CompareOp(op), value)


@dataclass(frozen=True, slots=True)
class TxnPut:
    """A put inside a txn."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class TxnDelete:
    """A delete (of one key, or of a prefix) inside a txn."""

    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class TxnGet:
    """A read (of one key, or of a prefix) inside a txn, at the txn's revision."""

    key: str
    prefix: bool = False


Op = TxnPut | TxnDelete | TxnGet


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Whether the compares held, the revision after the txn, and one result per op of the
    branch taken, in order."""

    succeeded: bool
    revision: int
    responses: tuple[RangeResult | PutResult | DeleteResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted lease. ``ttl_s`` is what the store granted, which may exceed what was asked."""

    id: int
    ttl_s: int


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A lease's remaining ``ttl_s``, its ``granted_ttl_s`` and the keys bound to it."""

    id: int
    ttl_s: int
    granted_ttl_s: int
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Which endpoint answered, the server's version, its view of the cluster."""

    endpoint: str
    version: str
    revision: int
    member_id: int = 0
    leader_id: int = 0
    raft_term: int = 0
    errors: tuple[str, ...] = field(default_factory=tuple)


class Watch(Protocol):
    """An open watch: an async context manager and an async iterator of :class:`WatchBatch`.

    Iteration raises :class:`vnfha.errors.Compacted` if the history it needs is gone, and
    :class:`vnfha.errors.StoreUnavailable` only once no endpoint can resume it. A watch that
    loses its connection resumes on its own from the revision after the last one delivered,
    so no event is lost or repeated across a reconnect.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __aiter__(self) -> AsyncIterator[WatchBatch]: ...

    async def __anext__(self) -> WatchBatch: ...

    async def cancel(self) -> None:
        """Stop the watch; iteration ends."""
        ...


class Store(Protocol):
    """The coordination store (see the module docstring for the guarantees).

    Every method with ``timeout_s`` uses the store's configured request timeout when it is None.
    """

    @property
    def endpoint(self) -> str:
        """The endpoint requests currently go to."""
        ...

    async def get(self, key: str, *, timeout_s: float | None = None) -> KeyValue | None:
        """The key's current value, or None."""
        ...

    async def range(
        self,
        key: str,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        timeout_s: float | None = None,
    ) -> RangeResult:
        """Keys equal to ``key`` (or starting with it), at ``revision`` (0 = latest)."""
        ...

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> PutResult:
        """Set the key, optionally bound to ``lease`` (which must exist)."""
        ...

    async def delete(
        self, key: str, *, prefix: bool = False, prev_kv: bool = False,
        timeout_s: float | None = None,
    ) -> DeleteResult:
        """Delete the key (or prefix)."""
        ...

    async def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op] = (),
        failure: Sequence[Op] = (),
        *,
        timeout_s: float | None = None,
    ) -> TxnResult:
        """If every compare holds apply ``success``, else ``failure``; atomically."""
        ...

    async def grant(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        """A new lease of at least ``ttl_s`` seconds (the granted TTL is in the result)."""
        ...

    async def revoke(self, lease_id: int, *, timeout_s: float | None = None) -> None:
        """Revoke the lease and delete its keys. Raises LeaseNotFound if it is already gone."""
        ...

    async def keepalive(self, lease_id: int, *, timeout_s: float | None = None) -> int:
        """Renew the lease once; returns the TTL it was renewed to. LeaseNotFound if gone."""
        ...

    async def time_to_live(
        self, lease_id: int, *, keys: bool = False, timeout_s: float | None = None
    ) -> LeaseInfo:
        """The lease's remaining TTL. Raises LeaseNotFound if it is gone."""
        ...

    def watch(
        self,
        key: str,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> Watch:
        """Watch the key (or prefix) from ``start_revision`` (0 = from now on)."""
        ...

    async def compact(self, revision: int, *, timeout_s: float | None = None) -> None:
        """Discard history before ``revision``."""
        ...

    async def status(self, *, timeout_s: float | None = None) -> StoreStatus:
        """The answering endpoint's status."""
        ...

    async def close(self) -> None:
        """Release every connection and stop every watch. Idempotent."""
        ...
