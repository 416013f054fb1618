"""The libvirt driver: instances are libvirt domains, hosts are libvirt connections.

It implements :class:`vnfha.nfvi.driver.Driver` with libvirt's Python binding (the optional extra
``vnfha[libvirt]``, PyPI ``libvirt-python``, built against the system's libvirt)::

    driver = await LibvirtDriver.open({"host-a": "qemu+ssh://a/system",
                                       "host-b": "qemu+ssh://b/system"})
    await driver.pause("vfw-a")      # virDomainSuspend; returns once the domain is paused
    await driver.migrate("vfw-a", "host-b")
    await driver.close()

Hosts are labels mapped to connection URIs, one connection per host. libvirt's ``test`` driver
presents one host per URI: ``test:///<absolute path>.xml`` opens a private in-memory hypervisor
loaded from that file, so a few files make a few hosts (:func:`write_test_hosts` writes them).

Which domains are instances: exactly those whose XML carries vnfha's metadata element, which says
which vnfha member runs inside (written by :func:`domain_xml`, or ``virsh metadata``)::

    <metadata>
      <vnfha:instance xmlns:vnfha="urn:vnfha:nfvi:1" group="vfw" member="vfw-a"/>
    </metadata>

Domains without it are not listed and are "unknown instances": the bridge never touches a VM it
was not told about. The mapping lives in the domain, so it moves with the domain on migration
and survives bridge restarts; there is no second copy to keep in sync.

What maps to what:

=================  ============================================================================
``power_off``      ``virDomainDestroy``
``pause``          ``virDomainSuspend``
``resume``         ``virDomainResume``
``start``          ``virDomainCreate``
``reset``          ``virDomainReset`` when running; destroy + create when paused; create when
                   shut off
``migrate``        cold evacuation: destroy on the source, define (the inactive XML) and create
                   on the target, then undefine on the source. Disks must be reachable from the
                   target at the same paths (shared storage): the definition moves, not the data
=================  ============================================================================

Guarantees, beyond the driver interface's:

- After every action the driver reads the domain's state back and raises :class:`DriverError`
  unless it is the promised one (paused or shut off after ``pause`` / ``power_off``).
- Events come from libvirt's lifecycle callbacks (the default event loop implementation, run by
  one daemon thread per process) and are handed to the asyncio loop thread-safely. An action
  returns only after the callback for the change it made has been published (or
  ``event_timeout_s`` has passed, which is logged), so events stay in the order of the actions.
  ``reset`` of a running domain changes no libvirt lifecycle state; the driver reports it as
  ``VM_STOPPED`` then ``VM_STARTED`` (detail ``reset``), as the simulator does. ``migrate``
  reports ``VM_STOPPED`` on the source (if it ran), ``VM_MIGRATED`` and ``VM_STARTED`` on the
  target.
- Every blocking libvirt call runs in a worker thread (``asyncio.to_thread``).
- Importing this module silences libvirt's habit of printing every error to stderr: errors
  reach the caller as :class:`DriverError` (with libvirt's message) instead.

Limits: a host whose connection drops is not reported (no ``HOST_DOWN``), and its instances fail
with :class:`DriverError` until the driver is opened again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vnfha.clock import Clock, SystemClock
from vnfha.nfvi._fanout import Fanout
from vnfha.nfvi.driver import (
    DriverError,
    EventKind,
    InfraEvent,
    Instance,
    InstanceState,
    UnknownHost,
    UnknownInstance,
)
from vnfha.nfvi.libvirt_domains import (
    METADATA_NS,
    DomainSpec,
    domain_xml,
    event_kind,
    instance_state,
    parse_metadata,
    pick_copy,
    write_test_hosts,
)

try:
    import libvirt
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError("the libvirt driver needs libvirt's Python binding: "
                      "pip install 'vnfha[libvirt]' (and the system's libvirt-dev)") from _e

__all__ = [
    "METADATA_NS",
    "DomainSpec",
    "LibvirtDriver",
    "domain_xml",
    "event_kind",
    "instance_state",
    "parse_metadata",
    "pick_copy",
    "write_test_hosts",
]

log = logging.getLogger("vnfha.nfvi.libvirt")

T = TypeVar("T")

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
    process. Connections opened before this call deliver no events, so :meth:`LibvirtDriver.open`
    calls it first. The thread lives as long as the process (libvirt cannot unregister it)."""
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


# -- the driver ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Found:
    """One instance located on its host, with the domain handle the action will use."""

    instance: Instance
    domain: Any  # libvirt.virDomain (the binding ships no types)


_Waiter = tuple[str, str, EventKind, "asyncio.Future[None]"]


class LibvirtDriver:
    """Domains as instances, connections as hosts (see the module docstring). Make one with
    :meth:`open`.

    ``clock`` times the waits for lifecycle callbacks (``event_timeout_s`` per action);
    ``max_queued_events`` bounds each :meth:`events` subscriber's backlog."""

    def __init__(self, connections: Mapping[str, Any], *, loop: asyncio.AbstractEventLoop,
                 clock: Clock | None = None, event_timeout_s: float = 10.0,
                 max_queued_events: int = 10_000) -> None:
        self._conns: dict[str, Any] = dict(connections)
        self._loop = loop
        self._clock: Clock = clock or SystemClock()
        self._event_timeout_s = event_timeout_s
        self._events: Fanout[InfraEvent] = Fanout(
            max_queued=max_queued_events,
            lagged=lambda n: DriverError(f"libvirt events: subscriber fell {n} events behind",
                                         operation="events"))
        self._waiters: list[_Waiter] = []
        self._callback_ids: dict[str, int] = {}
        self._managed: set[str] = set()  # names known to carry vnfha metadata
        self._closed = False

    @classmethod
    async def open(cls, hosts: Mapping[str, str], *, clock: Clock | None = None,
                   event_timeout_s: float = 10.0, max_queued_events: int = 10_000
                   ) -> LibvirtDriver:
        """Connect to every host's URI (``{"host-a": "qemu:///system"}``) and subscribe to its
        lifecycle events. :class:`DriverError` naming the host and URI if one cannot be opened
        (the ones already opened are closed again)."""
        if not hosts:
            raise DriverError("the libvirt driver needs at least one host", operation="open")
        await asyncio.to_thread(ensure_event_loop)
        conns: dict[str, Any] = {}
        try:
            for host, uri in sorted(hosts.items()):
                try:
                    conns[host] = await asyncio.to_thread(libvirt.open, uri)
                except libvirt.libvirtError as e:
                    raise DriverError(f"host {host!r}: cannot open {uri!r}: "
                                      f"{e.get_error_message()}", operation="open") from e
            driver = cls(conns, loop=asyncio.get_running_loop(), clock=clock,
                         event_timeout_s=event_timeout_s, max_queued_events=max_queued_events)
            await driver._subscribe_all()
        except BaseException:
            for conn in conns.values():
                with contextlib.suppress(libvirt.libvirtError):
                    await asyncio.to_thread(conn.close)
            raise
        return driver

    @property
    def name(self) -> str:
        """``"libvirt"``."""
        return "libvirt"

    def connection(self, host: str) -> Any:
        """The driver's own ``virConnect`` for ``host`` (for tools and tests: a ``test:///``
        hypervisor's state is private to its connection). :class:`UnknownHost` otherwise."""
        if host not in self._conns:
            raise UnknownHost(host, operation="connection")
        return self._conns[host]

    # -- inventory --------------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        """Every domain with vnfha metadata on every host, sorted by name."""
        return await self._blocking("list_instances", None, self._scan)

    async def get_instance(self, name: str) -> Instance:
        """One instance's current state; :class:`UnknownInstance` if there is none."""
        return (await self._find(name, "get_instance")).instance

    async def list_hosts(self) -> list[str]:
        """Every host label, sorted."""
        return sorted(self._conns)

    # -- the Driver actions ---------------------------------------------------------------------

    async def power_off(self, name: str) -> None:
        """``virDomainDestroy``; returns once the domain is shut off. Idempotent: a domain that
        is shut off or crashed is left as it is."""
        found = await self._find(name, "power_off")
        if found.instance.state in (InstanceState.STOPPED, InstanceState.CRASHED):
            return
        await self._act(found, "power_off", "destroy", EventKind.VM_STOPPED)
        await self._confirm(found, "power_off", InstanceState.STOPPED, InstanceState.CRASHED)

    async def pause(self, name: str) -> None:
        """``virDomainSuspend``; returns once the domain is paused. Idempotent;
        :class:`DriverError` for a domain that is not running."""
        found = await self._find(name, "pause")
        state = found.instance.state
        if state is InstanceState.PAUSED:
            return
        self._require(found, "pause", InstanceState.RUNNING)
        await self._act(found, "pause", "suspend", EventKind.VM_PAUSED)
        await self._confirm(found, "pause", InstanceState.PAUSED)

    async def resume(self, name: str) -> None:
        """``virDomainResume``; returns once running. Idempotent for a RUNNING domain;
        :class:`DriverError` for one that is shut off."""
        found = await self._find(name, "resume")
        if found.instance.state is InstanceState.RUNNING:
            return
        self._require(found, "resume", InstanceState.PAUSED)
        await self._act(found, "resume", "resume", EventKind.VM_RESUMED)
        await self._confirm(found, "resume", InstanceState.RUNNING)

    async def start(self, name: str) -> None:
        """``virDomainCreate`` for a shut-off or crashed domain; returns once running.
        Idempotent for RUNNING; :class:`DriverError` for PAUSED (resume it)."""
        found = await self._find(name, "start")
        state = found.instance.state
        if state is InstanceState.RUNNING:
            return
        self._require(found, "start", InstanceState.STOPPED, InstanceState.CRASHED)
        await self._act(found, "start", "create", EventKind.VM_STARTED)
        await self._confirm(found, "start", InstanceState.RUNNING)

    async def reset(self, name: str) -> None:
        """Hard reset (see the module docstring for the calls); returns once running."""
        found = await self._find(name, "reset")
        state = found.instance.state
        if state is InstanceState.RUNNING:
            await self._act(found, "reset", "reset", None)
            await self._confirm(found, "reset", InstanceState.RUNNING)
            self._publish(EventKind.VM_STOPPED, found.instance, "reset")
            self._publish(EventKind.VM_STARTED, found.instance, "reset")
            return
        if state is InstanceState.PAUSED:
            await self._act(found, "reset", "destroy", EventKind.VM_STOPPED)
        await self._act(found, "reset", "create", EventKind.VM_STARTED)
        await self._confirm(found, "reset", InstanceState.RUNNING)

    async def migrate(self, name: str, host: str) -> None:
        """Cold evacuation to ``host`` (see the module docstring); returns once the domain runs
        there. Migrating to the host it is on restarts it in place. :class:`UnknownHost` for a
        host the driver does not know. If creating it on the target fails, the target's copy is
        undefined again and the domain stays (shut off) on the source."""
        if host not in self._conns:
            raise UnknownHost(host, operation="migrate")
        found = await self._find(name, "migrate")
        source = found.instance.host
        if found.instance.state not in (InstanceState.STOPPED, InstanceState.CRASHED):
            await self._act(found, "migrate", "destroy", EventKind.VM_STOPPED)
        if source == host:
            moved = found
        else:
            target = self._conns[host]
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
            definition: str = await self._blocking(
                "migrate", name, lambda: found.domain.XMLDesc(flags))
            domain = await self._blocking("migrate", name, lambda: target.defineXML(definition))
            moved = _Found(Instance(name, found.instance.group, found.instance.member, host,
                                    InstanceState.STOPPED), domain)
        self._publish(EventKind.VM_MIGRATED, moved.instance, f"from {source} to {host}")
        try:
            await self._act(moved, "migrate", "create", EventKind.VM_STARTED)
        except DriverError:
            if moved is not found:
                with contextlib.suppress(DriverError):
                    await self._blocking("migrate", name, moved.domain.undefine)
            raise
        await self._confirm(moved, "migrate", InstanceState.RUNNING)
        if moved is not found:
            try:
                await self._blocking("migrate", name, found.domain.undefine)
            except DriverError as e:
                raise DriverError(f"migrate {name!r}: running on {host!r}, but its copy on "
                                  f"{source!r} could not be undefined: {e}", instance=name,
                                  operation="migrate") from e

    def events(self) -> AsyncIterator[InfraEvent]:
        """Every event from now on (bounded backlog per subscriber), until :meth:`close`."""
        return self._events.subscribe()

    async def close(self) -> None:
        """Unsubscribe from every host's events, close the connections and end every events
        iterator. Domains keep running. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for host, conn in self._conns.items():
            callback_id = self._callback_ids.pop(host, None)
            with contextlib.suppress(libvirt.libvirtError):
                if callback_id is not None:
                    await asyncio.to_thread(conn.domainEventDeregisterAny, callback_id)
                await asyncio.to_thread(conn.close)
        for _, _, _, waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()
        self._events.close()

    # -- locating instances (blocking: run in a worker thread) ------------------------------------

    def _identity(self, domain: Any) -> tuple[str, str] | None:
        """The domain's ``(group, member)`` from its metadata, None if it has none."""
        try:
            text: str = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise
        return parse_metadata(text)

    def _read(self, host: str, domain: Any) -> _Found | None:
        """The instance behind ``domain`` on ``host``, None if it is not vnfha's."""
        identity = self._identity(domain)
        if identity is None:
            return None
        name: str = domain.name()
        self._managed.add(name)
        state, reason = domain.state()
        return _Found(Instance(name, identity[0], identity[1], host,
                               instance_state(state, reason)), domain)

    def _scan(self) -> list[Instance]:
        copies: dict[str, list[_Found]] = {}
        for host in sorted(self._conns):
            for domain in self._conns[host].listAllDomains(0):
                found = self._read(host, domain)
                if found is not None:
                    copies.setdefault(found.instance.name, []).append(found)
        return [_pick(name, copies[name]).instance for name in sorted(copies)]

    def _locate(self, name: str, operation: str) -> _Found:
        copies: list[_Found] = []
        for host in sorted(self._conns):
            try:
                domain = self._conns[host].lookupByName(name)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise
            found = self._read(host, domain)
            if found is not None:
                copies.append(found)
        if not copies:
            raise UnknownInstance(name, operation=operation)
        try:
            return _pick(name, copies)
        except DriverError as e:
            raise DriverError(f"{operation}: {e}", instance=name, operation=operation) from e

    async def _find(self, name: str, operation: str) -> _Found:
        return await self._blocking(operation, name, lambda: self._locate(name, operation))

    # -- acting -----------------------------------------------------------------------------------

    async def _blocking(self, operation: str, name: str | None, call: Callable[[], T]) -> T:
        """Run ``call`` in a worker thread; libvirt's errors become :class:`DriverError` (or
        :class:`UnknownInstance` when the domain vanished) naming the instance and operation."""
        if self._closed:
            raise DriverError(f"{operation} {name!r}: the libvirt driver is closed",
                              instance=name, operation=operation)
        try:
            return await asyncio.to_thread(call)
        except libvirt.libvirtError as e:
            if name is not None and e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise UnknownInstance(name, operation=operation) from e
            raise DriverError(f"{operation} {name!r}: libvirt refused: {e.get_error_message()}",
                              instance=name, operation=operation) from e

    async def _act(self, found: _Found, operation: str, method: str,
                   expect: EventKind | None) -> None:
        """Call ``domain.<method>()``; then wait until the lifecycle callback ``expect`` for it
        has been published (logged, not raised, if it does not come in time)."""
        name, host = found.instance.name, found.instance.host
        call: Callable[[], object] = getattr(found.domain, method)
        waiter: asyncio.Future[None] = self._loop.create_future()
        if expect is not None:
            self._waiters.append((name, host, expect, waiter))
        try:
            await self._blocking(operation, name, call)
            if expect is not None:
                try:
                    await self._clock.wait_for(waiter, self._event_timeout_s)
                except TimeoutError:
                    log.warning("libvirt: %s %s on %s: no %s event within %s s", operation,
                                name, host, expect, self._event_timeout_s)
        finally:
            self._waiters = [w for w in self._waiters if w[3] is not waiter]

    async def _confirm(self, found: _Found, operation: str, *wanted: InstanceState) -> None:
        """Read the domain's state back; :class:`DriverError` unless it is one of ``wanted``."""
        state, reason = await self._blocking(operation, found.instance.name, found.domain.state)
        now = instance_state(state, reason)
        if now not in wanted:
            raise DriverError(f"{operation} {found.instance.name!r}: the domain is {now} "
                              f"afterwards, not {' or '.join(wanted)}",
                              instance=found.instance.name, operation=operation)

    @staticmethod
    def _require(found: _Found, operation: str, *allowed: InstanceState) -> None:
        if found.instance.state not in allowed:
            raise DriverError(f"{operation} {found.instance.name!r}: it is "
                              f"{found.instance.state}, not {' or '.join(allowed)}",
                              instance=found.instance.name, operation=operation)

    # -- events ------------------------------------------------------------------------------------

    async def _subscribe_all(self) -> None:
        for host, conn in sorted(self._conns.items()):
            register = functools.partial(conn.domainEventRegisterAny, None,
                                         libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                         self._on_lifecycle, host)
            self._callback_ids[host] = await self._blocking("open", None, register)

    def _on_lifecycle(self, _conn: Any, domain: Any, event: int, detail: int, host: str) -> None:
        """libvirt's callback, on the event loop thread: map, filter, hand to asyncio."""
        kind = event_kind(event, detail)
        if kind is None:
            return
        try:
            name: str = domain.name()
        except libvirt.libvirtError:
            log.exception("libvirt: a lifecycle event on %s for a domain without a name", host)
            return
        try:
            managed = self._identity(domain) is not None
        except libvirt.libvirtError:
            managed = name in self._managed  # the domain is gone already: trust what we saw
        if not managed:
            return
        item = InfraEvent(kind, instance=name, host=host,
                          detail=f"libvirt lifecycle event {event}/{detail}")
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._deliver, item)

    def _deliver(self, item: InfraEvent) -> None:
        """Publish a callback's event (on the loop) and release the action waiting for it."""
        if self._closed:
            return
        self._events.publish(item)
        for name, host, kind, waiter in self._waiters:
            if (name, host, kind) == (item.instance, item.host, item.kind) and not waiter.done():
                waiter.set_result(None)
                break

    def _publish(self, kind: EventKind, instance: Instance, detail: str) -> None:
        self._events.publish(InfraEvent(kind, instance=instance.name, host=instance.host,
                                        detail=detail))


def _pick(name: str, copies: list[_Found]) -> _Found:
    host = pick_copy(name, [(c.instance.host, c.instance.state is not InstanceState.STOPPED
                             and c.instance.state is not InstanceState.CRASHED)
                            for c in copies])
    return next(c for c in copies if c.instance.host == host)
