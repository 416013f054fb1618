"""Listings of the libvirt driver's hosts within a deadline (vnfha.bridge.drivers.libvirt_scan),
with scripted scans: one scan of a host at a time unless something changed, a late host
answered as None (last seen) and counted, a late scan's failure logged. The real case, a
listing during a destroy on real QEMU, is in tests/integration/test_libvirt_qemu.py."""

from __future__ import annotations

import asyncio

import pytest
from driver_rigs import require_libvirt

require_libvirt()

from vnfha.bridge.drivers.driver import DriverError, Instance, InstanceState  # noqa: E402
from vnfha.bridge.drivers.libvirt_conn import Via  # noqa: E402
from vnfha.bridge.drivers.libvirt_scan import Found, HostScans  # noqa: E402

A, B = Via("host-a", 1, None), Via("host-b", 1, None)


def found(host: str, name: str) -> list[Found]:
    return [Found(Instance(name, "g", "m", host, InstanceState.RUNNING), None, None)]


async def turns() -> None:
    """Let the tasks started so far run up to their first wait."""
    for _ in range(5):
        await asyncio.sleep(0)


class Scripted:
    """Scans that wait for ``release`` (per host) and then answer ``answers[host]``."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = {h: asyncio.Event() for h in ("host-a", "host-b")}
        self.answers: dict[str, list[Found] | Exception] = {}

    async def scan(self, via: Via) -> list[Found] | None:
        self.started.append(via.host)
        await self.release[via.host].wait()
        answer = self.answers[via.host]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_listings_join_a_running_scan_until_something_changes() -> None:
    s = Scripted()
    scans = HostScans(s.scan, timeout_s=5.0)
    s.answers["host-a"] = found("host-a", "old")
    first = asyncio.ensure_future(scans.within([A]))
    second = asyncio.ensure_future(scans.within([A]))
    await turns()
    assert s.started == ["host-a"]  # joined
    scans.changed()  # e.g. an action's call returned: what runs now may predate it
    third = asyncio.ensure_future(scans.within([A]))
    await turns()
    assert s.started == ["host-a", "host-a"]
    s.release["host-a"].set()
    assert (await first) == (await second) == (await third) == {"host-a": found("host-a", "old")}
    assert scans.late == 0


async def test_a_late_host_is_answered_as_last_seen_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    s = Scripted()
    scans = HostScans(s.scan, timeout_s=0.05)
    s.answers["host-b"] = found("host-b", "vm-b")
    s.release["host-b"].set()
    s.answers["host-a"] = DriverError("list_instances: libvirt refused: gone")
    out = await scans.within([A, B])
    assert out == {"host-a": None, "host-b": found("host-b", "vm-b")}
    again = await scans.within([A, B])  # host-a's scan still runs: joined, late again
    assert again["host-a"] is None and s.started.count("host-a") == 1
    assert scans.late == 2
    assert caplog.text.count("listing host-a takes over 0.05 s") == 1  # once per late scan
    s.release["host-a"].set()
    await asyncio.sleep(0.01)
    assert "the late listing of host-a failed: list_instances: libvirt refused: gone" \
        in caplog.text


async def test_a_scan_that_ended_in_time_raises_what_it_raised() -> None:
    s = Scripted()
    scans = HostScans(s.scan, timeout_s=1.0)
    s.answers["host-a"] = DriverError("list_instances: libvirt refused: no")
    s.release["host-a"].set()
    with pytest.raises(DriverError, match="refused: no"):
        await scans.within([A])


@pytest.mark.parametrize("timeout_s", [0.0, -1.0, float("inf"), float("nan")])
def test_a_timeout_that_is_not_a_positive_number_is_refused_naming_it(timeout_s: float) -> None:
    with pytest.raises(ValueError, match=f"not {timeout_s!r}"):
        HostScans(Scripted().scan, timeout_s=timeout_s)
