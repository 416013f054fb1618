"""The supervisor on a FakeClock with a fake member, a fake bridge and the in-memory store: the
ladder climbed by a failing health check, the bridge's tickets, failed recoveries as faults,
no bridge, and counters that outlive a supervisor. No sockets, no real sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from vnfha.config import Config
from vnfha.errors import BridgeRequestError, BridgeUnavailable, HealthCheckFailed, RepairInProgress
from vnfha.health.ladder import Action, Decision, Fault, LadderHistory, Rung, Use
from vnfha.health.supervisor import Supervisor, escalation_key, tried_before
from vnfha.metrics import Metrics
from vnfha.model import Recovery, Role
from vnfha.nfvi.client import NoBridge
from vnfha.nfvi.model import RepairAction, RepairOwner, RepairState, RepairTicket
from vnfha.store.memory import MemoryStore
from vnfha.testing.clock import FakeClock
from vnfha.wiring import check_policy, ladder_policy, supervisor_settings

CONFIG = Config(group="vfw", member="vfw-a")
WALL = 1_718_000_000.0
RA = RepairAction


@dataclass
class FakeControl:
    """A member: fail_over makes it a standby; restart raises ``restart_error`` if set."""

    name: str = "vfw-a"
    group: str = "vfw"
    role: Role = Role.ACTIVE
    epoch: int = 7
    standby: bool = True
    restart_error: Exception | None = None
    failover_error: Exception | None = None
    restarts: int = 0
    failovers: list[str] = field(default_factory=list)
    is_paused: bool = False

    def paused(self) -> bool:
        return self.is_paused

    def has_eligible_standby(self) -> bool:
        return self.standby

    async def restart_component(self) -> None:
        self.restarts += 1
        if self.restart_error is not None:
            raise self.restart_error

    async def fail_over(self, reason: str) -> None:
        self.failovers.append(reason)
        if self.failover_error is not None:
            raise self.failover_error
        self.role = Role.STANDBY


class FakeNfvi:
    """A bridge: tickets T-1, T-2, ... per idempotency key; each ticket's states stream from a
    queue the test feeds (``finish``); a watch gives up after its ``timeout_s`` of fake time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.escalations: list[tuple[str, str, RepairAction, int, tuple[RepairAction, ...]]] = []
        self.tickets: dict[str, RepairTicket] = {}
        self.streams: dict[str, asyncio.Queue[RepairTicket]] = {}
        self.error: Exception | None = None
        self.watch_error: Exception | None = None

    @property
    def configured(self) -> bool:
        return True

    async def escalate(self, idempotency_key: str, fault: str, requested: RepairAction,
                       epoch: int, *, tried: Iterable[RepairAction] = (),
                       call_timeout_s: float | None = None, **_: Any) -> RepairTicket:
        self.escalations.append((idempotency_key, fault, requested, epoch, tuple(tried)))
        if self.error is not None:
            raise self.error
        if idempotency_key not in self.tickets:
            tid = f"T-{len(self.tickets) + 1}"
            nfvi = requested is not RepairAction.NONE  # NONE: recorded, the VNF's own
            self.tickets[idempotency_key] = RepairTicket(
                tid, idempotency_key, "vfw", "vfw-a", "vm-vfw-a", requested,
                RepairOwner.NFVI if nfvi else RepairOwner.VNF, "nfvi:fake" if nfvi else "vfw-a",
                RepairState.QUEUED if nfvi else RepairState.RECORDED, f"noted: {fault}", "h1",
                epoch)
            self.streams[tid] = asyncio.Queue()
        return self.tickets[idempotency_key]

    def finish(self, ticket_id: str, state: RepairState = RepairState.SUCCEEDED) -> None:
        t = next(t for t in self.tickets.values() if t.ticket_id == ticket_id)
        self.streams.setdefault(ticket_id, asyncio.Queue()).put_nowait(
            RepairTicket(t.ticket_id, t.idempotency_key, t.group, t.member, t.instance, t.action,
                         t.owner, t.owner_name, state, f"{state} by the fake", t.host, t.epoch))

    async def watch_repair(self, ticket_id: str, *,
                           timeout_s: float) -> AsyncIterator[RepairTicket]:
        if self.watch_error is not None:
            raise self.watch_error
        queue = self.streams.setdefault(ticket_id, asyncio.Queue())
        while True:
            try:
                t = await self.clock.wait_for(queue.get(), timeout_s)
            except TimeoutError:
                raise BridgeUnavailable("deadline", method="WatchRepair", target="fake",
                                        timeout_s=timeout_s, outcome_unknown=False) from None
            yield t
            if t.state.terminal:
                return


class RecordedMetrics(Metrics):
    """Validates like every Metrics and keeps what the supervisor recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def health_check_failed(self, check: Any) -> None:
        super().health_check_failed(check)
        self.calls.append(("check", str(check)))

    def escalated(self, rung: Any) -> None:
        super().escalated(rung)
        self.calls.append(("rung", str(rung)))

    def ladder_decided(self, action: Any) -> None:
        super().ladder_decided(action)
        self.calls.append(("action", str(action)))

    def of(self, kind: str) -> list[str]:
        return [v for k, v in self.calls if k == kind]


class Failing:
    """The component's health_check: fails while ``failing``."""

    def __init__(self) -> None:
        self.failing = True
        self.runs = 0

    async def __call__(self) -> None:
        self.runs += 1
        if self.failing:
            raise HealthCheckFailed("health_check", "db connection refused")


@dataclass
class Env:
    clock: FakeClock
    store: MemoryStore
    control: FakeControl
    nfvi: Any
    metrics: RecordedMetrics

    def supervisor(self, health_check: Callable[[], Any] | None = None,
                   **kwargs: Any) -> Supervisor:
        return Supervisor(self.control, settings=supervisor_settings(CONFIG), store=self.store,
                          clock=self.clock, nfvi=self.nfvi, metrics=self.metrics,
                          health_check=health_check,
                          wall_clock=lambda: WALL + self.clock.monotonic(), **kwargs)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = FakeClock()
    async with MemoryStore(clock) as store:
        yield Env(clock, store, FakeControl(), FakeNfvi(clock), RecordedMetrics())


async def until(cond: Callable[[], bool], what: str = "condition") -> None:
    """Let the loop run until ``cond()`` holds (no time passes)."""
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{what} never held")


async def report(sup: Supervisor, n: int, reason: str = "db lost",
                 recommended: Recovery = Recovery.NONE) -> None:
    """Report a fault and wait until ``n`` decisions have been executed in all."""
    sup.report_fault(reason, recommended)
    await until(lambda: len(sup.decisions) >= n and sup.monitor.pending is None
                and not sup.monitor.handling, f"{n} decisions")


# -- pure helpers ------------------------------------------------------------------------------


def test_policies_come_from_the_config() -> None:
    cfg = Config(group="vfw", member="vfw-a", health_fail_after=4, health_check_period_s=2.0,
                 health_check_timeout_s=1.0, ladder_restart_max_count=5,
                 ladder_evacuate_vm_probation_s=60.0)
    assert check_policy(cfg).fail_after == 4 and check_policy(cfg).period_s == 2.0
    assert check_policy(cfg).timeout_s == 1.0 and check_policy(cfg).recover_after == 2
    p = ladder_policy(cfg)
    assert p.restart.max_count == 5 and p.evacuate_vm.probation_s == 60.0
    assert p.failover.max_count == 2 and p.reboot_vm.probation_s == 1800.0


def _decision(rung: Rung, attempt: int, *uses: Rung) -> Decision:
    history = LadderHistory(tuple(Use(float(i), r) for i, r in enumerate(uses)), 9.5)
    return Decision(Action.ESCALATE, rung, "why", history, Fault("f"), attempt)


@pytest.mark.parametrize(("rung", "attempt", "uses", "tried"), [
    (Rung.REBOOT_VM, 1, (Rung.REBOOT_VM,), ()),
    (Rung.REBOOT_VM, 1, (Rung.RESTART, Rung.RESTART, Rung.FAILOVER, Rung.REBOOT_VM),
     (RA.RESTART_COMPONENT, RA.FAILOVER)),
    (Rung.REBOOT_VM, 2, (Rung.REBOOT_VM, Rung.RESTART, Rung.REBOOT_VM),
     (RA.RESTART_COMPONENT, RA.REBOOT)),
    (Rung.EVACUATE_VM, 1, (Rung.REBOOT_VM, Rung.RESTART, Rung.EVACUATE_VM),
     (RA.RESTART_COMPONENT, RA.REBOOT)),
])
def test_tried_lists_the_rungs_used_before_the_decision(
        rung: Rung, attempt: int, uses: tuple[Rung, ...], tried: tuple[RA, ...]) -> None:
    assert tried_before(_decision(rung, attempt, *uses)) == tried


def test_the_escalation_key_is_stable_per_decision_and_differs_between_them() -> None:
    d = _decision(Rung.REBOOT_VM, 1, Rung.REBOOT_VM)
    assert escalation_key("vfw", "vfw-a", 7, d) == escalation_key("vfw", "vfw-a", 7, d) \
        == "vfw/vfw-a/7/reboot-vm/1/9.5"
    assert escalation_key("vfw", "vfw-a", 7, _decision(Rung.EVACUATE_VM, 1)) != \
        escalation_key("vfw", "vfw-a", 7, d)


# -- the ladder, climbed by a health check that keeps failing -------------------------------

# (what the test does first, action, rung, reason fragment); one step = 3 failed checks = 15 s
CLIMB = [
    (None, Action.RESTART, Rung.RESTART, "restart 1 of 3 within 300 s"),
    (None, Action.RESTART, Rung.RESTART, "restart 2 of 3"),
    (None, Action.RESTART, Rung.RESTART, "restart 3 of 3"),
    (None, Action.FAILOVER, Rung.FAILOVER, "failover 1 of 2 within 600 s (restart used 3 of 3"),
    (None, Action.ESCALATE, Rung.REBOOT_VM,
     "reboot-vm 1 of 1 within 1800 s (restart used 3 of 3 within 300 s; failover skipped: "
     "member is standby"),
    (None, Action.WAIT, None, "bridge owns repair T-1"),
    ("finish T-1", Action.ESCALATE, Rung.EVACUATE_VM, "evacuate-vm 1 of 1 within 3600 s"),
    ("finish T-2", Action.ALARM, Rung.ALARM, "alarm only, no recovery left"),
    (None, Action.ALARM, Rung.ALARM, "evacuate-vm used 1 of 1"),
]


async def test_a_failing_check_climbs_the_whole_ladder(env: Env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "vnfha")
    check = Failing()
    async with env.supervisor(check) as sup:
        for i, (first, action, rung, reason) in enumerate(CLIMB):
            if first is not None:
                env.nfvi.finish(first.split()[1])
                await until(lambda: sup.open_ticket is None, "the ticket closed")
            await env.clock.advance(15.0)
            await until(lambda i=i: len(sup.decisions) == i + 1, f"step {i}")
            done = sup.decisions[-1]
            assert (done.action, done.decision.rung) == (action, rung), done
            assert reason in done.decision.reason, done.decision.reason
            change = "failed" if i == 0 else "still-failing"
            assert done.decision.fault.describe() == f"health check health_check {change}: " \
                "db connection refused (check:health_check)"
            assert done.decision.reason in caplog.text  # logged verbatim
        assert check.runs == 3 * len(CLIMB)
    c = env.control
    assert c.restarts == 3 and len(c.failovers) == 1 and "failover 1 of 2" in c.failovers[0]
    keys = [e[0] for e in env.nfvi.escalations]
    every_rung = (RA.RESTART_COMPONENT, RA.FAILOVER, RA.REBOOT, RA.EVACUATE)
    assert [e[2:] for e in env.nfvi.escalations] == [
        (RA.REBOOT, 7, (RA.RESTART_COMPONENT, RA.FAILOVER)),
        (RA.EVACUATE, 7, (RA.RESTART_COMPONENT, RA.FAILOVER, RA.REBOOT)),
        (RA.NONE, 7, every_rung)]  # the ALARM is recorded once, not again at the repeat
    assert keys[0].startswith("vfw/vfw-a/7/reboot-vm/1/") and keys[0] != keys[1]
    assert keys[2].startswith("vfw/vfw-a/7/alarm/0/") and len(set(keys)) == 3
    assert env.nfvi.escalations[2][1] == "ALARM: " + sup.decisions[-2].decision.reason
    assert [d.key for d in sup.decisions if d.key] == keys
    assert [d.ticket_id for d in sup.decisions if d.ticket_id] == ["T-1", "T-1", "T-2", "T-3"]
    assert sup.decisions[-2].outcome == "alarm raised; ticket T-3: recorded"
    assert sup.decisions[-1].outcome == "alarm still raised (told when it was raised)"
    assert sup.open_ticket is None  # a recorded alarm is never waited for
    assert env.metrics.of("action") == [a for _, a, _, _ in CLIMB]
    assert env.metrics.of("rung") == [r for _, _, r, _ in CLIMB if r is not None]
    assert env.metrics.of("check") == ["app"] * check.runs
    alarms = [r for r in caplog.records if r.levelno == logging.ERROR and "ALARM" in r.message]
    assert len(alarms) == 2 and "alarm only" in alarms[0].message
    assert sup.last_ticket is not None and sup.last_ticket.state is RepairState.SUCCEEDED


async def test_a_paused_group_takes_no_ladder_action(env: Env,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """An operator's pause (``vnfha lock GROUP``): faults are seen and logged, nothing is
    counted or done; after the pause the next fault climbs from the first rung."""
    caplog.set_level(logging.WARNING, "vnfha")
    env.control.is_paused = True
    check = Failing()
    async with env.supervisor(check) as sup:
        await env.clock.advance(60.0)
        await until(lambda: check.runs >= 6, "the check ran")
        assert sup.decisions == [] and env.control.restarts == 0
        assert env.metrics.of("action") == []
        assert "the group is paused by an operator: no ladder action" in caplog.text
        env.control.is_paused = False
        await env.clock.advance(15.0)
        await until(lambda: len(sup.decisions) == 1, "a decision after the pause")
        assert sup.decisions[0].action is CLIMB[0][1]


async def test_a_healthy_check_raises_no_fault(env: Env) -> None:
    check = Failing()
    check.failing = False
    async with env.supervisor(check) as sup:
        await env.clock.advance(60.0)
        assert check.runs == 12 and sup.decisions == [] and env.metrics.calls == []


# -- the component-invoked paths -------------------------------------------------------------


async def test_a_repair_vm_recommendation_starts_at_the_nfvi_rung(env: Env) -> None:
    async with env.supervisor() as sup:
        await report(sup, 1, "disk gone", Recovery.REPAIR_VM)
        done = sup.decisions[0]
        assert (done.action, done.decision.rung) == (Action.ESCALATE, Rung.REBOOT_VM)
        assert env.nfvi.escalations[0][1:] == ("disk gone (report_fault, recommended repair-vm)",
                                               RA.REBOOT, 7, ())
        assert sup.open_ticket == "T-1" and env.control.restarts == 0
        await report(sup, 2, "still gone")
        assert sup.decisions[1].action is Action.WAIT
        assert sup.decisions[1].outcome == "waited: the bridge owns repair T-1"
    assert env.metrics.of("check") == ["fault-report", "fault-report"]


async def test_a_failed_callback_is_a_fault(env: Env) -> None:
    async with env.supervisor() as sup:
        sup.callback_failed("on_active", "did not return within callback_timeout_s=5.0")
        await until(lambda: len(sup.decisions) == 1)
        fault = sup.decisions[0].decision.fault
        assert fault.source == "callback:on_active" and "on_active failed: did not" in fault.reason
        assert sup.decisions[0].action is Action.RESTART and env.control.restarts == 1
    assert env.metrics.of("check") == ["callback"]


async def test_without_a_bridge_the_nfvi_rungs_are_skipped_to_alarm(env: Env) -> None:
    env.nfvi = NoBridge(group="vfw", member="vfw-a")
    async with env.supervisor() as sup:
        for n in range(1, 6):
            await report(sup, n)
    actions = [d.action for d in sup.decisions]
    assert actions == [Action.RESTART] * 3 + [Action.FAILOVER, Action.ALARM]
    assert "reboot-vm skipped: no NFVI bridge; evacuate-vm skipped: no NFVI bridge" in \
        sup.decisions[-1].decision.reason
    assert sup.open_ticket is None


# -- failed recoveries -------------------------------------------------------------------------


async def test_a_restart_that_raises_is_the_next_fault(env: Env) -> None:
    env.control.restart_error = RuntimeError("restart crashed")
    async with env.supervisor() as sup:
        await report(sup, 4)  # one report: 3 failed restarts, then the failover
    actions = [d.action for d in sup.decisions]
    assert actions == [Action.RESTART] * 3 + [Action.FAILOVER]
    assert [d.decision.attempt for d in sup.decisions[:3]] == [1, 2, 3]
    assert sup.decisions[0].outcome == "failed: RuntimeError: restart crashed"
    later = sup.decisions[1].decision.fault
    assert later.source == "recovery:restart" and "restart crashed" in later.reason
    assert env.metrics.of("check") == ["fault-report"] + ["callback"] * 3


async def test_a_failed_failover_and_escalation_climb_with_the_same_floor(env: Env) -> None:
    env.control.failover_error = RuntimeError("no standby answered")
    env.nfvi.error = BridgeUnavailable("down", method="Escalate", target="fake", timeout_s=0.2,
                                       outcome_unknown=True)
    async with env.supervisor() as sup:
        await report(sup, 5, "overloaded", Recovery.FAILOVER)
    got = [(d.action, d.decision.rung) for d in sup.decisions]
    assert got == [(Action.FAILOVER, Rung.FAILOVER), (Action.FAILOVER, Rung.FAILOVER),
                   (Action.ESCALATE, Rung.REBOOT_VM), (Action.ESCALATE, Rung.EVACUATE_VM),
                   (Action.ALARM, Rung.ALARM)]
    assert all(d.decision.fault.recommended is Recovery.FAILOVER for d in sup.decisions)
    assert sup.open_ticket is None


# -- tickets ------------------------------------------------------------------------------------


async def test_a_repair_in_progress_is_owned_until_its_ticket_ends(env: Env) -> None:
    env.nfvi.error = RepairInProgress("busy", method="Escalate", target="fake", ticket="T-9",
                                      owner="nfvi:fake")
    env.nfvi.tickets["other"] = RepairTicket("T-9", "other", "vfw", "vfw-a", "vm", RA.REBOOT,
                                             RepairOwner.NFVI, "nfvi:fake",
                                             RepairState.IN_PROGRESS, "", "h1", 3)
    async with env.supervisor() as sup:
        await report(sup, 1, "gone", Recovery.REPAIR_VM)
        assert sup.open_ticket == "T-9" and sup.decisions[0].ticket_id == "T-9"
        assert "bridge already repairing: ticket T-9 owned by nfvi:fake" in \
            sup.decisions[0].outcome
        await report(sup, 2)
        assert sup.decisions[1].action is Action.WAIT
        env.nfvi.finish("T-9")
        await until(lambda: sup.open_ticket is None)
        env.nfvi.error = None
        await report(sup, 3)
        assert sup.decisions[2].action is Action.RESTART


async def test_a_failed_repair_is_a_fault_at_the_nfvi_floor(env: Env) -> None:
    async with env.supervisor() as sup:
        await report(sup, 1, "gone", Recovery.REPAIR_VM)
        env.nfvi.finish("T-1", RepairState.FAILED)
        await until(lambda: len(sup.decisions) == 2)
        second = sup.decisions[1]
        assert (second.action, second.decision.rung) == (Action.ESCALATE, Rung.EVACUATE_VM)
        assert second.decision.fault.source == "nfvi:T-1"
        assert "NFVI repair T-1 (reboot) failed: failed by the fake" in \
            second.decision.fault.reason
        assert sup.open_ticket == "T-2"


async def test_a_ticket_not_ending_in_time_is_given_up(env: Env,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    async with env.supervisor(repair_timeout_s=100.0, rewatch_s=30.0) as sup:
        await report(sup, 1, "gone", Recovery.REPAIR_VM)
        await env.clock.advance(99.0)
        assert sup.open_ticket == "T-1"
        await env.clock.advance(2.0)
        await until(lambda: sup.open_ticket is None, "given up")
    assert "repair ticket T-1 not terminal within 100 s" in caplog.text


async def test_a_ticket_the_bridge_forgot_is_not_waited_for(env: Env) -> None:
    env.nfvi.watch_error = BridgeRequestError("no such ticket", method="WatchRepair",
                                              target="fake", code="NOT_FOUND")
    async with env.supervisor() as sup:
        await report(sup, 1, "gone", Recovery.REPAIR_VM)
        await until(lambda: sup.open_ticket is None)


async def test_leaving_cancels_the_ticket_watch(env: Env) -> None:
    before = len(asyncio.all_tasks())
    async with env.supervisor() as sup:
        await report(sup, 1, "gone", Recovery.REPAIR_VM)
        assert sup.open_ticket == "T-1" and len(asyncio.all_tasks()) > before
    await until(lambda: len(asyncio.all_tasks()) == before, "every task ended")


# -- counters in the store ----------------------------------------------------------------------


async def test_counters_survive_a_new_supervisor_on_the_same_store(env: Env) -> None:
    async with env.supervisor() as sup:
        await report(sup, 1)
        await report(sup, 2)
    assert [d.decision.attempt for d in sup.decisions] == [1, 2]
    await env.clock.advance(10.0)
    env.control = FakeControl()
    async with env.supervisor() as again:
        await report(again, 1)
        assert "restart 3 of 3" in again.decisions[0].decision.reason
        await report(again, 2)
        assert again.decisions[1].action is Action.FAILOVER
    assert again.runner.store_failures == 0


async def test_starting_twice_is_refused(env: Env) -> None:
    sup = env.supervisor()
    async with sup:
        with pytest.raises(RuntimeError, match="already started"):
            await sup.__aenter__()
