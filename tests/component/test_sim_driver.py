"""The simulator driver with real processes: launch, pause, reset, power off, migrate, crash
detection, host failure, maintenance, and nothing left running after close()."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vnfha.bridge.drivers.driver import (
    Driver,
    DriverError,
    EventKind,
    InfraEvent,
    InstanceState,
    UnknownHost,
    UnknownInstance,
)
from vnfha.bridge.drivers.sim import SimDriver, proc_state

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
DEADLINE_S = 10.0


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimDriver]:
    driver = SimDriver(log_dir=tmp_path / "logs")
    try:
        yield driver
    finally:
        await driver.close()


async def next_event(events: AsyncIterator[InfraEvent], kind: EventKind) -> InfraEvent:
    """The next event of ``kind`` (skipping others), within the test deadline."""
    async def find() -> InfraEvent:
        async for event in events:
            if event.kind is kind:
                return event
        raise AssertionError(f"events ended before {kind}")
    return await asyncio.wait_for(find(), DEADLINE_S)


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z")


async def test_constructible_without_arguments_and_is_a_driver() -> None:
    driver = SimDriver()
    assert isinstance(driver, Driver)
    assert driver.name == "sim"
    assert await driver.list_instances() == []
    await driver.close()


async def test_launch_lists_and_logs(sim: SimDriver, tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import os, time; print('hello', os.environ['X'], flush=True)"
            "\nwhile True: time.sleep(0.05)"]
    inst = await sim.launch("vm-a", group="g", member="m-a", host="h1", argv=argv,
                            env={"X": "42"})
    assert inst.state is InstanceState.RUNNING and inst.host == "h1"
    assert await sim.list_hosts() == ["h1"]
    assert [i.name for i in await sim.list_instances()] == ["vm-a"]
    log_path = sim.log_path("vm-a")
    assert log_path is not None

    async def logged() -> None:
        while "hello 42" not in log_path.read_text():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(logged(), DEADLINE_S)
    with pytest.raises(DriverError, match="already exists"):
        await sim.launch("vm-a", group="g", member="m-a", host="h1", argv=argv)


async def test_without_a_log_dir_output_goes_nowhere_not_to_the_drivers_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    """Inherited, an instance's stdout would mix into the bridge's own (``vnfha bridge serve``
    prints its "serving on" line there) and hold that pipe open after the bridge exits."""
    done = tmp_path / "printed"
    argv = [sys.executable, "-c", "import sys, time; print('hello from the vm', flush=True); "
            "print('and its stderr', file=sys.stderr, flush=True); "
            f"open({str(done)!r}, 'w').close()\nwhile True: time.sleep(0.05)"]
    driver = SimDriver()
    try:
        await driver.launch("vm-a", group="g", member="m", host="h1", argv=argv)
        assert driver.log_path("vm-a") is None

        async def printed() -> None:
            while not done.exists():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(printed(), DEADLINE_S)
    finally:
        await driver.close()
    captured = capfd.readouterr()
    assert "hello from the vm" not in captured.out
    assert "and its stderr" not in captured.err


async def test_pause_resume_power_off_are_confirmed_and_idempotent(sim: SimDriver) -> None:
    await sim.launch("vm-a", group="g", member="m", host="h1", argv=SLEEPER)
    pid = sim.pid("vm-a")
    assert pid is not None
    await sim.pause("vm-a")
    assert proc_state(pid) in ("T", "t")
    await sim.pause("vm-a")
    assert (await sim.get_instance("vm-a")).state is InstanceState.PAUSED
    await sim.resume("vm-a")
    assert proc_state(pid) not in ("T", "t")
    await sim.power_off("vm-a")
    assert not alive(pid)
    assert (await sim.get_instance("vm-a")).state is InstanceState.STOPPED
    await sim.power_off("vm-a")
    with pytest.raises(DriverError, match="not running"):
        await sim.pause("vm-a")
    await sim.start("vm-a")
    assert (await sim.get_instance("vm-a")).state is InstanceState.RUNNING
    assert sim.pid("vm-a") not in (None, pid)


async def test_reset_of_a_paused_instance_gives_a_new_running_process(sim: SimDriver) -> None:
    events = sim.events()
    await sim.launch("vm-a", group="g", member="m", host="h1", argv=SLEEPER)
    old = sim.pid("vm-a")
    assert old is not None
    await sim.pause("vm-a")
    await sim.reset("vm-a")
    new = sim.pid("vm-a")
    assert new is not None and new != old and not alive(old)
    assert (await sim.get_instance("vm-a")).state is InstanceState.RUNNING
    kinds = [(await next_event(events, k)).kind for k in
             (EventKind.VM_STARTED, EventKind.VM_PAUSED, EventKind.VM_STOPPED,
              EventKind.VM_STARTED)]
    assert kinds[-1] is EventKind.VM_STARTED


async def test_children_die_with_the_instance(sim: SimDriver, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    argv = [sys.executable, "-c",
            "import subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)"]
    await sim.launch("vm-a", group="g", member="m", host="h1", argv=argv)

    async def child_pid() -> int:
        while not pidfile.exists() or not pidfile.read_text():
            await asyncio.sleep(0.01)
        return int(pidfile.read_text())
    child = await asyncio.wait_for(child_pid(), DEADLINE_S)
    await sim.power_off("vm-a")

    async def gone() -> None:
        while alive(child):
            await asyncio.sleep(0.01)
    await asyncio.wait_for(gone(), DEADLINE_S)


async def test_a_process_that_exits_on_its_own_is_a_crash(sim: SimDriver) -> None:
    events = sim.events()
    await sim.launch("vm-a", group="g", member="m", host="h1",
                     argv=[sys.executable, "-c", "raise SystemExit(3)"])
    event = await next_event(events, EventKind.VM_CRASHED)
    assert event.instance == "vm-a" and "status 3" in event.detail
    assert (await sim.get_instance("vm-a")).state is InstanceState.CRASHED
    assert sim.pid("vm-a") is None


async def test_migrate_relabels_and_restarts(sim: SimDriver) -> None:
    sim.add_host("h2")
    await sim.launch("vm-a", group="g", member="m", host="h1", argv=SLEEPER)
    old = sim.pid("vm-a")
    await sim.migrate("vm-a", "h2")
    inst = await sim.get_instance("vm-a")
    assert inst.host == "h2" and inst.state is InstanceState.RUNNING
    assert sim.pid("vm-a") != old
    with pytest.raises(UnknownHost):
        await sim.migrate("vm-a", "nowhere")


async def test_fail_host_kills_its_instances_and_refuses_launches(sim: SimDriver) -> None:
    events = sim.events()
    await sim.launch("vm-a", group="g", member="a", host="h1", argv=SLEEPER)
    await sim.launch("vm-b", group="g", member="b", host="h2", argv=SLEEPER)
    pid_a = sim.pid("vm-a")
    assert pid_a is not None
    await sim.fail_host("h1")
    assert (await next_event(events, EventKind.HOST_DOWN)).host == "h1"
    assert (await next_event(events, EventKind.VM_CRASHED)).instance == "vm-a"
    assert not alive(pid_a)
    assert (await sim.get_instance("vm-b")).state is InstanceState.RUNNING
    assert not sim.host_is_up("h1")
    with pytest.raises(DriverError, match="'h1' is down"):
        await sim.start("vm-a")
    with pytest.raises(DriverError, match="'h1' is down"):
        await sim.migrate("vm-b", "h1")
    await sim.migrate("vm-a", "h2")
    sim.restore_host("h1")
    assert (await next_event(events, EventKind.HOST_UP)).host == "h1"


async def test_maintenance_is_announced_with_its_deadline(sim: SimDriver) -> None:
    events = sim.events()
    sim.add_host("h1")
    sim.plan_maintenance("h1", 1_900_000_000.0)
    event = await next_event(events, EventKind.MAINTENANCE_PLANNED)
    assert event.host == "h1" and event.deadline_unix_s == 1_900_000_000.0
    with pytest.raises(UnknownHost):
        sim.plan_maintenance("h9", 0.0)


async def test_unknown_instances_and_bad_launches_are_refused(sim: SimDriver) -> None:
    for call in (sim.get_instance("x"), sim.reset("x"), sim.power_off("x"), sim.pause("x"),
                 sim.resume("x"), sim.start("x"), sim.migrate("x", "h1")):
        with pytest.raises(UnknownInstance, match="'x'"):
            await call
    with pytest.raises(DriverError, match="argv must not be empty"):
        await sim.launch("vm", group="g", member="m", host="h", argv=[])
    with pytest.raises(DriverError, match="group must not be empty"):
        await sim.launch("vm", group="", member="m", host="h", argv=SLEEPER)
    with pytest.raises(DriverError, match="cannot start"):
        await sim.launch("vm", group="g", member="m", host="h", argv=["/nonexistent/prog"])
    assert await sim.list_instances() == []


async def test_close_kills_everything_and_ends_event_streams(tmp_path: Path) -> None:
    driver = SimDriver()
    events = driver.events()
    for i in range(3):
        await driver.launch(f"vm-{i}", group="g", member=f"m{i}", host="h", argv=SLEEPER)
    pids = [driver.pid(f"vm-{i}") for i in range(3)]
    await driver.pause("vm-1")
    await driver.close()
    for pid in pids:
        assert pid is not None and not alive(pid)
    seen = [e async for e in events]
    assert [e.kind for e in seen].count(EventKind.VM_STARTED) == 3
    await driver.close()
    with pytest.raises(DriverError, match="closed"):
        await driver.launch("late", group="g", member="m", host="h", argv=SLEEPER)


async def test_a_slow_subscriber_is_cut_off_not_the_driver() -> None:
    driver = SimDriver(max_queued_events=2)
    slow = driver.events()
    driver.add_host("h")
    for _ in range(3):
        driver.plan_maintenance("h", 0.0)
    with pytest.raises(DriverError, match="fell 2 events behind"):
        await anext(slow)
    await driver.close()

