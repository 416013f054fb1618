"""The Operations service: an operator announces a planned maintenance of a host through the
bridge (real server on 127.0.0.1:0, sim driver with real processes), whatever the driver; the
groups on that host receive MAINTENANCE_PLANNED; refusals (unknown host, bad notice, a member's
certificate under mutual TLS) leave the bridge serving. The libvirt half is in the driver-suite
test at the end, which runs on every rig."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack

import grpc
import grpc.aio
import pytest
from driver_rigs import Rig

from vnfha import grpc_health
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeRequestError, BridgeUnavailable
from vnfha.nfvi import wire
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import BridgeEvent, EventKind, MaintenancePlan, NotifiedInstance
from vnfha.nfvi.wire import MAX_MAINTENANCE_NOTICE_S, METHODS, pb
from vnfha.testing.tls import TestPki, make_test_pki
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
DEADLINE_S = 10.0
CALL_S = 5.0
MAX_BYTES = 16 * 1024


@pytest.fixture
async def sim() -> AsyncIterator[SimDriver]:
    """vfw-a and dns-a on h1, vfw-b on h2, nothing on h3 and h4."""
    driver = SimDriver(hosts=["h1", "h2", "h3", "h4"])
    try:
        for name, group, host in (("vfw-a", "vfw", "h1"), ("vfw-b", "vfw", "h2"),
                                  ("dns-a", "dns", "h1")):
            await driver.launch(f"vm-{name}", group=group, member=name, host=host, argv=SLEEPER)
        yield driver
    finally:
        await driver.close()


@pytest.fixture
async def bridge(sim: SimDriver) -> AsyncIterator[BridgeServer]:
    async with BridgeServer(sim, max_message_bytes=MAX_BYTES) as server:
        yield server


class Watch:
    """A WatchEvents stream whose first read is already waiting (so the stream is open)."""

    def __init__(self, stream: AsyncGenerator[BridgeEvent, None]) -> None:
        self._stream = stream
        self._first: asyncio.Task[BridgeEvent] | None = asyncio.ensure_future(anext(stream))

    async def next(self) -> BridgeEvent:
        first, self._first = self._first, None
        return await asyncio.wait_for(first or anext(self._stream), DEADLINE_S)

    async def close(self) -> None:
        if self._first is not None:
            self._first.cancel()
            await asyncio.gather(self._first, return_exceptions=True)
        await self._stream.aclose()


async def watching(bridge: BridgeServer, stack: AsyncExitStack,
                   *members: tuple[str, str]) -> list[Watch]:
    """One WatchEvents stream per (group, member), open on the bridge when this returns."""
    before = bridge.core.event_watchers
    watches = []
    for group, member in members:
        c = await stack.enter_async_context(
            BridgeClient(bridge.address, group=group, member=member, timeout_s=CALL_S))
        stream = c.watch_events()
        assert isinstance(stream, AsyncGenerator)
        watches.append(Watch(stream))
        stack.push_async_callback(watches[-1].close)
    await until(lambda: bridge.core.event_watchers >= before + len(members), what="watches open")
    return watches


async def announced(watch: Watch, plan: MaintenancePlan, members: tuple[str, ...],
                    reason: str) -> None:
    """The watch's next event is ``plan``'s announcement, naming the group's ``members``."""
    event = await watch.next()
    assert event.kind is EventKind.MAINTENANCE_PLANNED
    assert (event.host, event.members) == (plan.host, members)
    assert event.deadline_unix_s == plan.deadline_unix_s
    assert event.sequence == plan.sequence > 0
    assert reason in event.detail


def operator(bridge: BridgeServer) -> BridgeClient:
    return BridgeClient.operator(bridge.address, timeout_s=CALL_S)


async def still_serving(bridge: BridgeServer) -> None:
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        status = await grpc_health.probe(channel, timeout_s=CALL_S)
        assert status is grpc_health.ServingStatus.SERVING
    async with BridgeClient(bridge.address, group="vfw", member="vfw-a",
                            timeout_s=CALL_S) as c:
        assert [m.member for m in (await c.placement()).members] == ["vfw-a", "vfw-b"]


async def test_the_groups_on_the_host_receive_the_announcement(bridge: BridgeServer) -> None:
    async with AsyncExitStack() as stack:
        vfw, dns = await watching(bridge, stack, ("vfw", "vfw-b"), ("dns", "dns-a"))
        async with operator(bridge) as ops:
            before = time.time()
            plan = await ops.plan_maintenance("h1", 600, "kernel upgrade CHG-42")
            after = time.time()
            assert plan.host == "h1"
            assert before + 600 <= plan.deadline_unix_s <= after + 600
            assert plan.instances == (NotifiedInstance("dns", "dns-a", "vm-dns-a"),
                                      NotifiedInstance("vfw", "vfw-a", "vm-vfw-a"))
            await announced(vfw, plan, ("vfw-a",), "kernel upgrade CHG-42")
            await announced(dns, plan, ("dns-a",), "kernel upgrade CHG-42")

            # h2 concerns vfw only: dns's next event is the second h1 announcement
            on_h2 = await ops.plan_maintenance("h2", 30)
            assert on_h2.instances == (NotifiedInstance("vfw", "vfw-b", "vm-vfw-b"),)
            again = await ops.plan_maintenance("h1", 60)
            event = await vfw.next()
            assert (event.host, event.members, event.sequence) == ("h2", ("vfw-b",),
                                                                   on_h2.sequence)
            assert event.detail == "planned maintenance"
            assert (await vfw.next()).sequence == again.sequence
            assert (await dns.next()).sequence == again.sequence

            # a host without instances: nothing to tell, nothing published
            empty = await ops.plan_maintenance("h3", 60)
            assert (empty.instances, empty.sequence) == ((), 0)
    await still_serving(bridge)


async def test_the_sim_drivers_own_announcement_still_arrives(bridge: BridgeServer,
                                                              sim: SimDriver) -> None:
    async with AsyncExitStack() as stack:
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        sim.plan_maintenance("h2", 1_900_000_000.0)
        event = await vfw.next()
        assert event.kind is EventKind.MAINTENANCE_PLANNED
        assert (event.host, event.members, event.deadline_unix_s) == (
            "h2", ("vfw-b",), 1_900_000_000.0)


@pytest.mark.parametrize(("host", "in_s", "reason", "code", "names"), [
    ("h9", 60.0, "", "NOT_FOUND", "'h9'"),
    ("", 60.0, "", "INVALID_ARGUMENT", "host is required"),
    ("h" * 257, 60.0, "", "INVALID_ARGUMENT", "host is 257 bytes"),
    ("h1", 0.0, "", "INVALID_ARGUMENT", "deadline_in_s=0"),
    ("h1", -5.0, "", "INVALID_ARGUMENT", "deadline_in_s=-5"),
    ("h1", math.nan, "", "INVALID_ARGUMENT", "deadline_in_s=nan"),
    ("h1", math.inf, "", "INVALID_ARGUMENT", "deadline_in_s=inf"),
    ("h1", MAX_MAINTENANCE_NOTICE_S + 1, "", "INVALID_ARGUMENT", "over the bridge's limit"),
    ("h1", 60.0, "r" * 4097, "INVALID_ARGUMENT", "reason is 4097 bytes"),
])
async def test_refusals_name_the_value_and_the_bridge_keeps_serving(
        bridge: BridgeServer, host: str, in_s: float, reason: str, code: str,
        names: str) -> None:
    async with AsyncExitStack() as stack:
        (vfw,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        async with operator(bridge) as ops:
            with pytest.raises(BridgeRequestError) as e:
                await ops.plan_maintenance(host, in_s, reason)
            assert e.value.code == code and names in str(e.value)
            # nothing was published: the next event is the next announcement
            good = await ops.plan_maintenance("h1", 60)
        assert (await vfw.next()).sequence == good.sequence
    await still_serving(bridge)


async def test_the_longest_notice_is_accepted(bridge: BridgeServer) -> None:
    async with operator(bridge) as ops:
        plan = await ops.plan_maintenance("h2", MAX_MAINTENANCE_NOTICE_S)
        assert plan.deadline_unix_s > time.time() + MAX_MAINTENANCE_NOTICE_S - 60


OVERSIZED = pb.PlanMaintenanceRequest(host="h" * (MAX_BYTES + 1),
                                      deadline_in_s=60).SerializeToString()


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x0a\xff\xff\xff\xff\x0f", grpc.StatusCode.INVALID_ARGUMENT),
    (OVERSIZED, grpc.StatusCode.RESOURCE_EXHAUSTED),
])
async def test_undecodable_and_oversized_requests(bridge: BridgeServer, raw: bytes,
                                                  code: grpc.StatusCode) -> None:
    m = METHODS["PlanMaintenance"]
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        call = channel.unary_unary(m.path, request_serializer=_same,
                                   response_deserializer=m.reply.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(raw, timeout=CALL_S)
    assert e.value.code() is code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert "PlanMaintenanceRequest" in (e.value.details() or "")
    await still_serving(bridge)


def _same(data: bytes) -> bytes:
    return data


async def test_health_lists_the_operations_service(bridge: BridgeServer) -> None:
    assert "vnfha.nfvi.v1.Operations" in wire.SERVICES
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        status = await grpc_health.probe(channel, "vnfha.nfvi.v1.Operations", timeout_s=CALL_S)
    assert status is grpc_health.ServingStatus.SERVING


async def test_a_member_client_cannot_be_mistaken_for_an_operator_and_vice_versa(
        bridge: BridgeServer) -> None:
    """The operator client has no caller: member calls through it are refused, not guessed."""
    async with operator(bridge) as ops:
        with pytest.raises(BridgeRequestError) as e:
            await ops.placement()
        assert e.value.code == "INVALID_ARGUMENT" and "caller.group" in str(e.value)


# -- mutual TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")), members=["vfw-a", "dns-a"],
                         clients=["ops", "ops-2", "intruder"])


def tls_client(bridge: BridgeServer, pki: TestPki, cert_of: str | None, *, group: str = "",
               member: str = "") -> BridgeClient:
    """A client with ``cert_of``'s certificate: an operator's unless a member is named."""
    files = (pki.members.get(cert_of) or pki.clients.get(cert_of)) if cert_of else None
    creds = wire.channel_credentials(ca_file=pki.ca_file,
                                     cert_file=files.cert_file if files else None,
                                     key_file=files.key_file if files else None)
    return BridgeClient(f"localhost:{bridge.port}", group=group, member=member, timeout_s=2.0,
                        credentials=creds)


def mtls_server(sim: SimDriver, pki: TestPki, operators: frozenset[str]) -> BridgeServer:
    creds = wire.server_credentials(cert_file=pki.server.cert_file,
                                    key_file=pki.server.key_file, ca_file=pki.ca_file,
                                    require_client_cert=True)
    return BridgeServer(sim, server_credentials=creds, require_client_cert=True,
                        operators=operators)


async def test_mutual_tls_admits_only_operator_certificates(sim: SimDriver,
                                                           pki: TestPki) -> None:
    async with mtls_server(sim, pki, frozenset({"ops", "ops-2"})) as bridge:
        events = sim.events()  # the driver's own stream: the operator path must not use it
        for cert_of in ("ops", "ops-2"):
            async with tls_client(bridge, pki, cert_of) as ops:
                plan = await ops.plan_maintenance("h1", 120, "firmware")
                assert [i.member for i in plan.instances] == ["dns-a", "vfw-a"]
        for cert_of in ("vfw-a", "dns-a", "intruder"):  # members' certificates, and a stranger
            async with tls_client(bridge, pki, cert_of) as c:
                with pytest.raises(BridgeRequestError) as e:
                    await c.plan_maintenance("h1", 120)
                assert e.value.code == "PERMISSION_DENIED", cert_of
                assert repr(cert_of) in str(e.value)
                with pytest.raises(BridgeRequestError) as e:  # the host is not revealed
                    await c.plan_maintenance("no-such-host", 120)
                assert e.value.code == "PERMISSION_DENIED", cert_of
        async with tls_client(bridge, pki, None) as anonymous:  # no certificate: no handshake
            with pytest.raises(BridgeUnavailable):
                await anonymous.plan_maintenance("h1", 120)
        async with tls_client(bridge, pki, "vfw-a", group="vfw", member="vfw-a") as member:
            assert [m.member for m in (await member.placement()).members] == ["vfw-a", "vfw-b"]
        await sim.pause("vm-vfw-b")  # the driver's stream saw no maintenance event
        assert (await asyncio.wait_for(anext(events), DEADLINE_S)).kind is EventKind.VM_PAUSED


async def test_mutual_tls_without_operators_admits_nobody(sim: SimDriver,
                                                          pki: TestPki) -> None:
    async with mtls_server(sim, pki, frozenset()) as bridge, \
            tls_client(bridge, pki, "ops") as ops:
        with pytest.raises(BridgeRequestError) as e:
            await ops.plan_maintenance("h1", 120)
        assert e.value.code == "PERMISSION_DENIED"


def test_operators_need_mutual_tls() -> None:
    with pytest.raises(ValueError, match="need require_client_cert"):
        BridgeServer(SimDriver(), operators=frozenset({"ops"}))


# -- every driver ---------------------------------------------------------------------------------


async def test_the_core_announces_maintenance_on_every_driver(rig: Rig) -> None:
    """Driver-agnostic: the bridge itself publishes the event, for libvirt (which has no notion
    of maintenance) as for the simulator. Layout: vm-a (g1/m-a) and vm-c (g2/m-c) on host-a."""
    async with BridgeServer(rig.driver) as bridge, AsyncExitStack() as stack:
        g1, g2 = await watching(bridge, stack, ("g1", "m-b"), ("g2", "m-c"))
        async with operator(bridge) as ops:
            plan = await ops.plan_maintenance("host-a", 300, f"{rig.driver.name} host patch")
            assert plan.instances == (NotifiedInstance("g1", "m-a", "vm-a"),
                                      NotifiedInstance("g2", "m-c", "vm-c"))
            await announced(g1, plan, ("m-a",), f"{rig.driver.name} host patch")
            await announced(g2, plan, ("m-c",), f"{rig.driver.name} host patch")
            with pytest.raises(BridgeRequestError) as e:
                await ops.plan_maintenance("host-z", 300)
            assert e.value.code == "NOT_FOUND" and "'host-z'" in str(e.value)
            assert "host-a, host-b, host-c" in str(e.value)
            empty = await ops.plan_maintenance("host-c", 300)  # listed, but runs nothing
            assert empty.instances == ()

