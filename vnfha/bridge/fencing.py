"""How the bridge fences an instance: what a Fence confirms, and how soon.

A fence is confirmed once the driver reports that the instance cannot execute (DESIGN.md:
"confirmed when the instance can no longer act"); the standby waiting for it is on the 600 ms
failover path with ``bridge_timeout_s`` (0.2 s by default) for the call. A pause does that in
milliseconds on every driver, while a power-off can take longer: libvirt's destroy of a QEMU
domain takes at least 200 ms (after its SIGTERM, libvirt polls for the process every 200 ms),
which alone would miss the default deadline and send every standby to the lease path. So a
KILL fence of a running instance pauses it, confirms, and powers it off right after.

Guarantees of :func:`fence_instance`:

- STOP: a RUNNING instance is paused. KILL: a RUNNING instance is paused and its power-off
  is asked of ``power_off_later`` (the core runs it under the instance's lock, after this
  fence); if the pause fails, it is powered off before returning. A PAUSED instance under KILL
  is powered off before returning. Anything else is left as it is (``applied`` None).
- It returns the driver's report of the instance after the action: PAUSED for a KILL
  confirmed by its pause, the power-off following in the driver's own time. The core refuses
  (INTERNAL) a fence after which the driver still reports it RUNNING.
- A driver error is raised: nothing is confirmed.

A power-off that fails after the pause, or never runs because the bridge stopped first, leaves
the instance paused: still fenced, until a repair (a REBOOT resets it) or an operator.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from vnfha.bridge.drivers.driver import Driver, DriverError, Instance, InstanceState
from vnfha.nfvi.model import FenceMode

__all__ = ["FencePlan", "FenceStep", "fence_instance", "fence_plan", "power_off_fenced"]

log = logging.getLogger("vnfha.nfvi.bridge")


class FenceStep(enum.Enum):
    """What confirms a fence."""

    NOTHING = "nothing"
    """The instance cannot execute already."""
    PAUSE = "pause"
    POWER_OFF = "power-off"


@dataclass(frozen=True, slots=True)
class FencePlan:
    """How to fence an instance: ``confirm`` before answering, then a power-off behind it
    when ``power_off_after``."""

    confirm: FenceStep
    power_off_after: bool = False


def fence_plan(state: InstanceState, mode: FenceMode) -> FencePlan:
    """PURE: how to fence an instance in ``state`` with ``mode`` (see the module docstring)."""
    if state is InstanceState.RUNNING:
        return FencePlan(FenceStep.PAUSE, power_off_after=mode is FenceMode.KILL)
    if state is InstanceState.PAUSED and mode is FenceMode.KILL:
        return FencePlan(FenceStep.POWER_OFF)
    return FencePlan(FenceStep.NOTHING)


async def fence_instance(driver: Driver, name: str, mode: FenceMode, *,
                         power_off_later: Callable[[str], None]
                         ) -> tuple[FenceMode | None, Instance]:
    """Fence instance ``name`` (see the module docstring): ``(the mode applied, or None if
    nothing was done; the instance as the driver reports it after)``.
    ``power_off_later(name)`` powers off, later, an instance this fence paused."""
    before = await driver.get_instance(name)
    plan = fence_plan(before.state, mode)
    if plan.confirm is FenceStep.NOTHING:
        return None, before
    if plan.confirm is FenceStep.POWER_OFF:
        await driver.power_off(name)
    else:
        try:
            await driver.pause(name)
        except DriverError:
            if not plan.power_off_after:
                raise
            await driver.power_off(name)  # a power-off confirms as well, if more slowly
        else:
            if plan.power_off_after:
                power_off_later(name)
    return mode, await driver.get_instance(name)


async def power_off_fenced(driver: Driver, name: str, lock: asyncio.Lock) -> None:
    """Power off instance ``name``, which a KILL fence paused, under its ``lock``; a failure
    is logged (the instance stays paused: still fenced)."""
    async with lock:
        try:
            await driver.power_off(name)
        except DriverError as e:
            log.error("fenced %s is paused, but powering it off failed: %s", name, e)  # noqa: TRY400
