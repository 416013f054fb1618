"""A member's live snapshot of its group: watch first, then read, then apply newer events.

:class:`GroupWatch` keeps :attr:`GroupWatch.state` (a :class:`~vnfha.roles.keys.GroupState`)
current for one member, in one task. Guarantees:

- **Watch first, then read.** :meth:`GroupWatch.resync` opens a watch from "now", then reads
  the whole group, and applies only the events above the read's revision: no event is missed
  and none is applied twice. Watching first matters for speed too: etcd serves a watch that
  starts in the past from a catch-up loop that runs every 100 ms, a watch from "now" at once.
- **In order, then ``on_change``.** Events are applied in revision order; ``on_change`` runs
  synchronously after every batch and after every (re)read, before any other await, so an
  active that lost its key can stop acting at once.
- **It does not give up.** A watch lost to a store error is reopened, after ``retry_s``, from
  the revision after the last one applied; a watch whose history was compacted is replaced by a
  fresh :meth:`~GroupWatch.resync`.
- **Unreadable records are logged and ignored**, never fatal (:meth:`GroupState.apply`).
- **One watch task at a time**: a resync replaces the previous one; :meth:`~GroupWatch.cancel`
  and :meth:`~GroupWatch.stop` end it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.errors import Compacted, StoreError
from vnfha.roles.keys import GroupKeys, GroupState
from vnfha.store.base import EventType, Store, Watch

__all__ = ["GroupWatch"]

log = logging.getLogger("vnfha.member")  # part of the member: it logs on the member's logger


class GroupWatch:
    """The group ``keys`` names, as member ``member`` sees it (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        keys: GroupKeys,
        clock: Clock,
        *,
        member: str,
        retry_s: float,
        on_change: Callable[[], None],
    ) -> None:
        self.state = GroupState(keys)
        """The snapshot: replaced by every (re)read, updated in place by every event."""
        self._store = store
        self._keys = keys
        self._clock = clock
        self._member = member
        self._retry_s = retry_s
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    async def resync(self) -> None:
        """Watch the group from now, then read it, then apply only newer events (in a task)."""
        watch = self._store.watch(self._keys.root, prefix=True)
        await watch.__aenter__()
        try:
            result = await self._store.range(self._keys.root, prefix=True)
        except BaseException:
            await watch.cancel()
            raise
        self.state, problems = GroupState.read(self._keys, result, earlier=self.state)
        for problem in problems:
            log.warning("%s: %s", self._member, problem)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = asyncio.create_task(self._watch(watch, result.revision),
                                         name=f"{self._member}-watch")
        self._on_change()

    def cancel(self) -> None:
        """Stop watching (without waiting); a later :meth:`resync` starts again."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Stop watching and wait until the watch task has ended."""
        await stop_task(self._task)

    async def read_members(self) -> None:
        """Take etcd's current member list if that read is newer than the snapshot (a choice
        that must not trust a watch that may lag, such as a switchover's, reads it first)."""
        result = await self._store.range(self._keys.members, prefix=True)
        if result.revision <= self.state.revision:
            return
        fresh = GroupState.read(self._keys, result, earlier=self.state)[0]
        self.state.members, self.state.leases = fresh.members, fresh.leases

    async def wait_released(self, revision: int, *, poll_s: float, timeout_s: float) -> None:
        """Until the watch has delivered ``revision``, at which this member released the active
        key; after ``timeout_s`` the release is applied to the snapshot directly."""
        async def caught_up() -> None:
            while self.state.revision < revision:
                await self._clock.sleep(poll_s)

        try:
            await self._clock.wait_for(caught_up(), timeout_s)
        except TimeoutError:
            self.state.apply(self._keys.active, None, revision)

    async def _watch(self, watch: Watch, floor: int) -> None:
        """Apply the group's events above ``floor`` in order; re-watch if the stream is lost
        for good, re-read if the history it needs was compacted."""
        while True:
            try:
                async with watch:
                    async for batch in watch:
                        for ev in batch.events:
                            if ev.kv.mod_revision <= floor:
                                continue
                            kv = ev.kv if ev.type is EventType.PUT else None
                            problem = self.state.apply(ev.kv.key, kv, ev.kv.mod_revision)
                            if problem:
                                log.warning("%s: %s", self._member, problem)
                        self.state.revision = max(self.state.revision, batch.revision)
                        self._on_change()
                return
            except Compacted:
                log.warning("%s: group history compacted; re-reading the group", self._member)
                await self.resync()
                return
            except StoreError as e:
                log.warning("%s: group watch failed (%s); retrying", self._member, e)
                await self._clock.sleep(self._retry_s)
                floor = self.state.revision
                watch = self._store.watch(self._keys.root, prefix=True,
                                          start_revision=floor + 1)
