"""The one interface between the NFVI bridge server and a hypervisor: :class:`Driver`.

A driver knows instances (VMs, or processes for the simulator), the hosts they run on, and how
to act on them. Everything else in the bridge is generic and lives outside the driver: watchdog
timers (the bridge keeps them and calls :meth:`Driver.reset` / :meth:`Driver.power_off` /
:meth:`Driver.pause` when one expires), epoch checks, repair tickets, placement policy and the
choice of an evacuation host. That keeps a driver small: the simulator and libvirt drivers
implement exactly these methods, and one driver test suite runs against both.

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
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vnfha.errors import VnfhaError

__all__ = [
    "Driver",
    "DriverError",
    "EventKind",
    "InfraEvent",
    "Instance",
    "InstanceState",
    "UnknownHost",
    "UnknownInstance",
]


class InstanceState(enum.StrEnum):
    """What the hypervisor says an instance is doing."""

    RUNNING = "running"
    """Executing (a process that is not stopped; a domain that is running)."""
    PAUSED = "paused"
    """Frozen in memory: it cannot execute until resumed (SIGSTOP; a suspended domain)."""
    STOPPED = "stopped"
    """Not executing and holding no memory (killed; a shut-off domain)."""
    CRASHED = "crashed"
    """Stopped on its own, not by the driver (the process exited; the domain crashed)."""


class EventKind(enum.StrEnum):
    """Infrastructure events a driver reports (mapped 1:1 onto ``nfvi.proto``'s EventKind)."""

    HOST_DOWN = "host-down"
    HOST_UP = "host-up"
    VM_STARTED = "vm-started"
    VM_STOPPED = "vm-stopped"
    VM_PAUSED = "vm-paused"
    VM_RESUMED = "vm-resumed"
    VM_CRASHED = "vm-crashed"
    VM_MIGRATED = "vm-migrated"
    WATCHDOG_FIRED = "watchdog-fired"
    MAINTENANCE_PLANNED = "maintenance-planned"


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
    which the host goes down. ``detail`` is free text for operators.
    """

    kind: EventKind
    instance: str | None = None
    host: str | None = None
    detail: str = ""
    deadline_unix_s: float | None = None


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


@runtime_checkable
class Driver(Protocol):
    """A hypervisor, as the bridge server uses it. All methods are safe to call concurrently for
    *different* instances; the bridge never runs two actions on one instance at once."""

    @property
    def name(self) -> str:
        """Short driver name for logs and ``--driver`` (``"sim"``, ``"libvirt"``)."""
        ...

    async def list_instances(self) -> list[Instance]:
        """Every instance the driver manages, sorted by name."""
        ...

    async def get_instance(self, name: str) -> Instance:
        """One instance's current state; :class:`UnknownInstance` if there is none."""
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
        is RUNNING there. :class:`UnknownHost` for a host the driver does not know."""
        ...

    def events(self) -> AsyncIterator[InfraEvent]:
        """Subscribe: an async iterator of events from now on, until :meth:`close`."""
        ...

    async def close(self) -> None:
        """Release the hypervisor connection and end every :meth:`events` iterator. Instances
        keep running (the simulator's processes too) unless the driver owns them by design."""
        ...
