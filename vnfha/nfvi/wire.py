"""The bridge's wire: messages <-> values, request validation, the methods bound by hand, TLS.

Code both sides share (the member's client, the bridge's core and server import it); only this
module imports the generated messages. Methods are bound by hand
(``/vnfha.nfvi.v1.Watchdog/Arm``, ...) so grpc's generated-stub version check never applies, as
for replication.

Validation guarantees (every ``decode_*`` function): a missing required field, a name over
:data:`MAX_NAME_BYTES`, free text over :data:`MAX_TEXT_BYTES`, or an enum left unspecified or
set to a number this version does not define raises :class:`Refused` with INVALID_ARGUMENT and
a message naming the field and the value. Decoded values are model types, never messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from vnfha.errors import ConfigError, VnfhaError
from vnfha.net.address import ServiceAddress
from vnfha.nfvi.model import (
    AddressBinding,
    AddressMove,
    BridgeEvent,
    EventKind,
    FenceMode,
    FenceResult,
    HostStatus,
    InstanceState,
    MaintenancePlan,
    MemberPlacement,
    NotifiedInstance,
    PlacementPolicy,
    PlacementView,
    PolicyReport,
    RepairAction,
    RepairOwner,
    RepairState,
    RepairTicket,
    TicketList,
    Violation,
    WatchdogAction,
    WatchdogStatus,
)
from vnfha.nfvi.v1 import nfvi_pb2 as _pb

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TICKET_LIMIT",
    "WIRE_NUMBERS",
    "MAX_MAINTENANCE_NOTICE_S",
    "MAX_NAME_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_TICKET_LIMIT",
    "METHODS",
    "SERVICES",
    "Caller",
    "MaintenanceRequest",
    "Method",
    "Refused",
    "TicketQuery",
    "pb",
]

E = TypeVar("E")

pb: Any = _pb
"""The generated messages (typed loosely: the enum wrappers' stubs do not take plain ints)."""

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
"""Bridge requests are small (names and a fault text); 64 KiB leaves room and bounds memory.
The default limit of both ends: the server's receive size and the client's send size."""
MAX_NAME_BYTES = 256
"""The longest group, member, ticket id or idempotency key accepted, in UTF-8 bytes."""
MAX_TEXT_BYTES = 4096
"""The longest free text (fence reason, fault, maintenance reason) accepted, in UTF-8 bytes."""
MAX_MAINTENANCE_NOTICE_S = 7 * 24 * 3600.0
"""The longest maintenance notice accepted (7 days): members switch over as soon as they hear
of a maintenance, so a longer notice says only that the number is wrong (milliseconds?)."""
DEFAULT_TICKET_LIMIT = 100
"""The most tickets ListTickets sends when the request sets no limit."""
MAX_TICKET_LIMIT = 1000
"""The highest limit a ListTickets request may set (the reply is also cut to the message size)."""

PACKAGE = "vnfha.nfvi.v1"
SERVICES = tuple(f"{PACKAGE}.{s}" for s in ("Watchdog", "Placement", "Fencing", "Faults",
                                            "Network", "Operations"))
"""The fully qualified names of the six services (also the health service names)."""

REASON_KEY = "vnfha-reason"
"""Trailing metadata key that says which refusal a status code stands for."""
HIGHEST_EPOCH_KEY = "vnfha-highest-epoch"
TICKET_KEY = "vnfha-ticket"
OWNER_KEY = "vnfha-owner"


class Refused(VnfhaError):
    """The bridge refuses a request: ``code`` is a ``grpc.StatusCode`` name, ``metadata`` the
    trailing metadata that qualifies it (``vnfha-reason`` and friends)."""

    def __init__(self, code: str, message: str, *,
                 metadata: Mapping[str, str] | None = None) -> None:
        self.code = code
        self.message = message
        self.metadata = dict(metadata or {})
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls: ``member`` of ``group`` acting in ``epoch`` (0 for read-only calls)."""

    group: str
    member: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC: its service, name, message types and whether it streams replies."""

    service: str
    name: str
    request: Any
    reply: Any
    streaming: bool = False

    @property
    def path(self) -> str:
        """The method path, e.g. ``/vnfha.nfvi.v1.Fencing/Fence``."""
        return f"/{PACKAGE}.{self.service}/{self.name}"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("Watchdog", "Arm", pb.ArmRequest, pb.WatchdogReply),
    Method("Watchdog", "Kick", pb.KickRequest, pb.WatchdogReply),
    Method("Watchdog", "Disarm", pb.DisarmRequest, pb.WatchdogReply),
    Method("Placement", "GetPlacement", pb.GetPlacementRequest, pb.GetPlacementReply),
    Method("Placement", "CheckPolicy", pb.CheckPolicyRequest, pb.CheckPolicyReply),
    Method("Fencing", "Fence", pb.FenceRequest, pb.FenceReply),
    Method("Faults", "Escalate", pb.EscalateRequest, pb.RepairTicket),
    Method("Faults", "WatchRepair", pb.WatchRepairRequest, pb.RepairTicket, streaming=True),
    Method("Faults", "WatchEvents", pb.WatchEventsRequest, pb.Event, streaming=True),
    Method("Network", "MoveAddress", pb.MoveAddressRequest, pb.MoveAddressReply),
    Method("Network", "GetAddress", pb.GetAddressRequest, pb.AddressBinding),
    Method("Operations", "PlanMaintenance", pb.PlanMaintenanceRequest, pb.PlanMaintenanceReply),
    Method("Operations", "ListTickets", pb.ListTicketsRequest, pb.ListTicketsReply),
)}
"""Every bridge method by name."""

# -- enums -----------------------------------------------------------------------------------------

_WATCHDOG = {pb.WATCHDOG_ACTION_RESET: WatchdogAction.RESET,
             pb.WATCHDOG_ACTION_POWEROFF: WatchdogAction.POWEROFF,
             pb.WATCHDOG_ACTION_PAUSE: WatchdogAction.PAUSE,
             pb.WATCHDOG_ACTION_NONE: WatchdogAction.NONE}
_POLICY = {pb.PLACEMENT_POLICY_AFFINITY: PlacementPolicy.AFFINITY,
           pb.PLACEMENT_POLICY_ANTI_AFFINITY: PlacementPolicy.ANTI_AFFINITY,
           pb.PLACEMENT_POLICY_SOFT_AFFINITY: PlacementPolicy.SOFT_AFFINITY,
           pb.PLACEMENT_POLICY_SOFT_ANTI_AFFINITY: PlacementPolicy.SOFT_ANTI_AFFINITY}
_FENCE = {pb.FENCE_MODE_KILL: FenceMode.KILL, pb.FENCE_MODE_STOP: FenceMode.STOP}
_ACTION = {pb.REPAIR_ACTION_RESTART_COMPONENT: RepairAction.RESTART_COMPONENT,
           pb.REPAIR_ACTION_FAILOVER: RepairAction.FAILOVER,
           pb.REPAIR_ACTION_REBOOT: RepairAction.REBOOT,
           pb.REPAIR_ACTION_EVACUATE: RepairAction.EVACUATE,
           pb.REPAIR_ACTION_NONE: RepairAction.NONE}
_OWNER = {pb.REPAIR_OWNER_NFVI: RepairOwner.NFVI, pb.REPAIR_OWNER_VNF: RepairOwner.VNF}
_STATE = {pb.REPAIR_STATE_QUEUED: RepairState.QUEUED,
          pb.REPAIR_STATE_IN_PROGRESS: RepairState.IN_PROGRESS,
          pb.REPAIR_STATE_SUCCEEDED: RepairState.SUCCEEDED,
          pb.REPAIR_STATE_FAILED: RepairState.FAILED,
          pb.REPAIR_STATE_RECORDED: RepairState.RECORDED}
_INSTANCE = {pb.INSTANCE_STATE_RUNNING: InstanceState.RUNNING,
             pb.INSTANCE_STATE_PAUSED: InstanceState.PAUSED,
             pb.INSTANCE_STATE_STOPPED: InstanceState.STOPPED,
             pb.INSTANCE_STATE_CRASHED: InstanceState.CRASHED}
_EVENT = {pb.EVENT_KIND_HOST_DOWN: EventKind.HOST_DOWN, pb.EVENT_KIND_HOST_UP: EventKind.HOST_UP,
          pb.EVENT_KIND_VM_STARTED: EventKind.VM_STARTED,
          pb.EVENT_KIND_VM_STOPPED: EventKind.VM_STOPPED,
          pb.EVENT_KIND_VM_PAUSED: EventKind.VM_PAUSED,
          pb.EVENT_KIND_VM_RESUMED: EventKind.VM_RESUMED,
          pb.EVENT_KIND_VM_CRASHED: EventKind.VM_CRASHED,
          pb.EVENT_KIND_VM_MIGRATED: EventKind.VM_MIGRATED,
          pb.EVENT_KIND_WATCHDOG_FIRED: EventKind.WATCHDOG_FIRED,
          pb.EVENT_KIND_MAINTENANCE_PLANNED: EventKind.MAINTENANCE_PLANNED,
          pb.EVENT_KIND_ADDRESS_MOVED: EventKind.ADDRESS_MOVED}

WIRE_NUMBERS: dict[type[Any], dict[int, Any]] = {
    WatchdogAction: _WATCHDOG, PlacementPolicy: _POLICY, FenceMode: _FENCE,
    RepairAction: _ACTION, RepairOwner: _OWNER, RepairState: _STATE,
    InstanceState: _INSTANCE, EventKind: _EVENT}
"""Each API enum's values by their wire number (the proto's); every value of each has one."""


# Keyed by (enum class, value): the model enums are StrEnums, so WatchdogAction.NONE and
# RepairAction.NONE are equal as strings and would collide as plain keys.
_TO_PB: dict[tuple[type, Any], int] = {
    (type(v), v): k
    for table in (_WATCHDOG, _POLICY, _FENCE, _ACTION, _OWNER, _STATE, _INSTANCE, _EVENT)
    for k, v in table.items()
}


def to_pb(value: Any) -> int:
    """The wire number of a model enum value; None maps to 0 (UNSPECIFIED)."""
    return 0 if value is None else _TO_PB[(type(value), value)]


def _enum(table: Mapping[int, E], number: int, field: str, kind: str) -> E:
    """Decode a required enum field: 0 (unset) and unknown numbers are INVALID_ARGUMENT."""
    if number == 0:
        raise Refused("INVALID_ARGUMENT", f"{field} is required (a {kind}, not UNSPECIFIED)")
    try:
        return table[number]
    except KeyError:
        raise Refused("INVALID_ARGUMENT", f"{field}={number} is not a {kind} this bridge "
                      f"knows (valid: {', '.join(str(n) for n in sorted(table))})") from None


def _lenient(table: Mapping[int, E], number: int, default: E) -> E:
    """Decode an enum in a reply: an unknown number (a newer bridge) reads as ``default``."""
    return table.get(number, default)


# -- field checks ----------------------------------------------------------------------------------


def _check_text(field: str, value: str, limit: int, *, required: bool) -> str:
    if required and not value:
        raise Refused("INVALID_ARGUMENT", f"{field} is required")
    size = len(value.encode())
    if size > limit:
        raise Refused("INVALID_ARGUMENT", f"{field} is {size} bytes, over the limit of {limit}")
    return value


def name(field: str, value: str, *, required: bool = True) -> str:
    """A checked name field (see :data:`MAX_NAME_BYTES`)."""
    return _check_text(field, value, MAX_NAME_BYTES, required=required)


def text(field: str, value: str, *, required: bool = False) -> str:
    """A checked free-text field (see :data:`MAX_TEXT_BYTES`)."""
    return _check_text(field, value, MAX_TEXT_BYTES, required=required)


def decode_caller(request: Any, *, acting: bool) -> Caller:
    """The request's caller; ``acting`` requests need an epoch >= 1."""
    if not request.HasField("caller"):
        raise Refused("INVALID_ARGUMENT", "caller is required")
    c = request.caller
    caller = Caller(name("caller.group", c.group), name("caller.member", c.member), c.epoch)
    if acting and caller.epoch < 1:
        raise Refused("INVALID_ARGUMENT", "caller.epoch is required (>= 1) for a request that "
                      "acts on an instance")
    return caller


def decode_watchdog_action(request: Any) -> WatchdogAction:
    """``ArmRequest.action``, required."""
    return _enum(_WATCHDOG, request.action, "action", "WatchdogAction")


def decode_policy(number: int, field: str) -> PlacementPolicy:
    """A required ``PlacementPolicy`` field."""
    return _enum(_POLICY, number, field, "PlacementPolicy")


def decode_fence_mode(request: Any) -> FenceMode:
    """``FenceRequest.mode``, required."""
    return _enum(_FENCE, request.mode, "mode", "FenceMode")


@dataclass(frozen=True, slots=True)
class Escalation:
    """A decoded EscalateRequest (without its caller)."""

    idempotency_key: str
    target_member: str | None
    fault: str
    requested: RepairAction
    tried: tuple[RepairAction, ...]
    evacuation_policy: PlacementPolicy


def decode_escalation(request: Any) -> Escalation:
    """The EscalateRequest's fields; ``requested`` must be REBOOT, EVACUATE or NONE."""
    requested = _enum(_ACTION, request.requested, "requested", "RepairAction")
    if requested not in (RepairAction.REBOOT, RepairAction.EVACUATE, RepairAction.NONE):
        raise Refused("INVALID_ARGUMENT", f"requested={requested}: the NFVI performs only "
                      "reboot, evacuate or none (the other actions are the VNF's own)")
    tried = tuple(_enum(_ACTION, n, f"tried[{i}]", "RepairAction")
                  for i, n in enumerate(request.tried))
    policy = PlacementPolicy.SOFT_ANTI_AFFINITY
    if request.HasField("evacuation_policy"):
        policy = decode_policy(request.evacuation_policy, "evacuation_policy")
    return Escalation(
        idempotency_key=name("idempotency_key", request.idempotency_key),
        target_member=name("target_member", request.target_member, required=False) or None,
        fault=text("fault", request.fault, required=True),
        requested=requested, tried=tried, evacuation_policy=policy)


def decode_address(request: Any) -> ServiceAddress:
    """``address`` (Move/GetAddress): ``ADDRESS/PREFIX`` as ``service_addresses`` takes it."""
    text = name("address", request.address)
    if "@" in text:
        raise Refused("INVALID_ARGUMENT", f"address={text!r}: give ADDRESS/PREFIX without a "
                      "device: devices are the guest's, the NFVI binds the address to a port")
    try:
        return ServiceAddress.parse(text, field="address")
    except ConfigError as e:
        raise Refused("INVALID_ARGUMENT", str(e)) from None


@dataclass(frozen=True, slots=True)
class MaintenanceRequest:
    """A decoded PlanMaintenanceRequest: ``host`` goes down ``deadline_in_s`` from now."""

    host: str
    deadline_in_s: float
    reason: str


def decode_maintenance(request: Any) -> MaintenanceRequest:
    """The PlanMaintenanceRequest's fields: a host name, a finite notice in
    ``(0, MAX_MAINTENANCE_NOTICE_S]`` and an optional reason."""
    host = name("host", request.host)
    notice = request.deadline_in_s
    if not math.isfinite(notice) or notice <= 0:
        raise Refused("INVALID_ARGUMENT", f"deadline_in_s={notice}: must be a number of seconds "
                      "> 0 (the host goes down that long from now)")
    if notice > MAX_MAINTENANCE_NOTICE_S:
        raise Refused("INVALID_ARGUMENT", f"deadline_in_s={notice:g} is over the bridge's "
                      f"limit of {MAX_MAINTENANCE_NOTICE_S:g} s (7 days)")
    return MaintenanceRequest(host, notice, text("reason", request.reason))


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """A decoded ListTicketsRequest: the tickets of ``group`` (None: every group), only the
    open ones if ``open_only``, at most ``limit``."""

    group: str | None
    open_only: bool
    limit: int


def decode_ticket_query(request: Any) -> TicketQuery:
    """The ListTicketsRequest's fields: an optional group name, ``open_only``, and a limit of
    at most :data:`MAX_TICKET_LIMIT` (0, unset, is :data:`DEFAULT_TICKET_LIMIT`)."""
    group = name("group", request.group, required=False) or None
    limit = request.limit or DEFAULT_TICKET_LIMIT
    if limit > MAX_TICKET_LIMIT:
        raise Refused("INVALID_ARGUMENT", f"limit={limit} is over the bridge's maximum of "
                      f"{MAX_TICKET_LIMIT} tickets per call")
    return TicketQuery(group, request.open_only, limit)


# -- values -> messages (server) and back (client) -------------------------------------------------


def _ms(seconds: float | None) -> int:
    """Seconds as whole milliseconds on the wire; None (not applicable) is 0."""
    return 0 if seconds is None else max(0, round(seconds * 1000))


def watchdog_to_pb(s: WatchdogStatus) -> Any:
    """A ``WatchdogReply``; a disarmed watchdog has zero timeout, action and remaining."""
    return pb.WatchdogReply(instance=s.instance, armed=s.armed, timeout_ms=_ms(s.timeout_s),
                            action=to_pb(s.action), remaining_ms=_ms(s.remaining_s))


def watchdog_from_pb(m: Any) -> WatchdogStatus:
    """The client side of :func:`watchdog_to_pb`; an unknown action reads as NONE."""
    if not m.armed:
        return WatchdogStatus(m.instance, False)
    return WatchdogStatus(m.instance, True, m.timeout_ms / 1000,
                          _lenient(_WATCHDOG, m.action, WatchdogAction.NONE),
                          m.remaining_ms / 1000)


def placement_to_pb(v: PlacementView) -> Any:
    """A ``GetPlacementReply`` in the view's order (members and hosts sorted)."""
    return pb.GetPlacementReply(
        members=[pb.MemberPlacement(member=m.member, instance=m.instance, host=m.host,
                                    state=to_pb(m.state)) for m in v.members],
        hosts=[pb.HostStatus(host=h.host, up=h.up, maintenance_pending=h.maintenance_pending,
                             maintenance_deadline_unix_s=h.maintenance_deadline_unix_s or 0.0,
                             maintenance_detail=h.maintenance_detail) for h in v.hosts])


def placement_from_pb(m: Any) -> PlacementView:
    """The client side of :func:`placement_to_pb`; an unknown state reads as CRASHED (not
    running: the safe reading). A host reads as under maintenance only when
    ``maintenance_pending`` says so (an older bridge never sets it)."""
    return PlacementView(
        tuple(MemberPlacement(p.member, p.instance, p.host,
                              _lenient(_INSTANCE, p.state, InstanceState.CRASHED))
              for p in m.members),
        tuple(HostStatus(h.host, h.up, h.maintenance_deadline_unix_s, h.maintenance_detail)
              if h.maintenance_pending else HostStatus(h.host, h.up) for h in m.hosts))


def policy_to_pb(r: PolicyReport) -> Any:
    """A ``CheckPolicyReply``; ``satisfied`` is derived from the violations."""
    return pb.CheckPolicyReply(
        policy=to_pb(r.policy), satisfied=r.satisfied,
        violations=[pb.Violation(host=v.host, members=list(v.members), detail=v.detail)
                    for v in r.violations])


def policy_from_pb(m: Any, asked: PlacementPolicy) -> PolicyReport:
    """The client side of :func:`policy_to_pb`; ``asked`` stands in for an unknown policy."""
    return PolicyReport(_lenient(_POLICY, m.policy, asked),
                        tuple(Violation(v.host, tuple(v.members), v.detail)
                              for v in m.violations))


def fence_to_pb(f: FenceResult) -> Any:
    """A ``FenceReply``; ``applied`` is UNSPECIFIED when nothing had to be done."""
    return pb.FenceReply(instance=f.instance, host=f.host, applied=to_pb(f.applied),
                         state=to_pb(f.state))


def fence_from_pb(m: Any) -> FenceResult:
    """The client side of :func:`fence_to_pb`; an unknown state reads as STOPPED (the bridge
    never confirms a running instance)."""
    return FenceResult(m.instance, m.host, _FENCE.get(m.applied),
                       _lenient(_INSTANCE, m.state, InstanceState.STOPPED))


def ticket_to_pb(t: RepairTicket) -> Any:
    """A ``RepairTicket`` message with every field of the value."""
    return pb.RepairTicket(
        ticket_id=t.ticket_id, idempotency_key=t.idempotency_key, group=t.group,
        member=t.member, instance=t.instance, action=to_pb(t.action), owner=to_pb(t.owner),
        owner_name=t.owner_name, state=to_pb(t.state), detail=t.detail, host=t.host,
        epoch=t.epoch, version=t.version)


def ticket_from_pb(m: Any) -> RepairTicket:
    """The client side of :func:`ticket_to_pb`; an unknown state reads as FAILED, so a
    newer bridge's states never look like success."""
    return RepairTicket(
        ticket_id=m.ticket_id, idempotency_key=m.idempotency_key, group=m.group,
        member=m.member, instance=m.instance,
        action=_lenient(_ACTION, m.action, RepairAction.NONE),
        owner=_lenient(_OWNER, m.owner, RepairOwner.VNF), owner_name=m.owner_name,
        state=_lenient(_STATE, m.state, RepairState.FAILED), detail=m.detail, host=m.host,
        epoch=m.epoch, version=m.version)


def event_to_pb(e: BridgeEvent) -> Any:
    """An ``Event``; no deadline is sent as 0 (and so is an unknown epoch)."""
    return pb.Event(kind=to_pb(e.kind), instance=e.instance, member=e.member, host=e.host,
                    members=list(e.members), deadline_unix_s=e.deadline_unix_s or 0.0,
                    detail=e.detail, sequence=e.sequence, epoch=e.epoch, address=e.address)


def event_from_pb(m: Any) -> BridgeEvent | None:
    """The event, or None for a kind this client does not know (a newer bridge)."""
    kind = _EVENT.get(m.kind)
    if kind is None:
        return None
    return BridgeEvent(kind, m.instance, m.member, m.host, tuple(m.members),
                       m.deadline_unix_s or None, m.detail, m.sequence, m.epoch, m.address)


def binding_to_pb(b: AddressBinding) -> Any:
    """An ``AddressBinding``; an unbound address has empty member, instance and host."""
    return pb.AddressBinding(address=b.address, member=b.member or "",
                             instance=b.instance or "", host=b.host or "", epoch=b.epoch)


def binding_from_pb(m: Any) -> AddressBinding:
    """The client side of :func:`binding_to_pb` (empty strings read as None)."""
    return AddressBinding(m.address, m.member or None, m.instance or None, m.host or None,
                          m.epoch)


def address_move_to_pb(m: AddressMove) -> Any:
    """A ``MoveAddressReply``."""
    return pb.MoveAddressReply(binding=binding_to_pb(m.binding),
                               previous_member=m.previous_member or "", changed=m.changed)


def address_move_from_pb(m: Any) -> AddressMove:
    """The client side of :func:`address_move_to_pb`."""
    return AddressMove(binding_from_pb(m.binding), m.previous_member or None, m.changed)


def maintenance_to_pb(m: MaintenancePlan) -> Any:
    """A ``PlanMaintenanceReply`` with the instances in the plan's order."""
    return pb.PlanMaintenanceReply(
        host=m.host, deadline_unix_s=m.deadline_unix_s, sequence=m.sequence,
        instances=[pb.NotifiedInstance(group=i.group, member=i.member, instance=i.instance)
                   for i in m.instances])


def maintenance_from_pb(m: Any) -> MaintenancePlan:
    """The client side of :func:`maintenance_to_pb`."""
    return MaintenancePlan(m.host, m.deadline_unix_s,
                           tuple(NotifiedInstance(i.group, i.member, i.instance)
                                 for i in m.instances), m.sequence)


def ticket_list_to_pb(listing: TicketList, *, max_bytes: int) -> Any:
    """A ``ListTicketsReply`` in the listing's order, cut before the first ticket that would
    take the message over ``max_bytes`` (the bridge's message size limit): what is cut is the
    oldest. ``matched`` is the listing's."""
    reply = pb.ListTicketsReply(matched=listing.matched)
    room = max_bytes - reply.ByteSize()
    for ticket in listing.tickets:
        message = ticket_to_pb(ticket)
        size = message.ByteSize()
        length = max(1, (size.bit_length() + 6) // 7)  # the bytes of its varint
        room -= 1 + length + size  # field tag, length, the ticket
        if room < 0:
            break
        reply.tickets.append(message)
    return reply


def ticket_list_from_pb(m: Any) -> TicketList:
    """The client side of :func:`ticket_list_to_pb`."""
    return TicketList(tuple(ticket_from_pb(t) for t in m.tickets), m.matched)


def caller_to_pb(group: str, member: str, epoch: int) -> Any:
    """The ``Caller`` every request starts with."""
    return pb.Caller(group=group, member=member, epoch=epoch)


# -- binding and transport -------------------------------------------------------------------------


def _raw(data: bytes) -> bytes:
    """The identity deserializer: requests are parsed in the handler (see
    :func:`decode_request`), so that a malformed one is INVALID_ARGUMENT."""
    return data


def decode_request(method: Method, data: bytes) -> Any:
    """Parse a request message; undecodable bytes are INVALID_ARGUMENT (not grpc's INTERNAL)."""
    try:
        return method.request.FromString(data)
    except DecodeError as e:
        raise Refused("INVALID_ARGUMENT", f"{method.name}: the request is not a valid "
                      f"{method.request.DESCRIPTOR.name} message: {e}") from None


def generic_handlers(
        handler_for: Callable[[Method], Callable[..., Any]],
) -> list[grpc.GenericRpcHandler[Any, Any]]:
    """One generic handler per service, each method bound to ``handler_for(method)``, which
    receives the request's raw bytes (see :func:`decode_request`)."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
    for m in METHODS.values():
        make = (grpc.unary_stream_rpc_method_handler if m.streaming
                else grpc.unary_unary_rpc_method_handler)
        services.setdefault(m.service, {})[m.name] = make(
            handler_for(m), request_deserializer=_raw,
            response_serializer=m.reply.SerializeToString)
    return [grpc.method_handlers_generic_handler(f"{PACKAGE}.{service}", handlers)
            for service, handlers in services.items()]


def message_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Channel and server options: the message size limit both ways."""
    return [("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)]


def server_credentials(*, cert_file: str, key_file: str, ca_file: str | None,
                       require_client_cert: bool) -> grpc.ServerCredentials:
    """TLS for the bridge; with ``require_client_cert``, mutual TLS against ``ca_file``."""
    if require_client_cert and ca_file is None:
        raise ValueError("mutual TLS needs a CA file to check client certificates against")
    return grpc.ssl_server_credentials(
        [(Path(key_file).read_bytes(), Path(cert_file).read_bytes())],
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        require_client_auth=require_client_cert)


def channel_credentials(*, ca_file: str | None, cert_file: str | None = None,
                        key_file: str | None = None) -> grpc.ChannelCredentials:
    """The client side: trust ``ca_file`` (None: the system roots); with a certificate and key,
    present them (mutual TLS; the certificate's CN must be the member's name)."""
    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None
    return grpc.ssl_channel_credentials(root_certificates=read(ca_file),
                                        private_key=read(key_file),
                                        certificate_chain=read(cert_file))
