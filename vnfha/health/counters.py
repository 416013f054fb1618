"""The ladder's counters in the coordination store, so they survive a restart of the member.

One key per member, ``{key_prefix}/{group}/ladder/{member}``, holding
:func:`vnfha.health.ladder.to_bytes` of its :class:`~vnfha.health.ladder.LadderHistory` and its
incarnation record (:class:`~vnfha.health.incarnation.Life`: which incarnation runs, and whether
the last one stopped cleanly), which the group's active reads (:func:`read_life`) before it asks
for a gone member's repair.

Guarantees:

- **Not bound to a lease.** The key outlives the member's session, its process and its VM, so
  a member that crashes in a loop does not start each incarnation with a clean ladder: a
  restart loop climbs to failover and to the NFVI as it would in one process.
- **Only the member writes its own key** (no compare is needed; the last write wins).
- **Times are ages against a wall-clock write time** (see :func:`vnfha.health.ladder.from_bytes`),
  read back onto the caller's monotonic clock, so a VM reboot does not corrupt them.
- **Errors are vnfha's**: the store's (:class:`~vnfha.errors.StoreError`) on I/O, and
  :class:`~vnfha.errors.LadderStateError` naming the key when the stored bytes are unreadable.
"""

from __future__ import annotations

from vnfha.errors import LadderStateError
from vnfha.health.incarnation import Life, stored_life
from vnfha.health.ladder import LadderHistory, LadderPolicy, from_bytes, to_bytes
from vnfha.store.base import Store

__all__ = ["LadderCounters", "ladder_key", "read_life"]


def ladder_key(key_prefix: str, group: str, member: str) -> str:
    """``{key_prefix}/{group}/ladder/{member}``."""
    return f"{key_prefix}/{group}/ladder/{member}"


class LadderCounters:
    """Load and save one member's ladder history in ``store``.

    ``timeout_s`` bounds each request (None: the store's own request timeout).
    """

    def __init__(self, store: Store, key_prefix: str, group: str, member: str, *,
                 timeout_s: float | None = None, policy: LadderPolicy | None = None) -> None:
        self._store = store
        self._policy = policy
        self._timeout_s = timeout_s
        self.key = ladder_key(key_prefix, group, member)
        """The store key of this member's counters."""

    async def load(self, now: float, wall_now: float) -> LadderHistory:
        """The stored history on the caller's clock at ``now`` (wall clock ``wall_now``); an
        empty one if nothing is stored. Raises LadderStateError (with the key) if unreadable."""
        return (await self.read(now, wall_now))[0]

    async def read(self, now: float, wall_now: float) -> tuple[LadderHistory, Life | None]:
        """The stored history (as :meth:`load`) and incarnation record (None: none stored).
        Raises LadderStateError (with the key) if either is unreadable."""
        kv = await self._store.get(self.key, timeout_s=self._timeout_s)
        if kv is None:
            return LadderHistory(), None
        try:
            return from_bytes(kv.value, now, wall_now), stored_life(kv.value)
        except LadderStateError as e:
            raise LadderStateError(e.problem, key=self.key) from e

    async def save(self, history: LadderHistory, now: float, wall_now: float,
                   life: Life | None = None) -> None:
        """Store ``history`` (times on the caller's clock at ``now``) and ``life`` (None: none),
        in one write without a lease, with the member's policy when it was given (for
        ``vnfha ladder``)."""
        await self._store.put(self.key, to_bytes(history, now, wall_now, self._policy,
                                                 None if life is None else life.as_json()),
                              timeout_s=self._timeout_s)

    async def clear(self) -> None:
        """Delete the stored counters (an operator's reset; the next load is empty)."""
        await self._store.delete(self.key, timeout_s=self._timeout_s)


async def read_life(store: Store, key_prefix: str, group: str, member: str, *,
                    timeout_s: float | None = None) -> Life | None:
    """``member``'s incarnation record as its ladder key holds it (None: no key, or a key
    without one). Raises the store's errors, and LadderStateError (with the key) if the record
    cannot be read."""
    key = ladder_key(key_prefix, group, member)
    kv = await store.get(key, timeout_s=timeout_s)
    if kv is None:
        return None
    try:
        return stored_life(kv.value)
    except LadderStateError as e:
        raise LadderStateError(e.problem, key=key) from e
