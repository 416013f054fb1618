"""A :class:`~vnfha.store.base.Store` that reports every failed request to a listener.

:class:`ObservedStore` wraps another store and delegates every method to it unchanged; when a
request raises a :class:`~vnfha.errors.StoreError`, it first calls ``on_error(request, error)``
(``request`` is what kind of call failed, an :class:`EtcdRequest`), then re-raises the error as
it came. That is how a member counts its failed etcd requests and notices etcd's NOSPACE alarm
without any part of it catching more than it did before.

Guarantees:

- **Transparent.** Arguments, results and errors pass through untouched; only ``StoreError``
  is reported (a cancellation, a ``TimeoutError`` of the caller's own ``wait_for``, a bug's
  exception are not store failures and pass unseen).
- **A listener cannot break a request.** One that raises is logged and ignored; the caller
  still gets the store's error.
- **Watches are not observed.** :meth:`ObservedStore.watch` returns the inner store's watch:
  its reconnects and resumptions happen inside it, they are not requests, and only an error
  that ends the iteration reaches its reader (who handles it).
- **The inner store is owned.** :meth:`ObservedStore.close` closes it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from vnfha.errors import StoreError
from vnfha.store.base import (
    Compare,
    DeleteResult,
    KeyValue,
    Lease,
    LeaseInfo,
    Op,
    PutResult,
    RangeResult,
    Store,
    StoreStatus,
    TxnResult,
    Watch,
)

__all__ = ["EtcdRequest", "ErrorListener", "ObservedStore"]

log = logging.getLogger("vnfha.store")

T = TypeVar("T")


class EtcdRequest(enum.StrEnum):
    """What kind of request to the store failed (the ``request`` label of
    ``vnfha_etcd_errors_total``)."""

    READ = "read"
    """``get``, ``range``, ``status``, ``time_to_live``."""
    WRITE = "write"
    """``put``, ``delete``, ``txn``, ``compact``: what etcd's NOSPACE alarm refuses."""
    LEASE = "lease"
    """``grant``, ``revoke`` (a grant is refused under NOSPACE too)."""
    KEEPALIVE = "keepalive"
    """One lease renewal (accepted under NOSPACE)."""


ErrorListener = Callable[[EtcdRequest, StoreError], None]
"""``on_error(request, error)``: called synchronously, before the error reaches the caller."""


class ObservedStore:
    """``inner``, with every :class:`~vnfha.errors.StoreError` of a request reported to
    ``on_error`` before it is re-raised (see the module docstring)."""

    def __init__(self, inner: Store, *, on_error: ErrorListener) -> None:
        self._inner = inner
        self._on_error = on_error

    @property
    def inner(self) -> Store:
        """The store every call goes to."""
        return self._inner

    @property
    def endpoint(self) -> str:
        """The inner store's current endpoint."""
        return self._inner.endpoint

    async def _observe(self, request: EtcdRequest, call: Awaitable[T]) -> T:
        try:
            return await call
        except StoreError as error:
            try:
                self._on_error(request, error)
            except Exception:
                log.exception("store error listener %r failed", self._on_error)
            raise

    # -- reads -------------------------------------------------------------------------------

    async def get(self, key: str, *, timeout_s: float | None = None) -> KeyValue | None:
        """As the inner store's ``get``."""
        return await self._observe(EtcdRequest.READ, self._inner.get(key, timeout_s=timeout_s))

    async def range(self, key: str, *, prefix: bool = False, limit: int = 0, revision: int = 0,
                    timeout_s: float | None = None) -> RangeResult:
        """As the inner store's ``range``."""
        return await self._observe(EtcdRequest.READ, self._inner.range(
            key, prefix=prefix, limit=limit, revision=revision, timeout_s=timeout_s))

    async def time_to_live(self, lease_id: int, *, keys: bool = False,
                           timeout_s: float | None = None) -> LeaseInfo:
        """As the inner store's ``time_to_live``."""
        return await self._observe(EtcdRequest.READ, self._inner.time_to_live(
            lease_id, keys=keys, timeout_s=timeout_s))

    async def status(self, *, timeout_s: float | None = None) -> StoreStatus:
        """As the inner store's ``status``."""
        return await self._observe(EtcdRequest.READ, self._inner.status(timeout_s=timeout_s))

    # -- writes ------------------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, lease: int = 0, prev_kv: bool = False,
                  timeout_s: float | None = None) -> PutResult:
        """As the inner store's ``put``."""
        return await self._observe(EtcdRequest.WRITE, self._inner.put(
            key, value, lease=lease, prev_kv=prev_kv, timeout_s=timeout_s))

    async def delete(self, key: str, *, prefix: bool = False, prev_kv: bool = False,
                     timeout_s: float | None = None) -> DeleteResult:
        """As the inner store's ``delete``."""
        return await self._observe(EtcdRequest.WRITE, self._inner.delete(
            key, prefix=prefix, prev_kv=prev_kv, timeout_s=timeout_s))

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op] = (),
                  failure: Sequence[Op] = (), *, timeout_s: float | None = None) -> TxnResult:
        """As the inner store's ``txn``."""
        return await self._observe(EtcdRequest.WRITE, self._inner.txn(
            compares, success, failure, timeout_s=timeout_s))

    async def compact(self, revision: int, *, timeout_s: float | None = None) -> None:
        """As the inner store's ``compact``."""
        await self._observe(EtcdRequest.WRITE, self._inner.compact(revision, timeout_s=timeout_s))

    # -- leases ------------------------------------------------------------------------------

    async def grant(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        """As the inner store's ``grant``."""
        return await self._observe(EtcdRequest.LEASE, self._inner.grant(ttl_s, timeout_s=timeout_s))

    async def revoke(self, lease_id: int, *, timeout_s: float | None = None) -> None:
        """As the inner store's ``revoke``."""
        await self._observe(EtcdRequest.LEASE, self._inner.revoke(lease_id, timeout_s=timeout_s))

    async def keepalive(self, lease_id: int, *, timeout_s: float | None = None) -> int:
        """As the inner store's ``keepalive``."""
        return await self._observe(EtcdRequest.KEEPALIVE,
                                   self._inner.keepalive(lease_id, timeout_s=timeout_s))

    # -- not observed ------------------------------------------------------------------------

    def watch(self, key: str, *, prefix: bool = False, start_revision: int = 0,
              prev_kv: bool = False) -> Watch:
        """The inner store's watch, unobserved: its own reconnects are not requests."""
        return self._inner.watch(key, prefix=prefix, start_revision=start_revision,
                                 prev_kv=prev_kv)

    async def close(self) -> None:
        """Close the inner store. Idempotent as the inner store's ``close`` is."""
        await self._inner.close()


if TYPE_CHECKING:

    def _is_a_store(store: ObservedStore) -> Store:
        return store
