"""Network/MoveAddress and GetAddress (issue 18 item 3), the NFVI's way to move a service
address, over a real bridge on 127.0.0.1:0 with the sim driver (real processes): the active's
move is confirmed, recorded by the sim (its "port binding") and reported to the group
(ADDRESS_MOVED); the epoch fences it like every acting call (a stale epoch is refused and the
holder stays); a repeat changes nothing; bad input is INVALID_ARGUMENT naming the value and the
bridge keeps serving; the libvirt driver says clearly that it cannot; a driver failure changes
nothing; the rule itself is checked as a table."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from driver_rigs import Rig
from test_bridge_operations import watching

from vnfha import grpc_health
from vnfha.bridge.address_book import AddressBook, Bound, Holder, MoveRefusal, decide
from vnfha.bridge.core import BridgeLimits
from vnfha.bridge.drivers.driver import DriverError, HostDown, UnknownInstance
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.bridge.state import StateStore
from vnfha.errors import BridgeRequestError, NfviError, StaleEpochRejected
from vnfha.net.address import ServiceAddress
from vnfha.nfvi import wire
from vnfha.nfvi.client import BridgeClient, NoBridge
from vnfha.nfvi.model import (
    AddressBinding,
    AddressMove,
    EventKind,
    WatchdogAction,
)
from vnfha.nfvi.wire import METHODS, Caller, Refused, pb
from vnfha.testing.tls import make_test_pki
from vnfha.testing.waiting import until

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
DEADLINE_S = 10.0
CALL_S = 5.0
MAX_BYTES = 16 * 1024
ADDRESS = "198.51.100.100/24"
SERVICE = ServiceAddress.parse(ADDRESS)


async def launch(driver: SimDriver) -> None:
    """vfw-a on h1 and vfw-b on h2 (group vfw), dns-a on h3 (group dns)."""
    for name, group, host in (("vfw-a", "vfw", "h1"), ("vfw-b", "vfw", "h2"),
                              ("dns-a", "dns", "h3")):
        await driver.launch(f"vm-{name}", group=group, member=name, host=host, argv=SLEEPER)


@pytest.fixture
async def sim() -> AsyncIterator[SimDriver]:
    driver = SimDriver()
    try:
        await launch(driver)
        yield driver
    finally:
        await driver.close()


@pytest.fixture
async def bridge(sim: SimDriver) -> AsyncIterator[BridgeServer]:
    async with BridgeServer(sim, max_message_bytes=MAX_BYTES) as server:
        yield server


def member(bridge: BridgeServer, name: str, group: str = "vfw") -> BridgeClient:
    return BridgeClient(bridge.address, group=group, member=name, timeout_s=CALL_S)


async def still_serving(bridge: BridgeServer) -> None:
    """Health says SERVING, and a good move and a read are still answered."""
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        assert await grpc_health.probe(channel, timeout_s=CALL_S) \
            is grpc_health.ServingStatus.SERVING
    async with member(bridge, "dns-a", "dns") as dns:
        moved = await dns.move_address("203.0.113.7/24", 1)
        assert moved.binding.instance == "vm-dns-a"
        assert (await dns.get_address("203.0.113.7/24")).member == "dns-a"


# -- the move, its report, its fencing --------------------------------------------------------


async def test_the_active_moves_the_address_and_it_is_reported(
        bridge: BridgeServer, sim: SimDriver) -> None:
    async with AsyncExitStack() as stack:
        (standby,) = await watching(bridge, stack, ("vfw", "vfw-b"))
        a = await stack.enter_async_context(member(bridge, "vfw-a"))
        assert (await a.get_address(SERVICE)) == AddressBinding(ADDRESS)
        moved = await a.move_address(SERVICE, 5)
        assert moved == AddressMove(AddressBinding(ADDRESS, "vfw-a", "vm-vfw-a", "h1", 5),
                                    previous_member=None, changed=True)
        event = await standby.next()
        assert (event.kind, event.address, event.member, event.instance, event.host,
                event.epoch) == (EventKind.ADDRESS_MOVED, ADDRESS, "vfw-a", "vm-vfw-a", "h1", 5)
        assert "198.51.100.100/24 moved to member 'vfw-a'" in event.detail
        assert await sim.address_holder(SERVICE) == "vm-vfw-a"
        assert await a.get_address(ADDRESS) == moved.binding
        # another group sees the address as not its own (and hears nothing of it)
        async with member(bridge, "dns-a", "dns") as dns:
            assert not (await dns.get_address(ADDRESS)).bound


async def test_a_newer_epoch_takes_it_over_and_an_older_one_is_refused(
        bridge: BridgeServer, sim: SimDriver) -> None:
    async with AsyncExitStack() as stack:
        (watch,) = await watching(bridge, stack, ("vfw", "vfw-a"))
        a = await stack.enter_async_context(member(bridge, "vfw-a"))
        b = await stack.enter_async_context(member(bridge, "vfw-b"))
        await a.move_address(SERVICE, 5)
        taken = await b.move_address(SERVICE, 6)
        assert (taken.binding.member, taken.binding.epoch, taken.previous_member,
                taken.changed) == ("vfw-b", 6, "vfw-a", True)
        assert [(e.member, e.epoch) for e in (await watch.next(), await watch.next())] == [
            ("vfw-a", 5), ("vfw-b", 6)]
        # the deposed active's retry: refused, naming both epochs; the holder stays
        with pytest.raises(StaleEpochRejected) as stale:
            await a.move_address(SERVICE, 5)
        assert (stale.value.epoch, stale.value.highest) == (5, 6)
        assert "epoch 5 is stale" in str(stale.value) and "epoch 6" in str(stale.value)
        assert await sim.address_holder(SERVICE) == "vm-vfw-b"
        assert (await a.get_address(SERVICE)).member == "vfw-b"
        # the fence is the group's: the deposed active's other acting calls are refused too
        with pytest.raises(StaleEpochRejected):
            await a.kick(5)
        # and the new active, deposed in turn, loses it to a newer epoch of either member
        again = await a.move_address(SERVICE, 9)
        assert (again.previous_member, await sim.address_holder(SERVICE)) == ("vfw-b",
                                                                              "vm-vfw-a")


async def test_the_stale_refusal_on_the_wire(bridge: BridgeServer) -> None:
    async with member(bridge, "vfw-b") as b, \
            grpc.aio.insecure_channel(bridge.address) as channel:
        await b.move_address(SERVICE, 6)
        move = channel.unary_unary(METHODS["MoveAddress"].path,
                                   request_serializer=pb.MoveAddressRequest.SerializeToString,
                                   response_deserializer=pb.MoveAddressReply.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await move(pb.MoveAddressRequest(caller=pb.Caller(group="vfw", member="vfw-a",
                                                              epoch=5), address=ADDRESS),
                       timeout=CALL_S)
        assert e.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert dict(e.value.trailing_metadata() or ()) == {  # type: ignore[arg-type]
            "vnfha-reason": "stale-epoch", "vnfha-highest-epoch": "6"}
        assert "'vfw-a'" in (e.value.details() or "")


async def test_the_same_move_again_changes_nothing_and_publishes_nothing(
        bridge: BridgeServer, sim: SimDriver) -> None:
    v6 = "fd00:5a::10/64"
    async with AsyncExitStack() as stack:
        (watch,) = await watching(bridge, stack, ("vfw", "vfw-b"))
        a = await stack.enter_async_context(member(bridge, "vfw-a"))
        b = await stack.enter_async_context(member(bridge, "vfw-b"))
        first = await a.move_address(v6, 5)
        # the same address spelled otherwise (upper case, zeros) is the same address
        repeat = await a.move_address("FD00:5A:0::10/64", 5)
        assert (first.changed, repeat.changed) == (True, False)
        assert repeat.binding == first.binding and repeat.previous_member == "vfw-a"
        assert first.binding.address == v6
        # another prefix: the same IP, so the same address (a repeat, recorded with /80)
        assert not (await a.move_address("fd00:5a::10/80", 5)).changed
        await b.move_address(v6, 6)
        events = [await watch.next(), await watch.next()]
        assert [(e.kind, e.member, e.epoch) for e in events] == [
            (EventKind.ADDRESS_MOVED, "vfw-a", 5), (EventKind.ADDRESS_MOVED, "vfw-b", 6)]
        assert await sim.address_holder(ServiceAddress.parse(v6)) == "vm-vfw-b"


async def test_one_epoch_moves_the_address_to_one_member(
        bridge: BridgeServer, sim: SimDriver) -> None:
    async with member(bridge, "vfw-a") as a, member(bridge, "vfw-b") as b:
        await a.move_address(SERVICE, 7)
        # vfw-b presents the same epoch (a standby fences in the active's epoch): not a grant
        with pytest.raises(BridgeRequestError) as e:
            await b.move_address(SERVICE, 7)
        assert (e.value.code, e.value.reason) == ("FAILED_PRECONDITION", "epoch-conflict")
        assert "epoch 7 already moved address 198.51.100.100/24 to member 'vfw-a'" in str(e.value)
        assert await sim.address_holder(SERVICE) == "vm-vfw-a"


async def test_an_address_of_another_group_is_refused(
        bridge: BridgeServer, sim: SimDriver) -> None:
    async with member(bridge, "dns-a", "dns") as dns, member(bridge, "vfw-a") as a:
        await dns.move_address(SERVICE, 3)
        with pytest.raises(BridgeRequestError) as e:
            await a.move_address(SERVICE, 70)  # a far higher epoch: of another group
        assert (e.value.code, e.value.reason) == ("FAILED_PRECONDITION", "address-in-use")
        assert "'vm-dns-a' of group 'dns'" in str(e.value)
        assert await sim.address_holder(SERVICE) == "vm-dns-a"
        assert not (await a.get_address(SERVICE)).bound


class GatedSim(SimDriver):
    """A sim whose first move of an address waits for ``gate`` (a slow cloud API)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.moving = 0

    async def move_address(self, group: str, address: ServiceAddress, instance: str) -> None:
        self.moving += 1
        if self.moving == 1:
            await self.gate.wait()
        await super().move_address(group, address, instance)


async def test_a_stale_move_waiting_behind_another_is_refused_when_its_turn_comes() -> None:
    """A retry in epoch 5 passes the epoch check and waits for the address while the first
    move is in the (slow) driver; meanwhile epoch 6 speaks. When its turn comes the retry is
    refused: it is never applied after the newer epoch."""
    sim = GatedSim()
    try:
        await launch(sim)
        async with BridgeServer(sim) as bridge:
            moves = bridge.core.addresses
            a5, b6 = Caller("vfw", "vfw-a", 5), Caller("vfw", "vfw-b", 6)
            first = asyncio.ensure_future(moves.move(a5, None, SERVICE))
            await until(lambda: sim.moving == 1, what="the first move in the driver")
            retry = asyncio.ensure_future(moves.move(a5, None, SERVICE))
            other = ServiceAddress.parse("198.51.100.101/24")  # not held up: another address
            assert (await moves.move(b6, None, other)).binding.epoch == 6
            sim.gate.set()
            assert (await asyncio.wait_for(first, DEADLINE_S)).binding.member == "vfw-a"
            with pytest.raises(Refused) as e:
                await asyncio.wait_for(retry, DEADLINE_S)
            assert e.value.code == "FAILED_PRECONDITION"
            assert e.value.metadata == {"vnfha-reason": "stale-epoch",
                                        "vnfha-highest-epoch": "6"}
            assert "epoch 5 is stale: group 'vfw' is at epoch 6" in e.value.message
            assert sim.moving == 2  # the retry never reached the driver
            assert (await moves.move(b6, None, SERVICE)).previous_member == "vfw-a"
    finally:
        await sim.close()


class BrokenSim(SimDriver):
    """A sim whose network API fails, or hangs (``hang``)."""

    def __init__(self, *, hang: bool) -> None:
        super().__init__()
        self.hang = hang

    async def move_address(self, group: str, address: ServiceAddress, instance: str) -> None:
        if self.hang:
            await asyncio.Event().wait()
        raise DriverError(f"port update for {address} on {instance} refused by the cloud",
                          instance=instance, operation="move_address")


@pytest.mark.parametrize("hang", [False, True], ids=["fails", "hangs"])
async def test_a_driver_failure_is_internal_and_changes_nothing(hang: bool) -> None:
    sim = BrokenSim(hang=hang)
    try:
        await launch(sim)
        limits = BridgeLimits(address_move_timeout_s=0.2)
        async with BridgeServer(sim, limits=limits) as bridge, AsyncExitStack() as stack:
            (watch,) = await watching(bridge, stack, ("vfw", "vfw-b"))
            a = await stack.enter_async_context(member(bridge, "vfw-a"))
            with pytest.raises(BridgeRequestError) as e:
                await a.move_address(SERVICE, 5)
            assert e.value.code == "INTERNAL"
            words = "refused by the cloud" if hang is False else "did not confirm within 0.2 s"
            assert words in str(e.value) and "198.51.100.100/24" in str(e.value)
            assert not (await a.get_address(SERVICE)).bound
            await sim.fail_host("h1")  # an event after the failed move: the next one heard
            event = await watch.next()
            assert event.kind is EventKind.HOST_DOWN
    finally:
        await sim.close()


async def test_after_a_restart_the_saved_epoch_still_fences(
        sim: SimDriver, tmp_path: Path) -> None:
    state = tmp_path / "bridge.json"
    async with BridgeServer(sim, state=StateStore(state)) as bridge, \
            member(bridge, "vfw-a") as a, member(bridge, "vfw-b") as b:
        await a.move_address(SERVICE, 5)
        await b.move_address(SERVICE, 6)
    async with BridgeServer(sim, state=StateStore(state)) as bridge, \
            member(bridge, "vfw-a") as a, member(bridge, "vfw-b") as b:
        with pytest.raises(StaleEpochRejected):
            await a.move_address(SERVICE, 5)
        # the binding is the driver's, the epoch was the bridge's memory
        assert await a.get_address(SERVICE) == AddressBinding(ADDRESS, "vfw-b", "vm-vfw-b",
                                                              "h2", 0)
        assert (await b.move_address(SERVICE, 6)).changed  # the epoch is news to this bridge
        assert (await a.get_address(SERVICE)).epoch == 6


async def test_under_mutual_tls_a_member_moves_an_address_only_to_itself(
        sim: SimDriver, tmp_path: Path) -> None:
    pki = make_test_pki(str(tmp_path / "pki"), members=["vfw-a", "vfw-b"])
    server = wire.server_credentials(cert_file=pki.server.cert_file,
                                     key_file=pki.server.key_file, ca_file=pki.ca_file,
                                     require_client_cert=True)
    async with BridgeServer(sim, server_credentials=server, require_client_cert=True) as bridge:

        def calling_as(name: str, certificate: str) -> BridgeClient:
            files = pki.members[certificate]
            creds = wire.channel_credentials(ca_file=pki.ca_file, cert_file=files.cert_file,
                                             key_file=files.key_file)
            return BridgeClient(f"localhost:{bridge.port}", group="vfw", member=name,
                                timeout_s=CALL_S, credentials=creds)

        async with calling_as("vfw-a", "vfw-b") as impostor:
            with pytest.raises(BridgeRequestError) as e:
                await impostor.move_address(SERVICE, 5)
            assert e.value.code == "PERMISSION_DENIED" and "'vfw-b'" in str(e.value)
        assert await sim.address_holder(SERVICE) is None
        async with calling_as("vfw-b", "vfw-b") as b:
            assert (await b.move_address(SERVICE, 5)).binding.instance == "vm-vfw-b"


# -- bad input --------------------------------------------------------------------------------


def raw_call(channel: grpc.aio.Channel, method: str) -> Any:
    m = METHODS[method]
    return channel.unary_unary(m.path, request_serializer=lambda r: r if isinstance(
        r, bytes) else r.SerializeToString(), response_deserializer=m.reply.FromString)


BAD_ADDRESSES = [
    ("", "address is required"),
    ("198.51.100.100", "needs a prefix length"),
    ("198.51.100.100/33", "longer than 32 bits"),
    ("198.51.100.100/255.255.255.0", "must be a number of bits"),
    ("198.51.100.100/0", "a /0 prefix"),
    ("not-an-ip/24", "'not-an-ip' is not an IPv4 or IPv6 address"),
    ("127.0.0.1/8", "loopback"),
    ("224.0.0.5/24", "multicast"),
    ("169.254.1.1/16", "link-local"),
    ("198.51.100.0/24", "network address"),
    ("198.51.100.255/24", "broadcast address"),
    ("::ffff:198.51.100.1/120", "IPv4-mapped"),
    ("fe80::1%eth0/64", "zone index"),
    ("198.51.100.100/24@eth0", "without a device"),
    ("198.51.100.100/24\n", "must be a number of bits"),
    ("1" * 300, "address is 300 bytes"),
]


@pytest.mark.parametrize("method", ["MoveAddress", "GetAddress"])
@pytest.mark.parametrize(("text", "words"), BAD_ADDRESSES)
async def test_a_bad_address_is_invalid_argument_naming_it(
        bridge: BridgeServer, method: str, text: str, words: str) -> None:
    request = getattr(pb, f"{method}Request")(
        caller=pb.Caller(group="vfw", member="vfw-a", epoch=5), address=text)
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await raw_call(channel, method)(request, timeout=CALL_S)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = e.value.details() or ""
    assert words in details
    if text and len(text) < 256:
        assert repr(text) in details
    await still_serving(bridge)


BAD_CALLERS = [
    (pb.Caller(group="nope", member="vfw-a", epoch=5), "NOT_FOUND", "'nope'"),
    (pb.Caller(group="vfw", member="ghost", epoch=5), "NOT_FOUND", "'ghost'"),
    (pb.Caller(group="g" * 300, member="vfw-a", epoch=5), "INVALID_ARGUMENT",
     "caller.group is 300 bytes"),
    (pb.Caller(group="vfw", member="", epoch=5), "INVALID_ARGUMENT", "caller.member"),
    (pb.Caller(group="vfw", member="vfw-a", epoch=0), "INVALID_ARGUMENT", "caller.epoch"),
    (None, "INVALID_ARGUMENT", "caller is required"),
]


@pytest.mark.parametrize(("caller", "code", "words"), BAD_CALLERS)
async def test_a_bad_caller_is_refused_naming_it(bridge: BridgeServer, sim: SimDriver,
                                                 caller: Any, code: str, words: str) -> None:
    request = pb.MoveAddressRequest(address=ADDRESS)
    if caller is not None:
        request.caller.CopyFrom(caller)
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await raw_call(channel, "MoveAddress")(request, timeout=CALL_S)
    assert e.value.code() is grpc.StatusCode[code]
    assert words in (e.value.details() or "")
    assert await sim.address_holder(SERVICE) is None
    await still_serving(bridge)


@pytest.mark.parametrize("method", ["MoveAddress", "GetAddress"])
async def test_undecodable_and_oversized_requests(bridge: BridgeServer, method: str) -> None:
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        call = raw_call(channel, method)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(b"\x0a\xff\xff\xff\xff\x0f", timeout=CALL_S)
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert METHODS[method].request.DESCRIPTOR.name in (e.value.details() or "")
        huge = pb.MoveAddressRequest(caller=pb.Caller(group="vfw", member="x" * MAX_BYTES,
                                                      epoch=5), address=ADDRESS)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(huge.SerializeToString(), timeout=CALL_S)
        assert e.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    await still_serving(bridge)


# -- every driver, and no bridge --------------------------------------------------------------


async def test_every_driver_moves_or_says_clearly_that_it_cannot(rig: Rig) -> None:
    async with BridgeServer(rig.driver) as bridge, \
            BridgeClient(bridge.address, group="g1", member="m-a", timeout_s=CALL_S) as a:
        if rig.driver.name == "sim":
            assert (await a.move_address(SERVICE, 3)).binding.instance == "vm-a"
            assert (await a.get_address(SERVICE)).member == "m-a"
            return
        assert rig.driver.name == "libvirt"
        for call in (a.move_address(SERVICE, 3), a.get_address(SERVICE)):
            with pytest.raises(BridgeRequestError) as e:
                await call
            assert (e.value.code, e.value.reason) == ("UNIMPLEMENTED", "not-supported")
            assert "driver libvirt cannot move service addresses" in str(e.value)
        # an unsupported call leaves the group's epoch where it was, and the bridge serving
        assert (await a.arm_watchdog(60, WatchdogAction.NONE, 1)).armed


async def test_the_sim_records_bindings_as_a_cloud_port_would(sim: SimDriver) -> None:
    with pytest.raises(UnknownInstance):
        await sim.move_address("vfw", SERVICE, "vm-nope")
    with pytest.raises(DriverError, match="runs group 'vfw', not 'dns'"):
        await sim.move_address("dns", SERVICE, "vm-vfw-a")
    await sim.move_address("vfw", SERVICE, "vm-vfw-a")
    await sim.move_address("vfw", SERVICE, "vm-vfw-a")  # idempotent
    await sim.power_off("vm-vfw-a")  # a port's binding outlives its VM's power
    assert await sim.address_holder(ServiceAddress.parse("198.51.100.100/25")) == "vm-vfw-a"
    await sim.fail_host("h2")
    with pytest.raises(HostDown, match="'h2' is down"):
        await sim.move_address("vfw", SERVICE, "vm-vfw-b")
    assert await sim.address_holder(SERVICE) == "vm-vfw-a"
    assert await sim.address_holder(ServiceAddress.parse("198.51.100.101/24")) is None


async def test_without_a_bridge_nothing_moves_an_address() -> None:
    port = NoBridge(group="vfw", member="vfw-a")
    with pytest.raises(NfviError, match="no NFVI bridge is configured") as e:
        await port.move_address(SERVICE, 5)
    assert ADDRESS in str(e.value) and e.value.method == "MoveAddress"
    with pytest.raises(NfviError, match="no NFVI bridge"):
        await port.get_address(SERVICE)


# -- the rule (pure) ----------------------------------------------------------------------------


def bound(member: str, epoch: int, group: str = "g") -> Bound:
    return Bound(ADDRESS, group, member, f"vm-{member}", epoch)


RULE = [
    # wanted,        record,            holder (instance, group, member)  -> refusal, changed
    (bound("a", 5), None, None, None, True),
    (bound("a", 5), bound("a", 5), Holder("vm-a", "g", "a"), None, False),
    (bound("a", 5), bound("a", 5), None, None, True),  # the driver lost it: bind it again
    (bound("a", 5), bound("a", 5), Holder("vm-b", "g", "b"), None, True),  # drift: take it back
    (bound("b", 6), bound("a", 5), Holder("vm-a", "g", "a"), None, True),
    (bound("a", 6), bound("a", 5), Holder("vm-a", "g", "a"), None, True),  # re-elected
    (bound("a", 4), bound("b", 5), Holder("vm-b", "g", "b"), MoveRefusal.STALE_EPOCH, False),
    (bound("b", 5), bound("a", 5), Holder("vm-a", "g", "a"), MoveRefusal.EPOCH_CONFLICT,
     False),
    (bound("a", 9), None, Holder("vm-x", "h", "x"), MoveRefusal.ADDRESS_IN_USE, False),
    (bound("a", 9), None, Holder("vm-?"), MoveRefusal.ADDRESS_IN_USE, False),
    (bound("a", 1), bound("x", 50, "h"), None, None, True),  # another group's, given up
]


@pytest.mark.parametrize(("wanted", "record", "holder", "refusal", "changed"), RULE)
def test_the_rule_as_a_table(wanted: Bound, record: Bound | None, holder: Holder | None,
                             refusal: MoveRefusal | None, changed: bool) -> None:
    verdict = decide(wanted, record, holder)
    assert (verdict.refusal, verdict.changed) == (refusal, changed)
    assert verdict.accepted is (refusal is None)
    assert ADDRESS in verdict.reason
    if refusal is MoveRefusal.STALE_EPOCH:
        assert "epoch 4 is stale" in verdict.reason and "epoch 5" in verdict.reason


def test_the_book_forgets_the_least_recently_moved_first() -> None:
    book = AddressBook(max_addresses=2)
    assert book.record("x", bound("a", 1)) is None
    assert book.record("y", bound("a", 2)) is None
    assert book.record("x", bound("b", 3)) is None  # x moved again: y is now the oldest
    assert book.record("z", bound("a", 4)) == bound("a", 2)
    assert (len(book), book.get("y"), book.get("x")) == (2, None, bound("b", 3))
    with pytest.raises(ValueError, match="max_addresses=0"):
        AddressBook(max_addresses=0)
