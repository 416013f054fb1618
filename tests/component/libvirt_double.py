"""A libvirt connection that can be lost: :class:`Flaky` around each real ``test:///<file>``
connection, opened through :class:`Hypervisor` (the driver's ``opener``).

libvirt's ``test`` hypervisor never drops a connection, so the double records the close callback
the driver registers (a test calls it as libvirt's event thread would) and can be made to fail
like a remote connection whose daemon went away (every call raises libvirt's RPC error and
``isAlive()`` answers 0). Reconnecting opens a fresh ``test:///`` connection through the same
opener, which starts from the host file again, as a host does after a reboot. Import it only
where libvirt's binding is present (it skips the module otherwise, see ``require_libvirt``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from driver_rigs import require_libvirt

from vnfha.clock import Clock

libvirt = require_libvirt()


def rpc_error(message: str, code: int = libvirt.VIR_ERR_SYSTEM_ERROR) -> Any:
    """A ``libvirtError`` as libvirt's RPC client raises it."""
    error = libvirt.libvirtError(message)
    error.err = (code, libvirt.VIR_FROM_RPC, message, libvirt.VIR_ERR_ERROR,
                 None, None, None, -1, -1)
    return error


# Calls that work on a lost connection too (they release the client's own resources).
_LOCAL = {"unregisterCloseCallback", "domainEventDeregisterAny"}


class Flaky:
    """A real ``virConnect``, until :meth:`drop`: then every call raises libvirt's "Cannot recv
    data" (domains it handed out included) and ``isAlive()`` is 0."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.dropped = False
        self.close_callbacks: list[tuple[Callable[..., None], Any]] = []
        self.keepalive: list[tuple[int, int]] = []
        self.closed = False

    def registerCloseCallback(self, cb: Callable[..., None], opaque: Any) -> int:
        self.close_callbacks.append((cb, opaque))
        result: int = self.real.registerCloseCallback(cb, opaque)
        return result

    def setKeepAlive(self, interval: int, count: int) -> int:
        self.keepalive.append((interval, count))
        result: int = self.real.setKeepAlive(interval, count)  # test://: VIR_ERR_NO_SUPPORT
        return result

    def close(self) -> int:
        self.closed = True
        result: int = self.real.close()
        return result

    def isAlive(self) -> int:
        return 0 if self.dropped else int(self.real.isAlive())

    def close_as_libvirt_would(self, reason: int) -> None:
        """Call the registered close callback, as libvirt's event thread would."""
        cb, opaque = self.close_callbacks[-1]
        cb(self.real, reason, opaque)

    def drop(self) -> None:
        self.dropped = True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name in _LOCAL or not callable(attr):
            return attr
        return self.guard(attr)

    def guard(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.dropped:
                raise rpc_error("Cannot recv data: Connection reset by peer")
            result = method(*args, **kwargs)
            if isinstance(result, libvirt.virDomain):
                return _FlakyDomain(self, result)
            if isinstance(result, list):
                return [_FlakyDomain(self, d) if isinstance(d, libvirt.virDomain) else d
                        for d in result]
            return result
        return call


class _FlakyDomain:
    def __init__(self, conn: Flaky, real: Any) -> None:
        self._conn, self._real = conn, real

    def __getattr__(self, name: str) -> Any:
        return self._conn.guard(getattr(self._real, name))


@dataclass
class Hypervisor:
    """The driver's opener: every connection it opens, by URI; ``refuse`` more opens fail (like
    a daemon that is not back yet), and so does every open of a URI in ``unreachable``; an open
    of a URI in ``hang`` blocks until its event is set (a remote host that does not answer),
    then opens; ``attempts`` holds the clock's time of each open."""

    clock: Clock
    opened: dict[str, list[Flaky]] = field(default_factory=dict)
    attempts: list[float] = field(default_factory=list)
    refuse: int = 0
    unreachable: set[str] = field(default_factory=set)
    hang: dict[str, threading.Event] = field(default_factory=dict)

    def __call__(self, uri: str) -> Flaky:
        self.attempts.append(self.clock.monotonic())
        if uri in self.hang:
            self.hang[uri].wait(60)
        if uri in self.unreachable:
            raise rpc_error(f"Failed to connect socket to {uri}: No route to host")
        if self.refuse > 0:
            self.refuse -= 1
            raise rpc_error("Failed to connect socket: Connection refused")
        conn = Flaky(libvirt.open(uri))
        self.opened.setdefault(uri, []).append(conn)
        return conn

    def last(self, uri: str) -> Flaky:
        """The connection opened last for ``uri``."""
        return self.opened[uri][-1]
