"""The driver suite: the guarantees of :mod:`vnfha.bridge.drivers.driver`, checked against every
driver.

Each test runs once per driver fixture (``rig``, see driver_rigs.py: libvirt's test hypervisor,
real QEMU domains under private libvirt daemons (one per host, started once for the module), and
the simulator). Whether an instance "can execute" is checked outside the driver, on the
hypervisor: the process state in ``/proc`` (stopped or gone) for the simulator, the domain state
(paused or shut off) for libvirt. Checks that an action produced no event are made by doing a
second action afterwards and requiring that its event is the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from driver_rigs import (
    HOSTS,
    LAYOUT,
    DownInstances,
    Rig,
    libvirt_rig,
    qemu_rig,
    require_libvirt,
    require_qemu,
    sim_rig,
)

from vnfha.bridge.drivers.driver import (
    Driver,
    DriverError,
    EventKind,
    HostDown,
    InfraEvent,
    Instance,
    InstanceState,
    UnknownHost,
    UnknownInstance,
)

DEADLINE_S = 10.0
K = EventKind


@pytest.fixture(scope="module")
def qemu_hosts() -> Iterator[dict[str, object]]:
    """One private libvirtd per host, for the whole module (see driver_rigs.py)."""
    require_libvirt()
    require_qemu()
    from vnfha.testing.libvirtd import Libvirtd  # noqa: PLC0415

    daemons = {host: Libvirtd(host) for host in HOSTS}
    try:
        for daemon in daemons.values():
            daemon.start()
        yield dict(daemons)
    finally:
        for daemon in daemons.values():
            daemon.stop()


@pytest.fixture(params=["libvirt", "qemu", "sim"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    """Every driver in turn, with :data:`LAYOUT` running (overrides conftest.py's, adding the
    QEMU rig)."""
    if request.param == "qemu":
        if request.node.originalname == "test_unknown_instance":
            pytest.skip("no domain is touched: the test:/// rig runs the same driver code")
        make = qemu_rig(request.getfixturevalue("qemu_hosts"))
    else:
        make = libvirt_rig(tmp_path) if request.param == "libvirt" else sim_rig()
    async for value in make:
        yield value


async def take(events: AsyncIterator[InfraEvent], n: int) -> list[InfraEvent]:
    """The next ``n`` events, each within the deadline."""
    return [await asyncio.wait_for(anext(events), DEADLINE_S) for _ in range(n)]


async def kinds(events: AsyncIterator[InfraEvent], n: int, instance: str = "vm-a"
                ) -> list[EventKind]:
    got = await take(events, n)
    assert all(e.instance == instance for e in got), got
    return [e.kind for e in got]


async def state(driver: Driver, name: str = "vm-a") -> InstanceState:
    return (await driver.get_instance(name)).state


async def test_inventory(rig: Rig) -> None:
    driver = rig.driver
    assert isinstance(driver, Driver)
    assert driver.name in ("libvirt", "sim")
    listed = await driver.list_instances()
    assert [i.name for i in listed] == sorted(LAYOUT)
    for instance in listed:
        assert (instance.group, instance.member, instance.host) == LAYOUT[instance.name]
        assert instance.state is InstanceState.RUNNING
        assert await driver.get_instance(instance.name) == instance
        assert rig.probe(instance.name)()
    assert await driver.list_hosts() == HOSTS  # an empty host is listed too


@pytest.mark.parametrize("operation", ["get_instance", "power_off", "pause", "resume", "start",
                                       "reset", "migrate"])
async def test_unknown_instance(rig: Rig, operation: str) -> None:
    method = getattr(rig.driver, operation)
    args = ("nope", "host-b") if operation == "migrate" else ("nope",)
    with pytest.raises(UnknownInstance) as e:
        await method(*args)
    assert isinstance(e.value, DriverError)
    assert (e.value.instance, e.value.operation) == ("nope", operation)
    assert "nope" in str(e.value)


async def test_unknown_host_leaves_the_instance_alone(rig: Rig) -> None:
    with pytest.raises(UnknownHost) as e:
        await rig.driver.migrate("vm-a", "host-z")
    assert (e.value.host, e.value.operation) == ("host-z", "migrate")
    assert "host-z" in str(e.value)
    instance = await rig.driver.get_instance("vm-a")
    assert (instance.host, instance.state) == ("host-a", InstanceState.RUNNING)
    assert rig.probe("vm-a")()


async def test_power_off_stops_execution_before_returning(rig: Rig) -> None:
    driver, events = rig.driver, rig.driver.events()
    running = rig.probe("vm-a")
    await driver.power_off("vm-a")
    assert not running()  # checked at once: no waiting after the driver returned
    assert await state(driver) is InstanceState.STOPPED
    assert await kinds(events, 1) == [K.VM_STOPPED]
    await driver.power_off("vm-a")  # idempotent, and no second event:
    await driver.start("vm-a")
    assert await kinds(events, 1) == [K.VM_STARTED]
    assert await state(driver) is InstanceState.RUNNING
    assert rig.probe("vm-a")()


async def test_pause_stops_execution_before_returning_and_resume_undoes_it(rig: Rig) -> None:
    driver, events = rig.driver, rig.driver.events()
    running = rig.probe("vm-a")
    await driver.pause("vm-a")
    assert not running()
    assert await state(driver) is InstanceState.PAUSED
    await driver.pause("vm-a")  # idempotent
    await driver.resume("vm-a")
    assert running()
    assert await state(driver) is InstanceState.RUNNING
    await driver.resume("vm-a")  # idempotent
    await driver.power_off("vm-a")
    assert await kinds(events, 3) == [K.VM_PAUSED, K.VM_RESUMED, K.VM_STOPPED]


async def test_reset_from_every_state_ends_running(rig: Rig) -> None:
    driver, events = rig.driver, rig.driver.events()
    await driver.reset("vm-a")
    assert await kinds(events, 2) == [K.VM_STOPPED, K.VM_STARTED]
    await driver.pause("vm-a")
    await driver.reset("vm-a")
    assert await kinds(events, 3) == [K.VM_PAUSED, K.VM_STOPPED, K.VM_STARTED]
    assert rig.probe("vm-a")()
    await driver.power_off("vm-a")
    await driver.reset("vm-a")
    assert await kinds(events, 2) == [K.VM_STOPPED, K.VM_STARTED]
    assert await state(driver) is InstanceState.RUNNING
    assert rig.probe("vm-a")()


async def test_start_is_idempotent_and_refuses_a_paused_instance(rig: Rig) -> None:
    driver, events = rig.driver, rig.driver.events()
    await driver.start("vm-a")  # already running: nothing happens
    await driver.pause("vm-a")
    with pytest.raises(DriverError) as e:
        await driver.start("vm-a")
    assert not isinstance(e.value, UnknownInstance)
    assert (e.value.instance, e.value.operation) == ("vm-a", "start")
    assert "vm-a" in str(e.value)
    assert await state(driver) is InstanceState.PAUSED
    assert await kinds(events, 1) == [K.VM_PAUSED]


@pytest.mark.parametrize("operation", ["pause", "resume"])
async def test_refusals_name_the_instance_and_operation(rig: Rig, operation: str) -> None:
    await rig.driver.power_off("vm-a")
    with pytest.raises(DriverError) as e:
        await getattr(rig.driver, operation)("vm-a")
    assert not isinstance(e.value, UnknownInstance)
    assert (e.value.instance, e.value.operation) == ("vm-a", operation)
    assert "vm-a" in str(e.value) and operation in str(e.value)
    assert await state(rig.driver) is InstanceState.STOPPED


async def test_migrate_moves_the_instance_and_restarts_it_there(rig: Rig) -> None:
    driver, events = rig.driver, rig.driver.events()
    await driver.migrate("vm-a", "host-c")
    instance = await driver.get_instance("vm-a")
    assert instance == Instance("vm-a", "g1", "m-a", "host-c", InstanceState.RUNNING)
    assert rig.probe("vm-a")()
    listed = [i for i in await driver.list_instances() if i.name == "vm-a"]
    assert listed == [instance]
    # A driver may report the stop on the source; then the move, then the start on the target.
    first = await take(events, 2)
    seen = first if first[0].kind is not K.VM_STOPPED else [*first[1:], *await take(events, 1)]
    if first[0].kind is K.VM_STOPPED:
        assert first[0].host == "host-a"
    assert [(e.kind, e.host) for e in seen] == [(K.VM_MIGRATED, "host-c"),
                                                (K.VM_STARTED, "host-c")]
    assert await state(driver, "vm-c") is InstanceState.RUNNING  # its old neighbour


async def test_migrate_a_stopped_instance_starts_it_on_the_target(rig: Rig) -> None:
    await rig.driver.power_off("vm-b")
    await rig.driver.migrate("vm-b", "host-a")
    instance = await rig.driver.get_instance("vm-b")
    assert (instance.host, instance.state) == ("host-a", InstanceState.RUNNING)
    assert rig.probe("vm-b")()


async def test_an_action_leaves_other_instances_alone(rig: Rig) -> None:
    await rig.driver.pause("vm-a")
    await rig.driver.power_off("vm-c")
    assert await state(rig.driver, "vm-b") is InstanceState.RUNNING
    assert rig.probe("vm-b")()
    assert await state(rig.driver, "vm-a") is InstanceState.PAUSED


async def test_a_change_behind_the_drivers_back_is_observed(rig: Rig) -> None:
    events = rig.driver.events()
    expected = rig.stop_behind_back("vm-a")
    (event,) = await take(events, 1)
    assert (event.kind, event.instance, event.host) == (expected, "vm-a", "host-a")
    assert await state(rig.driver) in (InstanceState.STOPPED, InstanceState.CRASHED)
    await rig.driver.start("vm-a")
    assert rig.probe("vm-a")()


async def test_every_subscriber_sees_every_event_in_order(rig: Rig) -> None:
    driver = rig.driver
    early, both = driver.events(), driver.events()
    await driver.pause("vm-a")
    late = driver.events()  # subscribed after the pause: sees only what follows
    await driver.resume("vm-a")
    await driver.power_off("vm-a")
    await driver.start("vm-a")
    expected = [K.VM_PAUSED, K.VM_RESUMED, K.VM_STOPPED, K.VM_STARTED]
    assert await kinds(early, 4) == expected
    assert await kinds(both, 4) == expected
    assert await kinds(late, 3) == expected[1:]


async def test_close_ends_every_event_iterator(rig: Rig) -> None:
    first, second = rig.driver.events(), rig.driver.events()
    waiting = asyncio.ensure_future(anext(first, None))
    await asyncio.sleep(0)
    await rig.driver.close()
    assert await asyncio.wait_for(waiting, DEADLINE_S) is None
    assert await asyncio.wait_for(anext(second, None), DEADLINE_S) is None
    assert await asyncio.wait_for(anext(rig.driver.events(), None), DEADLINE_S) is None
    await rig.driver.close()  # idempotent


# -- a host that goes down (driver.py: "Hosts that go down") -------------------------------------


async def host_a_down(rig: Rig) -> AsyncIterator[InfraEvent]:
    """Take host-a down (and notice it twice); returns a subscription made before, whose
    HOST_DOWN and, for a driver that knows its instances died, VM_CRASHED events are consumed
    (checked here)."""
    events = rig.driver.events()
    await rig.take_host_down("host-a")
    await rig.take_host_down("host-a")  # the same outage noticed again
    (down,) = await take(events, 1)
    assert (down.kind, down.host, down.instance) == (K.HOST_DOWN, "host-a", None)
    if rig.down_instances is DownInstances.DEAD:
        crashed = await take(events, 2)
        assert sorted((e.kind, e.instance, e.host) for e in crashed) == [
            (K.VM_CRASHED, "vm-a", "host-a"), (K.VM_CRASHED, "vm-c", "host-a")]
    return events


async def test_a_host_down_is_one_event_and_the_host_and_its_instances_stay_listed(
        rig: Rig) -> None:
    driver = rig.driver
    events = await host_a_down(rig)
    await driver.pause("vm-b")  # the other hosts work; and no second HOST_DOWN came before:
    assert [(e.kind, e.instance) for e in await take(events, 1)] == [(K.VM_PAUSED, "vm-b")]
    assert await driver.list_hosts() == HOSTS
    listed = await driver.list_instances()
    assert [i.name for i in listed] == sorted(LAYOUT)
    for instance in listed:
        assert (instance.group, instance.member, instance.host) == LAYOUT[instance.name]

    late = driver.events()  # subscribed while host-a is down: told first
    (down,) = await take(late, 1)
    assert (down.kind, down.host, down.instance) == (K.HOST_DOWN, "host-a", None)
    await driver.resume("vm-b")
    for stream in (events, late):
        assert [(e.kind, e.instance) for e in await take(stream, 1)] == [(K.VM_RESUMED, "vm-b")]


@pytest.mark.parametrize(("operation", "name", "args"), [
    ("migrate", "vm-b", ("host-a",)),  # to the down host
    ("start", "vm-a", ()),
    ("reset", "vm-a", ()),
])
async def test_what_needs_a_down_host_raises_host_down_naming_it(
        rig: Rig, operation: str, name: str, args: tuple[str, ...]) -> None:
    await host_a_down(rig)
    with pytest.raises(HostDown) as e:
        await getattr(rig.driver, operation)(name, *args)
    assert (e.value.host, e.value.instance, e.value.operation) == ("host-a", name, operation)
    assert "host-a" in str(e.value) and name in str(e.value) and operation in str(e.value)
    assert [(i.name, i.host) for i in await rig.driver.list_instances() if i.name == "vm-b"] == [
        ("vm-b", "host-b")]
    assert rig.probe("vm-b")()


async def test_a_down_hosts_instances_are_what_the_driver_knows(rig: Rig) -> None:
    driver = rig.driver
    running = {name: rig.probe(name) for name in ("vm-a", "vm-c")}
    events = await host_a_down(rig)
    listed = {i.name: i for i in await driver.list_instances()}
    if rig.down_instances is DownInstances.DEAD:
        for name, can_execute in running.items():
            assert not can_execute()
            assert listed[name].state is InstanceState.CRASHED
            assert await driver.get_instance(name) == listed[name]
        await driver.power_off("vm-a")  # confirmed at once: nothing is left to stop
        await driver.migrate("vm-c", "host-c")  # evacuated off the dead host
        assert (await driver.get_instance("vm-c")).host == "host-c"
        assert rig.probe("vm-c")()
        assert [(e.kind, e.instance, e.host) for e in await take(events, 2)] == [
            (K.VM_MIGRATED, "vm-c", "host-c"), (K.VM_STARTED, "vm-c", "host-c")]
        return
    assert {n: listed[n].state for n in running} == {n: InstanceState.RUNNING for n in running}
    for call, operation in [(lambda: driver.get_instance("vm-a"), "get_instance"),
                            (lambda: driver.power_off("vm-a"), "power_off"),
                            (lambda: driver.pause("vm-c"), "pause"),
                            (lambda: driver.resume("vm-c"), "resume"),
                            (lambda: driver.migrate("vm-c", "host-c"), "migrate")]:
        with pytest.raises(HostDown) as e:  # never a confirmation, never a second copy
            await call()
        assert (e.value.host, e.value.operation) == ("host-a", operation)
    assert {i.name: (i.host, i.state) for i in await driver.list_instances()} == {
        i.name: (i.host, i.state) for i in listed.values()}
    await driver.pause("vm-b")  # and no event about host-a's instances came before:
    assert [(e.kind, e.instance) for e in await take(events, 1)] == [(K.VM_PAUSED, "vm-b")]
