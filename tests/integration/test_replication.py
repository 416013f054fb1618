"""Checkpoint replication between member processes on a real 3-member etcd: no acknowledged
write lost when the active is killed, a late standby gets everything, a restarted standby
resyncs (and the active's ONE writes wait for it instead of pretending)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from vnfha.testing.member_proc import MemberProcess

pytestmark = pytest.mark.etcd

Spawn = Callable[..., MemberProcess]


def role_is(role: str, epoch_above: int = 0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > epoch_above


def count_at_least(n: int) -> Any:
    return lambda e: e["event"] == "status" and e["count"] >= n


QUIET = ("--quiet-acts", "--status-interval-s", "0.1")


def test_no_acknowledged_write_is_lost_when_the_active_is_killed(spawn: Spawn) -> None:
    a = spawn("a", *QUIET, "--write", "10000", "--ack", "one", "--report-every", "50")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b", *QUIET, "--write", "10000", "--ack", "none")
    b.wait_for(role_is("standby"), 10, "b standby")
    a.wait_for(lambda e: e["event"] == "acked" and e["index"] >= 3000, 60, "3000 acked")
    a.kill()  # mid-stream: writes keep going until the SIGKILL lands
    acked = max(e["index"] for e in a.events if e["event"] == "acked")
    assert acked >= 3000
    b.wait_for(role_is("active", first["epoch"]), 10, "b active")
    found = b.wait_for(lambda e: e["event"] == "checkpoint", 5, "b's checkpoint")
    assert found["first_missing"] > acked, (found, acked)
    # b carries on in its own epoch (alone now, so without acks)
    b.wait_for(lambda e: e["event"] == "written", 60, "b finishes")


def test_all_10000_acknowledged_writes_survive_sigkill(spawn: Spawn) -> None:
    a = spawn("a", *QUIET, "--write", "10000", "--ack", "one", "--report-every", "1000")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b", *QUIET)
    b.wait_for(role_is("standby"), 10, "b standby")
    a.wait_for(lambda e: e["event"] == "written", 60, "10,000 acknowledged")
    a.kill()
    b.wait_for(role_is("active", first["epoch"]), 10, "b active")
    found = b.wait_for(lambda e: e["event"] == "checkpoint", 5)
    assert (found["count"], found["first_missing"]) == (10000, 10000)


def test_limits_and_bad_names_are_refused_and_the_member_keeps_serving(spawn: Spawn) -> None:
    a = spawn("a", *QUIET, "--probe-limits", "--write", "200", "--ack", "none")
    a.wait_for(role_is("active"), 10)
    a.wait_for(lambda e: e["event"] == "written", 20, "writes after the refusals")
    refused = [e for e in a.events if e["event"] == "refused"]
    assert [e["type"] for e in refused] == ["CheckpointLimitError", "ConfigError", "ConfigError"]
    assert "over max_value_bytes=1048576" in refused[0]["error"]
    assert "section='bad name'" in refused[1]["error"]
    assert "key=''" in refused[2]["error"]
    assert a.role() == "active"


def test_late_standby_gets_the_full_state(spawn: Spawn) -> None:
    a = spawn("a", *QUIET, "--write", "3000", "--ack", "none")
    a.wait_for(role_is("active"), 10)
    a.wait_for(lambda e: e["event"] == "written", 30, "a wrote")
    b = spawn("b", *QUIET)
    b.wait_for(role_is("standby"), 10)
    b.wait_for(count_at_least(3000), 10, "b has all 3000")


def test_a_standby_restarted_mid_stream_resyncs(spawn: Spawn) -> None:
    a = spawn("a", *QUIET, "--write", "6000", "--ack", "one", "--report-every", "100")
    a.wait_for(role_is("active"), 10)
    b = spawn("b", *QUIET)
    b.wait_for(role_is("standby"), 10)
    a.wait_for(lambda e: e["event"] == "acked" and e["index"] >= 1000, 30)
    b.kill()
    # with its only standby gone, a's Ack.ONE writes time out instead of pretending
    stalled = a.wait_for(lambda e: e["event"] == "ack_timeout", 10, "ack timeout")
    time.sleep(0.3)
    b2 = spawn("b", *QUIET)
    b2.wait_for(role_is("standby"), 10)
    a.wait_for(lambda e: e["event"] == "written", 60, "a finished once b2 synced")
    assert stalled["index"] >= 1000
    b2.wait_for(count_at_least(6000), 10, "b2 has everything")


async def test_a_real_active_refuses_stale_and_malformed_streams_and_keeps_serving(
    spawn: Spawn, group: str,
) -> None:
    import grpc  # noqa: PLC0415

    from vnfha.clock import SystemClock  # noqa: PLC0415
    from vnfha.replication import wire  # noqa: PLC0415
    from vnfha.replication.standby import Replica  # noqa: PLC0415
    from vnfha.replication.state import CheckpointData, Limits  # noqa: PLC0415

    a = spawn("a", *QUIET, "--write", "500", "--ack", "none")
    ready = a.wait_for(lambda e: e["event"] == "ready", 5)
    first = a.wait_for(role_is("active"), 10)
    b = spawn("b", *QUIET)
    b.wait_for(role_is("standby"), 10)

    def replica(group: str) -> Replica:
        return Replica(group=group, member="probe", data=CheckpointData(), limits=Limits(),
                       clock=SystemClock(), credentials=None, retry_s=1, keepalive_s=1.0)

    # a standby that has seen a later epoch: the active is stale for it, and says so
    stale = replica(group)
    stale.observe_epoch(first["epoch"] + 100)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stale.session(ready["listen"], first["epoch"], "")
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "is stale" in (info.value.details() or "")

    # the wrong group, and a first message that is not a Hello
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await replica("other-group").session(ready["listen"], first["epoch"], "")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(ready["listen"]) as channel:
        call = wire.open_stream(channel)
        await call.write(wire.pb.StandbyMessage(ack=wire.pb.Ack(epoch=1, sequence=1)))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    # none of that disturbed the pair
    b.wait_for(count_at_least(500), 10, "b still replicates")
    assert a.role() == "active"

