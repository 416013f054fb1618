"""The libvirt driver's connections: one per host, watched, reported when lost, reopened.

A host is *up* while the driver holds a live connection to its libvirtd, and *down* from the
moment that connection is seen to be lost until a new one is open. What counts as lost:

=================================  ===============================================================
libvirt's close callback           ``virConnectRegisterCloseCallback`` fires, whatever the reason:
                                   ERROR (I/O error), EOF (the daemon closed the socket: a restart,
                                   a crash), KEEPALIVE (no answer to ``keepalive_count`` keepalives
                                   sent ``keepalive_interval_s`` apart), CLIENT (something else in
                                   this process closed the driver's connection)
an error from an operation         ``conn.isAlive()`` is 0 (or fails) right after it, or the error
                                   is SYSTEM_ERROR, INTERNAL_ERROR or RPC raised by libvirt's own
                                   RPC client (error domain RPC or REMOTE: "Cannot recv data",
                                   "client socket is closed"). The same codes raised by a
                                   hypervisor driver behind a live connection (a disk that cannot
                                   be opened) are errors of that operation, not a lost host
=================================  ===============================================================

Keepalives (``virConnectSetKeepAlive``) are asked for on every connection; drivers without them
(the ``test`` driver, which needs no daemon) refuse, which is logged at debug level and ignored.

Guarantees (:class:`HostLinks`):

- One report per connection: each connection carries its own generation number, and whatever
  detects its loss first (the close callback on libvirt's event thread, or a worker thread's
  failed call) marks the host down and calls ``on_down`` once, on the asyncio loop; every later
  report about the same connection, and any about an older one, is ignored.
- :meth:`HostLinks.open_all` opens every host's URI, one after the other. A host that cannot
  be opened starts down, with the error as its reason, and is reconnected like a lost one
  (``on_down`` is not called for it: nobody can have subscribed yet; the driver reports it to
  each new subscriber). Only when no host can be opened does it fail, naming every host, its
  URI and its error.
- While a host is down, :meth:`HostLinks.current` raises :class:`HostDown` naming it, and a
  background task reopens its URI after :func:`reconnect_delay` (``reconnect_initial_s``
  doubling up to ``reconnect_max_s``, on the injected clock), forever, until :meth:`close`.
  A reopened connection gets keepalives, the close callback and the lifecycle callback before
  the host counts as up; then ``on_up`` is called (the driver publishes ``HOST_UP``).
- Lifecycle events of a connection that is not the host's current one are dropped.
- Everything that changes a host's state runs on the asyncio loop; libvirt's threads only
  report, through ``call_soon_threadsafe``. Blocking libvirt calls run in worker threads.
- :meth:`HostLinks.close` stops the reconnects and deregisters and closes every connection;
  domains keep running.

The pure parts (:func:`reconnect_delay`, :func:`is_connection_loss`, :func:`close_reason`,
:func:`missed_events`) are tables and arithmetic, tested without libvirt's daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vnfha.bridge.drivers import driver
from vnfha.bridge.drivers._libvirt import libvirt
from vnfha.bridge.drivers.driver import DriverError, EventKind, Instance, InstanceState, UnknownHost
from vnfha.bridge.drivers.libvirt_domains import WATCHDOG_EVENT
from vnfha.clock import Clock
from vnfha.errors import ConfigError

__all__ = [
    "ConnPolicy",
    "HostDown",
    "HostLinks",
    "LastSeen",
    "Via",
    "close_reason",
    "ensure_event_loop",
    "is_connection_loss",
    "missed_events",
    "reconnect_delay",
]

log = logging.getLogger("vnfha.nfvi.libvirt")

# -- pure decisions (tables first) ---------------------------------------------------------------

_CLOSE_REASONS: dict[int, str] = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "I/O error on the connection",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the daemon closed the connection",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "no answer to keepalives",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "the connection was closed in this process",
}

# Raised by libvirt's RPC client itself when the socket to the daemon fails or is closed.
_TRANSPORT_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
_TRANSPORT_CODES = {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR,
                    libvirt.VIR_ERR_RPC}

# The event that says an instance is now in a state (RUNNING after PAUSED is VM_RESUMED instead).
_ARRIVED: dict[InstanceState, EventKind] = {
    InstanceState.RUNNING: EventKind.VM_STARTED,
    InstanceState.PAUSED: EventKind.VM_PAUSED,
    InstanceState.STOPPED: EventKind.VM_STOPPED,
    InstanceState.CRASHED: EventKind.VM_CRASHED,
}


@dataclass(frozen=True, slots=True)
class ConnPolicy:
    """How connections are watched and reopened. Refused with :class:`ConfigError` naming the
    value: an interval or count below 1 (libvirt counts whole seconds, and a count of 0 makes it
    close an idle connection without asking), a first delay or an open timeout that is not a
    positive finite number, a cap below the first delay."""

    keepalive_interval_s: int = 5
    """Send a keepalive after this many seconds without traffic."""
    keepalive_count: int = 3
    """The connection is lost once this many keepalives in a row go unanswered."""
    reconnect_initial_s: float = 0.5
    """The wait before the first reconnect attempt; doubled after each failed one."""
    reconnect_max_s: float = 30.0
    """The longest wait between two attempts."""
    open_timeout_s: float = 10.0
    """How long one attempt to open a host may take before the host counts as down (at start,
    the bridge then starts without it); libvirt's own connect can hang for minutes on an
    unreachable remote host."""

    def __post_init__(self) -> None:
        for field in ("keepalive_interval_s", "keepalive_count"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(field, value, "must be a whole number >= 1")
        for field in ("reconnect_initial_s", "open_timeout_s"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(field, value, "must be a finite number of seconds > 0")
        if not (math.isfinite(self.reconnect_max_s)
                and self.reconnect_max_s >= self.reconnect_initial_s):
            raise ConfigError("reconnect_max_s", self.reconnect_max_s, "must be finite and >= "
                              f"reconnect_initial_s={self.reconnect_initial_s}")


def reconnect_delay(attempt: int, policy: ConnPolicy) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 is the first): the first delay
    doubled ``attempt`` times, capped at ``reconnect_max_s``."""
    if attempt < 0:
        raise ValueError(f"attempt {attempt} < 0")
    return min(policy.reconnect_max_s, policy.reconnect_initial_s * 2.0 ** min(attempt, 64))


def is_connection_loss(code: int | None, domain: int | None, *, alive: bool) -> bool:
    """Does a libvirt error (``code``, error ``domain``) mean that the connection is lost?

    Yes when the connection is not alive afterwards (``alive``: ``conn.isAlive()`` answered 1),
    or when libvirt's RPC client raised a system, internal or RPC error (see the module
    docstring). Anything else is the operation's own failure."""
    if not alive:
        return True
    return domain in _TRANSPORT_DOMAINS and code in _TRANSPORT_CODES


def close_reason(reason: int) -> str:
    """Words for a close callback's ``VIR_CONNECT_CLOSE_REASON_*``."""
    return _CLOSE_REASONS.get(reason, f"connection closed (reason {reason})")


def missed_events(before: Mapping[str, InstanceState], after: Mapping[str, InstanceState]
                  ) -> list[tuple[str, EventKind]]:
    """The events that account for each instance whose state changed while its host was down:
    ``(name, kind)`` by name, for the instances in both ``before`` (last seen) and ``after``
    (seen on reconnecting). Only the net change is known, so at most one event each (a domain
    that stopped and started again in between shows no change)."""
    changed: list[tuple[str, EventKind]] = []
    for name in sorted(before.keys() & after.keys()):
        old, new = before[name], after[name]
        if old is new:
            continue
        if new is InstanceState.RUNNING and old is InstanceState.PAUSED:
            changed.append((name, EventKind.VM_RESUMED))
        else:
            changed.append((name, _ARRIVED[new]))
    return changed


# -- errors and handles --------------------------------------------------------------------------


class HostDown(driver.HostDown):
    """The host has no libvirt connection (the driver is reconnecting): ``reason`` says how the
    loss was seen, or why the host could not be reached at all."""

    @staticmethod
    def describe(reason: str) -> str:
        """The message names libvirt's connection."""
        return f"no libvirt connection to it ({reason})"


class _CannotOpen(DriverError):
    """A host's URI could not be opened (or watched): ``reason`` says why, naming the URI."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"host {host!r}: {reason}", operation="open")


@dataclass(frozen=True, slots=True)
class Via:
    """One host's connection as it was when an operation began (``generation`` tells a
    reopened connection from the one the operation used)."""

    host: str
    generation: int
    conn: Any  # libvirt.virConnect, or a stand-in with its methods


@dataclass
class _Link:
    """A host's connection state; changed on the asyncio loop only."""

    uri: str
    generation: int = 0
    conn: Any = None  # None while the host is down
    callback_id: int | None = None  # the lifecycle callback registered on conn
    watchdog_id: int | None = None  # the watchdog callback registered on conn
    reason: str = "not connected yet"
    down_since: float = 0.0
    opening: asyncio.Future[_Opened] | None = None  # the last open attempt's thread


class LastSeen:
    """What each host held when the driver last looked (scans, lookups, lifecycle events): what
    it lists for a host that is down, and what a reconnect compares with
    (:func:`missed_events`). Thread-safe: worker threads scan, the loop applies events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, dict[str, Instance]] = {}

    def replace(self, host: str, instances: Iterable[Instance]) -> None:
        """``host`` holds exactly ``instances`` (a scan of it)."""
        with self._lock:
            self._hosts[host] = {i.name: i for i in instances}

    def put(self, instance: Instance) -> None:
        """``instance`` is as given, on its host (a lookup, an event)."""
        with self._lock:
            self._hosts.setdefault(instance.host, {})[instance.name] = instance

    def drop(self, host: str, name: str) -> None:
        """``name`` is no longer on ``host`` (undefined, or not found there)."""
        with self._lock:
            self._hosts.get(host, {}).pop(name, None)

    def on(self, host: str) -> dict[str, Instance]:
        """A copy of what ``host`` held, by instance name (empty for a host never seen)."""
        with self._lock:
            return dict(self._hosts.get(host, {}))


Lifecycle = Callable[[Any, Any, int, int, str], None]
"""The driver's lifecycle callback: ``(conn, domain, event, detail, host)``; libvirt's watchdog
event arrives here too, as ``event`` :data:`~vnfha.bridge.drivers.libvirt_domains.WATCHDOG_EVENT`
with the watchdog's action as ``detail``."""

_Opened = tuple[Any, int, int]  # a connection, its lifecycle and watchdog callback ids


# -- the supervisor ------------------------------------------------------------------------------


class HostLinks:
    """Every host's connection (see the module docstring).

    ``opener(uri)`` opens a connection (``libvirt.open``; tests wrap it). ``lifecycle`` receives
    the current connections' domain lifecycle events on libvirt's event thread. ``on_down(host,
    reason)`` runs on the loop when a host is marked down; ``on_up(host)`` is awaited once a
    reopened connection is in place."""

    def __init__(self, uris: Mapping[str, str], *, loop: asyncio.AbstractEventLoop, clock: Clock,
                 policy: ConnPolicy, opener: Callable[[str], Any], lifecycle: Lifecycle,
                 on_down: Callable[[str, str], None],
                 on_up: Callable[[str], Awaitable[None]]) -> None:
        self._links = {host: _Link(uri) for host, uri in uris.items()}
        self._loop = loop
        self._clock = clock
        self._policy = policy
        self._opener = opener
        self._lifecycle = lifecycle
        self._on_down = on_down
        self._on_up = on_up
        self._tasks: set[asyncio.Task[None]] = set()
        self._generations = itertools.count(1)  # every connection opened gets its own
        self._closed = False

    async def open_all(self) -> dict[str, str]:
        """Connect to every host, by name. Those that cannot be opened start down and are
        reconnected in the background; returns them, with the reason (see the module
        docstring). :class:`DriverError` naming every host, its URI and its error if none can
        be opened."""
        failed: dict[str, str] = {}

        async def open_one(host: str) -> None:
            generation = next(self._generations)
            try:
                self._install(host, generation, await self._connect(host, generation))
            except _CannotOpen as e:
                failed[host] = e.reason

        # all at once: a host that hangs delays the start by open_timeout_s, not by its share
        await asyncio.gather(*(open_one(host) for host in sorted(self._links)))
        if len(failed) == len(self._links):
            raise DriverError("no libvirt host could be opened: " + "; ".join(
                f"host {h!r}: {why}" for h, why in sorted(failed.items())), operation="open")
        now = self._clock.monotonic()
        for host, reason in sorted(failed.items()):
            link = self._links[host]
            link.reason, link.down_since = reason, now
            log.warning("libvirt: host %s is down from the start (%s); connecting in the "
                        "background (first in %g s, backing off to every %g s)", host, reason,
                        self._policy.reconnect_initial_s, self._policy.reconnect_max_s)
            self._spawn(self._reconnect(host))
        return failed

    def hosts(self) -> list[str]:
        """Every host, up or down, sorted."""
        return sorted(self._links)

    def current(self, host: str, *, operation: str, instance: str | None = None) -> Via:
        """``host``'s connection now; :class:`UnknownHost` or :class:`HostDown`."""
        link = self._links.get(host)
        if link is None:
            raise UnknownHost(host, operation=operation)
        if link.conn is None:
            raise HostDown(host, link.reason, instance=instance, operation=operation)
        return Via(host, link.generation, link.conn)

    def snapshot(self) -> tuple[list[Via], dict[str, str]]:
        """The hosts that are up (their connections, by host) and those that are down (with
        the reason), as of now."""
        up = [Via(h, link.generation, link.conn) for h, link in sorted(self._links.items())
              if link.conn is not None]
        down = {h: link.reason for h, link in self._links.items() if link.conn is None}
        return up, down

    def require(self, via: Via, *, operation: str, instance: str | None) -> None:
        """:class:`HostDown` unless ``via`` is still its host's connection (an operation that
        began on a connection lost since must not carry on with a new one's handles)."""
        link = self._links[via.host]
        if link.conn is None or link.generation != via.generation:
            raise HostDown(via.host, link.reason, instance=instance, operation=operation)

    def callback_id(self, host: str) -> int | None:
        """The lifecycle callback registered on ``host``'s connection (for tests)."""
        return self._links[host].callback_id

    # -- reports: from any thread ---------------------------------------------------------------

    def check(self, via: Via, error: Any) -> str | None:
        """(Worker thread.) Whether ``error``, a ``libvirtError`` raised by a call on ``via``,
        means the connection is lost (probing ``isAlive``): if so it is reported and the reason
        returned; None if it is the call's own failure."""
        try:
            alive = via.conn.isAlive() == 1
        except libvirt.libvirtError:
            alive = False
        if not is_connection_loss(error.get_error_code(), error.get_error_domain(), alive=alive):
            return None
        reason = error.get_error_message() or "the connection is not alive"
        self.report(via.host, via.generation, reason)
        return reason

    def report(self, host: str, generation: int, reason: str) -> None:
        """(Any thread.) The connection ``generation`` of ``host`` is lost."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._lost, host, generation, reason)

    def _on_close(self, _conn: Any, reason: int, opaque: tuple[str, int]) -> None:
        """libvirt's close callback, on its event thread."""
        host, generation = opaque
        self.report(host, generation, close_reason(reason))

    def _on_lifecycle(self, conn: Any, domain: Any, event: int, detail: int,
                      opaque: tuple[str, int]) -> None:
        """libvirt's lifecycle callback, on its event thread: the current connection's only."""
        host, generation = opaque
        link = self._links[host]
        if link.conn is not None and link.generation == generation:
            self._lifecycle(conn, domain, event, detail, host)

    def _on_watchdog(self, conn: Any, domain: Any, action: int, opaque: tuple[str, int]) -> None:
        """libvirt's watchdog callback (a guest's hardware watchdog expired), on its event
        thread: handed on as a lifecycle event :data:`WATCHDOG_EVENT` with the action."""
        self._on_lifecycle(conn, domain, WATCHDOG_EVENT, action, opaque)

    # -- on the loop ----------------------------------------------------------------------------

    def _lost(self, host: str, generation: int, reason: str) -> None:
        link = self._links[host]
        if self._closed or link.conn is None or link.generation != generation:
            return  # reported already, or about a connection that has been replaced
        old, ids = link.conn, (link.callback_id, link.watchdog_id)
        link.conn, link.callback_id, link.watchdog_id, link.reason = None, None, None, reason
        link.down_since = self._clock.monotonic()
        log.warning("libvirt: host %s is down: connection to %s lost (%s); reconnecting "
                    "(first in %g s, backing off to every %g s)", host, link.uri, reason,
                    self._policy.reconnect_initial_s, self._policy.reconnect_max_s)
        self._on_down(host, reason)
        self._spawn(asyncio.to_thread(_retire, old, *ids))
        self._spawn(self._reconnect(host))

    async def _reconnect(self, host: str) -> None:
        link = self._links[host]
        attempt = 0
        while True:
            await self._clock.sleep(reconnect_delay(attempt, self._policy))
            attempt += 1
            generation = next(self._generations)
            try:
                opened = await self._connect(host, generation)
            except DriverError as e:
                log.info("libvirt: host %s: reconnect attempt %d failed: %s; next in %g s",
                         host, attempt, e, reconnect_delay(attempt, self._policy))
                continue
            break
        self._install(host, generation, opened)
        log.warning("libvirt: host %s is up: connected to %s after %.1f s down (%d "
                    "attempt(s))", host, link.uri, self._clock.monotonic() - link.down_since,
                    attempt)
        await self._on_up(host)

    def _install(self, host: str, generation: int, opened: _Opened) -> None:
        link = self._links[host]
        link.generation = generation
        link.conn, link.callback_id, link.watchdog_id = opened

    async def _connect(self, host: str, generation: int) -> _Opened:
        """Open ``host``'s connection in a worker thread, within ``open_timeout_s``. If the
        caller is cancelled or the time runs out, the connection the thread may still open is
        closed again, not leaked. While an earlier attempt's thread has not returned, no new one
        starts (a host whose connect hangs holds one thread, not one per attempt)."""
        link = self._links[host]
        if link.opening is not None and not link.opening.done():
            raise _CannotOpen(host, f"cannot open {link.uri!r}: the previous attempt has not "
                              "returned yet")
        attempt = asyncio.ensure_future(asyncio.to_thread(self._open, host, generation))
        link.opening = attempt
        try:
            return await self._clock.wait_for(asyncio.shield(attempt),
                                              self._policy.open_timeout_s)
        except TimeoutError:
            attempt.add_done_callback(_retire_in_background)
            raise _CannotOpen(host, f"cannot open {link.uri!r}: no answer within "
                              f"{self._policy.open_timeout_s:g} s") from None
        except asyncio.CancelledError:
            attempt.add_done_callback(_retire_in_background)
            raise

    def _open(self, host: str, generation: int) -> _Opened:
        """(Worker thread.) Open, start keepalives, watch for the close and subscribe to the
        lifecycle and watchdog events: ``(connection, their callback ids)``.
        :class:`DriverError` naming the host and URI."""
        uri = self._links[host].uri
        try:
            conn = self._opener(uri)
        except libvirt.libvirtError as e:
            raise _CannotOpen(host, f"cannot open {uri!r}: {e.get_error_message()}") from e
        try:
            _keepalive(conn, host, self._policy)
            conn.registerCloseCallback(self._on_close, (host, generation))
            callback_id: int = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle,
                (host, generation))
            watchdog_id: int = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_WATCHDOG, self._on_watchdog, (host, generation))
        except libvirt.libvirtError as e:
            _retire(conn)
            raise _CannotOpen(host, f"cannot watch {uri!r}: {e.get_error_message()}") from e
        return conn, callback_id, watchdog_id

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("libvirt: connection supervision failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop reconnecting; deregister and close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in self._links.values():
            if link.conn is not None:
                conn, ids = link.conn, (link.callback_id, link.watchdog_id)
                link.conn, link.callback_id, link.watchdog_id = None, None, None
                link.reason = "the driver is closed"
                await asyncio.to_thread(_retire, conn, *ids)


def _keepalive(conn: Any, host: str, policy: ConnPolicy) -> None:
    """(Worker thread.) Ask for keepalives; a driver without them is logged, not refused."""
    try:
        conn.setKeepAlive(policy.keepalive_interval_s, policy.keepalive_count)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            log.debug("libvirt: host %s: no keepalives (%s)", host, e.get_error_message())
        else:
            log.warning("libvirt: host %s: keepalives not started: %s", host,
                        e.get_error_message())


def _retire(conn: Any, *callback_ids: int | None) -> None:
    """(Worker thread.) Stop watching ``conn`` (its close callback and the event callbacks
    ``callback_ids``) and close it. libvirt's errors are ignored: the connection is being
    dropped, and a lost one refuses everything."""
    with contextlib.suppress(libvirt.libvirtError):
        conn.unregisterCloseCallback()
    for callback_id in callback_ids:
        if callback_id is None:
            continue
        with contextlib.suppress(libvirt.libvirtError):
            conn.domainEventDeregisterAny(callback_id)
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()


def _retire_in_background(attempt: asyncio.Future[_Opened]) -> None:
    """Close the connection a cancelled open produced, once it has (its own daemon thread: the
    loop may be shutting down)."""
    if attempt.cancelled() or attempt.exception() is not None:
        return
    threading.Thread(target=_retire, args=attempt.result(), name="vnfha-libvirt-retire",
                     daemon=True).start()


# -- libvirt's event loop: one per process -------------------------------------------------------

_event_loop_lock = threading.Lock()
_event_loop_started = False


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:
            log.exception("libvirt event loop iteration failed")


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and start the daemon thread that runs it, once per
    process. Connections opened before this call deliver no events (and no close callbacks or
    keepalives), so :meth:`LibvirtDriver.open` calls it first. The thread lives as long as the
    process (libvirt cannot unregister it)."""
    global _event_loop_started  # noqa: PLW0603 - a process-wide singleton, like libvirt's own
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="vnfha-libvirt-events",
                         daemon=True).start()
        _event_loop_started = True


def _ignore_error(_ctx: object, _err: object) -> None:
    """libvirt's error callback: errors are raised as exceptions, not printed."""
