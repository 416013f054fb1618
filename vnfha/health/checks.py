"""Built-in health checks: a process is alive, a TCP port accepts, a gRPC server says SERVING.

Every check has one shape (:class:`HealthCheck`): an async callable that returns ``None`` when
its target is healthy and raises :class:`vnfha.errors.HealthCheckFailed` (with the check's
``name`` and a reason naming the target) when it is not. The component's own
``health_check`` has the same shape, so the monitor runs all of them alike. ``kind`` is the
label the member's metrics count failures under (``vnfha.metrics.CheckKind`` values).

Guarantees of the built-ins:

- **Bounded.** A network check gives up after its own ``timeout_s`` (on the injected clock) and
  reports it; the monitor bounds every check again by the check policy's ``timeout_s``.
- **No leak.** A check leaves no socket or task behind, whether it passes, fails or is
  cancelled; :class:`GrpcHealth` keeps one channel, closed by :meth:`GrpcHealth.close`.
- **Only HealthCheckFailed** for an unhealthy target; a cancellation propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import grpc

from vnfha.clock import Clock, SystemClock
from vnfha.errors import ConfigError, HealthCheckFailed
from vnfha.grpc_health import ServingStatus, probe

__all__ = ["GrpcHealth", "HealthCheck", "ProcessAlive", "TcpConnect"]


class HealthCheck(Protocol):
    """The shape of every check: ``await check()`` returns when healthy, raises
    HealthCheckFailed(name, reason) when not."""

    name: str
    kind: str

    async def __call__(self) -> None: ...


def _positive_s(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not (math.isfinite(value) and value > 0):
        raise ConfigError(field, value, "must be a positive, finite number of seconds")
    return float(value)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from ``/proc/<pid>/stat``; None where there is
    no procfs or the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
    fields = raw[raw.rfind(b")") + 2:].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


class ProcessAlive:
    """The process ``pid`` exists, is neither a zombie nor stopped, and is still the process
    that had this pid when the check was built (on Linux, its start time is compared, so a pid
    reused by another process is reported, not mistaken for the original)."""

    kind = "process"

    def __init__(self, pid: int, *, name: str | None = None,
                 started: int | None = None) -> None:
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ConfigError("pid", pid, "must be a positive process id")
        self.pid = pid
        self.name = name or f"process-{pid}"
        stat = _proc_stat(pid)
        self.started = started if started is not None else (stat[1] if stat else None)
        """The process's start time (clock ticks since boot, from /proc) that the check expects:
        by default, that of the process that has the pid now; None where /proc is missing."""

    async def __call__(self) -> None:
        """Pass, or raise HealthCheckFailed saying whether the process is gone, a zombie,
        stopped, or replaced."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            raise HealthCheckFailed(self.name, f"process {self.pid} does not exist") from None
        except PermissionError:
            pass  # it exists, under another user
        stat = _proc_stat(self.pid)
        if stat is None:
            return
        state, started = stat
        if state in ("Z", "X"):
            raise HealthCheckFailed(self.name, f"process {self.pid} has exited (zombie)")
        if state in ("T", "t"):
            raise HealthCheckFailed(self.name, f"process {self.pid} is stopped")
        if self.started is not None and started != self.started:
            raise HealthCheckFailed(self.name, f"pid {self.pid} now belongs to another process")


class TcpConnect:
    """``host:port`` accepts a TCP connection within ``timeout_s`` (which is then closed)."""

    kind = "tcp"

    def __init__(self, host: str, port: int, timeout_s: float, *, clock: Clock | None = None,
                 name: str | None = None) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError("port", port, "must be between 1 and 65535")
        if not host:
            raise ConfigError("host", host, "must not be empty")
        self.host, self.port = host, port
        self.timeout_s = _positive_s("timeout_s", timeout_s)
        self.name = name or f"tcp-{host}:{port}"
        self._clock: Clock = clock or SystemClock()

    async def _connect_and_close(self) -> None:
        _, writer = await asyncio.open_connection(self.host, self.port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def __call__(self) -> None:
        """Pass, or raise HealthCheckFailed with the connect error or the timeout."""
        where = f"{self.host}:{self.port}"
        try:
            await self._clock.wait_for(self._connect_and_close(), self.timeout_s)
        except TimeoutError:
            raise HealthCheckFailed(
                self.name, f"no connection to {where} within {self.timeout_s:g} s") from None
        except OSError as e:
            why = os.strerror(e.errno) if e.errno else str(e)  # "Connection refused"
            raise HealthCheckFailed(self.name, f"connect to {where}: {why}") from e


class GrpcHealth:
    """The gRPC server at ``target`` answers grpc.health.v1 ``Check(service)`` with SERVING
    within ``timeout_s``. ``service`` ``""`` asks about the whole server. ``credentials``
    make the channel TLS; without them it is plaintext. One channel is opened on first use and
    kept (gRPC reconnects it as needed); close it with :meth:`close` or ``async with``."""

    kind = "grpc-health"

    def __init__(self, target: str, service: str = "", *, timeout_s: float,
                 credentials: grpc.ChannelCredentials | None = None,
                 name: str | None = None) -> None:
        if not target:
            raise ConfigError("target", target, "must be host:port")
        self.target, self.service = target, service
        self.timeout_s = _positive_s("timeout_s", timeout_s)
        self.name = name or f"grpc-{target}" + (f"/{service}" if service else "")
        self._credentials = credentials
        self._channel: grpc.aio.Channel | None = None

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = (grpc.aio.secure_channel(self.target, self._credentials)
                             if self._credentials else grpc.aio.insecure_channel(self.target))
        return self._channel

    async def __call__(self) -> None:
        """Pass, or raise HealthCheckFailed with the status or the RPC error."""
        what = f"{self.target} {self.service!r}" if self.service else self.target
        try:
            status = await probe(self._open(), self.service, timeout_s=self.timeout_s)
        except grpc.aio.AioRpcError as e:
            raise HealthCheckFailed(self.name,
                                    f"{what}: {e.code().name}: {e.details()}") from e
        if status is not ServingStatus.SERVING:
            raise HealthCheckFailed(self.name, f"{what} is {status.name}")

    async def close(self) -> None:
        """Close the channel (idempotent); a later call opens a new one."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
