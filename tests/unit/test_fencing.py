"""How the bridge fences (vnfha.bridge.fencing): the plan per state and mode, a KILL confirmed
by its pause with the power-off after it, and a pause that fails falling back to a power-off."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from vnfha.bridge.drivers.driver import Driver, DriverError, Instance, InstanceState
from vnfha.bridge.fencing import (
    FencePlan,
    FenceStep,
    fence_instance,
    fence_plan,
    power_off_fenced,
)
from vnfha.nfvi.model import FenceMode

S, M = InstanceState, FenceMode


@pytest.mark.parametrize(("state", "mode", "plan"), [
    (S.RUNNING, M.STOP, FencePlan(FenceStep.PAUSE)),
    (S.RUNNING, M.KILL, FencePlan(FenceStep.PAUSE, power_off_after=True)),
    (S.PAUSED, M.STOP, FencePlan(FenceStep.NOTHING)),
    (S.PAUSED, M.KILL, FencePlan(FenceStep.POWER_OFF)),
    (S.STOPPED, M.KILL, FencePlan(FenceStep.NOTHING)),
    (S.CRASHED, M.STOP, FencePlan(FenceStep.NOTHING)),
])
def test_the_plan(state: InstanceState, mode: FenceMode, plan: FencePlan) -> None:
    assert fence_plan(state, mode) == plan


class Hypervisor:
    """A driver's fencing calls on one instance, recorded; ``refuse`` makes one fail."""

    def __init__(self, state: InstanceState, refuse: str = "") -> None:
        self.state, self.refuse, self.calls = state, refuse, list[str]()

    async def get_instance(self, name: str) -> Instance:
        return Instance(name, "g", "m", "h1", self.state)

    async def pause(self, name: str) -> None:
        self._act("pause", S.PAUSED)

    async def power_off(self, name: str) -> None:
        self._act("power_off", S.STOPPED)

    def _act(self, call: str, to: InstanceState) -> None:
        self.calls.append(call)
        if call == self.refuse:
            raise DriverError(f"{call} refused", instance="vm", operation=call)
        self.state = to


async def fence(hv: Hypervisor, mode: FenceMode) -> tuple[FenceMode | None, InstanceState,
                                                          list[str]]:
    later: list[str] = []
    applied, after = await fence_instance(cast(Driver, hv), "vm", mode,
                                          power_off_later=later.append)
    return applied, after.state, later


async def test_a_kill_of_a_running_instance_is_confirmed_by_its_pause() -> None:
    hv = Hypervisor(S.RUNNING)
    assert await fence(hv, M.KILL) == (M.KILL, S.PAUSED, ["vm"])
    assert hv.calls == ["pause"]  # the power-off is left to power_off_later
    await power_off_fenced(cast(Driver, hv), "vm", asyncio.Lock())
    assert (hv.calls, hv.state) == (["pause", "power_off"], S.STOPPED)


async def test_a_kill_whose_pause_fails_powers_off_before_answering() -> None:
    hv = Hypervisor(S.RUNNING, refuse="pause")
    assert await fence(hv, M.KILL) == (M.KILL, S.STOPPED, [])
    assert hv.calls == ["pause", "power_off"]


async def test_a_stop_whose_pause_fails_is_not_confirmed() -> None:
    with pytest.raises(DriverError, match="pause refused"):
        await fence(Hypervisor(S.RUNNING, refuse="pause"), M.STOP)


async def test_a_paused_instance_is_powered_off_before_answering_a_kill() -> None:
    hv = Hypervisor(S.PAUSED)
    assert await fence(hv, M.KILL) == (M.KILL, S.STOPPED, [])


async def test_an_instance_that_cannot_execute_is_left_alone() -> None:
    hv = Hypervisor(S.STOPPED)
    assert await fence(hv, M.KILL) == (None, S.STOPPED, [])
    assert hv.calls == []


async def test_a_failed_power_off_after_the_pause_is_logged_and_leaves_it_paused(
        caplog: pytest.LogCaptureFixture) -> None:
    hv = Hypervisor(S.PAUSED, refuse="power_off")
    lock = asyncio.Lock()
    await power_off_fenced(cast(Driver, hv), "vm", lock)
    assert hv.state is S.PAUSED and not lock.locked()
    assert "fenced vm is paused, but powering it off failed: power_off refused" in caplog.text

