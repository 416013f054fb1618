"""Operations/ListTickets over a real server on 127.0.0.1:0 (sim driver with real processes): the
tickets of two escalations in one group and one in another, listed all, open only, by group,
newest first, then again once the repair has ended; refusals name the value and leave the bridge
serving; a reply is cut to the message size, newest kept; under mutual TLS only an operator's
certificate may list, a member's not even its own group's tickets."""

from __future__ import annotations

import pytest
import test_bridge
import test_bridge_operations
from test_bridge import CALL_S, DEADLINE_S, Env
from test_bridge_operations import mtls_server, still_serving, tls_client

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeRequestError
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import RepairAction, RepairState, RepairTicket
from vnfha.testing.tls import TestPki

env = test_bridge.env  # GatedSim: vfw-a on h1, vfw-b on h2, dns-a on h3
sim = test_bridge_operations.sim  # vfw-a and dns-a on h1, vfw-b on h2
pki = test_bridge_operations.pki  # members vfw-a, dns-a; clients ops, ops-2, intruder


async def escalate_three(env: Env) -> tuple[RepairTicket, RepairTicket, RepairTicket]:
    """t-1: vfw-a recorded (terminal); t-2: a reboot of vfw-b held in progress; t-3: dns-a
    recorded."""
    env.sim.gate.clear()
    async with env.client("vfw-a") as vfw, env.client("dns-a", group="dns") as dns:
        recorded = await vfw.escalate("vfw-a-1-1", "disk slow", RepairAction.NONE, 1)
        reboot = await vfw.escalate("vfw-a-1-2", "vfw-b hangs", RepairAction.REBOOT, 1,
                                    target_member="vfw-b")
        other = await dns.escalate("dns-a-1-1", "cache stuck", RepairAction.NONE, 1)
    return recorded, reboot, other


def ids(tickets: tuple[RepairTicket, ...]) -> list[str]:
    return [t.ticket_id for t in tickets]


async def test_list_all_open_only_and_by_group_newest_first(env: Env) -> None:
    recorded, reboot, other = await escalate_three(env)
    assert ids((recorded, reboot, other)) == ["t-1", "t-2", "t-3"]
    async with BridgeClient.operator(env.bridge.address, timeout_s=CALL_S) as ops:
        every = await ops.list_tickets()
        assert ids(every.tickets) == ["t-3", "t-2", "t-1"] and every.matched == 3
        assert every.tickets[0] == other and every.tickets[2] == recorded
        (listed,) = (await ops.list_tickets(open_only=True)).tickets
        assert listed.ticket_id == "t-2" and not listed.state.terminal
        assert (listed.member, listed.instance, listed.owner_name, listed.action) == (
            "vfw-b", "vm-vfw-b", "nfvi:sim", RepairAction.REBOOT)
        vfw = await ops.list_tickets(group="vfw")
        assert ids(vfw.tickets) == ["t-2", "t-1"] and vfw.complete
        assert ids((await ops.list_tickets(group="dns", open_only=True)).tickets) == []
        nobody = await ops.list_tickets(group="nobody")
        assert (nobody.tickets, nobody.matched) == ((), 0)
        newest = await ops.list_tickets(limit=1)
        assert ids(newest.tickets) == ["t-3"] and newest.matched == 3 and not newest.complete

        env.sim.gate.set()  # the reboot ends
        final = reboot
        async with env.client("vfw-a") as vfw_a:
            async for t in vfw_a.watch_repair(reboot.ticket_id, timeout_s=DEADLINE_S):
                final = t
        assert final.state is RepairState.SUCCEEDED
        assert (await ops.list_tickets(open_only=True)).matched == 0
        (ended,) = (await ops.list_tickets(group="vfw", limit=1)).tickets
        assert ended == final and ended.version == 3  # queued, in progress, succeeded


@pytest.mark.parametrize(("group", "limit", "names"), [
    ("g" * 257, None, "group is 257 bytes, over the limit of 256"),
    (None, 1001, "limit=1001 is over the bridge's maximum of 1000"),
    ("vfw", 2**32 - 1, "limit=4294967295"),
])
async def test_bad_filters_are_refused_naming_the_value(env: Env, group: str | None,
                                                        limit: int | None, names: str) -> None:
    async with BridgeClient.operator(env.bridge.address, timeout_s=CALL_S) as ops:
        with pytest.raises(BridgeRequestError) as e:
            await ops.list_tickets(group=group, limit=limit)
        assert e.value.code == "INVALID_ARGUMENT" and names in str(e.value)
        assert (await ops.list_tickets(limit=1000)).matched == 0
    await still_serving(env.bridge)


async def test_a_reply_is_cut_to_the_message_size_keeping_the_newest(sim: SimDriver) -> None:
    async with BridgeServer(sim, max_message_bytes=4096) as bridge:
        async with BridgeClient(bridge.address, group="vfw", member="vfw-a",
                                timeout_s=CALL_S) as c:
            for n in range(1, 31):
                await c.escalate(f"{n:03}-" + "k" * 200, "noted", RepairAction.NONE, 1)
        async with BridgeClient.operator(bridge.address, timeout_s=CALL_S) as ops:
            listing = await ops.list_tickets(limit=30)
    assert listing.matched == 30 and 1 < len(listing.tickets) < 30
    assert ids(listing.tickets) == [f"t-{n}" for n in range(30, 30 - len(listing.tickets), -1)]


async def test_mutual_tls_lists_for_operators_only(sim: SimDriver, pki: TestPki) -> None:
    async with mtls_server(sim, pki, frozenset({"ops"})) as bridge:
        async with tls_client(bridge, pki, "vfw-a", group="vfw", member="vfw-a") as member:
            ticket = await member.escalate("vfw-a-1-1", "disk slow", RepairAction.NONE, 1)
            with pytest.raises(BridgeRequestError) as e:  # not even its own group's
                await member.list_tickets(group="vfw")
            assert e.value.code == "PERMISSION_DENIED" and "'vfw-a'" in str(e.value)
        async with tls_client(bridge, pki, "ops") as ops:
            assert (await ops.list_tickets()).tickets == (ticket,)
        for cert_of in ("dns-a", "intruder", "ops-2"):  # ops-2: a CA-signed name not listed
            async with tls_client(bridge, pki, cert_of) as c:
                with pytest.raises(BridgeRequestError) as e:
                    await c.list_tickets()
                assert e.value.code == "PERMISSION_DENIED", cert_of
                assert repr(cert_of) in str(e.value)
                with pytest.raises(BridgeRequestError) as e:  # fields are checked first
                    await c.list_tickets(limit=5000)
                assert e.value.code == "INVALID_ARGUMENT", cert_of
