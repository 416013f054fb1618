"""``vnfha bridge tickets`` as an operator runs it (a subprocess) against a bridge this test serves
on 127.0.0.1:0 over the sim driver: the table and ``--json``, the filters, the newest kept by
``--limit``; exit 2 for a bad value (refused by the command or by the bridge), 1 for a
certificate that is not an operator's, 3 for a bridge that cannot be reached."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import test_bridge
import test_bridge_operations
from test_bridge import Env
from test_bridge_operations import mtls_server
from test_bridge_tickets import escalate_three

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.nfvi.model import RepairAction
from vnfha.testing.tls import TestPki

env = test_bridge.env  # GatedSim: vfw-a on h1, vfw-b on h2, dns-a on h3
sim = test_bridge_operations.sim
pki = test_bridge_operations.pki


async def tickets(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command off the event loop, so that the bridge in this process answers it."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "vnfha", "bridge", "tickets", *args],
        check=False, capture_output=True, text=True, timeout=60)


async def test_the_table_json_and_filters(env: Env) -> None:
    await escalate_three(env)  # t-1 vfw-a recorded, t-2 vfw-b reboot in progress, t-3 dns-a
    bridge = ("--bridge", env.bridge.address)

    done = await tickets(*bridge)
    assert done.returncode == 0, done.stderr
    header, *rows, summary = done.stdout.splitlines()
    assert header.split() == ["TICKET", "GROUP", "MEMBER", "INSTANCE", "HOST", "ACTION",
                              "OWNER", "STATE", "EPOCH", "DETAIL"]
    assert [r.split()[:4] for r in rows] == [["t-3", "dns", "dns-a", "vm-dns-a"],
                                             ["t-2", "vfw", "vfw-b", "vm-vfw-b"],
                                             ["t-1", "vfw", "vfw-a", "vm-vfw-a"]]
    assert rows[1].split()[5:7] == ["reboot", "nfvi:sim"]
    assert rows[2].split()[5:8] == ["none", "vfw-a", "recorded"]
    assert "report only" in rows[2]
    assert summary == "3 repair ticket(s), newest first"

    done = await tickets(*bridge, "--open", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["matched"] == 1
    (t,) = out["tickets"]
    assert (t["ticket_id"], t["group"], t["member"], t["action"], t["owner"],
            t["owner_name"], t["open"]) == ("t-2", "vfw", "vfw-b", "reboot", "nfvi", "nfvi:sim",
                                            True)
    assert t["state"] in ("queued", "in-progress") and t["epoch"] == 1

    done = await tickets(*bridge, "--group", "vfw", "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == "t-2"
    assert done.stdout.splitlines()[-1] == ("the newest 1 of 2 repair ticket(s) of group vfw, "
                                            "newest first")
    done = await tickets(*bridge, "--group", "dns", "--open")
    assert (done.returncode, done.stdout) == (0, "no open repair tickets of group dns\n")


async def test_bad_values_exit_2_and_an_unreachable_bridge_3(env: Env) -> None:
    bridge = ("--bridge", env.bridge.address)
    for args, message in ((("--limit", "0"), "--limit 0: must be 1..1000"),
                          (("--limit", "many"), "invalid int value: 'many'"),
                          (("--group", "g" * 300), "ListTickets: group is 300 bytes"),
                          (("--cert-file", "x.crt"), "--cert-file and --key-file go together")):
        done = await tickets(*bridge, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, done.stderr
    with socket.socket() as s:  # a port nobody serves
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    done = await tickets("--bridge", closed, "--timeout-s", "1")
    assert done.returncode == 3, done.stderr
    assert f"bridge unreachable at {closed}" in done.stderr


async def test_mutual_tls_takes_only_an_operator(sim: SimDriver, pki: TestPki) -> None:
    async with mtls_server(sim, pki, frozenset({"ops"})) as bridge:
        async with test_bridge_operations.tls_client(bridge, pki, "vfw-a", group="vfw",
                                                     member="vfw-a") as member:
            await member.escalate("vfw-a-1-1", "disk slow", RepairAction.NONE, 1)

        async def as_cert(files_of: str) -> subprocess.CompletedProcess[str]:
            files = pki.clients.get(files_of) or pki.members[files_of]
            return await tickets("--bridge", f"localhost:{bridge.port}", "--json",
                                 "--ca-file", pki.ca_file, "--cert-file", files.cert_file,
                                 "--key-file", files.key_file)

        done = await as_cert("ops")
        assert done.returncode == 0, done.stderr
        assert [t["ticket_id"] for t in json.loads(done.stdout)["tickets"]] == ["t-1"]
        member_cert = await as_cert("vfw-a")
        assert member_cert.returncode == 1, member_cert.stderr
        assert "PERMISSION_DENIED" in member_cert.stderr and "'vfw-a'" in member_cert.stderr
