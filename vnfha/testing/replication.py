"""One end of replication without a member: an active's :class:`~vnfha.replication.active.Primary`
served on 127.0.0.1:0, and standbys (:class:`~vnfha.replication.standby.Replica`) that follow it.

For tests of the replication protocol itself (and of what a hostile peer can do to it), where a
whole :class:`vnfha.Member` with a store would only be in the way::

    async with ReplicationRig.start(group="g", member="a", epoch=3) as rig:
        b = rig.replica("b")
        task = rig.follow(b)           # b streams from the active, authenticated with the secret
        rig.primary.write(Change("s", "k", b"1"))
        await until(lambda: b.applied == (3, 1))

Everything the rig starts is stopped when its ``async with`` ends: the followers' tasks are
cancelled, the Primary closed, the server stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vnfha.clock import Clock, SystemClock
from vnfha.replication.active import Primary
from vnfha.replication.server import ReplicationServer
from vnfha.replication.standby import Replica
from vnfha.replication.state import CheckpointData, Limits
from vnfha.roles.keys import new_secret
from vnfha.testing.waiting import until

__all__ = ["ReplicationRig", "until"]


@dataclass
class ReplicationRig:
    """An active's replication endpoint of one epoch, and the standbys following it."""

    group: str
    epoch: int
    secret: str
    primary: Primary
    server: ReplicationServer
    address: str
    limits: Limits
    clock: Clock
    published: list[frozenset[str]] = field(default_factory=list)
    """Every in-sync set the Primary published (the rig's stand-in for etcd)."""
    refused: list[str] = field(default_factory=list)
    """Every refusal the server counted, in order (``Refusal`` values)."""
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, *, group: str = "g", member: str = "a", epoch: int = 3,
                    limits: Limits | None = None, heartbeat_s: float = 0.05,
                    standby_silence_s: float = 1.0, keepalive_s: float = 1.0,
                    clock: Clock | None = None) -> AsyncIterator[ReplicationRig]:
        """Serve a Primary of ``epoch`` for ``member`` of ``group`` on 127.0.0.1:0."""
        limits = limits or Limits()
        clock = clock or SystemClock()
        published: list[frozenset[str]] = []
        refused: list[str] = []

        async def publish(members: frozenset[str]) -> frozenset[str]:
            published.append(members)
            return members

        secret = new_secret()
        primary = Primary(member=member, epoch=epoch, data=CheckpointData(), limits=limits,
                          base=(0, 0), clock=clock, heartbeat_s=heartbeat_s,
                          publish_sync=publish, standby_silence_s=standby_silence_s,
                          secret=secret)
        server = ReplicationServer(listen="127.0.0.1:0", group=group, member=member,
                                   limits=limits, credentials=None, primary=lambda: primary,
                                   allowed_peers=None, on_stale=lambda epoch: None,
                                   keepalive_s=keepalive_s, clock=clock,
                                   on_refused=lambda reason: refused.append(reason.value))
        address = await server.start()
        rig = cls(group, epoch, secret, primary, server, address, limits, clock, published,
                  refused)
        try:
            yield rig
        finally:
            for task in rig._tasks:
                task.cancel()
            for task in rig._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            primary.close()
            await server.stop()

    def replica(self, member: str, *, keepalive_s: float = 1.0,
                retry_s: float = 0.05) -> Replica:
        """A standby named ``member`` of the rig's group (not following yet)."""
        return Replica(group=self.group, member=member, data=CheckpointData(),
                       limits=self.limits, clock=self.clock, credentials=None, retry_s=retry_s,
                       keepalive_s=keepalive_s)

    def follow(self, replica: Replica, *, secret: str | None = None) -> asyncio.Task[None]:
        """Let ``replica`` follow the rig's active (with the grant's secret unless another is
        given), in a task the rig cancels at the end."""
        task = asyncio.create_task(replica.follow(
            self.address, self.epoch, self.secret if secret is None else secret))
        self._tasks.append(task)
        return task
