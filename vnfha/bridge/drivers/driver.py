"""The one interface between the NFVI bridge server and a hypervisor: :class:`Driver`.

A driver knows instances (VMs, or processes for the simulator), the hosts they run on, and how
to act on them. Everything else in the bridge is generic and lives outside the driver: watchdog
timers (the bridge keeps them and calls :meth:`Driver.reset` / :meth:`Driver.power_off` /
:meth:`Driver.pause` when one expires), epoch checks, repair tickets, placement policy and the
choice of an evacuation host. That keeps a driver small: the simulator and libvirt drivers
implement exactly these methods, and one driver test suite runs against both. Its vocabulary,
:class:`InstanceState` and :class:`EventKind`, is the API's (:mod:`vnfha.nfvi.model`, shared
with the members), re-exported here.

Guarantees every driver gives (the driver test suite checks them):

- Every method that acts returns only once the action has taken effect: after
  :meth:`~Driver.power_off` or :meth:`~Driver.pause` returns, the instance cannot execute
  (this is what makes ``Fence`` a confirmation, not a request).
- Acting on an unknown instance raises :class:`UnknownInstance`; naming an unknown host raises
  :class:`UnknownHost`; anything the hypervisor refuses raises :class:`DriverError` whose
  message names the instance and the operation. A driver never raises anything else on purpose.
- Actions are idempotent where the hypervisor allows: powering off an instance that is off, or
  pausing one that is paused, succeeds.
- :meth:`~Driver.events` yields every lifecycle change the driver performed or observed, in
  order, to every subscriber that was subscribed when it happened.
- Blocking hypervisor calls run off the event loop (``asyncio.to_thread``), so a slow
  hypervisor never stalls the bridge's other RPCs.

Hosts that go down. A host is *down* from the driver's ``HOST_DOWN`` for it until its
``HOST_UP``; the driver learns it from the hypervisor, from fault injection, or by losing its
connection to the host. Every driver (the driver test suite checks each point):

- publishes exactly one ``HOST_DOWN`` per outage (``host`` set, ``instance`` None), however
  many times it notices the outage, and one ``HOST_UP`` once the host is back;
- starts every new :meth:`~Driver.events` subscription with one ``HOST_DOWN`` for each host that
  is down at that moment (by host name), then the live events, so that a subscriber knows
  every host that is down however late it subscribed (a resubscription hears them again;
  :class:`HostsDownFirst` does it);
- keeps listing the host in :meth:`~Driver.list_hosts`, and its instances in
  :meth:`~Driver.list_instances`, on that host: the bridge routes the ``HOST_DOWN`` to their
  groups through them, and GetPlacement shows where the members were;
- raises :class:`HostDown` naming the host for what needs it: :meth:`~Driver.migrate` to it,
  :meth:`~Driver.start` and :meth:`~Driver.reset` of its instances;
- says about the host's instances only what it knows, in one of two ways, and documents which:

  *dead*: the driver knows that they cannot execute (the simulator, whose hosts' processes
  are its own and die with the host). After the ``HOST_DOWN``, each instance that was running
  or paused becomes CRASHED with one ``VM_CRASHED``; :meth:`~Driver.get_instance` answers;
  :meth:`~Driver.power_off` succeeds at once (there is nothing left to stop);
  :meth:`~Driver.migrate` to a host that is up evacuates it there.

  *unknown*: the driver cannot tell (libvirt: a lost connection does not mean that the
  domains stopped). No VM event; :meth:`~Driver.list_instances` shows them as last seen;
  :meth:`~Driver.get_instance` and every action on them (:meth:`~Driver.power_off`,
  :meth:`~Driver.pause` and :meth:`~Driver.migrate` away included) raise :class:`HostDown`.

  A driver never reports an instance of a down host as unable to execute (STOPPED, CRASHED,
  or a ``power_off`` / ``pause`` that returns) unless it knows: that would confirm a fence, or
  allow an evacuation, of an instance that may still run.

Optional capabilities. A driver whose cloud decides which instance may use an address
(OpenStack's allowed-address-pairs, a floating IP) also implements :class:`AddressMover`; the
bridge checks ``isinstance(driver, AddressMover)`` and answers ``Network/MoveAddress`` with
UNIMPLEMENTED for a driver that does not (libvirt). The simulator implements it as a record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vnfha.bridge._fanout import Subscription
from vnfha.errors import VnfhaError
from vnfha.net.address import ServiceAddress
from vnfha.nfvi.model import EventKind, InstanceState

__all__ = [
    "AddressMover",
    "Driver",
    "DriverError",
    "EventKind",
    "HostDown",
    "HostsDownFirst",
    "InfraEvent",
    "Instance",
    "InstanceState",
    "UnknownHost",
    "UnknownInstance",
]


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance as the driver sees it. ``group`` and ``member`` say which vnfha member runs
    in it (the bridge checks callers against them); ``host`` is where it runs now."""

    name: str
    group: str
    member: str
    host: str
    state: InstanceState


@dataclass(frozen=True, slots=True)
class InfraEvent:
    """Something that happened below the VNF.

    ``instance`` is set for VM events, ``host`` for host events (and for VM events, where the
    VM ran). ``deadline_unix_s`` is set for ``MAINTENANCE_PLANNED``: the wall-clock time at
    which the host goes down; ``address`` for ``ADDRESS_MOVED`` (which the bridge publishes, not
    a driver): the service address. ``detail`` is free text for operators.
    """

    kind: EventKind
    instance: str | None = None
    host: str | None = None
    detail: str = ""
    deadline_unix_s: float | None = None
    address: str = ""
    halted: bool = False
    """For a ``WATCHDOG_FIRED`` a driver reports (the guest's own hardware watchdog): its action
    stopped the guest as it fired (reset, power off, pause), so nothing that ran in the
    instance before runs on. The bridge then gives the event the epoch the instance's member
    last presented as active, as for ``VM_CRASHED``: proof for the standbys."""


class DriverError(VnfhaError):
    """The hypervisor refused or failed an operation. ``instance`` and ``operation`` name it."""

    def __init__(self, message: str, *, instance: str | None = None,
                 operation: str | None = None) -> None:
        self.instance = instance
        self.operation = operation
        super().__init__(message)


class UnknownInstance(DriverError):
    """No instance of that name is known to the driver."""

    def __init__(self, instance: str, *, operation: str | None = None) -> None:
        super().__init__(f"unknown instance {instance!r}", instance=instance, operation=operation)


class UnknownHost(DriverError):
    """No host of that name is known to the driver."""

    def __init__(self, host: str, *, operation: str | None = None) -> None:
        self.host = host
        super().__init__(f"unknown host {host!r}", operation=operation)


class HostDown(DriverError):
    """``host`` is down (see the module docstring): ``reason`` says how the driver knows;
    ``instance`` and ``operation`` as for every :class:`DriverError`."""

    def __init__(self, host: str, reason: str, *, instance: str | None = None,
                 operation: str | None = None) -> None:
        self.host = host
        self.reason = reason
        prefix = "" if operation is None else (
            f"{operation}: " if instance is None else f"{operation} {instance!r}: ")
        super().__init__(f"{prefix}host {host!r} is down: {self.describe(reason)}",
                         instance=instance, operation=operation)

    @staticmethod
    def describe(reason: str) -> str:
        """The message's words for ``reason`` (a driver's subclass may say more)."""
        return reason


class HostsDownFirst:
    """What a driver's :meth:`Driver.events` returns: one ``HOST_DOWN`` for each host in
    ``down`` (host -> detail), by host name, then the items of ``live``.

    Subscribe ``live`` and read ``down`` with no ``await`` in between (and change both on the
    event loop only), so that a host going down meanwhile is reported once, not twice or never.
    """

    def __init__(self, down: Mapping[str, str], live: Subscription[InfraEvent]) -> None:
        self._first = deque(InfraEvent(EventKind.HOST_DOWN, host=host, detail=down[host])
                            for host in sorted(down))
        self._live = live

    def __aiter__(self) -> HostsDownFirst:
        return self

    async def __anext__(self) -> InfraEvent:
        if self._first:
            return self._first.popleft()
        return await anext(self._live)

    def close(self) -> None:
        """Stop receiving; the iterator ends. Idempotent."""
        self._first.clear()
        self._live.close()

    async def aclose(self) -> None:
        """:meth:`close`, for ``contextlib.aclosing``."""
        self.close()


@runtime_checkable
class Driver(Protocol):
    """A hypervisor, as the bridge server uses it. All methods are safe to call concurrently for
    *different* instances; the bridge never runs two actions on one instance at once."""

    @property
    def name(self) -> str:
        """Short driver name for logs and ``--driver`` (``"sim"``, ``"libvirt"``)."""
        ...

    async def list_instances(self) -> list[Instance]:
        """Every instance the driver manages, sorted by name; those of a host that is down
        too, on that host (see the module docstring)."""
        ...

    async def get_instance(self, name: str) -> Instance:
        """One instance's current state; :class:`UnknownInstance` if there is none;
        :class:`HostDown` if its host is down and the driver cannot tell its state."""
        ...

    async def list_hosts(self) -> list[str]:
        """Every host (label) instances can run on, sorted, including hosts that are down."""
        ...

    async def reset(self, name: str) -> None:
        """Hard reset: stop the instance however it is, then start it again from scratch.
        Returns once it is RUNNING again."""
        ...

    async def power_off(self, name: str) -> None:
        """Hard power off (SIGKILL; libvirt destroy). Returns once it cannot execute."""
        ...

    async def pause(self, name: str) -> None:
        """Freeze the instance (SIGSTOP; libvirt suspend). Returns once it cannot execute."""
        ...

    async def resume(self, name: str) -> None:
        """Undo :meth:`pause`. Returns once it is RUNNING."""
        ...

    async def start(self, name: str) -> None:
        """Start a STOPPED or CRASHED instance on its current host. Returns once RUNNING."""
        ...

    async def migrate(self, name: str, host: str) -> None:
        """Evacuate: move the instance to ``host`` (cold: stop, move, start) and return once it
        is RUNNING there. :class:`UnknownHost` for a host the driver does not know,
        :class:`HostDown` for one that is down."""
        ...

    def events(self) -> AsyncIterator[InfraEvent]:
        """Subscribe: a ``HOST_DOWN`` for each host down now, then an async iterator of events
        from now on, until :meth:`close`."""
        ...

    async def close(self) -> None:
        """Release the hypervisor connection and end every :meth:`events` iterator. Instances
        keep running (the simulator's processes too) unless the driver owns them by design."""
        ...


@runtime_checkable
class AddressMover(Protocol):
    """The optional capability of a driver whose cloud binds addresses to instances' ports
    (see the module docstring): ``Network/MoveAddress`` and ``GetAddress`` call it.

    The bridge checks the caller, its epoch and the address's group before calling
    :meth:`move_address`, and never runs two moves of one address (by its IP) at once; the
    driver only makes the cloud forward the address to the instance. Implementations:

    - :meth:`move_address` returns only once the cloud forwards the address's traffic to
      ``instance`` (OpenStack: the port update or floating IP association is accepted, and
      the old holder's port no longer allows the address); it is idempotent (the address
      already on the instance is success); failures raise :class:`DriverError` naming the
      address and the instance (:class:`UnknownInstance`, :class:`HostDown` where it applies).
    - The address is known by its IP (``address.ip``): another prefix is the same address.
    - No event: the bridge publishes ``ADDRESS_MOVED`` itself, with the epoch of the move.
    """

    async def move_address(self, group: str, address: ServiceAddress, instance: str) -> None:
        """Bind ``address`` to ``instance`` (of ``group``), taking it from wherever it is."""
        ...

    async def address_holder(self, address: ServiceAddress) -> str | None:
        """The instance ``address`` is bound to now (by the driver's name for it), None if
        none."""
        ...
