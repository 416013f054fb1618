"""The health monitor on a FakeClock: periods, timeouts, hysteresis, one fault at a time,
coalescing, re-arming after a recovery, and callbacks that cannot stop it. No real sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from vnfha.errors import ConfigError, HealthCheckFailed
from vnfha.health.ladder import Fault
from vnfha.health.monitor import HealthMonitor, MonitoredCheck
from vnfha.health.verdict import Change, CheckPolicy, Health, Transition
from vnfha.model import Recovery
from vnfha.testing.clock import FakeClock

POLICY = CheckPolicy(fail_after=3, recover_after=2, period_s=5.0, timeout_s=2.0)


class Scripted:
    """A check whose behaviour the test sets: "ok", "fail", "hang" or "raise"."""

    def __init__(self, clock: FakeClock, mode: str = "ok") -> None:
        self.clock = clock
        self.mode = mode
        self.runs: list[float] = []
        self.cancelled = 0

    async def __call__(self) -> None:
        self.runs.append(self.clock.monotonic())
        if self.mode == "fail":
            raise HealthCheckFailed("db", "connection refused")
        if self.mode == "raise":
            raise ValueError("bad state")
        if self.mode == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise


@dataclass
class Recorder:
    """Records every callback; ``on_fault`` blocks while ``gate`` is clear."""

    transitions: list[tuple[str, Change, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    faults: list[tuple[float, Fault]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.gate.set()

    def on_transition(self, name: str, t: Transition, reason: str) -> None:
        self.transitions.append((name, t.change, reason))

    def on_check_failed(self, name: str, kind: str, reason: str) -> None:
        self.failures.append((name, kind, reason))

    async def on_fault(self, fault: Fault) -> None:
        self.faults.append((self.clock.monotonic(), fault))
        await self.gate.wait()


Make = Callable[..., HealthMonitor]


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeClock, Recorder, Make]]:
    rec = Recorder()
    monitors: list[HealthMonitor] = []

    def make(*checks: MonitoredCheck) -> HealthMonitor:
        m = HealthMonitor(checks, clock=rec.clock, on_fault=rec.on_fault,
                          on_transition=rec.on_transition, on_check_failed=rec.on_check_failed,
                          name="vfw-a")
        monitors.append(m)
        return m

    yield rec.clock, rec, make
    for m in monitors:
        await m.stop()


Env = tuple[FakeClock, Recorder, Make]


async def test_a_failing_check_faults_after_n_periods_and_recovers_after_m(env: Env) -> None:
    clock, rec, make = env
    db = Scripted(clock, "fail")
    async with make(MonitoredCheck("db", db, POLICY, kind="tcp")) as m:
        await clock.advance(10)
        assert db.runs == [1005.0, 1010.0] and rec.faults == []  # first run one period in
        assert rec.failures == [("db", "tcp", "connection refused")] * 2
        await clock.advance(5)
        assert rec.transitions == [("db", Change.FAILED, "connection refused")]
        assert [(t, f.source, f.reason) for t, f in rec.faults] == [
            (1015.0, "check:db", "health check db failed: connection refused")]
        assert not m.healthy and m.states["db"].health is Health.FAILING
        db.mode = "ok"
        await clock.advance(10)
        assert rec.transitions[-1] == ("db", Change.RECOVERED, "ok")
        assert m.healthy and len(rec.faults) == 1


async def test_an_overrunning_check_is_cancelled_and_counts_as_a_failure(env: Env) -> None:
    clock, rec, make = env
    hung = Scripted(clock, "hang")
    async with make(MonitoredCheck("app", hung, POLICY)):
        await clock.advance(15 + 2)
        assert hung.cancelled == 3
        assert hung.runs == [1005.0, 1010.0, 1015.0]  # the period runs from each start
        assert rec.failures[-1] == ("app", "app", "no answer within 2 s")
        assert [f.reason for _, f in rec.faults] == [
            "health check app failed: no answer within 2 s"]


async def test_any_exception_is_a_failure_with_its_name(env: Env) -> None:
    clock, rec, make = env
    async with make(MonitoredCheck("app", Scripted(clock, "raise"), POLICY)):
        await clock.advance(15)
    assert rec.failures[0][2] == "ValueError: bad state" and len(rec.faults) == 1


async def test_a_check_that_still_fails_after_a_recovery_raises_the_next_fault(env: Env) -> None:
    """The recovery (on_fault) takes 12 s: failures meanwhile do not count against it; once it
    returns, the check gets fail_after periods again before the next fault."""
    clock, rec, make = env
    rec.gate.clear()
    db = Scripted(clock, "fail")
    async with make(MonitoredCheck("db", db, POLICY, recommended=Recovery.RESTART)):
        await clock.advance(15)
        assert len(rec.faults) == 1
        await clock.advance(12)  # runs at 1020 and 1025 fail while the recovery is under way
        rec.gate.set()
        await clock.advance(3)  # 1030: 1st failure after the re-arm
        await clock.advance(5)  # 1035: 2nd
        assert len(rec.faults) == 1
        await clock.advance(5)  # 1040: 3rd: STILL_FAILING, the next fault
        assert [(t, f.reason, f.recommended) for t, f in rec.faults] == [
            (1015.0, "health check db failed: connection refused", Recovery.RESTART),
            (1040.0, "health check db still-failing: connection refused", Recovery.RESTART)]
        assert [c for _, c, _ in rec.transitions] == [Change.FAILED, Change.STILL_FAILING]


async def test_reported_faults_are_handled_one_at_a_time_and_coalesced(env: Env) -> None:
    clock, rec, make = env
    rec.gate.clear()
    async with make() as m:
        m.report_fault("db connection lost", Recovery.RESTART)
        await clock.settle()
        assert m.handling and len(rec.faults) == 1
        m.report_fault("again")
        m.report_fault("vm disk errors", Recovery.REPAIR_VM, source="callback:on_active")
        m.report_fault("and again")
        assert m.pending == Fault("again", Recovery.REPAIR_VM, "report_fault", coalesced=2)
        rec.gate.set()
        await clock.settle()
        assert not m.handling and m.pending is None
    assert [f for _, f in rec.faults] == [
        Fault("db connection lost", Recovery.RESTART),
        Fault("again", Recovery.REPAIR_VM, "report_fault", coalesced=2)]


async def test_a_fault_reported_before_start_is_handled_once_running(env: Env) -> None:
    clock, rec, make = env
    m = make()
    m.report_fault("early")
    assert rec.faults == []
    await m.start()
    await clock.settle()
    assert [f.reason for _, f in rec.faults] == ["early"]


async def test_check_faults_during_a_recovery_are_dropped(env: Env) -> None:
    clock, rec, make = env
    rec.gate.clear()
    db = Scripted(clock, "fail")
    async with make(MonitoredCheck("db", db, POLICY)) as m:
        m.report_fault("component says so")
        await clock.advance(15)  # db fails 3 times while that is handled: its FAILED is no fault
        assert [c for _, c, _ in rec.transitions] == [Change.FAILED]
        assert m.pending is None
        rec.gate.set()
        await clock.settle()
    assert [f.reason for _, f in rec.faults] == ["component says so"]


async def test_callbacks_that_raise_do_not_stop_the_monitor(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    clock = env[0]
    db = Scripted(clock, "fail")
    calls: list[Fault] = []

    def broken(*_: object) -> None:
        raise RuntimeError("metrics down")

    async def failing_handler(fault: Fault) -> None:
        calls.append(fault)
        raise RuntimeError("restart failed")

    caplog.set_level(logging.WARNING, "vnfha.health")
    async with HealthMonitor([MonitoredCheck("db", db, POLICY)], clock=clock,
                             on_fault=failing_handler, on_transition=broken,
                             on_check_failed=broken) as m:
        await clock.advance(30)
        m.report_fault("x")
        await clock.settle()
        assert len(calls) == 3 and len(db.runs) == 6  # failed, still failing, x; still checking
    assert any("handling fault" in r.message and r.exc_info for r in caplog.records)
    assert any("health callback" in r.message for r in caplog.records)


async def test_stop_cancels_a_running_check_and_a_running_handler(env: Env) -> None:
    clock, rec, make = env
    rec.gate.clear()
    hung = Scripted(clock, "hang")
    m = make(MonitoredCheck("app", hung, POLICY))
    await m.start()
    m.report_fault("stuck")
    await clock.advance(5)
    assert m.handling and len(hung.runs) == 1
    await m.stop()
    await m.stop()
    assert hung.cancelled == 1
    assert clock.pending_sleepers == 0
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("vfw-a")] == []


async def test_a_check_cancelled_by_someone_else_is_a_failure(env: Env) -> None:
    clock, rec, make = env

    async def self_cancelling() -> None:
        raise asyncio.CancelledError

    async with make(MonitoredCheck("odd", self_cancelling, POLICY)):
        await clock.advance(5)
    assert rec.failures == [("odd", "app", "the check was cancelled")]


def test_check_names_must_be_unique(env: Env) -> None:
    clock, _, make = env
    check = MonitoredCheck("db", Scripted(clock), POLICY)
    with pytest.raises(ConfigError) as e:
        make(check, check)
    assert e.value.field == "checks" and e.value.value == "db"
