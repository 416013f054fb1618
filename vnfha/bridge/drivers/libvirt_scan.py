"""Listing the libvirt driver's hosts within a deadline (:meth:`LibvirtDriver.list_instances`
<vnfha.bridge.drivers.libvirt_driver.LibvirtDriver.list_instances>`), and choosing among the
copies of a domain found on several hosts.

Why a deadline: libvirt holds a domain's lock while it destroys the domain, polling for the
QEMU process every 200 ms, and for as long as 10 s and more when QEMU ignores its SIGTERM
(stuck in I/O); a listing of that host waits as long (measured here: 202 ms during a destroy,
against 1-2 ms otherwise). The bridge lists the inventory to resolve every caller, so one
busy host would stall every Kick of every group on every host, and a stall longer than the
watchdogs' timeout would have the bridge reset actives that did nothing wrong.

Guarantees of :class:`HostScans`:

- **One scan of a host at a time, unless something changed.** A listing that finds a scan of
  a host still running waits for that one rather than starting another thread, provided
  nothing changed since that scan began (:meth:`HostScans.changed`: the driver calls it after
  each of its calls to libvirt and each lifecycle event); otherwise it starts a fresh scan, so
  a listing never answers with what a host held before a change the caller already saw.
- **Bounded.** :meth:`HostScans.within` returns within ``timeout_s`` (plus scheduling). A host
  whose scan has not ended by then is reported as late (None): the driver lists it as last
  seen (its last scan, and every lookup and lifecycle event since), and the scan runs on and
  updates that when it ends. A late scan's failure is logged, not raised.
- A scan that ended raises what it raised (a :class:`~vnfha.bridge.drivers.driver.DriverError`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vnfha.bridge.drivers.driver import Instance, InstanceState
from vnfha.bridge.drivers.libvirt_conn import Via
from vnfha.bridge.drivers.libvirt_domains import pick_copy

__all__ = ["LIST_TIMEOUT_S", "Found", "HostScans", "pick"]

log = logging.getLogger("vnfha.nfvi.libvirt")

LIST_TIMEOUT_S = 0.1
"""The default longest wait for a host's scan in a listing: a scan takes 1-2 ms; a member's
bridge call has 0.2 s (``bridge_timeout_s``) in all."""


@dataclass(frozen=True, slots=True)
class Found:
    """One instance located on its host, with the domain handle the action will use and the
    connection it came from (both None for a copy only remembered from a host that is down,
    or late)."""

    instance: Instance
    domain: Any  # libvirt.virDomain (the binding ships no types)
    via: Via | None


def pick(name: str, copies: list[Found]) -> Found:
    """The copy of ``name`` to use among ``copies`` on several hosts
    (:func:`~vnfha.bridge.drivers.libvirt_domains.pick_copy`)."""
    host = pick_copy(name, [(c.instance.host, c.instance.state is not InstanceState.STOPPED
                             and c.instance.state is not InstanceState.CRASHED)
                            for c in copies])
    return next(c for c in copies if c.instance.host == host)


Scan = Callable[[Via], Awaitable[list[Found] | None]]
"""Scan one host: its instances, or None if its connection turned out to be lost."""


class HostScans:
    """Scans of the hosts, one at a time per host, waited for at most ``timeout_s`` (see the
    module docstring)."""

    def __init__(self, scan: Scan, *, timeout_s: float = LIST_TIMEOUT_S) -> None:
        if not 0 < timeout_s < math.inf:
            raise ValueError(f"list_timeout_s must be a positive number of seconds, not "
                             f"{timeout_s!r}")
        self._scan, self.timeout_s = scan, timeout_s
        self._running: dict[str, tuple[int, asyncio.Future[list[Found] | None]]] = {}
        self._generation = 0  # how many changes the driver reported
        self._warned: set[int] = set()  # the late scans already logged (by id)
        self.late = 0
        """Listings that answered a host from what was last seen (one per host and listing)."""

    def changed(self) -> None:
        """Something may have changed on a host: scans running now are not joined any more."""
        self._generation += 1

    async def within(self, up: Sequence[Via]) -> dict[str, list[Found] | None]:
        """Each host's instances, None for one whose connection is lost or whose scan is
        late."""
        scans = {via.host: self._start(via) for via in up}
        if scans:
            await asyncio.wait(scans.values(), timeout=self.timeout_s)
        out: dict[str, list[Found] | None] = {}
        for host, scan in scans.items():
            if scan.done():
                out[host] = scan.result()
                continue
            self.late += 1
            out[host] = None
            if id(scan) not in self._warned:
                self._warned.add(id(scan))
                log.warning("libvirt: listing %s takes over %g s: its instances are listed as "
                            "last seen until it answers", host, self.timeout_s)
        return out

    def _start(self, via: Via) -> asyncio.Future[list[Found] | None]:
        generation, running = self._running.get(via.host, (-1, None))
        if running is not None and not running.done() and generation == self._generation:
            return running
        scan = asyncio.ensure_future(self._scan(via))
        self._running[via.host] = (self._generation, scan)
        scan.add_done_callback(lambda done: self._ended(via.host, done))
        return scan

    def _ended(self, host: str, scan: asyncio.Future[list[Found] | None]) -> None:
        if self._running.get(host, (0, None))[1] is scan:
            del self._running[host]
        late = id(scan) in self._warned
        self._warned.discard(id(scan))
        if scan.cancelled():
            return
        error = scan.exception()  # read here: an error nobody awaited is not reported at exit
        if late and error is not None:
            log.warning("libvirt: the late listing of %s failed: %s", host, error)
