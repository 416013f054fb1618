"""NFVI reports as proof that the active is gone (issue 17, item 4): the pure decision
(:func:`vnfha.nfvi.agent.nfvi_proof`, table-driven, stale and replayed reports included), the
epoch the bridge's router puts on each event, the agent passing a proof to the member's standby
side, the failover cause, and the epoch on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from vnfha.bridge.drivers.driver import InfraEvent, Instance, InstanceState
from vnfha.bridge.routing import EventRouter
from vnfha.config import Config
from vnfha.nfvi import wire
from vnfha.nfvi.agent import RECEIVED_KEPT, NfviAgent, nfvi_proof
from vnfha.nfvi.client import NoBridge
from vnfha.nfvi.model import BridgeEvent, EventKind
from vnfha.roles.history import Cause, cause_of
from vnfha.roles.policy import ActiveInfo
from vnfha.testing import FakeClock
from vnfha.wiring import agent_settings

ME = "b"


def crashed(member: str = "a", epoch: int = 7, kind: EventKind = EventKind.VM_CRASHED
            ) -> BridgeEvent:
    return BridgeEvent(kind, instance=f"vm-{member}", member=member, host="h1", epoch=epoch)


def host_down(members: tuple[str, ...] = ("a", "c"), epoch: int = 7) -> BridgeEvent:
    return BridgeEvent(EventKind.HOST_DOWN, host="h1", members=members, epoch=epoch)


PROOF_CASES = [
    # (what, event, active as this member sees it, evidence or None)
    ("the active's VM crashed in its epoch", crashed(), ("a", 7),
     "the NFVI bridge reports VM_CRASHED for vm-a (epoch 7)"),
    ("the active's watchdog reset it", crashed(kind=EventKind.WATCHDOG_FIRED), ("a", 7),
     "the NFVI bridge reports WATCHDOG_FIRED for vm-a (epoch 7)"),
    # a host down is no proof by itself: libvirt reports it on a lost connection too; a driver
    # that knows the instances died follows it with a VM_CRASHED each
    ("the active's host is down (reported)", host_down(), ("a", 7), None),
    ("stale: a crash of an earlier incarnation of the active", crashed(epoch=5), ("a", 7), None),
    ("replayed: the active was granted again since", crashed(epoch=7), ("a", 9), None),
    ("a report from the future is no proof either", crashed(epoch=8), ("a", 7), None),
    ("epoch unknown to the bridge", crashed(epoch=0), ("a", 7), None),
    ("epoch 0 matches nothing, not even an active of epoch 0", crashed(epoch=0), ("a", 0),
     None),
    ("another member's VM crashed", crashed(member="c", epoch=7), ("a", 7), None),
    ("this member's own crash report", crashed(member=ME, epoch=7), (ME, 7), None),
    ("this member's own host, while it is active", host_down((ME,), 7), (ME, 7), None),
    ("no trusted active", crashed(), None, None),
    ("the active's host is not the one down", host_down(("c",), 7), ("a", 7), None),
    ("a stale host-down", host_down(epoch=3), ("a", 7), None),
    ("a watchdog whose action was not done (epoch 0)",
     crashed(epoch=0, kind=EventKind.WATCHDOG_FIRED), ("a", 7), None),
    ("not a proof kind: paused", crashed(kind=EventKind.VM_PAUSED), ("a", 7), None),
    ("not a proof kind: stopped", crashed(kind=EventKind.VM_STOPPED), ("a", 7), None),
    ("not a proof kind: migrated", crashed(kind=EventKind.VM_MIGRATED), ("a", 7), None),
    ("not a proof kind: maintenance planned",
     BridgeEvent(EventKind.MAINTENANCE_PLANNED, host="h1", members=("a",), epoch=7), ("a", 7),
     None),
]


@pytest.mark.parametrize(("event", "active", "evidence"),
                         [c[1:] for c in PROOF_CASES], ids=[c[0] for c in PROOF_CASES])
def test_only_a_report_about_the_current_active_is_proof(
        event: BridgeEvent, active: tuple[str, int] | None, evidence: str | None) -> None:
    assert nfvi_proof(event, active, ME) == evidence


def test_the_proof_is_its_own_failover_cause() -> None:
    evidence = nfvi_proof(crashed(), ("a", 7), ME)
    assert evidence is not None and cause_of(evidence=evidence) is Cause.NFVI_EVENT
    assert cause_of(evidence="vm-a on h1 kill fenced, now stopped") is Cause.FENCE


def test_the_epoch_crosses_the_wire() -> None:
    for event in (crashed(), host_down(epoch=0)):
        assert wire.event_from_pb(wire.event_to_pb(event)) == event


# -- the bridge's router ------------------------------------------------------------------------


INSTANCES = [Instance("vm-a", "vfw", "a", "h1", InstanceState.RUNNING),
             Instance("vm-b", "vfw", "b", "h1", InstanceState.RUNNING),
             Instance("vm-c", "vfw", "c", "h2", InstanceState.RUNNING),
             Instance("vm-x", "dns", "x", "h1", InstanceState.RUNNING)]


async def routed(router: EventRouter, events: list[tuple[InfraEvent, int | None]],
                 group: str = "vfw") -> list[BridgeEvent]:
    stream = router.watch(group, {})
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # subscribed
    for event, epoch in events:
        router.route(event, INSTANCES, epoch=epoch)
    got = [await pending]
    got += [await anext(stream) for _ in range(len(events) - 1)]
    await stream.aclose()  # type: ignore[attr-defined]
    return got


async def test_the_router_puts_the_active_epoch_on_crash_host_down_and_watchdog_events() -> None:
    router = EventRouter(clock=FakeClock(), wall_clock=lambda: 0.0, max_queued=10,
                         max_pending_maintenance=10, lagged=RuntimeError)
    router.saw_active("vm-a", 5)
    router.saw_active("vm-b", 9)  # b was granted later (a is the old active)
    router.saw_active("vm-a", 3)  # never lowers
    events = await routed(router, [
        (InfraEvent(EventKind.VM_CRASHED, instance="vm-a", host="h1"), None),
        (InfraEvent(EventKind.VM_CRASHED, instance="vm-c", host="h2"), None),  # never active
        (InfraEvent(EventKind.HOST_DOWN, host="h1"), None),  # the highest of a and b
        (InfraEvent(EventKind.HOST_UP, host="h1"), None),
        (InfraEvent(EventKind.VM_STOPPED, instance="vm-a", host="h1"), None),
        (InfraEvent(EventKind.WATCHDOG_FIRED, instance="vm-b", host="h1"), 9),  # done
        (InfraEvent(EventKind.WATCHDOG_FIRED, instance="vm-b", host="h1"), 0),  # not done
        # the guest's own hardware watchdog (from the driver: no epoch passed)
        (InfraEvent(EventKind.WATCHDOG_FIRED, instance="vm-b", host="h1", halted=True), None),
        (InfraEvent(EventKind.WATCHDOG_FIRED, instance="vm-b", host="h1"), None),  # e.g. NMI
        (InfraEvent(EventKind.WATCHDOG_FIRED, instance="vm-c", host="h2", halted=True), None),
    ])
    assert [(e.kind, e.member, e.members, e.epoch) for e in events] == [
        (EventKind.VM_CRASHED, "a", (), 5),
        (EventKind.VM_CRASHED, "c", (), 0),
        (EventKind.HOST_DOWN, "", ("a", "b"), 9),
        (EventKind.HOST_UP, "", ("a", "b"), 0),
        (EventKind.VM_STOPPED, "a", (), 0),
        (EventKind.WATCHDOG_FIRED, "b", (), 9),
        (EventKind.WATCHDOG_FIRED, "b", (), 0),
        (EventKind.WATCHDOG_FIRED, "b", (), 9),
        (EventKind.WATCHDOG_FIRED, "b", (), 0),
        (EventKind.WATCHDOG_FIRED, "c", (), 0),  # never active
    ]
    other = await routed(router, [(InfraEvent(EventKind.HOST_DOWN, host="h1"), None)], "dns")
    assert other[0].epoch == 0  # another group's epochs are not this one's


async def test_the_router_forgets_the_epochs_of_instances_no_longer_listed() -> None:
    router = EventRouter(clock=FakeClock(), wall_clock=lambda: 0.0, max_queued=10,
                         max_pending_maintenance=10, lagged=RuntimeError)
    router.saw_active("vm-a", 5)
    router.saw_active("vm-gone", 7)  # deleted since
    router.route(InfraEvent(EventKind.HOST_UP, host="h1"), None)  # inventory unreadable
    assert router.active_epoch("vm-gone") == 7  # nothing is known: nothing forgotten
    router.route(InfraEvent(EventKind.HOST_UP, host="h1"), INSTANCES)
    assert (router.active_epoch("vm-a"), router.active_epoch("vm-gone")) == (5, 0)


# -- the agent --------------------------------------------------------------------------------


@dataclass
class FakeState:
    active: tuple[object, ActiveInfo] | None


@dataclass
class FakeStandby:
    """The member's standby side as the agent sees it: the group state and on_active_gone."""

    state: FakeState
    gone: list[tuple[int, str]] = field(default_factory=list)

    def on_active_gone(self, epoch: int, evidence: str) -> None:
        self.gone.append((epoch, evidence))


class EventPort(NoBridge):
    """NoBridge whose event watch delivers ``events`` and then stays open."""

    def __init__(self, events: list[BridgeEvent]) -> None:
        super().__init__(group="vfw", member=ME)
        self.events = events

    async def watch_events(self, *, timeout_s: float | None = None
                           ) -> AsyncIterator[BridgeEvent]:
        for event in self.events:
            yield event
        await asyncio.Event().wait()


async def test_the_agent_passes_only_proofs_to_the_standby_side() -> None:
    events = [crashed(epoch=5), crashed(member=ME), crashed(), host_down()]
    agent = NfviAgent(EventPort(events), agent_settings(Config(group="vfw", member=ME)),
                      FakeClock(), on_maintenance=lambda e: None)
    agent.handle(crashed())  # before it is bound: ignored
    standby = FakeStandby(FakeState((object(), ActiveInfo("a", 1, 7))))
    assert agent.bind_standby(standby) == agent.fence  # type: ignore[arg-type]
    await agent.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert standby.gone == [(7, "the NFVI bridge reports VM_CRASHED for vm-a (epoch 7)")]
        standby.state.active = None  # the key is gone: nothing is proof any more
        agent.handle(crashed())
        assert len(standby.gone) == 1
        # every event is kept, proof or not, oldest first
        assert list(agent.received) == [crashed(), *events, crashed()]
        for _ in range(RECEIVED_KEPT):
            agent.handle(host_down())
        assert len(agent.received) == RECEIVED_KEPT and agent.received[0] == host_down()
    finally:
        await agent.close()
