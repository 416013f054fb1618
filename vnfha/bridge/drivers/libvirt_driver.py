"""The libvirt driver: instances are libvirt domains, hosts are libvirt connections.

It implements :class:`vnfha.bridge.drivers.driver.Driver` with libvirt's Python binding (the
optional extra ``vnfha[libvirt]``, PyPI ``libvirt-python``, built against the system's
libvirt)::

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
- A host whose connection is lost (libvirt's close callback, keepalives, or an operation's
  error that says so: :mod:`vnfha.bridge.drivers.libvirt_conn`), or that could not be opened
  at start (as long as another could), is reported once as ``HOST_DOWN`` and reopened in the
  background with bounded exponential backoff; once it is back, ``HOST_UP``, then one event
  per instance whose state changed meanwhile. While it is down,
  :meth:`~LibvirtDriver.list_hosts` still lists it and :meth:`~LibvirtDriver.list_instances`
  lists its instances as last seen (so that the bridge can tell their groups), but
  :meth:`~LibvirtDriver.get_instance` and every action on them raise :class:`HostDown` naming
  the host: the driver cannot tell whether a domain there still runs (a restarted libvirtd
  leaves its domains running), so it neither confirms a fence nor evacuates one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from vnfha.bridge._fanout import Fanout
from vnfha.bridge.drivers._libvirt import libvirt
from vnfha.bridge.drivers.driver import (
    DriverError,
    EventKind,
    HostsDownFirst,
    InfraEvent,
    Instance,
    InstanceState,
    UnknownInstance,
)
from vnfha.bridge.drivers.libvirt_conn import (
    ConnPolicy,
    HostDown,
    HostLinks,
    LastSeen,
    Via,
    ensure_event_loop,
    missed_events,
)
from vnfha.bridge.drivers.libvirt_domains import (
    METADATA_NS,
    DomainSpec,
    domain_xml,
    event_detail,
    event_kind,
    instance_state,
    parse_metadata,
    pick_copy,
    superseded,
    watchdog_halted,
    write_test_hosts,
)
from vnfha.bridge.drivers.libvirt_scan import LIST_TIMEOUT_S, Found, HostScans, pick
from vnfha.clock import Clock, SystemClock

__all__ = [
    "METADATA_NS",
    "ConnPolicy",
    "DomainSpec",
    "HostDown",
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

# -- the driver ----------------------------------------------------------------------------------


_Waiter = tuple[str, str, EventKind, "asyncio.Future[None]"]


class LibvirtDriver:
    """Domains as instances, connections as hosts (see the module docstring). Make one with
    :meth:`open`.

    ``clock`` times the waits for lifecycle callbacks (``event_timeout_s`` per action) and the
    reconnects; ``max_queued_events`` bounds each :meth:`events` subscriber's backlog;
    ``policy`` sets keepalives and the reconnect backoff; ``opener`` opens a URI
    (``libvirt.open``, replaceable for tests); ``list_timeout_s`` bounds the wait for a host
    in a listing (:mod:`~vnfha.bridge.drivers.libvirt_scan`)."""

    def __init__(self, hosts: Mapping[str, str], *, loop: asyncio.AbstractEventLoop,
                 clock: Clock | None = None, event_timeout_s: float = 10.0,
                 max_queued_events: int = 10_000, policy: ConnPolicy | None = None,
                 opener: Callable[[str], Any] | None = None,
                 list_timeout_s: float = LIST_TIMEOUT_S) -> None:
        self._loop = loop
        self._clock: Clock = clock or SystemClock()
        self._event_timeout_s = event_timeout_s
        self._events: Fanout[InfraEvent] = Fanout(
            max_queued=max_queued_events,
            lagged=lambda n: DriverError(f"libvirt events: subscriber fell {n} events behind",
                                         operation="events"))
        self._links = HostLinks(hosts, loop=loop, clock=self._clock, policy=policy or ConnPolicy(),
                                opener=opener or libvirt.open, lifecycle=self._on_lifecycle,
                                on_down=self._host_down, on_up=self._host_up)
        self._seen = LastSeen()
        self._scans = HostScans(lambda via: self._blocking(
            "list_instances", None, lambda: self._scan_host(via)), timeout_s=list_timeout_s)
        self._waiters: list[_Waiter] = []
        self._managed: set[str] = set()  # names known to carry vnfha metadata
        self._closed = False

    @classmethod
    async def open(cls, hosts: Mapping[str, str], *, clock: Clock | None = None,
                   event_timeout_s: float = 10.0, max_queued_events: int = 10_000,
                   policy: ConnPolicy | None = None, opener: Callable[[str], Any] | None = None,
                   list_timeout_s: float = LIST_TIMEOUT_S) -> LibvirtDriver:
        """Connect to every host's URI (``{"host-a": "qemu:///system"}``), watch each connection
        and subscribe to its lifecycle events, and note which instances each host holds.

        A host that cannot be opened starts down: every :meth:`events` subscription starts with
        its ``HOST_DOWN`` (detail ``no libvirt connection: cannot open '<uri>': <error>``), it
        is connected in the background with the reconnect backoff, and once it is up comes
        ``HOST_UP``; until then its instances are unknown to the driver. Only when no host can
        be opened does ``open`` fail: :class:`DriverError` naming every host, its URI and its
        error. Later losses are not errors either: see the module docstring."""
        if not hosts:
            raise DriverError("the libvirt driver needs at least one host", operation="open")
        await asyncio.to_thread(ensure_event_loop)
        driver = cls(hosts, loop=asyncio.get_running_loop(), clock=clock,
                     event_timeout_s=event_timeout_s, max_queued_events=max_queued_events,
                     policy=policy, opener=opener, list_timeout_s=list_timeout_s)
        try:
            await driver._links.open_all()
            up = driver._links.snapshot()[0]
            await driver._blocking("open", None, lambda: [driver._scan_host(v) for v in up])
        except BaseException:
            await driver.close()
            raise
        return driver

    @property
    def name(self) -> str:
        """``"libvirt"``."""
        return "libvirt"

    @property
    def late_listings(self) -> int:
        """Hosts answered from what was last seen because they were slow to list (one per
        host and listing; :mod:`~vnfha.bridge.drivers.libvirt_scan`)."""
        return self._scans.late

    def connection(self, host: str) -> Any:
        """The driver's own ``virConnect`` for ``host`` (for tools and tests: a ``test:///``
        hypervisor's state is private to its connection). :class:`UnknownHost` otherwise,
        :class:`HostDown` while its connection is lost."""
        return self._links.current(host, operation="connection").conn

    def callback_id(self, host: str) -> int | None:
        """The lifecycle-event callback registered on ``host``'s connection (for tests)."""
        return self._links.callback_id(host)

    # -- inventory --------------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        """Every domain with vnfha metadata on every host, sorted by name. A host that is down
        contributes its instances as last seen, state included (the bridge routes its
        ``HOST_DOWN`` to their groups); acting on them raises :class:`HostDown`. So does a host
        that does not answer within ``list_timeout_s`` (:mod:`~.libvirt_scan`)."""
        up, down = self._links.snapshot()
        scanned = await self._scans.within(up)
        copies: dict[str, list[Found]] = {}
        for host in [*(via.host for via in up), *down]:
            found = scanned.get(host)
            for f in self._remembered(host) if found is None else found:
                copies.setdefault(f.instance.name, []).append(f)
        return [pick(name, copies[name]).instance for name in sorted(copies)]

    async def get_instance(self, name: str) -> Instance:
        """One instance's current state; :class:`UnknownInstance` if there is none,
        :class:`HostDown` if it is on a host that is down (its state there is unknown)."""
        return (await self._find(name, "get_instance")).instance

    async def list_hosts(self) -> list[str]:
        """Every host label, sorted, including hosts that are down."""
        return self._links.hosts()

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
        host the driver does not know, :class:`HostDown` if the target or the source is down
        (a domain on a host the driver cannot reach may still run there: moving it would make
        two). If creating it on the target fails, the target's copy is undefined again and the
        domain stays (shut off) on the source."""
        target = self._links.current(host, operation="migrate", instance=name)
        found = await self._find(name, "migrate")
        source = found.instance.host
        if found.instance.state not in (InstanceState.STOPPED, InstanceState.CRASHED):
            await self._act(found, "migrate", "destroy", EventKind.VM_STOPPED)
        if source == host:
            moved = found
        else:
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
            definition: str = await self._blocking(
                "migrate", name, lambda: found.domain.XMLDesc(flags), found.via)
            domain = await self._blocking(
                "migrate", name, lambda: target.conn.defineXML(definition), target)
            moved = Found(Instance(name, found.instance.group, found.instance.member, host,
                                    InstanceState.STOPPED), domain, target)
        self._publish(EventKind.VM_MIGRATED, moved.instance, f"from {source} to {host}")
        try:
            await self._act(moved, "migrate", "create", EventKind.VM_STARTED)
        except DriverError:
            if moved is not found:
                with contextlib.suppress(DriverError):
                    await self._blocking("migrate", name, moved.domain.undefine, moved.via)
            raise
        await self._confirm(moved, "migrate", InstanceState.RUNNING)
        if moved is not found:
            try:
                await self._blocking("migrate", name, found.domain.undefine, found.via)
            except DriverError as e:
                raise DriverError(f"migrate {name!r}: running on {host!r}, but its copy on "
                                  f"{source!r} could not be undefined: {e}", instance=name,
                                  operation="migrate") from e

    def events(self) -> AsyncIterator[InfraEvent]:
        """A ``HOST_DOWN`` for each host down now (detail ``no libvirt connection: <reason>``),
        then every event from now on (bounded backlog per subscriber), until :meth:`close`."""
        live = self._events.subscribe()
        down = {} if self._closed else self._links.snapshot()[1]
        return HostsDownFirst({h: f"no libvirt connection: {why}" for h, why in down.items()},
                              live)

    async def close(self) -> None:
        """Stop reconnecting, unsubscribe from every host's events, close the connections and
        end every events iterator. Domains keep running. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._links.close()
        for _, _, _, waiter in self._waiters:
            waiter.cancel()
        self._waiters.clear()
        self._events.close()

    # -- hosts lost and back (on the loop, called by HostLinks) ---------------------------------

    def _host_down(self, host: str, reason: str) -> None:
        """Publish ``HOST_DOWN`` (as the simulator does: ``host`` set, no instance) and release
        the actions waiting for an event from the host: they fail reading the state back."""
        self._events.publish(InfraEvent(EventKind.HOST_DOWN, host=host,
                                        detail=f"libvirt connection lost: {reason}"))
        for _, waiting_on, _, waiter in self._waiters:
            if waiting_on == host and not waiter.done():
                waiter.set_result(None)

    async def _host_up(self, host: str) -> None:
        """Publish ``HOST_UP``, look at the host again, and publish an event for each instance
        whose state changed meanwhile (see
        :func:`~vnfha.bridge.drivers.libvirt_conn.missed_events`)."""
        self._events.publish(InfraEvent(EventKind.HOST_UP, host=host,
                                        detail="libvirt connection re-established"))
        before = {name: i.state for name, i in self._seen.on(host).items()}
        try:
            via = self._links.current(host, operation="reconnect")
            found = await self._blocking("reconnect", None, lambda: self._scan_host(via), via)
        except DriverError as e:
            log.warning("libvirt: host %s: cannot list its domains after reconnecting: %s",
                        host, e)
            return
        if found is None:
            return  # lost again already (reported)
        after = {f.instance.name: f.instance for f in found}
        for name, kind in missed_events(before, {n: i.state for n, i in after.items()}):
            self._publish(kind, after[name], "changed while the libvirt connection was lost")

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

    def _instance(self, host: str, domain: Any) -> Instance | None:
        """The instance behind ``domain`` on ``host``, None if it is not vnfha's."""
        identity = self._identity(domain)
        if identity is None:
            return None
        name: str = domain.name()
        self._managed.add(name)
        state, reason = domain.state()
        return Instance(name, identity[0], identity[1], host, instance_state(state, reason))

    def _scan_host(self, via: Via) -> list[Found] | None:
        """Every instance on ``via``'s host, remembered as last seen; None if the connection
        turned out to be lost (reported)."""
        found: list[Found] = []
        try:
            for domain in via.conn.listAllDomains(0):
                instance = self._instance(via.host, domain)
                if instance is not None:
                    found.append(Found(instance, domain, via))
        except libvirt.libvirtError as e:
            if self._links.check(via, e) is None:
                raise
            return None
        self._seen.replace(via.host, (f.instance for f in found))
        return found

    def _remembered(self, host: str) -> list[Found]:
        return [Found(i, None, None) for i in self._seen.on(host).values()]

    def _lookup(self, via: Via, name: str) -> Found | None:
        try:
            domain = via.conn.lookupByName(name)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise
        instance = self._instance(via.host, domain)
        return None if instance is None else Found(instance, domain, via)

    def _locate(self, name: str, operation: str, up: list[Via], down: dict[str, str]) -> Found:
        copies: list[Found] = []
        down = dict(down)
        for via in up:
            try:
                found = self._lookup(via, name)
            except libvirt.libvirtError as e:
                reason = self._links.check(via, e)
                if reason is None:
                    raise
                down[via.host] = reason
                continue
            if found is None:
                self._seen.drop(via.host, name)
            else:
                self._seen.put(found.instance)
                copies.append(found)
        for host in down:
            copies += [f for f in self._remembered(host) if f.instance.name == name]
        if not copies:
            raise UnknownInstance(name, operation=operation)
        try:
            chosen = pick(name, copies)
        except DriverError as e:
            raise DriverError(f"{operation}: {e}", instance=name, operation=operation) from e
        if chosen.via is None:
            host = chosen.instance.host
            raise HostDown(host, down[host], instance=name, operation=operation)
        return chosen

    async def _find(self, name: str, operation: str) -> Found:
        up, down = self._links.snapshot()
        return await self._blocking(operation, name,
                                    lambda: self._locate(name, operation, up, down))

    # -- acting -----------------------------------------------------------------------------------

    async def _blocking(self, operation: str, name: str | None, call: Callable[[], T],
                        via: Via | None = None) -> T:
        """Run ``call`` in a worker thread; libvirt's errors become :class:`DriverError` (or
        :class:`UnknownInstance` when the domain vanished) naming the instance and operation.
        With ``via`` (the connection ``call`` uses): :class:`HostDown` if that connection is
        lost, before the call or as its error shows (reported to the supervisor)."""
        if self._closed:
            raise DriverError(f"{operation} {name!r}: the libvirt driver is closed",
                              instance=name, operation=operation)
        if via is not None:
            self._links.require(via, operation=operation, instance=name)

        def guarded() -> T:
            try:
                return call()
            except libvirt.libvirtError as e:
                reason = None if via is None else self._links.check(via, e)
                if via is not None and reason is not None:
                    raise HostDown(via.host, reason, instance=name, operation=operation) from e
                raise

        try:
            return await asyncio.to_thread(guarded)
        except libvirt.libvirtError as e:
            if name is not None and e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise UnknownInstance(name, operation=operation) from e
            raise DriverError(f"{operation} {name!r}: libvirt refused: {e.get_error_message()}",
                              instance=name, operation=operation) from e
        finally:
            if operation != "list_instances":  # it may have changed a host: see libvirt_scan
                self._scans.changed()

    async def _act(self, found: Found, operation: str, method: str,
                   expect: EventKind | None) -> None:
        """Call ``domain.<method>()``; then wait until the lifecycle callback ``expect`` for it
        has been published (logged, not raised, if it does not come in time)."""
        name, host = found.instance.name, found.instance.host
        call: Callable[[], object] = getattr(found.domain, method)
        waiter: asyncio.Future[None] = self._loop.create_future()
        if expect is not None:
            self._waiters.append((name, host, expect, waiter))
        try:
            await self._blocking(operation, name, call, found.via)
            if expect is not None:
                try:
                    await self._clock.wait_for(waiter, self._event_timeout_s)
                except TimeoutError:
                    log.warning("libvirt: %s %s on %s: no %s event within %s s", operation,
                                name, host, expect, self._event_timeout_s)
        finally:
            self._waiters = [w for w in self._waiters if w[3] is not waiter]

    async def _confirm(self, found: Found, operation: str, *wanted: InstanceState) -> None:
        """Read the domain's state back; :class:`DriverError` unless it is one of ``wanted``."""
        state, reason = await self._blocking(operation, found.instance.name, found.domain.state,
                                             found.via)
        now = instance_state(state, reason)
        if now not in wanted:
            raise DriverError(f"{operation} {found.instance.name!r}: the domain is {now} "
                              f"afterwards, not {' or '.join(wanted)}",
                              instance=found.instance.name, operation=operation)

    @staticmethod
    def _require(found: Found, operation: str, *allowed: InstanceState) -> None:
        if found.instance.state not in allowed:
            raise DriverError(f"{operation} {found.instance.name!r}: it is "
                              f"{found.instance.state}, not {' or '.join(allowed)}",
                              instance=found.instance.name, operation=operation)

    # -- events ------------------------------------------------------------------------------------

    def _on_lifecycle(self, _conn: Any, domain: Any, event: int, detail: int, host: str) -> None:
        """libvirt's callback, on the event loop thread: map, filter, hand to asyncio (with the
        domain as it is now, for the last-seen record)."""
        kind = event_kind(event, detail)
        if kind is None and event != libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
            return
        try:
            name: str = domain.name()
        except libvirt.libvirtError:
            log.exception("libvirt: a lifecycle event on %s for a domain without a name", host)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            if kind is None:  # undefined: no longer on this host
                self._loop.call_soon_threadsafe(self._seen.drop, host, name)
                return
            try:
                now = self._instance(host, domain)
                managed = now is not None
            except libvirt.libvirtError:
                now, managed = None, name in self._managed  # gone already: trust what we saw
            if managed:
                item = InfraEvent(kind, instance=name, host=host, detail=event_detail(
                    event, detail), halted=watchdog_halted(event, detail))
                self._loop.call_soon_threadsafe(self._deliver, item, now)

    def _deliver(self, item: InfraEvent, now: Instance | None) -> None:
        """Publish a callback's event (on the loop) and release the action waiting for it;
        drop a RESUMED that is part of a start (:func:`superseded`)."""
        self._scans.changed()
        before = self._seen.on(item.host or "").get(item.instance or "")
        if self._closed or superseded(item.kind, None if before is None else before.state):
            return
        if now is not None:
            self._seen.put(now)
        self._events.publish(item)
        for name, host, kind, waiter in self._waiters:
            if (name, host, kind) == (item.instance, item.host, item.kind) and not waiter.done():
                waiter.set_result(None)
                break

    def _publish(self, kind: EventKind, instance: Instance, detail: str) -> None:
        self._events.publish(InfraEvent(kind, instance=instance.name, host=instance.host,
                                        detail=detail))

