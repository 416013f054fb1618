"""member.checkpoint with real gRPC streams on 127.0.0.1 and the in-memory store (real time):
replication, acks, the in-sync set, limits, deposed writers, stale epochs, mTLS."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from vnfha import (
    Ack,
    AckTimeout,
    CheckpointLimitError,
    Config,
    ConfigError,
    Member,
    NotActive,
    Role,
)
from vnfha.clock import SystemClock
from vnfha.component import Component
from vnfha.replication.standby import Applied, Replica
from vnfha.replication.state import Change, CheckpointData, Limits
from vnfha.roles.keys import SyncRecord
from vnfha.store.memory import MemoryStore
from vnfha.testing.replication import ReplicationRig
from vnfha.testing.tls import make_test_pki
from vnfha.testing.waiting import until


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as s:
        yield s


def cfg(name: str, **kw: Any) -> Config:
    return Config(group="vfw", member=name, checkpoint_ack_timeout_s=0.5, **kw)


async def test_late_standby_gets_everything_and_acks_count_once_in_sync(
    store: MemoryStore,
) -> None:
    async with Member(cfg("a"), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        for i in range(300):
            await a.checkpoint.put("sessions", f"k{i}", b"v%d" % i)
        with pytest.raises(AckTimeout, match="no standby is in sync"):
            await a.checkpoint.put("sessions", "lonely", b"x", ack=Ack.ONE)
        assert a.checkpoint.get("sessions", "lonely") == b"x"  # applied, just not protected
        async with Member(cfg("b"), store=store) as b:
            await b.wait_for_role(Role.STANDBY, 5)
            await until(lambda: a.checkpoint.in_sync == ("b",))
            seq = await a.checkpoint.put("sessions", "k0", b"new", ack=Ack.ONE)
            # acknowledged means applied on b, already now
            assert b.checkpoint.get("sessions", "k0") == b"new"
            assert b.checkpoint.position == (a.epoch, seq)
            await a.checkpoint.delete("sessions", "k1", ack=Ack.ALL)
            assert b.checkpoint.get("sessions", "k1") is None
            assert dict(b.checkpoint.items("sessions")) == dict(a.checkpoint.items("sessions"))
            # the in-sync set is in etcd, with b's lease, fenced by a's epoch
            kv = await store.get("/vnfha/vfw/sync")
            assert kv is not None
            assert SyncRecord.decode(kv.value) == SyncRecord("a", (("b", b.lease_id),))


async def test_a_burst_of_none_writes_lets_the_loop_run(store: MemoryStore) -> None:
    """Ack.NONE writes never suspend on their own; every 512 of them (puts and deletes alike)
    the writer yields, so keepalives and streams on the same loop are not starved."""
    async with Member(cfg("a"), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        try:
            since_tick = longest = 0
            for i in range(5000):
                before = ticks
                if i % 3:
                    await a.checkpoint.put("s", f"k{i % 50}", b"v")
                else:
                    await a.checkpoint.delete("s", f"k{i % 50}")
                since_tick = 0 if ticks != before else since_tick + 1
                longest = max(longest, since_tick)
        finally:
            ticker.cancel()
        assert 500 <= longest <= 512
        assert ticks >= 9


async def test_none_writers_wait_for_one_turn_of_the_loop_not_for_every_burst(
    store: MemoryStore,
) -> None:
    """With 32 tasks writing Ack.NONE, a put that yields waits for at most 512 writes plus one
    from each other writer, and the loop gets a turn as often (issue 14: each of the others
    ran a burst of its own first, ~30,000 writes, 200-260 ms)."""
    async with Member(cfg("a"), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        writers, per_writer = 32, 300
        turns: list[int] = []  # the sequence at each turn of the loop

        async def tick() -> None:
            while True:
                turns.append(a.checkpoint.position[1])
                await asyncio.sleep(0)

        waited: list[int] = []  # writes by others while each put was suspended

        async def writer(w: int) -> None:
            for i in range(per_writer):
                seq = await a.checkpoint.put("s", f"k{w}.{i % 10}", b"v")
                waited.append(a.checkpoint.position[1] - seq)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        try:
            await asyncio.gather(*(writer(w) for w in range(writers)))
        finally:
            ticker.cancel()
        assert len(waited) == writers * per_writer
        assert 0 < max(waited) <= 512 + writers
        gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
        assert max(gaps) <= 512 + writers


async def test_degraded_ack_is_counted_and_returns(store: MemoryStore) -> None:
    async with Member(cfg("a", checkpoint_degrade_ack=True), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        await a.checkpoint.put("s", "k", b"v", ack=Ack.ALL, timeout_s=0.05)
        assert a.checkpoint.degraded_acks == 1


async def test_writes_on_a_standby_or_a_deposed_active_raise_not_active(
    store: MemoryStore,
) -> None:
    async with Member(cfg("a"), store=store) as a, Member(cfg("b"), store=store) as b:
        await a.wait_for_role(Role.ACTIVE, 5)
        await b.wait_for_role(Role.STANDBY, 5)
        with pytest.raises(NotActive):
            await b.checkpoint.put("s", "k", b"v")
        await until(lambda: a.checkpoint.in_sync == ("b",))
        # b stops applying (its stream is cut), so a ONE write waits; then a is deposed
        b.follower.pause()
        waiting = asyncio.create_task(a.checkpoint.put("s", "k", b"v", ack=Ack.ONE,
                                                       timeout_s=5))
        await asyncio.sleep(0.05)
        old_primary, old_epoch = a.checkpoint.primary, a.epoch
        await store.delete("/vnfha/vfw/active")
        with pytest.raises(NotActive):
            await waiting
        assert old_primary is not None and old_primary.closed
        # whatever a does next (it may win again), it is never in the old epoch
        await until(lambda: a.role is not Role.ACTIVE or a.epoch > old_epoch)


async def test_limits_and_names_are_refused_and_the_member_keeps_serving(
    store: MemoryStore,
) -> None:
    async with Member(cfg("a", checkpoint_max_value_bytes=100,
                          checkpoint_max_section_bytes=1000), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        with pytest.raises(CheckpointLimitError, match="over max_value_bytes=100"):
            await a.checkpoint.put("s", "k", b"x" * 101)
        with pytest.raises(ConfigError, match="section"):
            await a.checkpoint.put("no spaces", "k", b"x")
        with pytest.raises(ConfigError, match="key"):
            await a.checkpoint.put("s", "", b"x")
        with pytest.raises(ConfigError, match="bytes"):
            await a.checkpoint.put("s", "k", "text")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="without surrogates"):
            await a.checkpoint.put("s", "k\udcff", b"x")
        assert a.checkpoint.get("s", "k\udcff") is None
        with pytest.raises(ConfigError, match="ack"):
            await a.checkpoint.put("s", "k", b"x", ack="one")  # type: ignore[arg-type]
        for i in range(9):
            await a.checkpoint.put("s", f"k{i}", b"x" * 100)
        with pytest.raises(CheckpointLimitError, match=r"section s is .* over max_section_bytes"):
            await a.checkpoint.put("s", "k9", b"x" * 100)
        assert len(a.checkpoint) == 9 and a.role is Role.ACTIVE
        await a.checkpoint.put("s", "k0", b"ok")  # still serving
        assert a.checkpoint.get("s", "k9") is None


async def test_slow_standby_is_cut_back_to_a_snapshot(store: MemoryStore) -> None:
    async with Member(cfg("a", checkpoint_max_backlog_entries=50), store=store) as a, \
            Member(cfg("b"), store=store) as b:
        await a.wait_for_role(Role.ACTIVE, 5)
        await b.wait_for_role(Role.STANDBY, 5)
        await until(lambda: a.checkpoint.in_sync == ("b",))
        primary = a.checkpoint.primary
        assert primary is not None
        before = primary.snapshots_sent
        b.follower.pause()
        for i in range(500):
            await a.checkpoint.put("s", f"k{i % 120}", b"%d" % i)
        assert len(primary.log) == 50  # bounded, whatever the standby does
        b.follower.resume()  # it comes back: too far behind for the log
        await until(lambda: b.checkpoint.position == a.checkpoint.position)
        assert primary.snapshots_sent > before
        assert dict(b.checkpoint.items("s")) == dict(a.checkpoint.items("s"))


async def test_switchover_hands_over_the_last_checkpoint_and_tracking(
    store: MemoryStore,
) -> None:
    class Drainer(Component):
        member: Member

        async def on_quiesce(self) -> None:
            # the last words of the active, written with no ack at all
            for i in range(200):
                await self.member.checkpoint.put("final", f"k{i}", b"bye")

    drainer = Drainer()
    seen: list[Applied] = []
    async with Member(cfg("a"), drainer, store=store) as a, \
            Member(cfg("b"), store=store) as b:
        drainer.member = a
        b.checkpoint.track(seen.append)
        await a.wait_for_role(Role.ACTIVE, 5)
        await b.wait_for_role(Role.STANDBY, 5)
        await until(lambda: a.checkpoint.in_sync == ("b",))
        await a.checkpoint.put("s", "k", b"v", ack=Ack.ONE)
        assert any(c.key == "k" for batch in seen for c in batch.changes)
        await a.switchover()
        assert b.role is Role.ACTIVE
        assert len(list(b.checkpoint.items("final"))) == 200  # nothing left behind
        # a follows b now, from b's base: no snapshot needed
        await until(lambda: a.checkpoint.position == b.checkpoint.position)
        primary = b.checkpoint.primary
        assert primary is not None and primary.snapshots_sent == 0


async def test_a_stale_epoch_is_rejected_and_counted() -> None:
    """An active whose epoch has ended keeps streaming to a standby that has learnt of a newer
    epoch (from etcd): the standby rejects it with FAILED_PRECONDITION and counts it; a stale
    active asked by a standby that has seen the newer epoch refuses to serve."""
    async with ReplicationRig.start(group="vfw", member="old", epoch=3, heartbeat_s=0.02) as rig:
        replica = rig.replica("b")
        rig.follow(replica)
        rig.primary.write(Change("s", "k", b"1"))
        await until(lambda: replica.applied == (3, 1))
        replica.observe_epoch(7)  # etcd says: epoch 7 began
        rig.primary.write(Change("s", "k", b"stale"))
        await until(lambda: replica.stale_rejections >= 1)
        assert replica.data.get("s", "k") == b"1"  # never applied
        # reconnecting, it now tells the old active about epoch 7: refused
        await until(lambda: rig.server.stale_rejections >= 1)


async def test_mutual_tls_accepts_only_group_members(tmp_path: Path,
                                                     store: MemoryStore) -> None:
    pki = make_test_pki(str(tmp_path), members=("a", "b", "intruder"))

    def tls(name: str) -> dict[str, Any]:
        files = pki.members[name]
        return {"replication_ca_file": pki.ca_file, "replication_cert_file": files.cert_file,
                "replication_key_file": files.key_file}

    async with Member(cfg("a", **tls("a")), store=store) as a, \
            Member(cfg("b", **tls("b")), store=store) as b:
        await a.wait_for_role(Role.ACTIVE, 5)
        await b.wait_for_role(Role.STANDBY, 5)
        await a.checkpoint.put("s", "k", b"secret")
        await until(lambda: b.checkpoint.get("s", "k") == b"secret")
        # a certificate whose name is not a member of the group may not replicate
        files = pki.members["intruder"]
        creds = grpc.ssl_channel_credentials(
            Path(pki.ca_file).read_bytes(), Path(files.key_file).read_bytes(),
            Path(files.cert_file).read_bytes())
        intruder = Replica(group="vfw", member="intruder", data=CheckpointData(),
                           limits=Limits(), clock=SystemClock(), credentials=creds, retry_s=1,
                           keepalive_s=1.0)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await intruder.session(a.listen, a.epoch, "")
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert intruder.data.get("s", "k") is None
