"""Fuzzing the NFVI bridge over a real gRPC channel (a real server on 127.0.0.1:0, the sim
driver with real processes): every method of its six services and grpc.health.v1 on it gets
random bytes and mutated valid requests (bytes flipped, inserted, deleted, truncated,
duplicated; unknown fields of every wire type; a known field sent with another wire type;
invalid UTF-8 in a string; enum fields set to numbers nobody defined; names and texts over
their limits and over the message limit; extreme numbers), while a well-behaved member keeps
calling on the same server.

Checked: every answer is OK or one of the codes the bridge documents (docs/nfvi-bridge.md);
never UNKNOWN, INTERNAL or a hang. The bridge keeps serving: the member's calls succeed
throughout, and after the run a watchdog still fires and its event still reaches a watcher
(the core's timer and event routing survived). Every refusal is counted, its log is bounded (at
most one line per status code per interval, ``vnfha._ratelog``), and nothing logs a traceback
or an error. grpc itself logs a few DEBUG lines per call whatever the request ("Loaded running
loop", "RPC cancelled" for the streams the fuzzer cancels): those are grpc's, not caused by
bad input, and only checked to stay below INFO.

The cases come from a seeded ``random.Random`` (``VNFHA_FUZZ_SEED`` picks another seed and
``VNFHA_FUZZ_CASES`` more cases per method for a bug hunt); a failure names its seed and case
so it can be replayed. Helpers here are shared
with test_fuzz_health.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest

from vnfha import grpc_health
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import DEFAULT_REFUSAL_LOG_INTERVAL_S, BridgeServer
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import (
    BridgeEvent,
    EventKind,
    FenceMode,
    InstanceState,
    RepairAction,
    WatchdogAction,
)
from vnfha.nfvi.wire import DEFAULT_MAX_MESSAGE_BYTES, METHODS, pb
from vnfha.testing.waiting import until

SEED = int(os.environ.get("VNFHA_FUZZ_SEED", "1206"))
PER_TARGET = int(os.environ.get("VNFHA_FUZZ_CASES", "120"))
"""Cases per method (``VNFHA_FUZZ_CASES`` for more in a bug hunt)."""
CALL_S = 10.0
"""Any answer comes within this (a case that hits it is a hang: a finding)."""
SLEEPER = ([shutil.which("sleep") or "sleep", "600"] if shutil.which("sleep") else
           [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"])

BRIDGE_CODES = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ALREADY_EXISTS})
"""What docs/nfvi-bridge.md says a request may be answered (INTERNAL only for a driver or state
file failure, which no request to the sim driver can cause)."""
HEALTH_CODES = frozenset({grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                          grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED})
"""What grpc.health.v1 may answer (vnfha/grpc_health.py): NOT_FOUND for an unknown service,
RESOURCE_EXHAUSTED for a message over the server's limit."""

# -- protobuf on the wire, by hand (so that any byte string can be built) -------------------------

VARINT, FIXED64, LENGTH, GROUP_START, GROUP_END, FIXED32 = 0, 1, 2, 3, 4, 5


def varint(n: int) -> bytes:
    """``n`` as a protobuf varint (negative numbers as their 64-bit two's complement)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes | int = b"") -> bytes:
    """One field: its tag, then ``payload`` as ``wire_type`` wants it (an int for VARINT)."""
    tag = varint(number << 3 | wire_type)
    if wire_type == VARINT:
        return tag + varint(payload if isinstance(payload, int) else len(payload))
    if wire_type == LENGTH:
        data = payload if isinstance(payload, bytes) else varint(payload)
        return tag + varint(len(data)) + data
    if wire_type in (FIXED64, FIXED32):
        width = 8 if wire_type == FIXED64 else 4
        data = payload if isinstance(payload, bytes) else payload.to_bytes(width, "little")
        return tag + data[:width].ljust(width, b"\0")
    return tag  # a group's start or end (deprecated; no payload of its own)


def random_field(rng: random.Random) -> bytes:
    """A field of any number and wire type (valid or not: 6 and 7 do not exist)."""
    number = rng.choice([0, 1, 2, 3, 7, 15, 16, 2047, 2048, (1 << 29) - 1, rng.randrange(1 << 29)])
    wire_type = rng.randrange(8)
    return field(number, wire_type, rng.randbytes(rng.choice([0, 1, 4, 8, 100])))


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one to four byte-level changes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # replace a byte
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 2:  # insert random bytes
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and out:  # delete a range
            out[at:at + rng.randint(1, 8)] = b""
        elif op == 4:  # truncate
            del out[at:]
        elif op == 5 and out:  # duplicate a range
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 16)]
        elif op == 6:  # an unknown (or malformed) field, anywhere
            out[at:at] = random_field(rng)
        else:  # the same field twice: the last one wins, or fights the first
            out += data
    return bytes(out)


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 2, 5, 17, 64, 300, 2000]))


# -- hostile values for a message's fields, by type ----------------------------------------------

Fd = Any  # google.protobuf.descriptor.FieldDescriptor


def hostile_string(rng: random.Random) -> str:
    return rng.choice([
        "", "\0", "vfw\0", "vfw-a\n", " vfw", "VFW", "é" * 129, "x" * 257, "x" * 4097,
        "x" * (DEFAULT_MAX_MESSAGE_BYTES + 1), "\U0001f600" * 65, "\u202evfw", "t-0", "t-999999",
        "t--1", "h1", "h9", "vfw", "vfw-a", "vfw-b",
        "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD800),
                                rng.randrange(0xE000, 0x110000)]))
                for _ in range(rng.randint(1, 40)))])


def hostile_number(rng: random.Random, fd: Fd) -> int | float:
    values: list[int | float]
    if fd.type == fd.TYPE_ENUM:
        values = [0, -1, 6, 99, (1 << 31) - 1, -(1 << 31), rng.randint(-1000, 1000),
                  *[v.number for v in fd.enum_type.values]]
    elif fd.type == fd.TYPE_UINT64:
        values = [0, 1, 2, (1 << 63), (1 << 64) - 1, rng.randrange(1 << 64), 10, 11]
    elif fd.type == fd.TYPE_UINT32:
        values = [0, 1, 9, 10, 3_600_000, 3_600_001, (1 << 32) - 1, rng.randrange(1 << 32)]
    elif fd.type == fd.TYPE_DOUBLE:
        values = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1e-9, -1.0, 1.0, 604_800.0,
                  604_800.001, 1e308, rng.uniform(-1e6, 1e6)]
    elif fd.type == fd.TYPE_BOOL:  # any other varint on the wire: the byte mutations send it
        values = [False, True]
    else:
        raise AssertionError(f"no hostile values for {fd.full_name} (type {fd.type})")
    return rng.choice(values)


def set_hostile(rng: random.Random, message: Any) -> None:
    """Set one field of ``message`` (or of a field that is a message) to a hostile value."""
    fd = rng.choice(message.DESCRIPTOR.fields)
    value = getattr(message, fd.name)
    if fd.type == fd.TYPE_MESSAGE:
        if rng.random() < 0.2:
            message.ClearField(fd.name)
        else:
            set_hostile(rng, value)
    elif hasattr(value, "extend"):  # a repeated enum
        value.extend(hostile_number(rng, fd) for _ in range(rng.choice([1, 3, 100, 20_000])))
    elif fd.type == fd.TYPE_STRING:
        setattr(message, fd.name, hostile_string(rng))
    else:
        setattr(message, fd.name, hostile_number(rng, fd))


def wrong_types(rng: random.Random, message: Any) -> bytes:
    """``message`` with a known field added again with another wire type, or a string field
    holding invalid UTF-8 (at any depth)."""
    data: bytes = message.SerializeToString()
    fd = rng.choice(message.DESCRIPTOR.fields)
    if fd.type == fd.TYPE_MESSAGE and rng.random() < 0.5:
        inner = wrong_types(rng, getattr(message, fd.name))
        return data + field(fd.number, LENGTH, inner)
    if fd.type == fd.TYPE_STRING and rng.random() < 0.5:
        return data + field(fd.number, LENGTH, rng.choice([b"\xff", b"vfw\xc3", b"\xed\xa0\x80",
                                                           b"\xc0\x80", b"a\xfe\xfeb"]))
    native = LENGTH if fd.type in (fd.TYPE_MESSAGE, fd.TYPE_STRING) or hasattr(
        getattr(message, fd.name), "extend") else FIXED64 if fd.type == fd.TYPE_DOUBLE else VARINT
    other = rng.choice([t for t in (VARINT, FIXED64, LENGTH, FIXED32, GROUP_START) if t != native])
    return data + field(fd.number, other, rng.randbytes(rng.choice([0, 1, 8, 9])))


# -- sending a case and reading its outcome ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A method to fuzz: its path, whether it streams, valid requests, the codes it may answer,
    and (for a stream that may stay open with nothing to send) how to tell it was accepted."""

    path: str
    streaming: bool
    valid: tuple[Any, ...]
    codes: frozenset[grpc.StatusCode]
    opened: Callable[[], int] | None = None


@dataclass(frozen=True)
class Case:
    target: Target
    kind: str
    data: bytes

    def describe(self, seed: int, index: int) -> str:
        shown = self.data[:120].hex() + ("..." if len(self.data) > 120 else "")
        return (f"seed {seed} case {index}: {self.target.path} {self.kind}, {len(self.data)} "
                f"bytes {shown}")


def cases(rng: random.Random, targets: list[Target], per_target: int) -> list[Case]:
    """``per_target`` cases for each target, of every kind, shuffled together."""
    out = []
    kinds = ["random bytes", "mutated bytes", "mutated bytes", "hostile field", "hostile field",
             "wrong type"]
    for target in targets:
        for i in range(per_target):
            kind = kinds[i % len(kinds)]
            valid = rng.choice(target.valid)
            if kind == "random bytes":
                data = random_bytes(rng)
            elif kind == "mutated bytes":
                data = mutate_bytes(rng, _serialize(valid))
            elif kind == "hostile field" and not isinstance(valid, bytes):
                message = type(valid)()
                message.CopyFrom(valid)
                for _ in range(rng.randint(1, 3)):
                    set_hostile(rng, message)
                data = message.SerializeToString()
            elif kind == "wrong type" and not isinstance(valid, bytes):
                data = wrong_types(rng, valid)
            else:  # grpc.health.v1 messages are bytes: health_cases() covers their fields
                data = mutate_bytes(rng, _serialize(valid))
            out.append(Case(target, kind, data))
    rng.shuffle(out)
    return out


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


async def send(channel: grpc.aio.Channel, case: Case) -> grpc.StatusCode:
    """Send the case; its status (OK for a stream once it sent an item, or held it open)."""
    if not case.target.streaming:
        unary = channel.unary_unary(case.target.path, request_serializer=None,
                                    response_deserializer=None)
        try:
            await unary(case.data, timeout=CALL_S)
        except grpc.aio.AioRpcError as e:
            return e.code()
        return grpc.StatusCode.OK
    call = channel.unary_stream(case.target.path, request_serializer=None,
                                response_deserializer=None)(case.data, timeout=CALL_S)
    first = asyncio.ensure_future(call.read())
    opened = case.target.opened
    try:
        await until(lambda: first.done() or (opened is not None and opened() > 0), CALL_S,
                    f"an answer to {case.target.path}", poll_s=0.002)
        if not first.done():
            return grpc.StatusCode.OK  # accepted: open, with nothing to send yet
        try:
            item = first.result()
        except grpc.aio.AioRpcError as e:
            return e.code()
        if item is grpc.aio.EOF:  # type: ignore[attr-defined] # (not in grpc-stubs)
            return await call.code()
        return grpc.StatusCode.OK
    finally:
        call.cancel()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        if opened is not None:  # the server ends a cancelled stream (and forgets it)
            await until(lambda: opened() == 0, CALL_S, f"{case.target.path} stream closed",
                        poll_s=0.002)


@dataclass
class Run:
    """What a fuzz run saw: each case's status, the failures, and how long it took."""

    seen: Counter[tuple[str, grpc.StatusCode]]
    failures: list[str]
    elapsed_s: float


async def fuzz(channel: grpc.aio.Channel, all_cases: list[Case], seed: int) -> Run:
    seen: Counter[tuple[str, grpc.StatusCode]] = Counter()
    failures = []
    began = time.monotonic()
    for index, case in enumerate(all_cases):
        try:
            code = await send(channel, case)
        except AssertionError as e:  # a stream that hung
            raise AssertionError(f"{e}: {case.describe(seed, index)}") from None
        seen[case.target.path, code] += 1
        if code not in case.target.codes:
            failures.append(f"{code.name} for {case.describe(seed, index)}")
    return Run(seen, failures, time.monotonic() - began)


@dataclass(frozen=True)
class LogReport:
    """The captured log, sorted out: lines with a traceback or at ERROR and above, grpc's lines
    at INFO and above, and refusal lines per (logger, kind)."""

    bad: list[str]
    grpc_loud: list[str]
    refusal_lines: Counter[tuple[str, str]]


REFUSED = re.compile(r"refused \((\w+)\)")
"""How the bridge and the health service log a refusal: ``refused (CODE)``."""


def sort_log(records: list[logging.LogRecord], refusal_loggers: tuple[str, ...]) -> LogReport:
    bad, loud = [], []
    lines: Counter[tuple[str, str]] = Counter()
    for r in records:
        text = f"{r.levelname} {r.name}: {r.getMessage()}"
        if r.exc_info or r.exc_text or r.stack_info or "Traceback" in text \
                or r.levelno >= logging.ERROR:
            bad.append(text)
        if r.name.startswith("grpc") and r.levelno >= logging.INFO:
            loud.append(text)
        refused = REFUSED.search(r.getMessage())
        if r.name in refusal_loggers and refused:
            lines[r.name, refused[1]] += 1
    return LogReport(bad, loud, lines)


def max_lines_per_kind(elapsed_s: float) -> int:
    """The rate limit's promise over a run of ``elapsed_s``: one line per kind per interval."""
    return int(elapsed_s // DEFAULT_REFUSAL_LOG_INTERVAL_S) + 1


# -- the bridge under fuzz ------------------------------------------------------------------------


def caller(member: str = "vfw-a", epoch: int = 1, group: str = "vfw") -> Any:
    return pb.Caller(group=group, member=member, epoch=epoch)


TOP_EPOCH = (1 << 64) - 1
"""The valid requests' epoch: no mutation can raise the group's above it, so they stay
current, and the acting methods get past the epoch check to their own."""


def valid_requests() -> dict[str, tuple[Any, ...]]:
    """Requests each method accepts (most of the time: a kick finds its watchdog fired, an
    escalation finds a repair running)."""
    c, b, read = caller(epoch=TOP_EPOCH), caller("vfw-b", TOP_EPOCH), caller(epoch=0)
    return {
        "Arm": (pb.ArmRequest(caller=c, timeout_ms=60_000, action=pb.WATCHDOG_ACTION_NONE),
                pb.ArmRequest(caller=b, timeout_ms=50, action=pb.WATCHDOG_ACTION_RESET)),
        "Kick": (pb.KickRequest(caller=c), pb.KickRequest(caller=b)),
        "Disarm": (pb.DisarmRequest(caller=c), pb.DisarmRequest(caller=b)),
        "GetPlacement": (pb.GetPlacementRequest(caller=read),),
        "CheckPolicy": (pb.CheckPolicyRequest(caller=read,
                                              policy=pb.PLACEMENT_POLICY_ANTI_AFFINITY),),
        "Fence": (pb.FenceRequest(caller=b, target_member="vfw-a", mode=pb.FENCE_MODE_STOP,
                                  reason="fuzz"),
                  pb.FenceRequest(caller=c, target_member="vfw-b", mode=pb.FENCE_MODE_KILL)),
        "Escalate": (pb.EscalateRequest(caller=c, idempotency_key="k1", fault="fuzz",
                                        requested=pb.REPAIR_ACTION_NONE),
                     pb.EscalateRequest(caller=b, idempotency_key="k2", fault="fuzz",
                                        target_member="vfw-a", requested=pb.REPAIR_ACTION_REBOOT,
                                        tried=[pb.REPAIR_ACTION_RESTART_COMPONENT],
                                        evacuation_policy=pb.PLACEMENT_POLICY_AFFINITY)),
        "WatchRepair": (pb.WatchRepairRequest(caller=read, ticket_id="t-1"),),
        "WatchEvents": (pb.WatchEventsRequest(caller=read),),
        "MoveAddress": (pb.MoveAddressRequest(caller=c, address="198.51.100.100/24"),
                        pb.MoveAddressRequest(caller=b, address="fd00:5a::10/64")),
        "GetAddress": (pb.GetAddressRequest(caller=read, address="198.51.100.100/24"),),
        "PlanMaintenance": (pb.PlanMaintenanceRequest(host="h1", deadline_in_s=3600,
                                                      reason="fuzz"),
                            pb.PlanMaintenanceRequest(host="h2", deadline_in_s=0.5)),
        "ListTickets": (pb.ListTicketsRequest(),
                        pb.ListTicketsRequest(group="vfw", open_only=True, limit=5)),
    }


def bridge_targets(bridge: BridgeServer) -> list[Target]:
    valid = valid_requests()
    targets = [Target(m.path, m.streaming, valid[name], BRIDGE_CODES,
                      (lambda: bridge.core.event_watchers) if name == "WatchEvents" else None)
               for name, m in METHODS.items()]
    health = tuple(grpc_health.encode_request(s) for s in ("", "vnfha.nfvi.v1.Fencing", "nope"))
    targets += [Target(f"/{grpc_health.SERVICE_NAME}/{name}", name == "Watch", health,
                       HEALTH_CODES) for name in ("Check", "Watch")]
    assert {t.path.rsplit("/", 2)[1] for t in targets} == {
        "vnfha.nfvi.v1.Watchdog", "vnfha.nfvi.v1.Placement", "vnfha.nfvi.v1.Fencing",
        "vnfha.nfvi.v1.Faults", "vnfha.nfvi.v1.Network", "vnfha.nfvi.v1.Operations",
        grpc_health.SERVICE_NAME}
    return targets


@pytest.fixture
async def bridge() -> AsyncIterator[BridgeServer]:
    """The bridge over a sim driver: group vfw (vfw-a on h1, vfw-b on h2) for the fuzzer, and
    group dns (dns-a on h3), which only the well-behaved member uses."""
    sim = SimDriver()
    try:
        await sim.launch("vm-a", group="vfw", member="vfw-a", host="h1", argv=SLEEPER)
        await sim.launch("vm-b", group="vfw", member="vfw-b", host="h2", argv=SLEEPER)
        await sim.launch("vm-d", group="dns", member="dns-a", host="h3", argv=SLEEPER)
        async with BridgeServer(sim) as server:
            yield server
    finally:
        await sim.close()


async def well_behaved(address: str, stop: asyncio.Event) -> int:
    """A member calling as it should until ``stop``; every call must succeed. Returns how many
    rounds it made."""
    rounds = 0
    async with BridgeClient(address, group="dns", member="dns-a", timeout_s=CALL_S) as member, \
            grpc.aio.insecure_channel(address) as channel:
        while not stop.is_set():
            armed = await member.arm_watchdog(60, WatchdogAction.NONE, 1)
            assert armed.armed and armed.instance == "vm-d"
            assert (await member.kick(1)).armed
            view = await member.placement()
            assert [(m.member, m.instance) for m in view.members] == [("dns-a", "vm-d")]
            assert await grpc_health.probe(channel, timeout_s=CALL_S) \
                is grpc_health.ServingStatus.SERVING
            rounds += 1
            with contextlib.suppress(TimeoutError):  # a round every 20 ms at most
                await asyncio.wait_for(stop.wait(), 0.02)
        assert not (await member.disarm(1)).armed
    return rounds


async def fired(events: AsyncIterator[BridgeEvent], member: str) -> BridgeEvent:
    """The next WATCHDOG_FIRED of ``member`` (other events, such as a maintenance the fuzzer
    announced on its host, are skipped)."""
    async for event in events:
        if (event.kind, event.member) == (EventKind.WATCHDOG_FIRED, member):
            return event
    raise AssertionError("the events stream ended")


async def the_core_still_works(bridge: BridgeServer) -> None:
    """A watchdog armed now fires, and a watcher hears it: timers and routing survived."""
    async with BridgeClient(bridge.address, group="dns", member="dns-a",
                            timeout_s=CALL_S) as member:
        events = member.watch_events(timeout_s=CALL_S)
        first = asyncio.ensure_future(fired(events, "dns-a"))
        await until(lambda: bridge.core.event_watchers == 1, CALL_S, "the watch is open")
        await member.arm_watchdog(0.05, WatchdogAction.NONE, 2)
        assert "none after 0.05 s without a kick" in (await first).detail
        await events.aclose()  # type: ignore[attr-defined]


async def test_a_pause_watchdog_of_a_fenced_instance_fires_without_an_error(
        bridge: BridgeServer, caplog: pytest.LogCaptureFixture) -> None:
    """Found by fuzzing: vfw-a fences vfw-b (KILL), then vfw-b's watchdog is armed with PAUSE
    and expires. The instance cannot execute already; the bridge used to try to pause it anyway
    and log the driver's refusal ("it is stopped, not running") as an ERROR, and report the
    watchdog as failed to the group, once per expiry, as often as a client arms it."""
    async with BridgeClient(bridge.address, group="vfw", member="vfw-a",
                            timeout_s=CALL_S) as vfw_a, \
            BridgeClient(bridge.address, group="vfw", member="vfw-b",
                         timeout_s=CALL_S) as vfw_b:
        fenced = await vfw_a.fence("vfw-b", 1, FenceMode.KILL, "test")
        assert fenced.state is InstanceState.PAUSED  # confirmed by the pause: the power-off follows
        async with asyncio.timeout(CALL_S):
            while (await bridge.core.driver.get_instance("vm-b")).state is not \
                    InstanceState.STOPPED:
                await asyncio.sleep(0.01)
        events = vfw_a.watch_events(timeout_s=CALL_S)
        first = asyncio.ensure_future(fired(events, "vfw-b"))
        await until(lambda: bridge.core.event_watchers == 1, CALL_S, "the watch is open")
        await vfw_b.arm_watchdog(0.05, WatchdogAction.PAUSE, 1)
        event = await first
        await events.aclose()  # type: ignore[attr-defined]
    assert event.detail.endswith("nothing to do: vm-b is stopped"), event.detail
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert (await bridge.driver.get_instance("vm-b")).state is InstanceState.STOPPED


async def test_fuzzing_every_bridge_method(bridge: BridgeServer,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(SEED)
    async with BridgeClient(bridge.address, group="vfw", member="vfw-a",
                            timeout_s=CALL_S) as vfw_a:  # ticket t-1, for WatchRepair
        ticket = await vfw_a.escalate("k0", "before the fuzz", RepairAction.NONE, 1)
        assert ticket.ticket_id == "t-1"
    all_cases = cases(rng, bridge_targets(bridge), per_target=PER_TARGET)
    stop = asyncio.Event()
    member = asyncio.create_task(well_behaved(bridge.address, stop))
    async with grpc.aio.insecure_channel(bridge.address) as channel:
        try:
            run = await fuzz(channel, all_cases, SEED)
        finally:
            stop.set()
            rounds = await member
    assert run.failures == [], "\n".join(run.failures)
    assert rounds > 0
    await the_core_still_works(bridge)

    codes = Counter(code for (_, code), n in run.seen.items() for _ in range(n))
    assert codes[grpc.StatusCode.OK] > 0 and codes[grpc.StatusCode.INVALID_ARGUMENT] > 0, codes
    # every refusal the bridge made itself is counted (grpc refuses oversized messages before
    # the bridge sees them; health refusals are the health service's)
    health = f"/{grpc_health.SERVICE_NAME}/"
    refused = sum(n for (path, code), n in run.seen.items()
                  if code is not grpc.StatusCode.OK and not path.startswith(health))
    assert sum(bridge.refusals.values()) <= refused
    assert sum(bridge.refusals.values()) >= refused - codes[grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert bridge.health.refusals.get("INVALID_ARGUMENT", 0) > 0

    log = sort_log(caplog.records, ("vnfha.nfvi.server", "vnfha.grpc_health"))
    assert log.bad == [], "\n".join(log.bad[:20])
    assert log.grpc_loud == [], "\n".join(log.grpc_loud[:20])
    most = max_lines_per_kind(run.elapsed_s)
    assert log.refusal_lines, "refusals are logged"
    assert max(log.refusal_lines.values()) <= most, (log.refusal_lines, run.elapsed_s)
    accepted = {path.rsplit("/", 1)[1]: n for (path, code), n in run.seen.items()
                if code is grpc.StatusCode.OK}
    print(f"\n{len(all_cases)} cases in {run.elapsed_s:.1f} s, {rounds} rounds of the member; "
          f"answers {dict(sorted((c.name, n) for c, n in codes.items()))}; accepted {accepted}; "
          f"refusals {dict(bridge.refusals)}, logged in {sum(log.refusal_lines.values())} lines")
