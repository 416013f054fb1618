"""The member's service-address keeper (:mod:`vnfha.roles.addresses`) over a stand-in host:
what it adds, probes and removes, in which order, and what a failure does. The real host
primitives are tested in tests/integration/test_service_address_*."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from vnfha.clock import Clock, SystemClock
from vnfha.metrics import NullMetrics
from vnfha.net import Link, Problem, ServiceAddress, ServiceAddressError
from vnfha.roles.addresses import AddressKeeper
from vnfha.testing import FakeClock
from vnfha.wiring import address_lifetime_s

A = ServiceAddress.parse("198.51.100.100/24")
B = ServiceAddress.parse("fd00:5a::100/64")
MEMBER_MAC = "02:00:00:00:00:0b"


class Host:
    """A host that records every call; ``fail_add`` / ``holder`` script the answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_add: ServiceAddressError | None = None
        self.holder: bytes | None = None
        self.lifetimes: list[int | None] = []
        self.renew_gate: asyncio.Event | None = None  # set: renewals wait for it
        self.fail_renew = False

    async def list_links(self) -> list[Link]:
        return [Link("eth0", [ipaddress.ip_interface("198.51.100.11/24"),
                              ipaddress.ip_interface("fd00:5a::11/64")])]

    def read_mac(self, device: str) -> bytes:
        return bytes.fromhex("020000000001")

    async def add(self, address: ServiceAddress, device: str, *, tolerate: Any,
                  probe_s: float, lifetime_s: int | None = None) -> bool:
        self.calls.append(("add", str(address), probe_s, tuple(tolerate)))
        self.lifetimes.append(lifetime_s)
        if self.fail_add is not None and address == B:
            raise self.fail_add
        return True

    async def remove(self, address: ServiceAddress, device: str) -> bool:
        self.calls.append(("remove", str(address)))
        return True

    async def renew(self, address: ServiceAddress, device: str, lifetime_s: int) -> None:
        self.calls.append(("renew", str(address), lifetime_s))
        if self.renew_gate is not None:
            await self.renew_gate.wait()
            self.calls.append(("renewed", str(address)))
        if self.fail_renew:
            raise ServiceAddressError(str(address), device, Problem.TIMEOUT, "ip hung")

    async def announce(self, device: str, address: ServiceAddress, *, count: int) -> int:
        self.calls.append(("announce", str(address)))
        return count

    async def probe(self, device: str, address: ServiceAddress, *, wait_s: float,
                    tolerate: Any) -> bytes | None:
        self.calls.append(("probe", str(address)))
        return self.holder


def keeper(host: Host, refusals: list[str], tasks: list[asyncio.Task[Any]], *,
           elsewhere: bool = False, lifetime_s: int | None = None,
           clock: Clock | None = None) -> AddressKeeper:
    return AddressKeeper("a", (A, B), clock=clock or SystemClock(), metrics=NullMetrics(),
                         tolerate=lambda: [MEMBER_MAC], held_elsewhere=lambda _: elsewhere,
                         refuse=refusals.append, spawn=tasks.append, probe_s=0.15, host=host,
                         lifetime_s=lifetime_s)


async def test_a_first_claim_probes_before_adding_and_announces_after() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    k = keeper(host, refusals, tasks)
    await k.prepare()
    assert k.macs == ("02:00:00:00:00:01",)
    assert [c[0] for c in host.calls] == ["remove", "remove"]  # leftovers of a crash
    host.calls.clear()
    assert await k.claim(7)
    await asyncio.sleep(0)
    mac = bytes.fromhex(MEMBER_MAC.replace(":", ""))
    assert host.calls[:2] == [("add", str(A), 0.15, (mac,)), ("add", str(B), 0.15, (mac,))]
    assert set(k.held) == {str(A), str(B)} and not refusals


async def test_a_takeover_adds_at_once_and_probes_after() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    k = keeper(host, refusals, tasks, elsewhere=True)
    await k.prepare()
    host.calls.clear()
    assert await k.claim(7)
    await asyncio.gather(*tasks)
    kinds = [(c[0], c[2]) if c[0] == "add" else (c[0],) for c in host.calls]
    assert kinds[:2] == [("add", 0.0), ("add", 0.0)]
    assert ("probe",) in kinds and not refusals


async def test_another_host_found_after_a_takeover_gives_the_addresses_up() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    host.holder = bytes.fromhex("02000000ffff")
    k = keeper(host, refusals, tasks, elsewhere=True)
    await k.prepare()
    assert await k.claim(7)
    await asyncio.gather(*tasks)
    assert k.held == {}
    assert len(refusals) == 1 and "in use by 02:00:00:00:ff:ff" in refusals[0]


async def test_a_failed_add_removes_what_was_added_and_refuses_the_role() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    host.fail_add = ServiceAddressError(str(B), "eth0", Problem.NO_PERMISSION,
                                        "needs CAP_NET_ADMIN")
    k = keeper(host, refusals, tasks)
    await k.prepare()
    host.calls.clear()
    assert not await k.claim(9)
    await asyncio.gather(*tasks)
    assert k.held == {}
    assert ("remove", str(A)) in host.calls
    assert len(refusals) == 1 and "not active in epoch 9" in refusals[0]
    assert "needs CAP_NET_ADMIN" in refusals[0]


async def test_release_removes_everything_held() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    k = keeper(host, refusals, tasks)
    await k.prepare()
    assert await k.claim(7)
    host.calls.clear()
    k.release("deposed")
    await asyncio.gather(*tasks, return_exceptions=True)
    assert k.held == {}
    assert sorted(c for c in host.calls if c[0] == "remove") == [("remove", str(A)),
                                                                  ("remove", str(B))]


async def settled(tasks: list[asyncio.Task[Any]]) -> None:
    """Every task but the announcer (it sleeps on the fake clock) has ended."""
    await asyncio.gather(*(t for t in tasks if not t.get_name().endswith("-announce")),
                         return_exceptions=True)


def renewals(host: Host) -> list[tuple[Any, ...]]:
    return [c for c in host.calls if c[0] == "renew"]


async def test_addresses_get_a_lifetime_renewed_after_confirmed_keepalives() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    clock = FakeClock()
    k = keeper(host, refusals, tasks, lifetime_s=4, clock=clock)
    await k.prepare()
    k.keepalive_confirmed()  # nothing held yet: nothing to renew
    assert await k.claim(7)
    assert host.lifetimes == [4, 4]
    host.calls.clear()
    k.keepalive_confirmed()
    await settled(tasks)
    assert renewals(host) == [("renew", str(A), 4), ("renew", str(B), 4)]
    assert k.renewals == 2
    await clock.advance(0.5)  # keepalives every 0.5 s; renewals at most every lifetime / 4 = 1 s
    k.keepalive_confirmed()
    await settled(tasks)
    assert len(renewals(host)) == 2
    await clock.advance(0.5)
    k.keepalive_confirmed()
    await settled(tasks)
    assert len(renewals(host)) == 4


async def test_without_a_lifetime_nothing_is_renewed() -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    k = keeper(host, refusals, tasks)
    await k.prepare()
    assert await k.claim(7)
    k.keepalive_confirmed()
    await settled(tasks)
    assert host.lifetimes == [None, None] and renewals(host) == []


async def test_a_release_removes_only_after_the_renewal_under_way_has_ended() -> None:
    """A renewal re-adds an absent address (``ip addr change``), so one that ended after the
    removal would put the address back on a host that gave it up."""
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    host.renew_gate = asyncio.Event()
    k = keeper(host, refusals, tasks, lifetime_s=4, clock=FakeClock())
    await k.prepare()
    assert await k.claim(7)
    host.calls.clear()
    k.keepalive_confirmed()
    await asyncio.sleep(0)  # the renewal of A is under way
    k.release("deposed")
    k.keepalive_confirmed()  # released: no new renewal
    await settled(tasks)
    kinds = [c[0] for c in host.calls if c[0] != "announce"]
    assert kinds == ["renew", "remove", "remove"], host.calls  # cancelled, then removed


async def test_a_failed_renewal_is_logged_and_the_next_one_tried(
        caplog: pytest.LogCaptureFixture) -> None:
    host, refusals, tasks = Host(), [], []  # type: ignore[var-annotated]
    host.fail_renew = True
    clock = FakeClock()
    k = keeper(host, refusals, tasks, lifetime_s=4, clock=clock)
    await k.prepare()
    assert await k.claim(7)
    k.keepalive_confirmed()
    await settled(tasks)
    assert k.renewals == 0 and set(k.held) == {str(A), str(B)} and not refusals
    assert f"renewing {A} failed (it goes 4 s after the last renewal)" in caplog.text
    host.fail_renew = False
    await clock.advance(1.0)
    k.keepalive_confirmed()
    await settled(tasks)
    assert k.renewals == 2


def test_the_lifetime_is_twice_the_lease_ttl_in_whole_seconds() -> None:
    assert [address_lifetime_s(t) for t in (2.0, 1.0, 0.6, 2.3, 10.0)] == [4, 2, 2, 5, 20]
