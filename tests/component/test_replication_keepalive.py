"""HTTP/2 keepalive on the replication stream: the active's server accepts the standby's pings
(no GOAWAY "too_many_pings", no reconnect) on a stream that carries no data for many ping periods,
with real gRPC on 127.0.0.1:0."""

from __future__ import annotations

import asyncio

from vnfha.replication.state import Change
from vnfha.replication.wire import keepalive_options
from vnfha.testing.replication import ReplicationRig, until


async def test_an_idle_stream_with_fast_pings_stays_up() -> None:
    keepalive_s = 0.1  # ten pings a second, on a stream with no data: heartbeats every 30 s
    async with ReplicationRig.start(heartbeat_s=30, keepalive_s=keepalive_s) as rig:
        replica = rig.replica("b", keepalive_s=keepalive_s)
        rig.follow(replica)
        rig.primary.write(Change("s", "k", b"1"))
        await until(lambda: replica.applied == (3, 1))
        await asyncio.sleep(2.5)  # ~25 ping periods with no data on the stream
        assert replica.sessions == 1 and replica.connected
        rig.primary.write(Change("s", "k", b"2"))
        await until(lambda: replica.applied == (3, 2))
        assert replica.sessions == 1


def test_server_policy_accepts_the_client_rate() -> None:
    client = dict(keepalive_options(1.0, server=False))
    server = dict(keepalive_options(1.0, server=True))
    assert client["grpc.keepalive_time_ms"] == 1000
    # a ping after packet loss must time out as a keepalive does, not after gRPC's 60 s
    assert client["grpc.http2.ping_timeout_ms"] == server["grpc.http2.ping_timeout_ms"] == 1000
    assert server["grpc.http2.min_recv_ping_interval_without_data_ms"] <= 1000 // 2
    assert server["grpc.http2.max_ping_strikes"] == 0
