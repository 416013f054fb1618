"""The libvirt driver loses a host's connection and gets it back: HOST_DOWN once, clear errors
while it is down, reconnection with backoff, HOST_UP and working events after it.

libvirt's ``test`` hypervisor never drops a connection, so the driver opens its URIs through
``libvirt_double.Hypervisor``, which wraps each real ``test:///<file>`` connection in a
``Flaky`` double: it records the close callback the driver registers (the test calls it as
libvirt would) and can be made to fail like a remote connection whose daemon went away. The
backoff runs on a :class:`FakeClock`. Skipped without libvirt's binding unless
``VNFHA_REQUIRE_LIBVIRT=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from driver_rigs import require_libvirt
from libvirt_double import Flaky, Hypervisor

libvirt = require_libvirt()

from vnfha.bridge.core import BridgeCore  # noqa: E402
from vnfha.bridge.drivers import libvirt_conn as lc  # noqa: E402
from vnfha.bridge.drivers import libvirt_driver as lv  # noqa: E402
from vnfha.bridge.drivers.driver import EventKind, InfraEvent, InstanceState, UnknownHost  # noqa: E402
from vnfha.errors import ConfigError  # noqa: E402 - only once libvirt is known present
from vnfha.nfvi.model import (  # noqa: E402
    FenceMode,
    PlacementPolicy,
    RepairAction,
    RepairState,
    RepairTicket,
)
from vnfha.nfvi.wire import Caller, Escalation, Refused  # noqa: E402
from vnfha.testing import FakeClock  # noqa: E402

S = InstanceState
K = EventKind
REAL_DEADLINE_S = 10.0

# -- the pure parts ------------------------------------------------------------------------------


def test_reconnect_delay_doubles_up_to_the_cap() -> None:
    policy = lc.ConnPolicy()
    assert [lc.reconnect_delay(n, policy) for n in range(9)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert lc.reconnect_delay(10_000, policy) == 30.0  # no overflow after days of retrying
    short = lc.ConnPolicy(reconnect_initial_s=0.1, reconnect_max_s=0.25)
    assert [lc.reconnect_delay(n, short) for n in range(4)] == [0.1, 0.2, 0.25, 0.25]
    with pytest.raises(ValueError, match="-1"):
        lc.reconnect_delay(-1, policy)


@pytest.mark.parametrize(("changes", "field_name"), [
    ({"keepalive_interval_s": 0}, "keepalive_interval_s"),
    ({"keepalive_interval_s": 2.5}, "keepalive_interval_s"),
    ({"keepalive_count": 0}, "keepalive_count"),
    ({"reconnect_initial_s": 0.0}, "reconnect_initial_s"),
    ({"reconnect_initial_s": float("nan")}, "reconnect_initial_s"),
    ({"reconnect_max_s": 0.4}, "reconnect_max_s"),
    ({"reconnect_max_s": float("inf")}, "reconnect_max_s"),
])
def test_conn_policy_refuses_bad_values_naming_them(changes: dict[str, Any],
                                                    field_name: str) -> None:
    with pytest.raises(ConfigError, match=field_name) as e:
        lc.ConnPolicy(**changes)
    assert e.value.field == field_name


@pytest.mark.parametrize(("code", "domain", "alive", "lost"), [
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, True, True),  # Cannot recv data
    (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC, True, True),  # socket is closed
    (libvirt.VIR_ERR_RPC, libvirt.VIR_FROM_REMOTE, True, True),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_QEMU, True, False),  # a disk, say
    (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU, True, False),
    (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_RPC, True, False),
    (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_DOMAIN, True, False),
    (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_DOMAIN, False, True),  # not alive
    (None, None, True, False),
    (None, None, False, True),
])
def test_is_connection_loss(code: int | None, domain: int | None, alive: bool,
                            lost: bool) -> None:
    assert lc.is_connection_loss(code, domain, alive=alive) is lost


def test_close_reason_names_each_reason() -> None:
    reasons = {lc.close_reason(r) for r in (libvirt.VIR_CONNECT_CLOSE_REASON_ERROR,
                                            libvirt.VIR_CONNECT_CLOSE_REASON_EOF,
                                            libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE,
                                            libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT)}
    assert len(reasons) == 4
    assert lc.close_reason(libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE) == "no answer to keepalives"
    assert "99" in lc.close_reason(99)


def test_missed_events_report_each_net_change_once() -> None:
    before = {"a": S.RUNNING, "b": S.PAUSED, "c": S.PAUSED, "d": S.STOPPED, "e": S.RUNNING,
              "f": S.RUNNING, "gone": S.RUNNING}
    after = {"a": S.RUNNING, "b": S.RUNNING, "c": S.STOPPED, "d": S.RUNNING, "e": S.CRASHED,
             "f": S.PAUSED, "new": S.RUNNING}
    assert lc.missed_events(before, after) == [
        ("b", K.VM_RESUMED), ("c", K.VM_STOPPED), ("d", K.VM_STARTED), ("e", K.VM_CRASHED),
        ("f", K.VM_PAUSED)]
    assert lc.missed_events({}, after) == []


# -- the driver, with connections that can be lost -----------------------------------------------


@dataclass
class Rig:
    driver: lv.LibvirtDriver
    hypervisor: Hypervisor
    clock: FakeClock
    uris: dict[str, str]
    events: list[InfraEvent]

    def conn(self, host: str) -> Flaky:
        return self.hypervisor.last(self.uris[host])

    def seen(self, *kinds: EventKind) -> list[tuple[EventKind, str | None, str | None]]:
        return [(e.kind, e.host, e.instance) for e in self.events if not kinds or e.kind in kinds]

    async def run_until(self, done: Callable[[], bool], *, move_clock: bool = True) -> None:
        """Let the driver work until ``done()`` (within a real-time deadline): whenever it
        sleeps on the fake clock, move the clock exactly to the next wake-up (so the backoff's
        times are exact; not with ``move_clock=False``), otherwise wait (a worker thread is
        opening a connection, or an event is on its way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REAL_DEADLINE_S
        while not done():
            assert loop.time() < deadline, f"not done; events so far: {self.seen()}"
            wake = self.clock.next_deadline()
            if move_clock and wake is not None:
                self.clock.jump(max(0.0, wake - self.clock.monotonic()))
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(directory: Path, *, layout: dict[str, list[lv.DomainSpec]] | None = None,
                  unreachable: Iterable[str] = ()) -> AsyncIterator[Rig]:
    """A driver on ``layout`` (default: vm-a and vm-c on host-a, vm-b on host-b) on a fake
    clock, whose ``unreachable`` hosts refuse to be opened, with its events collected from the
    start."""
    uris = lv.write_test_hosts(directory, layout or {
        "host-a": [lv.DomainSpec("vm-a", "g1", "m-a"), lv.DomainSpec("vm-c", "g2", "m-c")],
        "host-b": [lv.DomainSpec("vm-b", "g1", "m-b")],
    })
    clock = FakeClock()
    hypervisor = Hypervisor(clock, unreachable={uris[h] for h in unreachable})
    driver = await lv.LibvirtDriver.open(uris, clock=clock, opener=hypervisor)
    events: list[InfraEvent] = []
    subscription = driver.events()

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.create_task(collect())
    try:
        yield Rig(driver, hypervisor, clock, uris, events)
    finally:
        await driver.close()
        await asyncio.wait_for(collector, REAL_DEADLINE_S)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running(tmp_path) as rig:
        yield rig


async def test_every_connection_asks_for_keepalives_and_watches_its_close(rig: Rig) -> None:
    generations = set()
    for host in ("host-a", "host-b"):
        conn = rig.conn(host)
        assert conn.keepalive == [(5, 3)]  # refused by test://, and the driver carried on
        ((_, (named, generation)),) = conn.close_callbacks
        assert named == host
        generations.add(generation)
    assert len(generations) == 2


async def test_a_closed_connection_is_one_host_down_and_the_host_refuses_clearly(
        rig: Rig) -> None:
    driver, conn = rig.driver, rig.conn("host-a")
    conn.close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_EOF)
    conn.close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_ERROR)  # the same loss again
    await rig.run_until(lambda: conn.closed, move_clock=False)  # the driver let go of it
    assert rig.seen() == [(K.HOST_DOWN, "host-a", None)]  # as the simulator: no instance
    assert "the daemon closed the connection" in rig.events[0].detail

    assert await driver.list_hosts() == ["host-a", "host-b"]  # down hosts are listed
    listed = {i.name: (i.host, i.state) for i in await driver.list_instances()}
    assert listed == {"vm-a": ("host-a", S.RUNNING), "vm-b": ("host-b", S.RUNNING),
                      "vm-c": ("host-a", S.RUNNING)}  # host-a's as last seen
    for call, operation in [(lambda: driver.get_instance("vm-a"), "get_instance"),
                            (lambda: driver.power_off("vm-c"), "power_off"),
                            (lambda: driver.migrate("vm-b", "host-a"), "migrate"),
                            (lambda: driver.migrate("vm-a", "host-b"), "migrate")]:
        with pytest.raises(lc.HostDown, match="host 'host-a' is down") as e:
            await call()
        assert (e.value.host, e.value.operation) == ("host-a", operation)
    with pytest.raises(lc.HostDown):
        driver.connection("host-a")
    with pytest.raises(UnknownHost):
        await driver.migrate("vm-b", "host-z")
    await driver.pause("vm-b")  # the other host is untouched
    await rig.run_until(lambda: (K.VM_PAUSED, "host-b", "vm-b") in rig.seen(), move_clock=False)
    assert (await driver.get_instance("vm-b")).state is S.PAUSED
    assert rig.seen(K.HOST_DOWN) == [(K.HOST_DOWN, "host-a", None)]


async def test_it_reconnects_publishes_host_up_and_events_flow_again(rig: Rig) -> None:
    driver, old = rig.driver, rig.conn("host-a")
    await driver.pause("vm-a")  # last seen: vm-a paused, vm-c shut off
    await driver.power_off("vm-c")
    lost_at = rig.clock.monotonic()
    opens_before = len(rig.hypervisor.attempts)
    old.close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE)
    await rig.run_until(lambda: (K.HOST_UP, "host-a", None) in rig.seen())
    assert rig.hypervisor.attempts[opens_before:] == [lost_at + 0.5]
    await rig.run_until(lambda: len(rig.seen(K.VM_RESUMED, K.VM_STARTED)) == 2)
    # the reopened host started from its file: both domains running, each reported once
    assert rig.seen()[-4:] == [(K.HOST_DOWN, "host-a", None), (K.HOST_UP, "host-a", None),
                               (K.VM_RESUMED, "host-a", "vm-a"), (K.VM_STARTED, "host-a", "vm-c")]
    new = rig.conn("host-a")
    assert new is not old and driver.connection("host-a") is new
    ((_, opaque),) = new.close_callbacks
    assert opaque[0] == "host-a" and opaque != old.close_callbacks[0][1]
    assert old.closed and not new.closed

    old.close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_EOF)  # late news: ignored
    await driver.pause("vm-a")
    await rig.run_until(lambda: rig.seen()[-1] == (K.VM_PAUSED, "host-a", "vm-a"))
    assert (await driver.get_instance("vm-a")).state is S.PAUSED
    new.real.lookupByName("vm-c").destroy()  # behind the driver's back: the new callback works
    await rig.run_until(lambda: rig.seen()[-1] == (K.VM_STOPPED, "host-a", "vm-c"))
    assert len(rig.seen(K.HOST_DOWN)) == 1 and len(rig.seen(K.HOST_UP)) == 1


async def test_a_failed_operation_on_a_dead_connection_is_host_down_and_backs_off(
        rig: Rig) -> None:
    driver, conn = rig.driver, rig.conn("host-a")
    conn.drop()
    lost_at = rig.clock.monotonic()
    rig.hypervisor.refuse = 3
    opens_before = len(rig.hypervisor.attempts)
    with pytest.raises(lc.HostDown, match=r"pause 'vm-a': host 'host-a' is down.*Cannot recv"):
        await driver.pause("vm-a")
    assert rig.seen() == [(K.HOST_DOWN, "host-a", None)]  # published before the error returned
    with pytest.raises(lc.HostDown):
        await driver.resume("vm-a")
    assert [i.name for i in await driver.list_instances()] == ["vm-a", "vm-b", "vm-c"]
    await rig.run_until(lambda: (K.HOST_UP, "host-a", None) in rig.seen())
    delays = [t - lost_at for t in rig.hypervisor.attempts[opens_before:]]
    assert delays == [0.5, 1.5, 3.5, 7.5]  # 0.5, 1, 2, 4 s apart: three refused, one opened
    assert rig.seen(K.HOST_DOWN, K.HOST_UP) == [(K.HOST_DOWN, "host-a", None),
                                               (K.HOST_UP, "host-a", None)]
    await driver.pause("vm-a")
    assert (await driver.get_instance("vm-a")).state is S.PAUSED


async def test_a_loss_seen_while_listing_is_reported_and_the_list_still_answers(
        rig: Rig) -> None:
    rig.conn("host-b").drop()
    instances = await rig.driver.list_instances()
    assert [(i.name, i.host) for i in instances] == [
        ("vm-a", "host-a"), ("vm-b", "host-b"), ("vm-c", "host-a")]
    assert rig.seen() == [(K.HOST_DOWN, "host-b", None)]
    with pytest.raises(lc.HostDown, match="host-b"):
        await rig.driver.get_instance("vm-b")


async def test_an_error_of_the_operation_itself_is_not_a_lost_host(rig: Rig) -> None:
    # host-b holds another domain called vm-a (another uuid): defining vm-a there is refused
    rig.conn("host-b").real.defineXML(lv.domain_xml("vm-a"))
    with pytest.raises(lv.DriverError, match="libvirt refused") as e:
        await rig.driver.migrate("vm-a", "host-b")
    assert not isinstance(e.value, lc.HostDown)
    assert (await rig.driver.get_instance("vm-a")).host == "host-a"
    assert rig.seen(K.HOST_DOWN) == []


async def test_close_stops_reconnecting(rig: Rig) -> None:
    rig.hypervisor.refuse = 1_000
    opens_before = len(rig.hypervisor.attempts)
    rig.conn("host-a").close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_ERROR)
    await rig.run_until(lambda: len(rig.hypervisor.attempts) >= opens_before + 3)
    await rig.driver.close()
    attempts = len(rig.hypervisor.attempts)
    rig.clock.jump(3600)
    await asyncio.sleep(0.05)
    assert len(rig.hypervisor.attempts) == attempts
    assert rig.clock.next_deadline() is None


async def test_the_bridge_tells_the_groups_on_the_host_and_neither_fences_nor_evacuates(
        rig: Rig) -> None:
    async with BridgeCore(rig.driver, clock=rig.clock) as core:
        g1 = await core.watch_events(Caller("g1", "m-b", 0), None)
        g2 = await core.watch_events(Caller("g2", "m-c", 0), None)
        rig.conn("host-a").close_as_libvirt_would(libvirt.VIR_CONNECT_CLOSE_REASON_EOF)
        for stream, members in ((g1, ("m-a",)), (g2, ("m-c",))):
            event = await asyncio.wait_for(anext(stream), REAL_DEADLINE_S)
            assert (event.kind, event.host, event.members) == (K.HOST_DOWN, "host-a", members)
        view = await core.placement(Caller("g1", "m-b", 0), None)
        assert {h.host: h.up for h in view.hosts} == {"host-a": False, "host-b": True}
        assert view.host_of("m-a") == "host-a"
        with pytest.raises(Refused, match="host 'host-a' is down") as e:
            await core.fence(Caller("g1", "m-b", 1), None, "m-a", FenceMode.KILL, "silent")
        assert e.value.code == "INTERNAL"
        ticket = await core.escalate(Caller("g1", "m-b", 1), None, Escalation(
            "k1", "m-a", "host lost", RepairAction.REBOOT, (), PlacementPolicy.SOFT_ANTI_AFFINITY))
        assert ticket.action is RepairAction.EVACUATE  # the host is down: evacuate, not reboot
        updates = await core.watch_repair(Caller("g1", "m-b", 0), None, ticket.ticket_id)
        final = await asyncio.wait_for(last(updates), REAL_DEADLINE_S)
        assert final.state is RepairState.FAILED, final
        assert "host 'host-a' is down" in final.detail
        assert (await rig.driver.list_instances())[0].host == "host-a"  # not moved


async def last(items: AsyncIterator[RepairTicket]) -> RepairTicket:
    updates = [item async for item in items]
    return updates[-1]


# -- a host that cannot be reached when the driver opens -----------------------------------------


async def test_a_host_unreachable_at_start_starts_down_and_comes_up_later(
        tmp_path: Path) -> None:
    async with running(tmp_path, unreachable=["host-b"]) as rig:
        driver, uri = rig.driver, rig.uris["host-b"]
        opened_at = rig.clock.monotonic()
        await rig.run_until(lambda: bool(rig.events), move_clock=False)
        (down,) = rig.events  # the subscription starts with it
        assert (down.kind, down.host, down.instance) == (K.HOST_DOWN, "host-b", None)
        assert down.detail == (f"no libvirt connection: cannot open {uri!r}: Failed to "
                               f"connect socket to {uri}: No route to host")
        assert await driver.list_hosts() == ["host-a", "host-b"]
        assert [i.name for i in await driver.list_instances()] == ["vm-a", "vm-c"]
        with pytest.raises(lc.HostDown, match=r"host 'host-b' is down: no libvirt connection "
                           r"to it \(cannot open .*No route to host\)") as e:
            await driver.migrate("vm-a", "host-b")
        assert (e.value.host, e.value.operation) == ("host-b", "migrate")
        with pytest.raises(lc.HostDown):
            driver.connection("host-b")
        await driver.pause("vm-a")  # the reachable host works
        await rig.run_until(lambda: (K.VM_PAUSED, "host-a", "vm-a") in rig.seen(),
                            move_clock=False)

        attempts = len(rig.hypervisor.attempts)
        await rig.run_until(lambda: len(rig.hypervisor.attempts) == attempts + 3)
        rig.hypervisor.unreachable.clear()  # the host is reachable now
        await rig.run_until(lambda: (K.HOST_UP, "host-b", None) in rig.seen())
        delays = [t - opened_at for t in rig.hypervisor.attempts[attempts:]]
        assert delays == [0.5, 1.5, 3.5, 7.5]  # the reconnect backoff: three refused, one opened
        instance = await driver.get_instance("vm-b")
        assert (instance.host, instance.state) == ("host-b", S.RUNNING)
        await driver.pause("vm-b")
        await rig.run_until(lambda: rig.seen()[-1] == (K.VM_PAUSED, "host-b", "vm-b"))
        assert rig.seen(K.HOST_DOWN, K.HOST_UP) == [(K.HOST_DOWN, "host-b", None),
                                                   (K.HOST_UP, "host-b", None)]


async def test_no_host_reachable_at_start_fails_naming_every_host(tmp_path: Path) -> None:
    uris = lv.write_test_hosts(tmp_path, {"host-a": [], "host-b": []})
    clock = FakeClock()
    hypervisor = Hypervisor(clock, unreachable=set(uris.values()))
    with pytest.raises(lv.DriverError) as e:
        await lv.LibvirtDriver.open(uris, clock=clock, opener=hypervisor)
    assert not isinstance(e.value, lc.HostDown) and e.value.operation == "open"
    message = str(e.value)
    assert message.startswith("no libvirt host could be opened: host 'host-a': cannot open ")
    for host, uri in uris.items():
        assert f"host {host!r}: cannot open {uri!r}: Failed to connect socket to {uri}" in message
    assert len(hypervisor.attempts) == 2 and not hypervisor.opened
    assert clock.next_deadline() is None  # nothing left retrying


async def test_the_bridge_started_with_a_host_down_shows_it_and_evacuates_elsewhere(
        tmp_path: Path) -> None:
    """host-b (empty, first by name) cannot be reached: the bridge marks it down from the
    start, so an evacuation of m-a goes to host-c, not to host-b."""
    layout = {"host-a": [lv.DomainSpec("vm-a", "g1", "m-a"), lv.DomainSpec("vm-c", "g1", "m-c")],
              "host-b": [], "host-c": []}
    async with running(tmp_path, layout=layout, unreachable=["host-b"]) as rig, \
            BridgeCore(rig.driver, clock=rig.clock) as core:
        caller = Caller("g1", "m-c", 1)

        async def host_b_down() -> dict[str, bool]:
            while True:  # the bridge routes the HOST_DOWN its subscription starts with
                up = {h.host: h.up for h in (await core.placement(caller, None)).hosts}
                if not up["host-b"]:
                    return up
                await asyncio.sleep(0.01)

        up = await asyncio.wait_for(host_b_down(), REAL_DEADLINE_S)
        assert up == {"host-a": True, "host-b": False, "host-c": True}
        ticket = await core.escalate(caller, None, Escalation(
            "k1", "m-a", "lost its disk", RepairAction.EVACUATE, (),
            PlacementPolicy.SOFT_ANTI_AFFINITY))
        updates = await core.watch_repair(caller, None, ticket.ticket_id)
        final = await asyncio.wait_for(last(updates), REAL_DEADLINE_S)
        assert (final.state, final.host) == (RepairState.SUCCEEDED, "host-c"), final


async def test_a_host_whose_open_hangs_starts_down_and_holds_one_thread(tmp_path: Path) -> None:
    """A host that never answers costs the start ``open_timeout_s``, then is down; the
    reconnects start no second thread while the hung one has not returned; once it returns its
    connection is closed (not leaked) and the next attempt brings the host up."""
    uris = lv.write_test_hosts(tmp_path, {"host-a": [lv.DomainSpec("vm-a", "g1", "m-a")],
                                          "host-b": [lv.DomainSpec("vm-b", "g1", "m-b")]})
    clock = FakeClock()
    release = threading.Event()
    hypervisor = Hypervisor(clock, hang={uris["host-b"]: release})
    opening = asyncio.create_task(lv.LibvirtDriver.open(
        uris, clock=clock, opener=hypervisor, policy=lc.ConnPolicy(open_timeout_s=10)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REAL_DEADLINE_S
    while not opening.done():  # both opens start at once; then only the timeout can end it
        assert loop.time() < deadline, hypervisor.attempts
        if len(hypervisor.attempts) == 2 and clock.next_deadline() is not None:
            clock.jump(10)
        await asyncio.sleep(0.01)
    driver = await opening
    rig = Rig(driver, hypervisor, clock, uris, [])
    try:
        subscription = driver.events()
        down = await asyncio.wait_for(anext(subscription), REAL_DEADLINE_S)
        assert (down.kind, down.host) == (K.HOST_DOWN, "host-b")
        assert down.detail.endswith(f"cannot open {uris['host-b']!r}: no answer within 10 s")
        assert (await driver.get_instance("vm-a")).state is S.RUNNING

        async def collect() -> None:
            async for event in subscription:
                rig.events.append(event)

        collector = asyncio.create_task(collect())
        woken = clock.monotonic()
        await rig.run_until(lambda: clock.monotonic() - woken > 60)  # several reconnects
        assert len(hypervisor.attempts) == 2  # none of them started a second thread
        release.set()  # the hung open returns now: that connection is closed again
        await rig.run_until(lambda: bool(hypervisor.opened.get(uris["host-b"]))
                            and hypervisor.opened[uris["host-b"]][0].closed, move_clock=False)
        await rig.run_until(lambda: (K.HOST_UP, "host-b", None) in rig.seen())
        assert len(hypervisor.opened[uris["host-b"]]) == 2
        assert not hypervisor.last(uris["host-b"]).closed
        assert (await driver.get_instance("vm-b")).host == "host-b"
    finally:
        release.set()
        await driver.close()
    await asyncio.wait_for(collector, REAL_DEADLINE_S)


def test_open_timeout_must_be_positive() -> None:
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="open_timeout_s"):
            lc.ConnPolicy(open_timeout_s=bad)
