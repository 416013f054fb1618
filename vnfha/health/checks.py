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
- **A server that comes back is seen at the next run**: :class:`GrpcHealth` drops its channel
  after an UNAVAILABLE or DEADLINE_EXCEEDED answer, so the next run dials again instead of
  waiting out gRPC's reconnect backoff (up to two minutes).

:func:`from_spec` builds the check a :class:`~vnfha.config.CheckSpec` describes (from
``Config.checks`` or ``Component.checks()``), ready for the health monitor.
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
from vnfha.config import CheckSpec
from vnfha.errors import ConfigError, HealthCheckFailed
from vnfha.grpc_health import ServingStatus, probe
from vnfha.health.monitor import MonitoredCheck

__all__ = ["GrpcHealth", "HealthCheck", "PidfileAlive", "ProcessAlive", "TcpConnect", "from_spec"]


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


class PidfileAlive:
    """The process whose pid the file ``path`` holds is alive, as :class:`ProcessAlive` judges
    it. The file is read on every run, so a process restarted under a new pid (its pidfile
    rewritten) is followed; while the pid stays the same, its start time is compared as
    ProcessAlive does. A missing, unreadable or malformed pidfile is a failure."""

    kind = "process"

    def __init__(self, path: str, *, name: str | None = None) -> None:
        if not path:
            raise ConfigError("path", path, "must name a pidfile")
        self.path = path
        self.name = name or f"process-{path}"
        self._current: ProcessAlive | None = None

    def _pid(self) -> int:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(32)  # a pid is at most 7 digits: more is not a pidfile
        except OSError as e:
            raise HealthCheckFailed(self.name,
                                    f"pidfile {self.path}: {e.strerror or e}") from e
        text = raw.strip()
        if not text.isdigit() or not 0 < int(text) < 1 << 22:
            raise HealthCheckFailed(self.name, f"pidfile {self.path} holds no pid: {raw[:16]!r}")
        return int(text)

    async def __call__(self) -> None:
        """Pass, or raise HealthCheckFailed for the pidfile or the process."""
        pid = self._pid()
        if self._current is None or self._current.pid != pid:
            self._current = ProcessAlive(pid, name=self.name)  # its start time, as of now
        await self._current()


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
            # a connection of its own: channels to one target share a process-wide pool of
            # connections otherwise, and a new channel would inherit the old one's backoff
            options = (("grpc.use_local_subchannel_pool", 1),)
            self._channel = (
                grpc.aio.secure_channel(self.target, self._credentials, options=options)
                if self._credentials else grpc.aio.insecure_channel(self.target, options=options))
        return self._channel

    async def __call__(self) -> None:
        """Pass, or raise HealthCheckFailed with the status or the RPC error."""
        what = f"{self.target} {self.service!r}" if self.service else self.target
        try:
            status = await probe(self._open(), self.service, timeout_s=self.timeout_s)
        except grpc.aio.AioRpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                await self.close()  # a new channel next run, without gRPC's reconnect backoff
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


def _host_port(target: str) -> tuple[str, int]:
    """``host:port`` or ``[IPv6]:port`` (validated by the spec) as (host, port)."""
    host, _, port = target.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def from_spec(spec: CheckSpec, clock: Clock) -> MonitoredCheck:
    """The check ``spec`` describes, under its policy, for the health monitor. Network checks
    time out on ``clock``; a ``grpc-health`` check's channel is closed when the monitor stops.
    A ``process`` check on a pid records the process's start time now."""
    close = None
    check: HealthCheck
    if spec.kind == "process":
        target = spec.target
        check = (ProcessAlive(int(target), name=spec.name) if target.isdigit()
                 else PidfileAlive(target, name=spec.name))
    elif spec.kind == "tcp":
        host, port = _host_port(spec.target)
        check = TcpConnect(host, port, spec.policy.timeout_s, clock=clock, name=spec.name)
    else:
        grpc_check = GrpcHealth(spec.target, spec.service, timeout_s=spec.policy.timeout_s,
                                name=spec.name)
        check, close = grpc_check, grpc_check.close
    return MonitoredCheck(spec.name, check, spec.policy, kind=spec.kind,
                          recommended=spec.recommended, close=close)
