"""The supervisor against a real bridge (BridgeServer over the sim driver on 127.0.0.1:0) with a
real BridgeClient: an ESCALATE decision opens a real ticket, the sim reboots the launched
process, the supervisor waits while the bridge repairs and lets go once the ticket ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from test_bridge import SLEEPER, GatedSim  # a sim whose resets wait for its gate

from vnfha.bridge.server import BridgeServer
from vnfha.clock import SystemClock
from vnfha.config import Config
from vnfha.health.ladder import Action, Rung
from vnfha.health.supervisor import Supervisor
from vnfha.metrics import NullMetrics
from vnfha.model import Recovery, Role
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import RepairAction, RepairOwner, RepairState
from vnfha.store.memory import MemoryStore
from vnfha.testing.waiting import until
from vnfha.wiring import supervisor_settings

DEADLINE_S = 10.0
CALL_S = 5.0
CONFIG = Config(group="vfw", member="vfw-a")


@dataclass
class Control:
    """A standby member (its ladder goes from restart to the NFVI)."""

    name: str = "vfw-a"
    group: str = "vfw"
    role: Role = Role.STANDBY
    epoch: int = 3
    is_paused: bool = False

    def paused(self) -> bool:
        return self.is_paused

    def has_eligible_standby(self) -> bool:
        return False

    async def restart_component(self) -> None:
        pass

    async def fail_over(self, reason: str) -> None:
        raise AssertionError("a standby does not fail over")


@dataclass
class Env:
    sim: GatedSim
    client: BridgeClient
    supervisor: Supervisor


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = GatedSim()
    try:
        await sim.launch("vm-vfw-a", group="vfw", member="vfw-a", host="h1", argv=SLEEPER)
        async with BridgeServer(sim) as bridge, \
                BridgeClient(bridge.address, group="vfw", member="vfw-a",
                             timeout_s=CALL_S) as client, MemoryStore() as store:
            sup = Supervisor(Control(), settings=supervisor_settings(CONFIG), store=store,
                             clock=SystemClock(),
                             nfvi=client, metrics=NullMetrics(), health_check=None,
                             escalate_timeout_s=CALL_S, repair_timeout_s=DEADLINE_S,
                             rewatch_s=0.05)
            async with sup:
                yield Env(sim, client, sup)
    finally:
        await sim.close()


async def test_an_escalation_reboots_the_instance_and_waits_for_its_ticket(env: Env) -> None:
    sup, sim = env.supervisor, env.sim
    old = sim.pid("vm-vfw-a")
    sim.gate.clear()  # hold the reboot in progress
    sup.report_fault("kernel oops", Recovery.REPAIR_VM)
    await until(lambda: sup.open_ticket is not None, what="a ticket opened")
    ticket_id = sup.open_ticket
    escalated = sup.decisions[0]
    assert (escalated.action, escalated.decision.rung) == (Action.ESCALATE, Rung.REBOOT_VM)
    assert escalated.ticket_id == ticket_id and escalated.key is not None
    assert escalated.key.startswith("vfw/vfw-a/3/reboot-vm/1/")
    assert "reboot by nfvi:sim" in escalated.outcome

    sup.report_fault("still broken")
    await until(lambda: len(sup.decisions) == 2, what="the second decision")
    assert sup.decisions[1].action is Action.WAIT
    assert f"bridge owns repair {ticket_id}" in sup.decisions[1].decision.reason

    sim.gate.set()
    await until(lambda: sup.open_ticket is None, what="the ticket ended")
    final = sup.last_ticket
    assert final is not None and final.ticket_id == ticket_id
    assert final.state is RepairState.SUCCEEDED and final.owner is RepairOwner.NFVI
    assert sim.pid("vm-vfw-a") not in (None, old)

    again = await env.client.escalate(escalated.key, "kernel oops", RepairAction.REBOOT, 3)
    assert again.ticket_id == ticket_id and again.state is RepairState.SUCCEEDED


async def test_a_repair_the_bridge_already_owns_is_waited_for(env: Env) -> None:
    sup, sim = env.supervisor, env.sim
    sim.gate.clear()
    theirs = await env.client.escalate("operator-1", "host check", RepairAction.REBOOT, 3)
    sup.report_fault("kernel oops", Recovery.REPAIR_VM)
    await until(lambda: len(sup.decisions) == 1, what="the decision")
    assert sup.open_ticket == theirs.ticket_id
    assert f"bridge already repairing: ticket {theirs.ticket_id}" in sup.decisions[0].outcome
    sim.gate.set()
    await until(lambda: sup.open_ticket is None, what="their ticket ended")
    assert sup.last_ticket is not None and sup.last_ticket.state is RepairState.SUCCEEDED
