"""Frozen values of the NFVI bridge API, shared by the client, the server and the pure modules.

Each enum mirrors one enum of ``proto/vnfha/nfvi/v1/nfvi.proto`` without its ``*_UNSPECIFIED``
value (the wire module maps between them and refuses unspecified or unknown numbers).
Instance states and event kinds are defined here, in the code both sides share, and the bridge's
drivers use them unchanged (:mod:`vnfha.bridge.drivers.driver` re-exports them), so one name
means one thing from the hypervisor up to the VNF.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AddressBinding",
    "AddressMove",
    "BridgeEvent",
    "EventKind",
    "FenceMode",
    "FenceResult",
    "HostStatus",
    "InstanceState",
    "MaintenancePlan",
    "MemberPlacement",
    "NotifiedInstance",
    "PlacementPolicy",
    "PlacementView",
    "PolicyReport",
    "RepairAction",
    "RepairOwner",
    "RepairState",
    "RepairTicket",
    "TicketList",
    "Violation",
    "WatchdogAction",
    "WatchdogStatus",
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
    ADDRESS_MOVED = "address-moved"
    """The bridge moved a service address to a member's instance (Network/MoveAddress)."""


class WatchdogAction(enum.StrEnum):
    """What the bridge does to an instance whose watchdog expires."""

    RESET = "reset"
    """Hard reset: stop it however it is, start it again."""
    POWEROFF = "poweroff"
    """Hard power off: it stays down."""
    PAUSE = "pause"
    """Freeze it in memory."""
    NONE = "none"
    """Only report ``WATCHDOG_FIRED``."""


class PlacementPolicy(enum.StrEnum):
    """How a group's members are spread over hosts."""

    AFFINITY = "affinity"
    """Every member on one host."""
    ANTI_AFFINITY = "anti-affinity"
    """No two members on one host."""
    SOFT_AFFINITY = "soft-affinity"
    """AFFINITY where possible."""
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"
    """ANTI_AFFINITY where possible."""

    @property
    def hard(self) -> bool:
        """True for the policies a placement must never break."""
        return self in (PlacementPolicy.AFFINITY, PlacementPolicy.ANTI_AFFINITY)

    @property
    def spreads(self) -> bool:
        """True for the anti-affinity policies (hard or soft)."""
        return self in (PlacementPolicy.ANTI_AFFINITY, PlacementPolicy.SOFT_ANTI_AFFINITY)


class FenceMode(enum.StrEnum):
    """How to fence an instance."""

    KILL = "kill"
    """Power it off (SIGKILL; libvirt destroy)."""
    STOP = "stop"
    """Freeze it (SIGSTOP; libvirt suspend), keeping its memory."""


class RepairAction(enum.StrEnum):
    """A recovery action: the VNF's own rungs, the NFVI's repairs, or none."""

    RESTART_COMPONENT = "restart-component"
    """The VNF restarted its component (reported as tried, never requested)."""
    FAILOVER = "failover"
    """The VNF failed over (reported as tried, never requested)."""
    REBOOT = "reboot"
    """Reboot the instance in place."""
    EVACUATE = "evacuate"
    """Move the instance to another host, keeping the placement policy."""
    NONE = "none"
    """Record the fault only: the VNF keeps the repair."""

    @property
    def by_nfvi(self) -> bool:
        """True for the actions the bridge performs."""
        return self in (RepairAction.REBOOT, RepairAction.EVACUATE)


class RepairOwner(enum.StrEnum):
    """Who repairs a ticket's fault."""

    NFVI = "nfvi"
    """The bridge; the VNF waits for the ticket to end."""
    VNF = "vnf"
    """The VNF; the bridge only recorded the fault."""


class RepairState(enum.StrEnum):
    """Where a repair ticket is."""

    QUEUED = "queued"
    IN_PROGRESS = "in-progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RECORDED = "recorded"
    """Recorded only: the VNF owns the repair."""

    @property
    def terminal(self) -> bool:
        """True once the ticket will not change again."""
        return self in (RepairState.SUCCEEDED, RepairState.FAILED, RepairState.RECORDED)


@dataclass(frozen=True, slots=True)
class WatchdogStatus:
    """A watchdog after an Arm, Kick or Disarm. ``timeout_s``, ``action`` and ``remaining_s``
    are None when it is disarmed."""

    instance: str
    armed: bool
    timeout_s: float | None = None
    action: WatchdogAction | None = None
    remaining_s: float | None = None


@dataclass(frozen=True, slots=True)
class FenceResult:
    """A confirmed fence: ``state`` is never RUNNING. ``applied`` is None when the instance was
    already unable to act (nothing was done)."""

    instance: str
    host: str
    applied: FenceMode | None
    state: InstanceState


@dataclass(frozen=True, slots=True)
class MemberPlacement:
    """One member of a group and where its instance runs."""

    member: str
    instance: str
    host: str
    state: InstanceState


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One host; ``up`` is False after a HOST_DOWN and until a HOST_UP.

    ``maintenance_deadline_unix_s`` (wall clock) and ``maintenance_detail`` describe the host's
    pending planned maintenance, the one a new WatchEvents stream would be sent first: set from
    its announcement until its deadline passes or the host goes down; None and ``""`` when
    there is none."""

    host: str
    up: bool
    maintenance_deadline_unix_s: float | None = None
    maintenance_detail: str = ""

    @property
    def maintenance_pending(self) -> bool:
        """True while a planned maintenance of the host is pending."""
        return self.maintenance_deadline_unix_s is not None


@dataclass(frozen=True, slots=True)
class PlacementView:
    """A group's members (sorted by member) and every host (sorted)."""

    members: tuple[MemberPlacement, ...]
    hosts: tuple[HostStatus, ...]

    def host_of(self, member: str) -> str | None:
        """The host ``member`` runs on, or None if it is not in the group."""
        return next((m.host for m in self.members if m.member == member), None)


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a placement breaks a policy: ``members`` on ``host`` (sorted)."""

    host: str
    members: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """The result of checking a placement against ``policy``."""

    policy: PlacementPolicy
    violations: tuple[Violation, ...]

    @property
    def satisfied(self) -> bool:
        """True when nothing breaks the policy."""
        return not self.violations


@dataclass(frozen=True, slots=True)
class RepairTicket:
    """One escalation's repair: who owns it, what is done, where it stands (``version`` grows
    with every change)."""

    ticket_id: str
    idempotency_key: str
    group: str
    member: str
    instance: str
    action: RepairAction
    owner: RepairOwner
    owner_name: str
    state: RepairState
    detail: str
    host: str
    epoch: int
    version: int = 1


@dataclass(frozen=True, slots=True)
class TicketList:
    """The answer to an operator's ListTickets: ``tickets`` newest first, and how many
    remembered tickets ``matched`` the filters (more than ``len(tickets)``: the list was cut, by
    the limit or the message size)."""

    tickets: tuple[RepairTicket, ...]
    matched: int

    @property
    def complete(self) -> bool:
        """True when every matching ticket is in ``tickets``."""
        return len(self.tickets) >= self.matched


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """An infrastructure event as it concerns one group (see ``nfvi.proto``'s ``Event``)."""

    kind: EventKind
    instance: str = ""
    member: str = ""
    host: str = ""
    members: tuple[str, ...] = ()
    deadline_unix_s: float | None = None
    detail: str = ""
    sequence: int = 0
    epoch: int = 0
    """The incarnation the event is about (``nfvi.proto``'s ``Event.epoch``): for VM_CRASHED
    the epoch the bridge last saw ``member`` present as active, for a WATCHDOG_FIRED whose
    action was done the watchdog's epoch, for HOST_DOWN the highest such epoch among
    ``members``, for ADDRESS_MOVED the epoch of the move. 0: unknown, never proof of anything."""
    address: str = ""
    """For ADDRESS_MOVED: the service address (canonical ``ADDRESS/PREFIX``); empty otherwise."""


@dataclass(frozen=True, slots=True, order=True)
class NotifiedInstance:
    """An instance on a host under planned maintenance, whose group was sent the event."""

    group: str
    member: str
    instance: str


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    """The answer to an operator's PlanMaintenance: the host, the deadline the event carries
    (wall clock), the instances on the host sorted by group then member (their groups were sent
    ``MAINTENANCE_PLANNED``), and the event's ``sequence`` (0: no instance, nothing published)."""

    host: str
    deadline_unix_s: float
    instances: tuple[NotifiedInstance, ...] = ()
    sequence: int = 0


@dataclass(frozen=True, slots=True)
class AddressBinding:
    """Where service address ``address`` (canonical ``ADDRESS/PREFIX``) is bound at the NFVI,
    as far as one group is concerned (``nfvi.proto``'s ``AddressBinding``): the group's
    ``member`` whose ``instance`` (on ``host``) holds it, all three None when none of the
    group's instances does. ``epoch``: the epoch of the move that bound it there, 0 when the
    bridge does not know (it restarted since)."""

    address: str
    member: str | None = None
    instance: str | None = None
    host: str | None = None
    epoch: int = 0

    @property
    def bound(self) -> bool:
        """True when an instance of the group holds the address."""
        return self.instance is not None


@dataclass(frozen=True, slots=True)
class AddressMove:
    """The answer to MoveAddress: the ``binding`` after the move (the caller's member and
    instance, in the caller's epoch), the member of the group whose instance held the address
    before (None: none did), and whether the call ``changed`` anything (False: a repeat, the
    bridge had already bound it so in this epoch; ADDRESS_MOVED is published exactly when
    True)."""

    binding: AddressBinding
    previous_member: str | None = None
    changed: bool = True
