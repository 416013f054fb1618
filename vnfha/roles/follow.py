"""A standby's duty toward the active it follows: replicate from it and watch it.

The member decides *whom* to follow (its role and the group snapshot); a :class:`Follower`
does the following: one :meth:`~vnfha.replication.standby.Replica.follow` stream and one
:class:`~vnfha.roles.monitor.ActiveMonitor` per target, in one task group, so that either
ending (or failing) ends both.

Guarantees:

- At most one target at a time. :meth:`Follower.follow` with the current target does nothing;
  with another one it cancels the old stream and monitor first, so a standby never applies
  two actives' streams at once (the replica also refuses a lower epoch, invariant I1).
- ``follow(None)`` stops following; so does :meth:`Follower.stop`, which also waits for the
  task to end.
- The monitor of the current target is kept in :attr:`Follower.monitor` (for tests and the
  fence benchmark), also after it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from vnfha._tasks import stop_task
from vnfha.clock import Clock
from vnfha.replication.standby import Replica
from vnfha.roles.monitor import ActiveMonitor, Fencer, MonitorTimers
from vnfha.store.base import Store

__all__ = ["FollowTarget", "Follower"]


class FollowTarget(NamedTuple):
    """The active to follow: its replication endpoint and its grant (epoch, member, lease, and
    the grant's replication secret)."""

    listen: str
    epoch: int
    member: str
    lease: int
    secret: str = ""

    def __repr__(self) -> str:  # never print the secret in a log line
        return (f"FollowTarget(listen={self.listen!r}, epoch={self.epoch}, "
                f"member={self.member!r}, lease={self.lease:x})")


class Follower:
    """Follows one active at a time for the standby ``me``. ``on_gone(epoch, evidence)`` is
    called with the monitor's (or the replica's) proof that the active can no longer act, and
    ``on_lapsed(epoch)`` while it suspects the active and its standby lease has lapsed;
    :attr:`fencer`, when set (by a member with an NFVI bridge), is how the monitor fences a
    silent active."""

    def __init__(self, *, me: str, replica: Replica, store: Store, clock: Clock,
                 timers: MonitorTimers, on_gone: Callable[[int, str], None],
                 on_lapsed: Callable[[int], None] | None = None) -> None:
        self._me = me
        self._replica = replica
        self._store = store
        self._clock = clock
        self._timers = timers
        self._on_gone = on_gone
        self._on_lapsed = on_lapsed
        self.fencer: Fencer | None = None
        self.monitor: ActiveMonitor | None = None
        """The watch over the current (or last) target."""
        self._target: FollowTarget | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def target(self) -> FollowTarget | None:
        """The active being followed, None when not following."""
        return self._target

    def follow(self, target: FollowTarget | None) -> None:
        """Follow ``target`` (None: nobody). Idempotent for the current target."""
        if target == self._target:
            return
        self.pause()
        self._target = target
        self.resume()

    def pause(self) -> None:
        """Stop the stream and the monitor now, without waiting, but keep the target: nothing
        is followed until :meth:`resume` or another target (tests use it to cut a stream)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def resume(self) -> None:
        """Follow the current target again if it is not being followed."""
        if self._target is not None and self._task is None:
            self._task = asyncio.create_task(self._run(self._target), name=f"{self._me}-follow")

    async def stop(self) -> None:
        """Stop following and wait until the stream and the monitor have ended."""
        task, self._task, self._target = self._task, None, None
        await stop_task(task)

    async def _run(self, target: FollowTarget) -> None:
        """Replicate from ``target`` and run an :class:`ActiveMonitor` on it, until cancelled."""
        self.monitor = ActiveMonitor(
            me=self._me, member=target.member, epoch=target.epoch, lease=target.lease,
            replica=self._replica, store=self._store, clock=self._clock,
            on_gone=self._on_gone, fencer=self.fencer, timers=self._timers,
            on_lapsed=self._on_lapsed)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._replica.follow(target.listen, target.epoch, target.secret),
                              name=f"{self._me}-replica")
            tasks.create_task(self.monitor.run(), name=f"{self._me}-monitor")
