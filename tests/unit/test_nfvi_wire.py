"""The bridge's wire mapping (no sockets): every enum value round-trips, messages round-trip,
and bad fields are refused naming the field."""

from __future__ import annotations

import enum

import pytest

from vnfha.nfvi import wire
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    FenceMode,
    FenceResult,
    HostStatus,
    InstanceState,
    MemberPlacement,
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
from vnfha.nfvi.wire import Refused, pb

TABLES: list[tuple[type[enum.Enum], dict[int, object], str]] = [
    (WatchdogAction, wire.WIRE_NUMBERS[WatchdogAction], "WATCHDOG_ACTION_"),
    (PlacementPolicy, wire.WIRE_NUMBERS[PlacementPolicy], "PLACEMENT_POLICY_"),
    (FenceMode, wire.WIRE_NUMBERS[FenceMode], "FENCE_MODE_"),
    (RepairAction, wire.WIRE_NUMBERS[RepairAction], "REPAIR_ACTION_"),
    (RepairOwner, wire.WIRE_NUMBERS[RepairOwner], "REPAIR_OWNER_"),
    (RepairState, wire.WIRE_NUMBERS[RepairState], "REPAIR_STATE_"),
    (InstanceState, wire.WIRE_NUMBERS[InstanceState], "INSTANCE_STATE_"),
    (EventKind, wire.WIRE_NUMBERS[EventKind], "EVENT_KIND_"),
]


@pytest.mark.parametrize(("cls", "table", "prefix"), TABLES)
def test_every_enum_value_maps_to_its_own_wire_name_and_back(
        cls: type[enum.Enum], table: dict[int, object], prefix: str) -> None:
    for value in cls:
        number = wire.to_pb(value)
        assert table[number] is value
        # the wire name is the model name, prefixed (the proto and the model cannot drift)
        assert pb.DESCRIPTOR.enum_types_by_name[cls.__name__].values_by_number[
            number].name == prefix + value.name
    assert len(table) == len(cls)
    assert len(pb.DESCRIPTOR.enum_types_by_name[cls.__name__].values) == len(cls) + 1


def test_string_equal_values_of_different_enums_do_not_collide() -> None:
    assert WatchdogAction.NONE == RepairAction.NONE  # both are the string "none"
    assert wire.to_pb(WatchdogAction.NONE) == pb.WATCHDOG_ACTION_NONE
    assert wire.to_pb(RepairAction.NONE) == pb.REPAIR_ACTION_NONE
    assert wire.to_pb(None) == 0


def test_replies_round_trip() -> None:
    status = WatchdogStatus("vm", True, 2.5, WatchdogAction.PAUSE, 1.25)
    assert wire.watchdog_from_pb(wire.watchdog_to_pb(status)) == status
    assert wire.watchdog_from_pb(wire.watchdog_to_pb(WatchdogStatus("vm", False))) == \
        WatchdogStatus("vm", False)
    view = PlacementView((MemberPlacement("a", "vm-a", "h1", InstanceState.PAUSED),),
                         (HostStatus("h1", True, 1.9e9 + 0.25, "planned maintenance: CHG-42"),
                          HostStatus("h2", False)))
    assert wire.placement_from_pb(wire.placement_to_pb(view)) == view
    (h1, h2) = wire.placement_to_pb(view).hosts
    assert (h1.maintenance_pending, h1.maintenance_deadline_unix_s) == (True, 1.9e9 + 0.25)
    assert (h2.maintenance_pending, h2.maintenance_deadline_unix_s, h2.maintenance_detail) == (
        False, 0.0, "")
    report = PolicyReport(PlacementPolicy.ANTI_AFFINITY, (Violation("h1", ("a", "b"), "x"),))
    assert wire.policy_from_pb(wire.policy_to_pb(report), report.policy) == report
    for applied in (FenceMode.KILL, None):
        fence = FenceResult("vm", "h1", applied, InstanceState.STOPPED)
        assert wire.fence_from_pb(wire.fence_to_pb(fence)) == fence
    ticket = RepairTicket("t-1", "k", "g", "a", "vm-a", RepairAction.EVACUATE,
                          RepairOwner.NFVI, "nfvi:sim", RepairState.IN_PROGRESS, "moving",
                          "h2", 7, 2)
    assert wire.ticket_from_pb(wire.ticket_to_pb(ticket)) == ticket
    event = BridgeEvent(EventKind.MAINTENANCE_PLANNED, "", "", "h1", ("a", "b"), 1.9e9, "d", 4)
    assert wire.event_from_pb(wire.event_to_pb(event)) == event
    assert wire.event_from_pb(pb.Event(kind=99)) is None  # a newer bridge's kind is skipped


def test_a_host_reads_as_under_maintenance_only_when_the_bridge_says_so() -> None:
    older = pb.GetPlacementReply(hosts=[pb.HostStatus(host="h1", up=True)])  # no such fields
    (host,) = wire.placement_from_pb(older).hosts
    assert host == HostStatus("h1", True) and not host.maintenance_pending
    stray = pb.GetPlacementReply(hosts=[pb.HostStatus(host="h1", up=True,
                                                      maintenance_deadline_unix_s=5.0)])
    assert not wire.placement_from_pb(stray).hosts[0].maintenance_pending


def test_request_checks_name_the_field() -> None:
    request = pb.FenceRequest(caller=pb.Caller(group="g", member="m", epoch=0))
    with pytest.raises(Refused, match=r"caller\.epoch is required") as e:
        wire.decode_caller(request, acting=True)
    assert e.value.code == "INVALID_ARGUMENT"
    assert wire.decode_caller(request, acting=False) == wire.Caller("g", "m", 0)
    with pytest.raises(Refused, match="reason is 4097 bytes, over the limit of 4096"):
        wire.text("reason", "x" * 4097)
    with pytest.raises(Refused, match="mode=9 is not a FenceMode"):
        wire.decode_fence_mode(pb.FenceRequest(mode=9))
    escalation = wire.decode_escalation(pb.EscalateRequest(
        idempotency_key="k", fault="f", requested=pb.REPAIR_ACTION_REBOOT,
        tried=[pb.REPAIR_ACTION_RESTART_COMPONENT]))
    assert escalation.evacuation_policy is PlacementPolicy.SOFT_ANTI_AFFINITY
    assert escalation.target_member is None
    assert escalation.tried == (RepairAction.RESTART_COMPONENT,)
    with pytest.raises(Refused, match="not a valid ArmRequest"):
        wire.decode_request(wire.METHODS["Arm"], b"\x0a\xff")


def _ticket(n: int, key: str = "k") -> RepairTicket:
    return RepairTicket(f"t-{n}", f"{key}{n}", "g", "a", "vm-a", RepairAction.REBOOT,
                        RepairOwner.NFVI, "nfvi:sim", RepairState.QUEUED, "reboot requested",
                        "h1", 3)


def test_ticket_queries_default_and_refuse_naming_the_value() -> None:
    assert wire.decode_ticket_query(pb.ListTicketsRequest()) == wire.TicketQuery(
        None, False, wire.DEFAULT_TICKET_LIMIT)
    assert wire.decode_ticket_query(pb.ListTicketsRequest(
        group="vfw", open_only=True, limit=wire.MAX_TICKET_LIMIT)) == wire.TicketQuery(
        "vfw", True, wire.MAX_TICKET_LIMIT)
    with pytest.raises(Refused, match="limit=1001 is over the bridge's maximum of 1000") as e:
        wire.decode_ticket_query(pb.ListTicketsRequest(limit=1001))
    assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(Refused, match="group is 257 bytes, over the limit of 256"):
        wire.decode_ticket_query(pb.ListTicketsRequest(group="g" * 257))


def test_ticket_lists_round_trip_and_are_cut_to_the_message_size() -> None:
    listing = TicketList((_ticket(3), _ticket(2), _ticket(1)), 7)
    assert wire.ticket_list_from_pb(wire.ticket_list_to_pb(listing, max_bytes=65536)) == listing
    one = wire.ticket_list_to_pb(TicketList((_ticket(1),), 1), max_bytes=65536).ByteSize()
    for max_bytes in (one - 1, one, 2 * one - 1, 2 * one + 200):
        reply = wire.ticket_list_to_pb(listing, max_bytes=max_bytes)
        assert reply.ByteSize() <= max_bytes
        kept = wire.ticket_list_from_pb(reply)
        assert kept.tickets == listing.tickets[:len(kept.tickets)]  # the newest are kept
        assert kept.matched == 7 and not kept.complete
    assert len(wire.ticket_list_to_pb(listing, max_bytes=one).tickets) == 1  # exactly fits
    big = TicketList(tuple(_ticket(n, "k" * 250) for n in range(1000, 0, -1)), 1000)
    reply = wire.ticket_list_to_pb(big, max_bytes=wire.DEFAULT_MAX_MESSAGE_BYTES)
    assert 100 < len(reply.tickets) < 1000
    assert reply.ByteSize() <= wire.DEFAULT_MAX_MESSAGE_BYTES
