"""libvirt domains as the driver reads them: pure tables and parsing, and test domains.

- :func:`instance_state` and :func:`event_kind` map libvirt's ``(state, reason)`` and lifecycle
  ``(event, detail)`` codes onto :class:`~vnfha.bridge.drivers.driver.InstanceState` and
  :class:`~vnfha.bridge.drivers.driver.EventKind` (the tables are at the top); libvirt's
  watchdog event (a guest's emulated hardware watchdog expired, ``<watchdog>`` in the domain)
  is :data:`WATCHDOG_EVENT` with the watchdog's action as detail, reported as
  ``WATCHDOG_FIRED``; :func:`event_detail` says it in words for operators.
- vnfha's metadata element selects the domains that are instances: :data:`METADATA_NS`,
  :func:`parse_metadata`; :func:`pick_copy` resolves a name defined on several hosts.
- :func:`domain_xml`, :class:`DomainSpec` and :func:`write_test_hosts` build minimal domains
  and hosts for libvirt's ``test`` hypervisor.

Nothing here opens a connection; :mod:`vnfha.bridge.drivers.libvirt_driver` re-exports every name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from vnfha.bridge.drivers._libvirt import libvirt
from vnfha.bridge.drivers.driver import DriverError, EventKind, InstanceState

__all__ = [
    "METADATA_NS",
    "METADATA_PREFIX",
    "WATCHDOG_EVENT",
    "DomainSpec",
    "domain_xml",
    "event_detail",
    "event_kind",
    "instance_state",
    "parse_metadata",
    "pick_copy",
    "superseded",
    "watchdog_halted",
    "write_test_hosts",
]

METADATA_NS = "urn:vnfha:nfvi:1"
"""The namespace of vnfha's element in a domain's ``<metadata>``."""
METADATA_PREFIX = "vnfha"

# -- pure mappings (state tables first) ----------------------------------------------------------

_STATES: dict[int, InstanceState] = {
    # NOSTATE is "unknown": reported as RUNNING, because claiming that a domain cannot execute
    # when we do not know would make a fence a lie.
    libvirt.VIR_DOMAIN_NOSTATE: InstanceState.RUNNING,
    libvirt.VIR_DOMAIN_RUNNING: InstanceState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: InstanceState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTDOWN: InstanceState.RUNNING,  # shutting down: still executing
    libvirt.VIR_DOMAIN_PAUSED: InstanceState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: InstanceState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF: InstanceState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: InstanceState.CRASHED,
}
_CRASHED_SHUTOFF = {libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, libvirt.VIR_DOMAIN_SHUTOFF_FAILED}

_EVENTS: dict[int, EventKind | None] = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: None,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: None,
    libvirt.VIR_DOMAIN_EVENT_STARTED: EventKind.VM_STARTED,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: EventKind.VM_PAUSED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: EventKind.VM_RESUMED,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: EventKind.VM_STOPPED,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: None,  # a STOPPED event follows when it is off
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: EventKind.VM_PAUSED,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: EventKind.VM_CRASHED,
}
_CRASHED_STOPS = {libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED}

WATCHDOG_EVENT = -1
"""Not a libvirt lifecycle code: the ``event`` under which the driver's connections hand on
libvirt's watchdog event (``VIR_DOMAIN_EVENT_ID_WATCHDOG``); ``detail`` is its action."""
_WATCHDOG_ACTIONS = {
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_NONE: "none",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_PAUSE: "pause",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET: "reset",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_POWEROFF: "poweroff",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_DEBUG: "debug",
    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_INJECTNMI: "inject-nmi",
}


def instance_state(state: int, reason: int) -> InstanceState:
    """The :class:`InstanceState` of a libvirt ``(state, reason)`` pair (``virDomainGetState``).

    A domain shut off because it crashed or failed to start is CRASHED; an unknown state code
    counts as RUNNING (see ``_STATES``)."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason in _CRASHED_SHUTOFF:
        return InstanceState.CRASHED
    return _STATES.get(state, InstanceState.RUNNING)


def event_kind(event: int, detail: int) -> EventKind | None:
    """The :class:`EventKind` of a libvirt lifecycle ``(event, detail)``, None for those the
    driver does not report (define, undefine, shutdown-in-progress, unknown codes).
    :data:`WATCHDOG_EVENT` is ``WATCHDOG_FIRED`` whatever its action."""
    if event == WATCHDOG_EVENT:
        return EventKind.WATCHDOG_FIRED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED and detail in _CRASHED_STOPS:
        return EventKind.VM_CRASHED
    return _EVENTS.get(event)


_HALTING_ACTIONS = {libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET,
                    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_PAUSE,
                    libvirt.VIR_DOMAIN_EVENT_WATCHDOG_POWEROFF}


def watchdog_halted(event: int, detail: int) -> bool:
    """Whether ``(event, detail)`` is a watchdog event whose action stopped the guest as it
    fired: reset, pause or power off (QEMU stops the vCPUs before libvirt hears of it), not
    shutdown (the guest is only asked), debug, inject-nmi or none. Pure."""
    return event == WATCHDOG_EVENT and detail in _HALTING_ACTIONS


def superseded(kind: EventKind, before: InstanceState | None) -> bool:
    """Whether an event of ``kind`` for an instance last seen ``before`` (None: never seen) is
    not reported. QEMU starts a domain paused and then runs it, so libvirt reports RESUMED
    (unpaused) just before STARTED: a RESUMED of an instance not last seen PAUSED is that
    start's, and only its STARTED is reported. Pure."""
    return kind is EventKind.VM_RESUMED and before is not InstanceState.PAUSED


def event_detail(event: int, detail: int) -> str:
    """The ``detail`` text of the event the driver publishes for ``(event, detail)``: the
    watchdog's action in words (``hardware watchdog expired: action reset``), else the codes
    (``libvirt lifecycle event 5/2``)."""
    if event == WATCHDOG_EVENT:
        return f"hardware watchdog expired: action {_WATCHDOG_ACTIONS.get(detail, str(detail))}"
    return f"libvirt lifecycle event {event}/{detail}"


def parse_metadata(text: str) -> tuple[str, str] | None:
    """``(group, member)`` from vnfha's metadata element as libvirt returns it, None if it is
    malformed or either attribute is missing or empty."""
    try:
        element = ET.fromstring(text)
    except ET.ParseError:
        return None
    group, member = element.get("group", ""), element.get("member", "")
    return (group, member) if group and member else None


def pick_copy(name: str, copies: Sequence[tuple[str, bool]]) -> str:
    """The host of instance ``name``, given every ``(host, active)`` copy of it.

    One copy: its host. Several (a migration interrupted between define and undefine, or a
    mistake): the one active copy. Two active copies, or several inactive ones, are ambiguous:
    :class:`DriverError` naming the hosts, because acting on either could be wrong."""
    if len(copies) == 1:
        return copies[0][0]
    active = [host for host, is_active in copies if is_active]
    if len(active) == 1:
        return active[0]
    hosts = ", ".join(sorted(host for host, _ in copies))
    raise DriverError(f"instance {name!r} is defined on several hosts ({hosts}) and "
                      f"{len(active)} copies are active: resolve by hand", instance=name)


# -- building domains and test hosts -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """A minimal domain for libvirt's ``test`` hypervisor; ``group``/``member`` None makes a
    domain without vnfha metadata (one the driver must ignore)."""

    name: str
    group: str | None = None
    member: str | None = None


def domain_xml(name: str, group: str | None = None, member: str | None = None) -> str:
    """A minimal ``type='test'`` domain definition named ``name``, with vnfha's metadata when
    ``group`` and ``member`` are given (both or neither: :class:`DriverError` otherwise)."""
    if (group is None) != (member is None):
        raise DriverError(f"domain {name!r}: give both group and member, or neither",
                          instance=name, operation="domain_xml")
    metadata = "" if group is None else (
        f"<metadata><{METADATA_PREFIX}:instance xmlns:{METADATA_PREFIX}={quoteattr(METADATA_NS)}"
        f" group={quoteattr(group)} member={quoteattr(member or '')}/></metadata>")
    return (f"<domain type='test'><name>{escape(name)}</name>{metadata}"
            "<memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>")


def write_test_hosts(directory: Path, layout: Mapping[str, Iterable[DomainSpec]]
                     ) -> dict[str, str]:
    """Write one ``test`` hypervisor file per host into ``directory`` (``<host>.xml``, its
    domains running when opened) and return ``{host: "test:///<absolute path>"}`` for
    :meth:`LibvirtDriver.open`. Each connection to such a URI is a private copy: state changes
    are not written back and are not seen by other connections."""
    uris: dict[str, str] = {}
    for host, domains in layout.items():
        path = (directory / f"{host}.xml").absolute()
        body = "".join(domain_xml(d.name, d.group, d.member) for d in domains)
        path.write_text(f"<node>{body}</node>\n")
        uris[host] = f"test://{path}"
    return uris
