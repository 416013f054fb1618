"""What only the libvirt driver does: its pure mappings, the metadata that selects domains, the
cold evacuation's bookkeeping, and its errors. (The behaviour every driver shares is in
test_driver_suite.py.) Runs on libvirt's ``test`` hypervisor; skipped without libvirt's binding
unless ``VNFHA_REQUIRE_LIBVIRT=1``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from driver_rigs import require_libvirt

libvirt = require_libvirt()

from vnfha.bridge.drivers import libvirt_domains as domains  # noqa: E402
from vnfha.bridge.drivers import libvirt_driver as lv  # noqa: E402 - only once libvirt is known present
from vnfha.bridge.drivers.driver import (  # noqa: E402
    DriverError,
    EventKind,
    InstanceState,
    UnknownHost,
    UnknownInstance,
)

S = InstanceState


@pytest.mark.parametrize(("state", "reason", "expected"), [
    (libvirt.VIR_DOMAIN_RUNNING, 0, S.RUNNING),
    (libvirt.VIR_DOMAIN_BLOCKED, 0, S.RUNNING),
    (libvirt.VIR_DOMAIN_SHUTDOWN, 0, S.RUNNING),
    (libvirt.VIR_DOMAIN_NOSTATE, 0, S.RUNNING),
    (99, 0, S.RUNNING),
    (libvirt.VIR_DOMAIN_PAUSED, 0, S.PAUSED),
    (libvirt.VIR_DOMAIN_PMSUSPENDED, 0, S.PAUSED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED, S.STOPPED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, S.STOPPED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, S.CRASHED),
    (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_FAILED, S.CRASHED),
    (libvirt.VIR_DOMAIN_CRASHED, 0, S.CRASHED),
])
def test_instance_state(state: int, reason: int, expected: InstanceState) -> None:
    assert lv.instance_state(state, reason) is expected


@pytest.mark.parametrize(("event", "detail", "expected"), [
    (libvirt.VIR_DOMAIN_EVENT_STARTED, 0, EventKind.VM_STARTED),
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, 0, EventKind.VM_PAUSED),
    (libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED, 0, EventKind.VM_PAUSED),
    (libvirt.VIR_DOMAIN_EVENT_RESUMED, 0, EventKind.VM_RESUMED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED,
     EventKind.VM_STOPPED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED,
     EventKind.VM_CRASHED),
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED,
     EventKind.VM_CRASHED),
    (libvirt.VIR_DOMAIN_EVENT_CRASHED, 0, EventKind.VM_CRASHED),
    (libvirt.VIR_DOMAIN_EVENT_DEFINED, 0, None),
    (libvirt.VIR_DOMAIN_EVENT_UNDEFINED, 0, None),
    (libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, 0, None),
    (99, 0, None),
])
def test_event_kind(event: int, detail: int, expected: EventKind | None) -> None:
    assert lv.event_kind(event, detail) is expected


def test_a_watchdog_halted_the_guest_only_for_reset_pause_and_poweroff() -> None:
    halting = {libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET, libvirt.VIR_DOMAIN_EVENT_WATCHDOG_PAUSE,
               libvirt.VIR_DOMAIN_EVENT_WATCHDOG_POWEROFF}
    others = {libvirt.VIR_DOMAIN_EVENT_WATCHDOG_NONE, libvirt.VIR_DOMAIN_EVENT_WATCHDOG_SHUTDOWN,
              libvirt.VIR_DOMAIN_EVENT_WATCHDOG_DEBUG, libvirt.VIR_DOMAIN_EVENT_WATCHDOG_INJECTNMI}
    assert all(domains.watchdog_halted(domains.WATCHDOG_EVENT, action) for action in halting)
    assert not any(domains.watchdog_halted(domains.WATCHDOG_EVENT, action) for action in others)
    # a lifecycle code that happens to equal an action's is not a watchdog event
    assert not domains.watchdog_halted(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                                       libvirt.VIR_DOMAIN_EVENT_WATCHDOG_RESET)


def test_metadata_round_trip_and_malformed() -> None:
    xml = lv.domain_xml("d", "g<1>", 'm"1')
    assert lv.METADATA_NS in xml
    inner = xml.split("<metadata>")[1].split("</metadata>")[0]
    assert lv.parse_metadata(inner) == ("g<1>", 'm"1')
    assert "<metadata>" not in lv.domain_xml("d")
    for bad in ("<instance group='g'/>", "<instance group='' member='m'/>", "<oops"):
        assert lv.parse_metadata(bad) is None
    with pytest.raises(DriverError, match="'d'"):
        lv.domain_xml("d", group="g")


def test_pick_copy() -> None:
    assert lv.pick_copy("x", [("a", False)]) == "a"
    assert lv.pick_copy("x", [("a", False), ("b", True)]) == "b"
    for copies in ([("a", True), ("b", True)], [("a", False), ("b", False)]):
        with pytest.raises(DriverError, match=r"'x'.*a, b") as e:
            lv.pick_copy("x", copies)
        assert e.value.instance == "x"


Layout = dict[str, list[lv.DomainSpec]]


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[lv.LibvirtDriver, Layout]]:
    layout: Layout = {
        "host-a": [lv.DomainSpec("vm-a", "g1", "m-a"), lv.DomainSpec("plain")],
        "host-b": [lv.DomainSpec("vm-b", "g1", "m-b"), lv.DomainSpec("twin", "g2", "m-t")],
        "host-c": [lv.DomainSpec("twin", "g2", "m-t")],
    }
    driver = await lv.LibvirtDriver.open(lv.write_test_hosts(tmp_path, layout))
    yield driver, layout
    await driver.close()


Opened = tuple[lv.LibvirtDriver, Layout]


async def test_domains_without_vnfha_metadata_are_not_instances(opened: Opened) -> None:
    driver, _ = opened
    driver.connection("host-b").lookupByName("twin").destroy()  # no longer ambiguous
    assert [i.name for i in await driver.list_instances()] == ["twin", "vm-a", "vm-b"]
    with pytest.raises(UnknownInstance):
        await driver.get_instance("plain")
    with pytest.raises(UnknownInstance):
        await driver.power_off("plain")
    events = driver.events()
    driver.connection("host-a").lookupByName("plain").destroy()  # not reported
    driver.connection("host-a").lookupByName("vm-a").suspend()  # reported
    event = await asyncio.wait_for(anext(events), 10)
    assert (event.kind, event.instance, event.host) == (EventKind.VM_PAUSED, "vm-a", "host-a")
    assert (await driver.get_instance("vm-a")).state is InstanceState.PAUSED


async def test_two_running_copies_are_refused_one_running_copy_wins(opened: Opened) -> None:
    driver, _ = opened
    with pytest.raises(DriverError, match=r"twin.*host-b, host-c") as e:
        await driver.pause("twin")
    assert (e.value.instance, e.value.operation) == ("twin", "pause")
    with pytest.raises(DriverError, match="twin"):
        await driver.list_instances()
    driver.connection("host-b").lookupByName("twin").destroy()
    assert (await driver.get_instance("twin")).host == "host-c"
    await driver.pause("twin")
    assert driver.connection("host-c").lookupByName("twin").state()[0] == libvirt.VIR_DOMAIN_PAUSED


async def test_migration_moves_the_definition_with_its_metadata(opened: Opened) -> None:
    driver, _ = opened
    await driver.migrate("vm-a", "host-b")
    with pytest.raises(libvirt.libvirtError):
        driver.connection("host-a").lookupByName("vm-a")
    moved = driver.connection("host-b").lookupByName("vm-a")
    assert lv.parse_metadata(moved.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                                            lv.METADATA_NS)) == ("g1", "m-a")
    assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING


async def test_a_refused_migration_names_it_and_keeps_the_source(opened: Opened) -> None:
    driver, _ = opened
    # host-c holds another domain called vm-b (another uuid): defining vm-b there is refused
    driver.connection("host-c").defineXML(lv.domain_xml("vm-b"))
    with pytest.raises(DriverError) as e:
        await driver.migrate("vm-b", "host-c")
    assert (e.value.instance, e.value.operation) == ("vm-b", "migrate")
    instance = await driver.get_instance("vm-b")
    assert (instance.host, instance.state) == ("host-b", InstanceState.STOPPED)
    await driver.start("vm-b")
    with pytest.raises(UnknownHost):
        await driver.migrate("vm-b", "host-z")


async def test_open_refuses_a_bad_uri_and_a_closed_driver_refuses_actions(
        tmp_path: Path, opened: Opened) -> None:
    missing = f"test://{tmp_path}/missing.xml"
    with pytest.raises(DriverError, match=r"'host-x'.*missing\.xml") as e:
        await lv.LibvirtDriver.open({"host-x": missing})
    assert e.value.operation == "open"
    with pytest.raises(DriverError, match="at least one host"):
        await lv.LibvirtDriver.open({})
    driver, _ = opened
    with pytest.raises(UnknownHost):
        driver.connection("host-z")
    await driver.close()
    with pytest.raises(DriverError, match="closed") as e:
        await driver.pause("vm-a")
    assert (e.value.instance, e.value.operation) == ("vm-a", "pause")


async def test_a_missing_lifecycle_event_is_logged_not_raised(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    uris = lv.write_test_hosts(tmp_path, {"host-a": [lv.DomainSpec("vm-a", "g1", "m-a")]})
    driver = await lv.LibvirtDriver.open(uris, event_timeout_s=0.2)
    try:
        conn = driver.connection("host-a")
        conn.domainEventDeregisterAny(driver.callback_id("host-a"))  # the events stop
        await driver.pause("vm-a")
        assert conn.lookupByName("vm-a").state()[0] == libvirt.VIR_DOMAIN_PAUSED
        assert "no vm-paused event within 0.2 s" in caplog.text
    finally:
        await driver.close()
