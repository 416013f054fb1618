"""Service addresses that follow the active (issue 18; ``Config.service_addresses``): the
member's side, over the host primitives of :mod:`vnfha.net`.

- **Claimed before ``on_active``.** The callback runner runs :meth:`AddressKeeper.claim` in
  front of the component's ``on_active``: for each address (on the device chosen at start:
  named, or the one whose own address is in the same subnet) it adds the address and starts
  announcing it (gratuitous ARP / unsolicited NA, the first frame at once, then
  ``ANNOUNCE_COUNT - 1`` more, as keepalived does).
- **Probed for another holder.** An address no other member's record lists is probed before
  it is added (``probe_s``): nobody was serving it, so there is no rush. An address another
  member held (a takeover: its record still lists it) is added at once and probed just after,
  while it is announced, so the takeover does not wait for the probe. Either probe tolerates
  the MACs the group's members publish (a frozen or cut-off old active's kernel still answers
  for the address until it is fenced or resumes and lets go: the group's epoch, not the probe,
  decides).
- **A claim that fails refuses the role.** Any address that cannot be added (no CAP_NET_ADMIN
  or CAP_NET_RAW, no matching device, another host answering for it) makes the claim fail:
  what it had added is removed again, ``on_active`` is not called, and the member reports a
  fault recommending a failover (the escalation ladder hands the role to a standby, or climbs
  when there is none). A host found answering by the probe after a takeover has the same
  effect, ``probe_s`` later: the addresses go and the fault is reported.
- **Released as writes stop.** :meth:`AddressKeeper.release` runs synchronously in the role
  change that ends the active role (deposed, session lost at the lease deadline, standby lease
  lapsed, resigned): it stops a claim or announcement under way and removes every address in
  a task of its own, so the addresses leave with the same self-fencing that stops the writes.
- **Gone with the process.** With ``lifetime_s``, each address is added with that lifetime
  and renewed after confirmed lease keepalives (:meth:`AddressKeeper.keepalive_confirmed`, at
  most every ``lifetime_s / 4``): an active that is killed, or frozen, and so cannot release
  stops renewing, and its host's kernel removes the address ``lifetime_s`` after the last
  renewal (within about a second more). A release stops the renewals, and waits for one under
  way, before it removes the addresses. Without ``lifetime_s`` an address stays until it is
  released, or until this member starts again on that host (:meth:`AddressKeeper.prepare`).
- **Moved by the NFVI instead** (``service_address_mode = "nfvi"``, ``mover`` given): the claim
  asks the bridge to bind each address to this member's instance in the new epoch
  (``Network/MoveAddress``, epoch-fenced) and touches no interface; a refusal or failure refuses
  the role the same way. Nothing is removed at the end of the role: the next active's move,
  in a newer epoch, takes the address over, and the bridge refuses the deposed epoch's.
- **Reported.** :attr:`AddressKeeper.held` (published in the member's record for ``vnfha
  status``) and the ``vnfha_service_address_held`` gauge, per address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import types
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from vnfha.clock import Clock
from vnfha.errors import NfviError
from vnfha.metrics import Metrics
from vnfha.net import (
    ANNOUNCE_COUNT,
    ANNOUNCE_INTERVAL_S,
    PROBE_S,
    ServiceAddress,
    ServiceAddressError,
    add,
    announce,
    choose_device,
    format_mac,
    list_links,
    parse_mac,
    probe,
    read_mac,
    remove,
    renew,
)

__all__ = ["AddressKeeper"]

log = logging.getLogger("vnfha.member")

HOST = types.SimpleNamespace(add=add, remove=remove, announce=announce, list_links=list_links,
                             read_mac=read_mac, probe=probe, renew=renew)
"""The host primitives the keeper uses (:mod:`vnfha.net`); a test may give stand-ins."""


class AddressKeeper:
    """The service addresses of member ``me`` (see the module docstring). ``tolerate`` gives
    the MACs (``aa:bb:...``) the group's other members published, ``held_elsewhere(address)``
    whether another member's record lists the address; ``refuse(reason)`` reports the fault
    that a failed claim is; ``spawn`` owns a background task; ``lifetime_s`` (None: forever)
    bounds how long an address outlives the last renewal."""

    def __init__(self, me: str, addresses: Sequence[ServiceAddress], *, clock: Clock,
                 metrics: Metrics, tolerate: Callable[[], Collection[str]],
                 held_elsewhere: Callable[[str], bool], refuse: Callable[[str], None],
                 spawn: Callable[[asyncio.Task[Any]], None],
                 probe_s: float = PROBE_S, host: Any = HOST,
                 mover: Callable[[ServiceAddress, int], Awaitable[object]] | None = None,
                 lifetime_s: int | None = None) -> None:
        self.me, self.addresses = me, tuple(addresses)
        self._clock, self._metrics, self._tolerate = clock, metrics, tolerate
        self._held_elsewhere = held_elsewhere
        self._refuse, self._spawn, self._probe_s = refuse, spawn, probe_s
        self._host, self._mover = host, mover
        self.devices: dict[ServiceAddress, str] = {}
        """The device each address goes on (chosen at :meth:`prepare`)."""
        self.macs: tuple[str, ...] = ()
        """The MACs of those devices: what a successor's probe must tolerate."""
        self.held: dict[str, str] = {}
        """The addresses this member holds now, by text form, with their device."""
        self._generation = 0
        self._announcer: asyncio.Task[None] | None = None
        self.lifetime_s = lifetime_s
        self._renewer: asyncio.Task[None] | None = None
        self._renewed_at = float("-inf")
        self.renewals = 0
        """Renewals that succeeded (one per address)."""

    async def prepare(self) -> None:
        """At start: choose each address's device and read its MAC (ServiceAddressError if an
        address has no device), and remove addresses a previous incarnation of this member may
        have left behind (a crash skips the release)."""
        if not self.addresses or self._mover is not None:
            return
        host = self._host
        links = await host.list_links()
        self.devices = {a: choose_device(a, links) for a in self.addresses}
        macs = []
        for device in dict.fromkeys(self.devices.values()):
            with contextlib.suppress(ServiceAddressError, OSError):
                macs.append(format_mac(host.read_mac(device)))
        self.macs = tuple(macs)
        for address, device in self.devices.items():  # one member of a group per host
            with contextlib.suppress(ServiceAddressError):
                if await host.remove(address, device):
                    log.warning("%s: removed %s from %s, left by a previous run", self.me,
                                address, device)

    async def claim(self, epoch: int) -> bool:
        """Take every address for ``epoch``; True when all are held (see the module)."""
        if not self.addresses:
            return True
        if self._mover is not None:
            return await self._moved(epoch)
        generation = self._generation
        tolerate = [parse_mac(m) for m in self._tolerate()]
        added: list[ServiceAddress] = []
        moved: list[ServiceAddress] = []  # another member's a moment ago: probed after
        error: str | None = None
        for address in self.addresses:
            device = self.devices.get(address)
            if device is None:
                error = f"service address {address}: no device (the member did not prepare)"
                break
            if self._held_elsewhere(str(address)):
                moved.append(address)
            try:
                await self._host.add(address, device, tolerate=tolerate,
                                     probe_s=0.0 if address in moved else self._probe_s,
                                     lifetime_s=self.lifetime_s)
            except ServiceAddressError as e:
                error = str(e)
                break
            added.append(address)
            if generation != self._generation:
                error = f"service address {address}: the active role ended while it was taken"
                break
            self._hold(address, device)
        if error is not None:
            for address in added:
                self._drop(address)
            self._spawn(asyncio.create_task(self._remove(added), name=f"{self.me}-addr-undo"))
            if generation == self._generation:
                reason = f"not active in epoch {epoch}: {error}"
                log.error("%s: %s", self.me, reason)
                self._refuse(reason)
            return False
        self._announcer = asyncio.create_task(self._announce(epoch, moved, tolerate),
                                              name=f"{self.me}-announce")
        self._spawn(self._announcer)
        log.info("%s: holds %s (epoch %d)", self.me, ", ".join(self.held), epoch)
        return True

    async def _moved(self, epoch: int) -> bool:
        """The NFVI mode's claim: each address bound to this instance in ``epoch``."""
        assert self._mover is not None
        for address in self.addresses:
            try:
                await self._mover(address, epoch)
            except NfviError as e:
                reason = f"not active in epoch {epoch}: the NFVI did not move {address}: {e}"
                log.error("%s: %s", self.me, reason)  # noqa: TRY400 - the reason says it
                self._refuse(reason)
                return False
            self._hold(address, "nfvi")
        log.info("%s: the NFVI moved %s to it (epoch %d)", self.me, ", ".join(self.held), epoch)
        return True

    def keepalive_confirmed(self) -> None:
        """A lease keepalive was confirmed: renew the held addresses' lifetime if
        ``lifetime_s / 4`` has passed since the last renewal and none is under way."""
        if self.lifetime_s is None or not self.held or self._mover is not None or (
                self._renewer is not None and not self._renewer.done()):
            return
        now = self._clock.monotonic()
        if now - self._renewed_at < self.lifetime_s / 4:
            return
        self._renewed_at = now
        self._renewer = asyncio.create_task(self._renew(self._generation),
                                            name=f"{self.me}-addr-renew")
        self._spawn(self._renewer)

    async def _renew(self, generation: int) -> None:
        assert self.lifetime_s is not None
        for text, device in list(self.held.items()):
            address = next(a for a in self.addresses if str(a) == text)
            if generation != self._generation:
                return
            try:
                await self._host.renew(address, device, self.lifetime_s)
            except ServiceAddressError as e:
                log.warning("%s: renewing %s failed (it goes %d s after the last renewal): "
                            "%s", self.me, address, self.lifetime_s, e)
            else:
                self.renewals += 1

    def release(self, why: str) -> None:
        """Stop holding every address now (synchronously stops the claim, announcements and
        renewals; the removal runs in a task, after any renewal under way has ended)."""
        self._generation += 1
        if self._announcer is not None:
            self._announcer.cancel()
            self._announcer = None
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
        if not self.held:
            return
        gone = [a for a in self.addresses if str(a) in self.held]
        for address in gone:
            self._drop(address)
        if self._mover is not None:
            return  # the next active's move takes them over
        log.info("%s: releasing %s (%s)", self.me, ", ".join(map(str, gone)), why)
        self._spawn(asyncio.create_task(self._remove(gone, after=renewer),
                                        name=f"{self.me}-addr-release"))

    def _hold(self, address: ServiceAddress, device: str) -> None:
        self.held[str(address)] = device
        self._metrics.service_address(str(address), True)

    def _drop(self, address: ServiceAddress) -> None:
        self.held.pop(str(address), None)
        self._metrics.service_address(str(address), False)

    async def _announce(self, epoch: int, moved: Sequence[ServiceAddress],
                        tolerate: Collection[bytes]) -> None:
        """Announce every held address, each frame set ``ANNOUNCE_INTERVAL_S`` apart; probe
        the ``moved`` ones meanwhile (see the module)."""
        for address, device in self.devices.items():
            with contextlib.suppress(ServiceAddressError):
                await self._host.announce(device, address, count=1)
        for address in moved:
            device = self.devices[address]
            try:
                holder = await self._host.probe(device, address, wait_s=self._probe_s,
                                                tolerate=tolerate)
            except ServiceAddressError as e:
                holder, why = None, str(e)
                log.warning("%s: could not probe %s after taking it: %s", self.me, address, why)
            if holder is not None:
                reason = (f"not active in epoch {epoch}: service address {address} on "
                          f"{device}: in use by {format_mac(holder)}: another host answered "
                          "for it after this member took it")
                log.error("%s: %s", self.me, reason)
                self._announcer = None  # this task: release must not cancel it under us
                self.release("another host holds it")
                self._refuse(reason)
                return
        for _ in range(ANNOUNCE_COUNT - 1):
            await self._clock.sleep(ANNOUNCE_INTERVAL_S)
            for address, device in self.devices.items():
                if str(address) in self.held:
                    try:
                        await self._host.announce(device, address, count=1)
                    except ServiceAddressError as e:
                        log.warning("%s: announcing %s failed: %s", self.me, address, e)

    async def _remove(self, addresses: Sequence[ServiceAddress], *,
                      after: asyncio.Task[None] | None = None) -> None:
        if after is not None:  # a renewal re-adds an absent address: let it end first
            await asyncio.wait([after])
        for address in addresses:
            try:
                await self._host.remove(address, self.devices[address])
            except ServiceAddressError as e:
                log.error("%s: could not remove %s: %s", self.me, address, e)  # noqa: TRY400
