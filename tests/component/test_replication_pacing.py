"""The active's pacing of its streams (issue 14), with real gRPC on 127.0.0.1:0: one timer per
epoch sends every idle stream its heartbeats and ends every write's wait for acks at its
deadline (instead of a timeout scope per write and per idle wait), and a standby that is behind
gets its backlog in batches of at most BATCH_BYTES (not 4 MiB ones, which held either member's
event loop for tens of milliseconds)."""

from __future__ import annotations

import asyncio
import time

from vnfha.model import Ack
from vnfha.replication.active import BATCH_BYTES
from vnfha.replication.standby import Applied
from vnfha.replication.state import Change
from vnfha.testing.replication import ReplicationRig, until


async def test_an_idle_stream_gets_a_heartbeat_every_interval() -> None:
    async with ReplicationRig.start(heartbeat_s=0.05) as rig:
        b = rig.replica("b")
        rig.follow(b)
        rig.primary.write(Change("s", "k", b"1"))
        await until(lambda: b.applied == (rig.epoch, 1))
        before = b.messages
        await asyncio.sleep(0.5)  # ten heartbeat intervals with nothing written
        assert 5 <= b.messages - before <= 12
        assert rig.primary.peers == ("b",)  # each was answered: b is not silent


async def test_a_deadline_before_the_next_heartbeat_wakes_the_timer() -> None:
    """The timer sleeps until the next heartbeat is due (1 s here); a write that may wait only
    50 ms for its acks wakes it, and gives up then, not at the heartbeat."""
    async with ReplicationRig.start(heartbeat_s=1.0) as rig:
        await asyncio.sleep(0.05)  # the timer is asleep until its first heartbeat slot
        seq = rig.primary.write(Change("s", "k", b"1"))
        started = time.monotonic()
        assert not await rig.primary.wait_protected(seq, Ack.ONE, timeout_s=0.05)
        assert 0.04 <= time.monotonic() - started < 0.5


async def test_writes_time_out_each_at_its_own_deadline() -> None:
    async with ReplicationRig.start(heartbeat_s=0.05) as rig:
        seq = rig.primary.write(Change("s", "k", b"1"))
        started = time.monotonic()
        waits = [asyncio.create_task(rig.primary.wait_protected(seq, Ack.ONE, timeout_s=t))
                 for t in (0.3, 0.1, 0.2)]
        ended: dict[int, float] = {}
        for i, wait in enumerate(waits):
            wait.add_done_callback(lambda _, i=i: ended.setdefault(i, time.monotonic()))
        assert await asyncio.gather(*waits) == [False, False, False]
        assert sorted(ended, key=ended.__getitem__) == [1, 2, 0]
        assert ended[0] - started >= 0.3


async def test_a_standby_behind_gets_its_backlog_in_bounded_batches() -> None:
    async with ReplicationRig.start() as rig:
        for i in range(20_000):
            rig.primary.write(Change("s", f"k{i % 1000}", b"v" * 100))
        b = rig.replica("b")
        batches: list[int] = []

        def record(applied: Applied) -> None:
            batches.append(sum(c.wire_bytes for c in applied.changes))

        b.listeners.append(record)
        rig.follow(b)
        await until(lambda: b.applied == (rig.epoch, 20_000), timeout_s=30)
        assert len(batches) >= 20_000 * 116 // BATCH_BYTES  # 116 wire bytes a change
        assert max(batches) <= BATCH_BYTES
        assert dict(b.data.items("s")) == dict(rig.primary.data.items("s"))
