"""HTTP/2 keepalive on the replication stream: the active's server accepts the standby's pings
(no GOAWAY "too_many_pings", no reconnect) on a stream that carries no data for many ping periods,
with real gRPC on 127.0.0.1:0."""

from __future__ import annotations

import asyncio

from vnfha.clock import SystemClock
from vnfha.replication.active import Primary, ReplicationServer
from vnfha.replication.standby import Replica
from vnfha.replication.state import Change, CheckpointData, Limits
from vnfha.replication.wire import keepalive_options


async def until(cond: object, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_an_idle_stream_with_fast_pings_stays_up() -> None:
    keepalive_s = 0.1  # ten pings a second, on a stream with no data: heartbeats every 30 s
    limits = Limits()

    async def publish(m: frozenset[str]) -> frozenset[str]:
        return m

    primary = Primary(member="a", epoch=3, data=CheckpointData(), limits=limits, base=(0, 0),
                      clock=SystemClock(), heartbeat_s=30, publish_sync=publish,
                      standby_silence_s=1.0)
    server = ReplicationServer(listen="127.0.0.1:0", group="g", member="a", limits=limits,
                               credentials=None, primary=lambda: primary, allowed_peers=None,
                               on_stale=lambda e: None, keepalive_s=keepalive_s)
    address = await server.start()
    replica = Replica(group="g", member="b", data=CheckpointData(), limits=limits,
                      clock=SystemClock(), credentials=None, retry_s=0.05,
                      keepalive_s=keepalive_s)
    task = asyncio.create_task(replica.follow(address, 3))
    try:
        primary.write(Change("s", "k", b"1"))
        await until(lambda: replica.applied == (3, 1))
        await asyncio.sleep(2.5)  # ~25 ping periods with no data on the stream
        assert replica.sessions == 1 and replica.connected
        primary.write(Change("s", "k", b"2"))
        await until(lambda: replica.applied == (3, 2))
        assert replica.sessions == 1
    finally:
        task.cancel()
        primary.close()
        await server.stop()


def test_server_policy_accepts_the_client_rate() -> None:
    client = dict(keepalive_options(1.0, server=False))
    server = dict(keepalive_options(1.0, server=True))
    assert client["grpc.keepalive_time_ms"] == 1000
    assert server["grpc.http2.min_recv_ping_interval_without_data_ms"] <= 1000 // 2
    assert server["grpc.http2.max_ping_strikes"] == 0
