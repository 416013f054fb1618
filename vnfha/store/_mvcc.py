"""The in-memory store's MVCC core: every revision of every key, the changes of one revision
in the making, and the checks etcd applies to a request before it touches anything.

Pure bookkeeping: no asyncio, no clock, no leases (those live in :mod:`vnfha.store.memory`,
which drives this core and owns time). What it guarantees, as etcd v3's MVCC store does:

- **Revisions.** A fresh :class:`History` is at revision 1. A :class:`Write` gathers the
  changes of the next revision and :meth:`Write.commit` makes it current only if something
  changed: a request that changes nothing leaves the revision as it is.
- **Reads of the past.** Every version of every key is kept until :meth:`History.compact`, so
  :meth:`History.read` answers as of any revision at or above the compaction. Keys are ordered
  as UTF-8 bytes; a key's create revision and version restart after a deletion.
- **Reads inside a transaction** see the transaction's earlier writes (versions are recorded as
  they are made), at :attr:`Write.read_revision`, as in etcd.
- **Watch replay.** :meth:`History.events_from` returns every event from a revision on, in
  revision order and never split within a revision, until compacted.
- **Refusals as etcd words them** (:class:`~vnfha.errors.StoreRequestError`, checked before
  anything is applied): an empty key, more than :data:`MAX_TXN_OPS` operations in a txn, a key
  put twice or put and deleted in one branch.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from vnfha.errors import StoreRequestError
from vnfha.store.base import (
    Compare,
    CompareOp,
    CompareTarget,
    Event,
    EventType,
    KeyValue,
    Op,
    TxnDelete,
    TxnPut,
    encode_key,
    prefix_end,
)

__all__ = ["MAX_TXN_OPS", "History", "Span", "Write", "check_key", "check_txn", "holds",
           "in_span", "key_span", "refuse"]

MAX_TXN_OPS = 128
"""etcd's default ``--max-txn-ops``: the most compares, or operations in one branch, of a txn."""

Span = tuple[bytes, bytes]
"""A key range as etcd spells it: (key, range_end); range_end b"" is the key alone, b"\\0" is
"every key >= key"."""


def key_span(key: str, prefix: bool) -> Span:
    """``key`` alone, or every key under the prefix ``key``."""
    return encode_key(key), encode_key(prefix_end(key)) if prefix else b""


def in_span(raw: bytes, span: Span) -> bool:
    """Whether the encoded key ``raw`` lies in ``span``."""
    start, end = span
    if not end:
        return raw == start
    return start <= raw and (end == b"\0" or raw < end)


def refuse(message: str) -> StoreRequestError:
    """The error of a request etcd refuses (``message`` as etcd words it)."""
    return StoreRequestError(message, endpoint=None)


def check_key(key: str) -> None:
    """Refuse an empty key."""
    if not key:
        raise refuse("etcdserver: key is not provided")


class History:
    """Every revision of every key (until compacted) and the event log watches replay.

    Pure bookkeeping, no asyncio. A key's history is a list of ``(revision, kv)`` in revision
    order, ``kv`` None for a deletion; at most one entry per key per revision.
    """

    def __init__(self) -> None:
        self.revision = 1
        self.compacted = 0
        self._keys: list[bytes] = []  # sorted: every key with any history
        self._versions: dict[bytes, list[tuple[int, KeyValue | None]]] = {}
        self._log: list[tuple[int, tuple[tuple[bytes, Event], ...]]] = []

    def keys_in(self, span: Span) -> list[bytes]:
        """Every key with history inside ``span``, in byte order."""
        start, end = span
        if not end:
            return [start] if start in self._versions else []
        out = []
        for raw in self._keys[bisect.bisect_left(self._keys, start):]:
            if end != b"\0" and raw >= end:
                break
            out.append(raw)
        return out

    def at(self, raw: bytes, revision: int) -> KeyValue | None:
        """The key as of ``revision`` (including writes pending at ``revision``)."""
        versions = self._versions.get(raw)
        if not versions:
            return None
        i = bisect.bisect_right(versions, revision, key=lambda v: v[0]) - 1
        return versions[i][1] if i >= 0 else None

    def current(self, raw: bytes) -> KeyValue | None:
        """The key's newest state, pending writes included."""
        versions = self._versions.get(raw)
        return versions[-1][1] if versions else None

    def read(self, span: Span, revision: int) -> list[KeyValue]:
        """The live keys in ``span`` at ``revision``, in key order."""
        return [kv for raw in self.keys_in(span) if (kv := self.at(raw, revision)) is not None]

    def record(self, raw: bytes, revision: int, kv: KeyValue | None) -> None:
        """Append one version (``kv`` None: deleted at ``revision``)."""
        if raw not in self._versions:
            bisect.insort(self._keys, raw)
            self._versions[raw] = []
        self._versions[raw].append((revision, kv))

    def commit(self, revision: int, events: list[tuple[bytes, Event]]) -> None:
        """Make ``revision`` (whose versions are recorded) the current one."""
        self.revision = revision
        self._log.append((revision, tuple(events)))

    def events_from(self, revision: int) -> list[tuple[bytes, Event]]:
        """Every event at ``revision`` or later, in revision order."""
        i = bisect.bisect_left(self._log, revision, key=lambda entry: entry[0])
        return [ev for _, events in self._log[i:] for ev in events]

    def compact(self, revision: int) -> None:
        """Forget what is needed neither to read at ``revision`` or later nor to replay it."""
        self.compacted = revision
        del self._log[: bisect.bisect_left(self._log, revision, key=lambda entry: entry[0])]
        for raw in list(self._versions):
            versions = self._versions[raw]
            i = bisect.bisect_right(versions, revision, key=lambda v: v[0]) - 1
            if i < 0:
                continue
            del versions[: i if versions[i][1] is not None else i + 1]
            if not versions:
                del self._versions[raw]
                self._keys.pop(bisect.bisect_left(self._keys, raw))


class Write:
    """The changes of one revision in the making. Versions are recorded as they are made, so
    reads inside a txn see the txn's earlier writes (as in etcd); :meth:`commit` bumps the
    revision only if something changed."""

    def __init__(self, history: History) -> None:
        self._h = history
        self.revision = history.revision + 1
        self.events: list[tuple[bytes, Event]] = []

    @property
    def read_revision(self) -> int:
        """The revision a read inside this write sees (etcd: +1 once anything changed)."""
        return self.revision if self.events else self._h.revision

    def put(self, key: str, value: bytes, lease: int) -> KeyValue | None:
        """Write ``key``; returns its previous live value."""
        raw = encode_key(key)
        prev = self._h.current(raw)
        kv = KeyValue(
            key=key,
            value=value,
            create_revision=prev.create_revision if prev else self.revision,
            mod_revision=self.revision,
            version=prev.version + 1 if prev else 1,
            lease=lease,
        )
        self._h.record(raw, self.revision, kv)
        self.events.append((raw, Event(EventType.PUT, kv, prev)))
        return prev

    def delete(self, span: Span) -> list[KeyValue]:
        """Delete every live key in ``span``; returns their last values in key order."""
        gone = []
        for raw in self._h.keys_in(span):
            prev = self._h.current(raw)
            if prev is None:
                continue
            self._h.record(raw, self.revision, None)
            tomb = KeyValue(key=prev.key, value=b"", create_revision=0,
                            mod_revision=self.revision, version=0)
            self.events.append((raw, Event(EventType.DELETE, tomb, prev)))
            gone.append(prev)
        return gone

    def commit(self) -> bool:
        """Apply the revision if anything changed; True if it did."""
        if not self.events:
            return False
        self._h.commit(self.revision, self.events)
        return True


def check_txn(compares: Sequence[Compare], success: Sequence[Op],
              failure: Sequence[Op]) -> None:
    """etcd's checks of a txn request, before anything is evaluated: at most
    :data:`MAX_TXN_OPS` compares and operations per branch, no empty key, and in each branch
    no key put twice nor put and deleted."""
    if max(len(compares), len(success), len(failure)) > MAX_TXN_OPS:
        raise refuse("etcdserver: too many operations in txn request")
    for cmp in compares:
        check_key(cmp.key)
    _check_branch(success)
    _check_branch(failure)


def _check_branch(ops: Sequence[Op]) -> None:
    """etcd's checkIntervals: no key put twice, nor put and deleted, in one branch."""
    deleted = [key_span(op.key, op.prefix) for op in ops if isinstance(op, TxnDelete)]
    put: set[bytes] = set()
    for op in ops:
        check_key(op.key)
        if isinstance(op, TxnPut):
            raw = encode_key(op.key)
            if raw in put or any(in_span(raw, span) for span in deleted):
                raise refuse(f"etcdserver: duplicate key given in txn request ({op.key!r})")
            put.add(raw)


def holds(history: History, cmp: Compare) -> bool:
    """etcd's applyCompare against the newest state (pending writes included): a missing key
    has 0 everywhere, and fails every VALUE compare."""
    kv = history.current(encode_key(cmp.key))
    if kv is None and cmp.target is CompareTarget.VALUE:
        return False
    actual: int | bytes = 0
    if kv is not None:
        actual = getattr(kv, cmp.target.value)
    return _HOLDS[cmp.op](_sign(actual, cmp.value))


def _sign(a: int | bytes, b: int | bytes) -> int:
    if isinstance(a, bytes) and isinstance(b, bytes):
        return (a > b) - (a < b)
    if isinstance(a, int) and isinstance(b, int):
        return (a > b) - (a < b)
    raise TypeError(f"cannot compare {a!r} with {b!r}")


_HOLDS: dict[CompareOp, Callable[[int], bool]] = {
    CompareOp.EQUAL: lambda s: s == 0,
    CompareOp.NOT_EQUAL: lambda s: s != 0,
    CompareOp.GREATER: lambda s: s > 0,
    CompareOp.LESS: lambda s: s < 0,
}
