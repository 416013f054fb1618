"""What an ALARM does outside the log (``docs/ladder.md``, "What an ALARM does"): the supervisor
emits ``AlarmRaised`` to its listener and runs the configured ``alarm_command`` (a real
subprocess) with the alarm as JSON on stdin; a command that fails, cannot start or hangs is
logged at WARNING without blocking the ladder, a hung one is killed after its timeout (fake
time) or when the supervisor stops; and with a real bridge (BridgeServer over the sim driver on
127.0.0.1:0) the alarm is a RECORDED ticket that ``vnfha bridge tickets`` lists."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from test_bridge import SLEEPER, GatedSim
from test_supervisor_bridge import CALL_S, Control

import vnfha
from vnfha.bridge.server import BridgeServer
from vnfha.clock import Clock, SystemClock
from vnfha.config import Config
from vnfha.events import MemberEvent
from vnfha.health.ladder import Action, Rung
from vnfha.health.supervisor import Supervisor
from vnfha.metrics import NullMetrics
from vnfha.nfvi.client import BridgeClient, NfviPort, NoBridge
from vnfha.nfvi.model import RepairAction, RepairOwner, RepairState
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock
from vnfha.testing.waiting import until
from vnfha.wiring import supervisor_settings

WALL = 1_718_000_000.0
# no rung left: the first fault is an ALARM (with or without a bridge)
NO_RUNGS = {"ladder_restart_max_count": 0, "ladder_failover_max_count": 0,
            "ladder_reboot_vm_max_count": 0, "ladder_evacuate_vm_max_count": 0}


def config(command: list[str] | None = None, timeout_s: float = 5.0) -> Config:
    return Config(group="vfw", member="vfw-a", alarm_command=command,
                  alarm_command_timeout_s=timeout_s, **NO_RUNGS)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def writer(path: Path) -> list[str]:
    """A command that copies its stdin to ``path`` (written whole, then renamed into place)."""
    return python(f"import os, sys\ndata = sys.stdin.read()\nopen({str(path) + '.tmp'!r}, 'w')"
                  f".write(data)\nos.rename({str(path) + '.tmp'!r}, {str(path)!r})")


class Rig:
    """A supervisor for a standby ``vfw-a`` (epoch 3) on the in-memory store, and what its
    listener heard."""

    def __init__(self, cfg: Config, clock: Clock, store: MemoryStore, nfvi: NfviPort) -> None:
        self.events: list[MemberEvent] = []
        self.supervisor = Supervisor(Control(), settings=supervisor_settings(cfg), store=store,
                                     clock=clock, nfvi=nfvi, metrics=NullMetrics(),
                                     health_check=None, on_alarm=self.events.append,
                                     wall_clock=lambda: WALL, escalate_timeout_s=CALL_S)

    async def alarm(self, n: int = 1, reason: str = "db lost") -> None:
        """Report a fault and wait until ``n`` decisions were executed (all ALARMs)."""
        sup = self.supervisor
        sup.report_fault(reason)
        await until(lambda: len(sup.decisions) >= n, what=f"{n} decisions")
        assert all(d.action is Action.ALARM for d in sup.decisions)


@pytest.fixture
async def rig_of() -> AsyncIterator[Callable[..., Any]]:
    """``rig_of(cfg, clock)``: a Rig without a bridge, inside its supervisor's ``async with``."""
    async with MemoryStore() as store, contextlib.AsyncExitStack() as stack:
        async def make(cfg: Config, clock: Clock | None = None) -> Rig:
            rig = Rig(cfg, clock or SystemClock(), store, NoBridge(group="vfw", member="vfw-a"))
            await stack.enter_async_context(rig.supervisor)
            return rig
        yield make


async def test_an_alarm_is_an_event_and_runs_the_command_with_json_on_stdin(
        rig_of: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "alarm.json"
    rig = await rig_of(config(writer(out)))
    await rig.alarm(reason="db lost")
    decision = rig.supervisor.decisions[0]
    assert (decision.action, decision.decision.rung) == (Action.ALARM, Rung.ALARM)
    assert decision.outcome == "alarm raised" and decision.key is None  # no bridge
    (event,) = rig.events
    assert isinstance(event, vnfha.AlarmRaised)
    assert event == vnfha.AlarmRaised(member="vfw-a", group="vfw", epoch=3,
                                      reason=decision.decision.reason,
                                      fault="db lost (report_fault)", at=WALL)
    assert event.reason.startswith("alarm only, no recovery left")
    await until(out.exists, what="the command wrote its stdin")
    text = out.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    assert json.loads(text) == {"kind": "vnfha-alarm", "member": "vfw-a", "group": "vfw",
                                "epoch": 3, "reason": event.reason,
                                "fault": "db lost (report_fault)", "at": WALL}


async def test_a_failing_command_is_logged_and_a_repeat_alarm_is_not_told_again(
        rig_of: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "vnfha")
    rig = await rig_of(config(python("import sys; sys.stderr.write('pager down'); sys.exit(3)")))
    await rig.alarm(1)
    await until(lambda: "exited with status 3: pager down" in caplog.text, what="the warning")
    await rig.alarm(2, "db lost again")  # the ladder stays at ALARM: the same episode
    assert rig.supervisor.decisions[-1].outcome.startswith("alarm still raised")
    await asyncio.sleep(0.3)
    failed = [r for r in caplog.records if "alarm_command" in r.message]
    assert all(r.levelno == logging.WARNING for r in failed) and len(failed) == 1
    assert len(rig.events) == 1  # the listener was told once, the command run once


async def test_a_command_that_cannot_start_is_logged(
        rig_of: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = await rig_of(config([str(tmp_path / "no-such-notifier"), "--now"]))
    await rig.alarm()
    await until(lambda: "could not start: FileNotFoundError" in caplog.text, what="the warning")
    assert rig.events and rig.supervisor.decisions[0].outcome == "alarm raised"


async def test_a_hung_command_blocks_nothing_and_is_killed_after_its_timeout(
        rig_of: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    pid_file = tmp_path / "pid"
    hang = python(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                  "time.sleep(120)")
    rig = await rig_of(config(hang, timeout_s=2.0), clock)
    await rig.alarm(1)
    await until(pid_file.exists, what="the command started")
    await until(lambda: pid_file.read_text() != "", what="the pid written")
    pid = int(pid_file.read_text())
    await rig.alarm(2, "still lost")  # decided while the command hangs: nothing blocks
    assert len(rig.events) == 1  # the same episode: told once
    await clock.advance(2.5)
    await until(lambda: "did not end within alarm_command_timeout_s=2: killed" in caplog.text,
                what="killed")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


async def test_stopping_the_supervisor_kills_a_running_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = python(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                  "time.sleep(120)")
    async with MemoryStore() as store:
        rig = Rig(config(hang, timeout_s=60.0), SystemClock(), store,
                  NoBridge(group="vfw", member="vfw-a"))
        async with rig.supervisor:
            await rig.alarm()
            await until(lambda: pid_file.exists() and pid_file.read_text() != "",
                        what="the command started")
        pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- with a real bridge ---------------------------------------------------------------------------


@pytest.fixture
async def bridged() -> AsyncIterator[tuple[Rig, BridgeServer, BridgeClient]]:
    sim = GatedSim()
    try:
        await sim.launch("vm-vfw-a", group="vfw", member="vfw-a", host="h1", argv=SLEEPER)
        async with BridgeServer(sim) as bridge, \
                BridgeClient(bridge.address, group="vfw", member="vfw-a",
                             timeout_s=CALL_S) as client, MemoryStore() as store:
            rig = Rig(config(), SystemClock(), store, client)
            async with rig.supervisor:
                yield rig, bridge, client
    finally:
        await sim.close()


async def test_an_alarm_is_a_recorded_ticket_at_the_bridge(
        bridged: tuple[Rig, BridgeServer, BridgeClient]) -> None:
    rig, bridge, client = bridged
    await rig.alarm(reason="db lost")
    done = rig.supervisor.decisions[0]
    assert done.key is not None and done.key.startswith("vfw/vfw-a/3/alarm/0/")
    assert done.outcome == f"alarm raised; ticket {done.ticket_id}: recorded"
    assert rig.supervisor.open_ticket is None  # nothing to wait for
    async with BridgeClient.operator(bridge.address, timeout_s=CALL_S) as ops:
        (ticket,) = (await ops.list_tickets(group="vfw")).tickets
    assert ticket.ticket_id == done.ticket_id and ticket.idempotency_key == done.key
    assert (ticket.action, ticket.owner, ticket.owner_name, ticket.state, ticket.epoch) == \
        (RepairAction.NONE, RepairOwner.VNF, "vfw-a", RepairState.RECORDED, 3)
    assert ticket.member == "vfw-a" and ticket.instance == "vm-vfw-a"
    assert ticket.detail.endswith(f": ALARM: {done.decision.reason}")
    # idempotent: the same key gets the same ticket back
    again = await client.escalate(done.key, "ALARM: again", RepairAction.NONE, 3)
    assert again == ticket
    # and the operator's command lists it
    listed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "vnfha", "bridge", "tickets", "--bridge",
                         bridge.address, "--group", "vfw"],
        check=False, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(ticket.ticket_id))
    assert row.split()[5:8] == ["none", "vfw-a", "recorded"]
    assert "ALARM: alarm only, no recovery left" in row


async def test_a_bridge_that_refuses_the_alarm_is_logged_not_a_new_fault(
        bridged: tuple[Rig, BridgeServer, BridgeClient],
        caplog: pytest.LogCaptureFixture) -> None:
    rig, _, client = bridged
    await client.escalate("someone-else", "noted", RepairAction.NONE, 9)  # raises the epoch
    await rig.alarm()
    await asyncio.sleep(0.1)  # no second decision follows
    (done,) = rig.supervisor.decisions
    assert "the bridge was not told: StaleEpochRejected" in done.outcome
    assert "the bridge was not told of the alarm" in caplog.text
    assert len(rig.events) == 1


async def test_a_members_listeners_hear_its_alarm_and_its_command_runs(
        clock: FakeClock, store: MemoryStore, tmp_path: Path) -> None:
    out = tmp_path / "alarm.json"
    cfg = Config(group="vfw", member="vfw-a", alarm_command=writer(out), **NO_RUNGS)
    events: list[MemberEvent] = []
    async with vnfha.Member(cfg, store=store, clock=clock) as member:
        member.add_listener(events.append)
        await clock.advance_until(lambda: member.role is vnfha.Role.ACTIVE)
        member.report_fault("db lost")
        await clock.advance_until(lambda: any(isinstance(e, vnfha.AlarmRaised) for e in events))
        (alarm,) = [e for e in events if isinstance(e, vnfha.AlarmRaised)]
        assert (alarm.member, alarm.group, alarm.epoch) == ("vfw-a", "vfw", member.epoch)
        assert alarm.fault == "db lost (report_fault)"
        await until(out.exists, what="the command wrote its stdin")
    assert json.loads(out.read_text())["reason"] == alarm.reason
