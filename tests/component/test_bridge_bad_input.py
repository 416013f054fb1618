"""Bad input to every bridge RPC, sent raw (as a buggy or hostile client would): unknown group or
member, invalid enum numbers, missing fields, stale epochs, oversized and undecodable messages.
Each gets its status code and a message naming the value, and the bridge keeps serving."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest

from vnfha import grpc_health
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.nfvi.wire import METHODS, pb

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
CALL_S = 5.0
MAX_BYTES = 16 * 1024
CURRENT_EPOCH = 10


@dataclass
class Raw:
    channel: grpc.aio.Channel
    bridge: BridgeServer

    async def call(self, method: str, request: Any) -> Any:
        """One call; returns the reply (or the list of streamed replies)."""
        m = METHODS[method]
        if m.streaming:
            call = self.channel.unary_stream(m.path, request_serializer=_bytes,
                                             response_deserializer=m.reply.FromString)
            return [r async for r in call(request, timeout=CALL_S)]
        unary = self.channel.unary_unary(m.path, request_serializer=_bytes,
                                         response_deserializer=m.reply.FromString)
        return await unary(request, timeout=CALL_S)

    async def refused(self, method: str, request: Any) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await self.call(method, request)
        return e.value


def _bytes(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    sim = SimDriver()
    try:
        await sim.launch("vm-a", group="vfw", member="vfw-a", host="h1", argv=SLEEPER)
        await sim.launch("vm-b", group="vfw", member="vfw-b", host="h2", argv=SLEEPER)
        async with BridgeServer(sim, max_message_bytes=MAX_BYTES) as bridge, \
                grpc.aio.insecure_channel(bridge.address) as channel:
            r = Raw(channel, bridge)
            # the group is at CURRENT_EPOCH: anything lower is stale
            await r.call("Disarm", pb.DisarmRequest(caller=caller(epoch=CURRENT_EPOCH)))
            yield r
    finally:
        await sim.close()


def caller(group: str = "vfw", member: str = "vfw-a", epoch: int = CURRENT_EPOCH) -> Any:
    return pb.Caller(group=group, member=member, epoch=epoch)


def good(method: str, c: Any = None) -> Any:
    """A valid request of ``method`` (by caller ``c``)."""
    c = c if c is not None else caller()
    return {
        "Arm": lambda: pb.ArmRequest(caller=c, timeout_ms=60_000,
                                     action=pb.WATCHDOG_ACTION_NONE),
        "Kick": lambda: pb.KickRequest(caller=c),
        "Disarm": lambda: pb.DisarmRequest(caller=c),
        "GetPlacement": lambda: pb.GetPlacementRequest(caller=c),
        "CheckPolicy": lambda: pb.CheckPolicyRequest(caller=c,
                                                     policy=pb.PLACEMENT_POLICY_ANTI_AFFINITY),
        "Fence": lambda: pb.FenceRequest(caller=c, target_member="vfw-b",
                                         mode=pb.FENCE_MODE_STOP, reason="test"),
        "Escalate": lambda: pb.EscalateRequest(caller=c, idempotency_key="k", fault="f",
                                               requested=pb.REPAIR_ACTION_NONE),
        "WatchRepair": lambda: pb.WatchRepairRequest(caller=c, ticket_id="t-404"),
        "WatchEvents": lambda: pb.WatchEventsRequest(caller=c),
        "MoveAddress": lambda: pb.MoveAddressRequest(caller=c, address="198.51.100.100/24"),
        "GetAddress": lambda: pb.GetAddressRequest(caller=c, address="198.51.100.100/24"),
    }[method]()


ACTING = ["Arm", "Kick", "Disarm", "Fence", "Escalate", "MoveAddress"]
ALL = [name for name, m in METHODS.items() if m.service != "Operations"]
"""The members' methods (Operations has no caller; test_bridge_operations.py covers it)."""


def mutate(method: str, change: Callable[[Any], None]) -> Any:
    request = good(method)
    change(request)
    return request


async def still_serving(raw: Raw) -> None:
    status = await grpc_health.probe(raw.channel, timeout_s=CALL_S)
    assert status is grpc_health.ServingStatus.SERVING
    reply = await raw.call("GetPlacement", good("GetPlacement"))
    assert [m.member for m in reply.members] == ["vfw-a", "vfw-b"]


@pytest.mark.parametrize("method", ALL)
async def test_unknown_group(raw: Raw, method: str) -> None:
    e = await raw.refused(method, good(method, caller(group="nope")))
    assert e.code() is grpc.StatusCode.NOT_FOUND and "'nope'" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ALL)
async def test_unknown_member(raw: Raw, method: str) -> None:
    e = await raw.refused(method, good(method, caller(member="ghost")))
    assert e.code() is grpc.StatusCode.NOT_FOUND and "'ghost'" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ALL)
async def test_missing_caller(raw: Raw, method: str) -> None:
    e = await raw.refused(method, mutate(method, lambda r: r.ClearField("caller")))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT and "caller" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ALL)
async def test_name_over_the_limit(raw: Raw, method: str) -> None:
    e = await raw.refused(method, good(method, caller(group="g" * 300)))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "caller.group is 300 bytes" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ACTING)
async def test_missing_epoch(raw: Raw, method: str) -> None:
    e = await raw.refused(method, good(method, caller(epoch=0)))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT and "caller.epoch" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ACTING)
async def test_stale_epoch(raw: Raw, method: str) -> None:
    e = await raw.refused(method, good(method, caller(epoch=CURRENT_EPOCH - 1)))
    assert e.code() is grpc.StatusCode.FAILED_PRECONDITION
    details = e.details() or ""
    assert f"epoch {CURRENT_EPOCH - 1} is stale" in details and f"epoch {CURRENT_EPOCH}" in details
    meta = dict(e.trailing_metadata() or ())
    assert meta["vnfha-reason"] == "stale-epoch"
    assert meta["vnfha-highest-epoch"] == str(CURRENT_EPOCH)
    await still_serving(raw)


INVALID_ENUMS = [
    ("Arm", "action", lambda r: setattr(r, "action", 99)),
    ("Arm", "action", lambda r: setattr(r, "action", 0)),
    ("CheckPolicy", "policy", lambda r: setattr(r, "policy", 42)),
    ("CheckPolicy", "policy", lambda r: setattr(r, "policy", 0)),
    ("Fence", "mode", lambda r: setattr(r, "mode", 7)),
    ("Fence", "mode", lambda r: setattr(r, "mode", 0)),
    ("Escalate", "requested", lambda r: setattr(r, "requested", 99)),
    ("Escalate", "requested", lambda r: setattr(r, "requested", pb.REPAIR_ACTION_FAILOVER)),
    ("Escalate", "tried[1]", lambda r: r.tried.extend([pb.REPAIR_ACTION_REBOOT, 77])),
    ("Escalate", "evacuation_policy", lambda r: setattr(r, "evacuation_policy", 0)),
    ("Escalate", "evacuation_policy", lambda r: setattr(r, "evacuation_policy", 12)),
]


@pytest.mark.parametrize(("method", "field", "change"), INVALID_ENUMS)
async def test_invalid_enum(raw: Raw, method: str, field: str,
                            change: Callable[[Any], None]) -> None:
    e = await raw.refused(method, mutate(method, change))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (e.details() or "")
    await still_serving(raw)


MISSING_FIELDS = [
    ("Arm", "timeout_ms", lambda r: r.ClearField("timeout_ms")),
    ("Fence", "target_member", lambda r: r.ClearField("target_member")),
    ("Escalate", "idempotency_key", lambda r: r.ClearField("idempotency_key")),
    ("Escalate", "fault", lambda r: r.ClearField("fault")),
    ("WatchRepair", "ticket_id", lambda r: r.ClearField("ticket_id")),
    ("MoveAddress", "address", lambda r: r.ClearField("address")),
    ("GetAddress", "address", lambda r: r.ClearField("address")),
]


@pytest.mark.parametrize(("method", "field", "change"), MISSING_FIELDS)
async def test_missing_field(raw: Raw, method: str, field: str,
                             change: Callable[[Any], None]) -> None:
    e = await raw.refused(method, mutate(method, change))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"{field} is required" in (e.details() or "")
    await still_serving(raw)


@pytest.mark.parametrize("method", ALL)
async def test_oversized_message(raw: Raw, method: str) -> None:
    request = good(method)
    request.caller.member = "x" * (MAX_BYTES + 1)
    e = await raw.refused(method, request)
    assert e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    await still_serving(raw)


@pytest.mark.parametrize("method", ALL)
async def test_undecodable_bytes(raw: Raw, method: str) -> None:
    e = await raw.refused(method, b"\x0a\xff\xff\xff\xff\x0f")
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert METHODS[method].request.DESCRIPTOR.name in (e.details() or "")
    await still_serving(raw)


async def test_unknown_target_member_and_ticket(raw: Raw) -> None:
    e = await raw.refused("Fence", mutate("Fence", lambda r: setattr(r, "target_member", "zz")))
    assert e.code() is grpc.StatusCode.NOT_FOUND and "'zz'" in (e.details() or "")
    e = await raw.refused("WatchRepair", good("WatchRepair"))
    assert e.code() is grpc.StatusCode.NOT_FOUND and "'t-404'" in (e.details() or "")
    await still_serving(raw)


async def test_watchdog_timeout_out_of_range_and_key_reuse(raw: Raw) -> None:
    e = await raw.refused("Arm", mutate("Arm", lambda r: setattr(r, "timeout_ms", 1)))
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT and "timeout_ms=1" in (e.details() or "")
    await raw.call("Escalate", good("Escalate"))
    reuse = mutate("Escalate", lambda r: setattr(r, "target_member", "vfw-b"))
    e = await raw.refused("Escalate", reuse)
    assert e.code() is grpc.StatusCode.INVALID_ARGUMENT and "'k'" in (e.details() or "")
    await still_serving(raw)


async def test_a_ticket_of_another_group_is_not_found(raw: Raw) -> None:
    await raw.bridge.driver.launch(  # type: ignore[attr-defined]
        "vm-x", group="other", member="x", host="h3", argv=SLEEPER)
    ticket = await raw.call("Escalate", good("Escalate"))
    other = pb.WatchRepairRequest(caller=caller(group="other", member="x"),
                                  ticket_id=ticket.ticket_id)
    e = await raw.refused("WatchRepair", other)
    assert e.code() is grpc.StatusCode.NOT_FOUND
    await still_serving(raw)
