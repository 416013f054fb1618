"""The bridge's Network service: moving a service address to the caller's instance
(``Network/MoveAddress``) and telling where it is (``Network/GetAddress``).

:class:`AddressMoves` is the part of :class:`~vnfha.bridge.core.BridgeCore` that runs these on
a driver implementing :class:`~vnfha.bridge.drivers.driver.AddressMover`; the rules are
:mod:`vnfha.bridge.address_book`'s (pure). Guarantees:

- **Checks, in order** (the first failure answers): the driver can move addresses (else
  UNIMPLEMENTED, ``vnfha-reason: not-supported``, naming the driver); the caller's group,
  member and identity, then its epoch, exactly as for every acting request (the core's checks:
  NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION ``stale-epoch``; an accepted epoch raises
  the group's highest, saved first with a state file); then, holding the address, the epoch
  again (a newer one may have been accepted meanwhile) and the address's own rules
  (:func:`~vnfha.bridge.address_book.decide`: FAILED_PRECONDITION with ``vnfha-reason``
  ``stale-epoch``, ``address-in-use`` or ``epoch-conflict``). Every refusal names the address,
  the members and the epochs involved, and the stale ones carry ``vnfha-highest-epoch``.
- **One move of an address at a time** (by its IP, whatever the prefix): a move in an older
  epoch that waited behind a newer one is refused, never applied after it. Moves of different
  addresses run concurrently.
- **Confirmed or refused.** The reply comes once the driver confirms the binding; a driver
  failure, or no confirmation within ``BridgeLimits.address_move_timeout_s``, is INTERNAL
  naming the address and the instance (the address may be half moved: moving it again is
  safe). A refused or failed move changes no record and publishes nothing.
- **Reported.** A move that changed the binding publishes ``ADDRESS_MOVED`` to the group (the
  new holder's ``member``, ``instance`` and ``host``, the move's ``epoch`` and ``address``, the
  previous holder in ``detail``), before the reply; a repeat publishes nothing.
- **GetAddress** asks the driver which instance holds the address now and reports it if it is
  one of the caller's group's (with the epoch of the bridge's last move there, 0 if unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from vnfha.bridge.address_book import AddressBook, Bound, Holder, MoveRefusal, decide
from vnfha.bridge.drivers.driver import AddressMover, Driver, DriverError, InfraEvent, Instance
from vnfha.bridge.limits import BridgeLimits
from vnfha.clock import Clock
from vnfha.net.address import ServiceAddress
from vnfha.nfvi import wire
from vnfha.nfvi.model import AddressBinding, AddressMove, EventKind
from vnfha.nfvi.wire import Caller, Refused

__all__ = ["AddressMoves"]

log = logging.getLogger("vnfha.nfvi.bridge")

T = TypeVar("T")

Acting = Callable[[Caller, str | None], Awaitable[Instance]]
"""The core's checks of an acting request; returns the caller's instance."""
Resolve = Callable[[Caller, str | None], Awaitable[dict[str, Instance]]]
"""The core's checks of a read-only request; returns the caller's group, member -> instance."""
Route = Callable[[InfraEvent, int], Awaitable[int]]
"""Publish an event (with its epoch) to the groups it concerns; returns its sequence."""


class AddressMoves:
    """The Network service on ``driver`` (see the module docstring). ``acting`` and ``resolve``
    are the core's caller checks, ``highest(group)`` the group's highest epoch now, ``route``
    the core's event routing."""

    def __init__(self, driver: Driver, *, clock: Clock, limits: BridgeLimits, acting: Acting,
                 resolve: Resolve, highest: Callable[[str], int], route: Route) -> None:
        self._driver = driver
        self._clock = clock
        self._timeout_s = limits.address_move_timeout_s
        self._acting = acting
        self._resolve = resolve
        self._highest = highest
        self._route = route
        self._book = AddressBook(max_addresses=limits.max_addresses)
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    def _mover(self) -> AddressMover:
        """The driver as an :class:`AddressMover`; UNIMPLEMENTED if it is not one."""
        if not isinstance(self._driver, AddressMover):
            raise Refused("UNIMPLEMENTED", f"driver {self._driver.name} cannot move service "
                          "addresses (it has no cloud network API): use service_address_mode "
                          "= \"local\" with it", metadata={wire.REASON_KEY: "not-supported"})
        return self._driver

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        """Hold address ``key``'s lock; the lock is dropped once nobody holds or awaits it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]

    async def _call(self, work: Coroutine[Any, Any, T], what: str) -> T:
        """One driver call within the timeout; failures become INTERNAL naming ``what``."""
        try:
            return await self._clock.wait_for(work, self._timeout_s)
        except DriverError as e:
            raise Refused("INTERNAL", f"{what} failed: {e}") from e
        except TimeoutError:
            raise Refused("INTERNAL", f"{what}: the driver did not confirm within "
                          f"{self._timeout_s:g} s (the address may be half moved: move it "
                          "again)") from None

    async def _holder(self, mover: AddressMover, address: ServiceAddress) -> Holder | None:
        """The instance holding ``address`` now, with its group and member."""
        name = await self._call(mover.address_holder(address), f"looking up address {address}")
        if name is None:
            return None
        instances = await self._call(self._driver.list_instances(), "listing the instances")
        found = next((i for i in instances if i.name == name), None)
        return Holder(name) if found is None else Holder(name, found.group, found.member,
                                                         found.host)

    async def move(self, caller: Caller, peer: str | None,
                   address: ServiceAddress) -> AddressMove:
        """Bind ``address`` to the caller's instance (see the module docstring)."""
        mover = self._mover()
        instance = await self._acting(caller, peer)
        wanted = Bound(str(address), caller.group, caller.member, instance.name, caller.epoch)
        key = str(address.ip)
        async with self._exclusive(key):
            highest = self._highest(caller.group)
            if caller.epoch < highest:  # a newer epoch was accepted while this one waited
                raise _refusal(caller, MoveRefusal.STALE_EPOCH, f"epoch {caller.epoch} is "
                               f"stale: group {caller.group!r} is at epoch {highest}", highest)
            holder = await self._holder(mover, address)
            verdict = decide(wanted, self._book.get(key), holder)
            if verdict.refusal is not None:
                last = self._book.get(key)
                raise _refusal(caller, verdict.refusal, verdict.reason,
                               max(highest, last.epoch if last is not None else 0))
            await self._call(mover.move_address(caller.group, address, instance.name),
                             f"moving address {address} to {instance.name!r} (member "
                             f"{caller.member!r})")
            forgotten = self._book.record(key, wanted)
            if forgotten is not None:
                log.info("address %s forgotten to keep %d (the limit): it moved least recently",
                         forgotten.address, self._book.max_addresses)
            if verdict.changed:
                log.warning("member %s (epoch %d): %s", caller.member, caller.epoch,
                            verdict.reason)
                detail = f"{verdict.reason} (driver {self._driver.name})"
                await self._route(InfraEvent(EventKind.ADDRESS_MOVED, instance=instance.name,
                                             host=instance.host, detail=detail,
                                             address=str(address)), caller.epoch)
        binding = AddressBinding(str(address), caller.member, instance.name, instance.host,
                                 caller.epoch)
        return AddressMove(binding, verdict.previous_member, verdict.changed)

    async def get(self, caller: Caller, peer: str | None,
                  address: ServiceAddress) -> AddressBinding:
        """Which member of the caller's group holds ``address`` now (read-only)."""
        mover = self._mover()
        await self._resolve(caller, peer)
        holder = await self._holder(mover, address)
        if holder is None or holder.group != caller.group:
            return AddressBinding(str(address))
        last = self._book.get(str(address.ip))
        epoch = last.epoch if last is not None and last.instance == holder.instance \
            and last.group == caller.group else 0
        return AddressBinding(str(address), holder.member, holder.instance, holder.host, epoch)


def _refusal(caller: Caller, refusal: MoveRefusal, reason: str, highest: int) -> Refused:
    """The FAILED_PRECONDITION for a refused move; a stale one carries the highest epoch."""
    metadata = {wire.REASON_KEY: refusal.value}
    if refusal is MoveRefusal.STALE_EPOCH:
        metadata[wire.HIGHEST_EPOCH_KEY] = str(highest)
    return Refused("FAILED_PRECONDITION", f"member {caller.member!r}: {reason}",
                   metadata=metadata)
