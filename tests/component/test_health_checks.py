"""Built-in health checks against real processes, sockets and a grpc.health.v1 server on
127.0.0.1:0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

import grpc
import pytest

from vnfha import grpc_health as h
from vnfha.clock import SystemClock
from vnfha.errors import ConfigError, HealthCheckFailed
from vnfha.health.checks import GrpcHealth, HealthCheck, ProcessAlive, TcpConnect

T = TypeVar("T")


async def failure(check: HealthCheck) -> str:
    with pytest.raises(HealthCheckFailed) as e:
        await check()
    assert e.value.check == check.name
    return e.value.reason


async def until_fails(check: HealthCheck, within_s: float = 5.0) -> str:
    """The reason of the check's first failure, polling until ``within_s`` has passed."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await check()
        except HealthCheckFailed as e:
            return e.reason
        assert asyncio.get_running_loop().time() < deadline, f"{check.name} kept passing"
        await asyncio.sleep(0.01)


# -- process ------------------------------------------------------------------------------------


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


async def test_process_alive_passes_for_a_running_process(child: subprocess.Popen[bytes]) -> None:
    await ProcessAlive(os.getpid())()
    check = ProcessAlive(child.pid, name="worker")
    await check()
    assert (check.name, check.kind) == ("worker", "process")


async def test_process_alive_sees_zombie_stopped_and_gone(child: subprocess.Popen[bytes]) -> None:
    check = ProcessAlive(child.pid)
    os.kill(child.pid, signal.SIGSTOP)
    try:
        assert await until_fails(check) == f"process {child.pid} is stopped"
    finally:
        os.kill(child.pid, signal.SIGCONT)
    await check()
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    assert await failure(check) == f"process {child.pid} has exited (zombie)"
    child.wait()
    assert await failure(check) == f"process {child.pid} does not exist"


async def test_process_alive_sees_a_reused_pid(child: subprocess.Popen[bytes]) -> None:
    """A pid recycled for another process: its start time differs from the one recorded."""
    started = ProcessAlive(child.pid).started
    assert started is not None
    check = ProcessAlive(child.pid, started=started - 1)  # the original started a tick earlier
    assert await failure(check) == f"pid {child.pid} now belongs to another process"


def test_process_alive_refuses_bad_pids() -> None:
    for pid in (0, -1, True, "1"):
        with pytest.raises(ConfigError) as e:
            ProcessAlive(pid)  # type: ignore[arg-type]
        assert e.value.field == "pid"


# -- tcp ----------------------------------------------------------------------------------------


async def test_tcp_connect_passes_when_a_port_listens_and_fails_when_refused() -> None:
    accepted = asyncio.Event()

    async def on_client(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        check = TcpConnect("127.0.0.1", port, 5.0)
        await check()
        await asyncio.wait_for(accepted.wait(), 5)
        assert check.kind == "tcp" and check.name == f"tcp-127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
    assert await failure(check) == f"connect to 127.0.0.1:{port}: Connection refused"


class ExpiredClock(SystemClock):
    """A clock on which every timeout has already passed."""

    async def wait_for(self, aw: Awaitable[T], timeout_s: float) -> T:
        task = asyncio.ensure_future(aw)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        raise TimeoutError


async def test_tcp_connect_reports_its_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check = TcpConnect("127.0.0.1", port, 0.25, clock=ExpiredClock())
        assert await failure(check) == f"no connection to 127.0.0.1:{port} within 0.25 s"


@pytest.mark.parametrize(("args", "field"), [(("h", 0, 1.0), "port"), (("h", 70000, 1.0), "port"),
                                             (("", 80, 1.0), "host"), (("h", 80, 0), "timeout_s"),
                                             (("h", 80, float("nan")), "timeout_s")])
def test_tcp_connect_refuses_bad_settings(args: tuple[str, int, float], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        TcpConnect(*args)
    assert e.value.field == field


# -- grpc.health.v1 -----------------------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[h.HealthService, grpc.aio.Server, str]]:
    health = h.HealthService()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((health.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield health, server, f"127.0.0.1:{port}"
    finally:
        health.close()
        await server.stop(None)


Served = tuple[h.HealthService, grpc.aio.Server, str]


async def test_grpc_health_follows_the_served_status(served: Served) -> None:
    health, server, target = served
    async with GrpcHealth(target, timeout_s=5.0) as whole, \
            GrpcHealth(target, "vnfha.Db", timeout_s=5.0) as db:
        await whole()
        assert whole.kind == "grpc-health" and db.name == f"grpc-{target}/vnfha.Db"
        assert await failure(db) == f"{target} 'vnfha.Db': NOT_FOUND: unknown service 'vnfha.Db'"
        health.set("vnfha.Db", h.ServingStatus.SERVING)
        await db()
        health.set("vnfha.Db", h.ServingStatus.NOT_SERVING)
        assert await failure(db) == f"{target} 'vnfha.Db' is NOT_SERVING"
        await server.stop(None)
        assert (await failure(whole)).startswith(f"{target}: UNAVAILABLE: ")


async def test_grpc_health_channel_is_closed_and_reopened(served: Served) -> None:
    _, _, target = served
    check = GrpcHealth(target, timeout_s=5.0)
    await check.close()  # never opened: nothing to do
    await check()
    await check.close()
    await check.close()
    await check()  # a new channel
    await check.close()


def test_grpc_health_refuses_bad_settings() -> None:
    with pytest.raises(ConfigError) as e:
        GrpcHealth("", timeout_s=1.0)
    assert e.value.field == "target"
    with pytest.raises(ConfigError) as e:
        GrpcHealth("h:1", timeout_s=-1)
    assert e.value.field == "timeout_s"


async def test_grpc_health_dials_again_once_the_server_is_back() -> None:
    """After UNAVAILABLE the check drops its channel: a server back on its port is seen at the
    next run, not after gRPC's reconnect backoff (1 s, growing to 2 min)."""

    async def serve(port: int) -> tuple[h.HealthService, grpc.aio.Server, int]:
        health = h.HealthService()
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((health.handler(),))
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return health, server, bound

    health, server, port = await serve(0)
    async with GrpcHealth(f"127.0.0.1:{port}", timeout_s=5.0) as check:
        await check()
        health.close()
        await server.stop(None)
        for _ in range(2):
            assert "UNAVAILABLE" in await failure(check)
        health, server, _ = await serve(port)
        try:
            await check()
        finally:
            health.close()
            await server.stop(None)
