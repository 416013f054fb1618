"""Service addresses on real links (``vnfha.net``): three network namespaces, A and C (two
hosts that take turns holding the address) and B (a neighbour, which also carries the bridge
that joins them), in 198.51.100.0/24 and fd00:5a::/64.

The code runs inside A and C in an agent process each (``ip netns exec NS python``), driven
over its stdin; B is looked at with ``ip -n B neigh`` and ``ping``. Shown:

- after add + announce in A, B's neighbour entry (seeded with a stale, wrong MAC, as after an
  earlier holder) points at A's MAC without B sending anything, and B reaches the address;
- C's add of an address A holds is refused "in use by <A's MAC>", unless A's MAC is tolerated
  (a member); after the move (add + announce in C, remove in A) B's entry is C's MAC within a
  second and B reaches the address on C;
- remove is idempotent (absent address, absent device);
- without CAP_NET_ADMIN (bounding set without it) the add is refused naming CAP_NET_ADMIN;
  without any capability the probe is refused naming CAP_NET_RAW.

Needs root and iproute2 (skipped otherwise; ``VNFHA_REQUIRE_NETNS=1`` makes the skip a
failure). Every name carries ``vsa<pid>``; the namespaces (and with them every link, all made
inside them) are deleted by name at the end, and leftovers of dead test processes at the start.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

PREFIX = f"vsa{os.getpid()}"
A, B, C = (f"{PREFIX}{x}" for x in "abc")
V4, V6 = "198.51.100.100/24", "fd00:5a::100/64"
OTHER_V4, OTHER_V6 = "198.51.100.101/24", "fd00:5a::101/64"
BOGUS_MAC = "02:00:00:00:00:99"
COMMAND_TIMEOUT_S = 10.0

AGENT = r"""
import asyncio, json, sys, time
from vnfha.net import (ServiceAddress, ServiceAddressError, add, announce, choose_device,
                       held, list_links, parse_mac, remove, renew)

async def handle(cmd):
    address = ServiceAddress.parse(cmd["address"])
    device = cmd.get("device") or choose_device(address, await list_links())
    op = cmd["op"]
    if op == "add":
        tolerate = [parse_mac(m) for m in cmd.get("tolerate", [])]
        return device, await add(address, device, tolerate=tolerate,
                                 probe_s=cmd.get("probe_s", 0.15),
                                 lifetime_s=cmd.get("lifetime_s"))
    if op == "renew":
        return device, await renew(address, device, cmd["lifetime_s"])
    if op == "announce":
        return device, await announce(device, address, count=cmd.get("count", 3),
                                      interval_s=cmd.get("interval_s", 0.2))
    if op == "remove":
        return device, await remove(address, device)
    if op == "held":
        return device, await held(address, device)
    raise ValueError(op)

for line in sys.stdin:
    cmd = json.loads(line)
    start = time.monotonic()
    try:
        device, result = asyncio.run(handle(cmd))
        reply = {"ok": True, "device": device, "result": result}
    except ServiceAddressError as e:
        reply = {"ok": False, "problem": e.problem.value, "error": str(e), "holder": e.holder}
    reply["ms"] = round((time.monotonic() - start) * 1000, 1)
    print(json.dumps(reply), flush=True)
"""


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "ping", "setpriv") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian: iproute2, iputils-ping, util-linux)"
    return None


def _skip(reason: str) -> None:
    if os.environ.get("VNFHA_REQUIRE_NETNS") == "1":
        pytest.fail(f"VNFHA_REQUIRE_NETNS=1 but: {reason}")
    pytest.skip(reason)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done


def _namespaces() -> list[str]:
    listed = sh("ip", "netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.strip()]


def _delete_leftovers() -> None:
    """Namespaces of earlier runs whose test process is gone."""
    for name in _namespaces():
        found = re.fullmatch(r"vsa([0-9]+)[abc]", name)
        if not found or int(found.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            sh("ip", "netns", "del", name, check=False)


class Agent:
    """One Python process in a namespace running ``vnfha.net`` calls sent as JSON lines."""

    def __init__(self, namespace: str, *wrapper: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *wrapper, sys.executable, "-c", AGENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

    def send(self, **cmd: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, object]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=COMMAND_TIMEOUT_S)
            raise AssertionError(f"no reply from the agent within {timeout_s} s: {err}")
        answer: dict[str, object] = json.loads(line)
        return answer

    def call(self, **cmd: object) -> dict[str, object]:
        self.send(**cmd)
        return self.reply()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=COMMAND_TIMEOUT_S)


@dataclass
class Lab:
    macs: dict[str, str] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def agent(self, namespace: str) -> Agent:
        if namespace not in self.agents:
            self.agents[namespace] = Agent(namespace)
        return self.agents[namespace]


def _build() -> dict[str, str]:
    """The namespaces, the bridge in B, a veth from A and one from C to it; the MACs of A's
    and C's ``eth0``. Every link is made inside a namespace: nothing in the caller's."""
    for ns in (A, B, C):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", B, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
    sh("ip", "-n", B, "link", "set", "br0", "up")
    sh("ip", "-n", B, "addr", "add", "198.51.100.2/24", "dev", "br0")
    sh("ip", "-n", B, "addr", "add", "fd00:5a::2/64", "dev", "br0", "nodad")
    macs = {}
    for ns, host in ((A, 11), (C, 13)):
        port = f"p{ns[-1]}"
        sh("ip", "-n", B, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", B, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "addr", "add", f"198.51.100.{host}/24", "dev", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"fd00:5a::{host}/64", "dev", "eth0", "nodad")
        link = json.loads(sh("ip", "-n", ns, "-j", "link", "show", "eth0").stdout)
        macs[ns] = link[0]["address"]
    return macs


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    reason = _why_not()
    if reason is not None:
        _skip(reason)
    _delete_leftovers()
    probe = sh("ip", "netns", "add", A, check=False)
    if probe.returncode != 0:
        _skip(f"cannot create a network namespace: {probe.stderr.strip()}")
    sh("ip", "netns", "del", A)
    made = Lab()
    try:
        made.macs = _build()
        yield made
    finally:
        for agent in made.agents.values():
            agent.close()
        for ns in (A, B, C):
            sh("ip", "netns", "del", ns, check=False)
        if made.timings:
            print("\nservice address timings (ms):", json.dumps(made.timings))
    assert not [ns for ns in _namespaces() if ns.startswith(PREFIX)]


def host(address: str) -> str:
    """``address`` without its prefix."""
    return address.partition("/")[0]


def neighbour(address: str) -> str | None:
    """B's neighbour entry's MAC for ``address``, or None."""
    ip = host(address)
    entries = json.loads(sh("ip", "-n", B, "-j", "neigh", "show", ip, "dev", "br0").stdout
                         or "[]")
    macs = [entry.get("lladdr") for entry in entries if entry.get("dst") == ip]
    return macs[0] if macs else None


def seed_neighbour(address: str, mac: str) -> None:
    """A stale entry in B for ``address`` at ``mac``, as an earlier holder would leave it."""
    sh("ip", "-n", B, "neigh", "replace", host(address), "lladdr", mac, "dev", "br0", "nud",
       "stale")


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.005)
    return time.monotonic() - start


def b_reaches(address: str) -> bool:
    return sh("ip", "netns", "exec", B, "ping", "-c", "1", "-W", "1", host(address),
              check=False).returncode == 0


def announce_and_wait(lab: Lab, namespace: str, address: str, label: str) -> None:
    """Send ``namespace``'s announcement and time how long B's entry takes to show its MAC."""
    agent = lab.agent(namespace)
    start = time.monotonic()
    agent.send(op="announce", address=address)
    wait_for(lambda: neighbour(address) == lab.macs[namespace], 1.0,
             f"B's entry for {address} moving to {namespace}'s MAC")
    lab.timings[label] = round((time.monotonic() - start) * 1000, 1)
    answer = agent.reply()
    assert answer["ok"] and answer["result"] == 3, answer


@pytest.mark.parametrize("address", [V4, V6])
def test_add_and_announce_moves_the_neighbours_and_a_move_follows(lab: Lab,
                                                                  address: str) -> None:
    family = "v6" if ":" in address else "v4"
    a, c = lab.agent(A), lab.agent(C)
    seed_neighbour(address, BOGUS_MAC)

    added = a.call(op="add", address=address)
    assert added["ok"] and added["result"] is True and added["device"] == "eth0", added
    lab.timings[f"{family} add in A (probe included)"] = added["ms"]  # type: ignore[assignment]
    assert a.call(op="held", address=address)["result"] is True
    assert neighbour(address) == BOGUS_MAC, "the add alone announced nothing"
    announce_and_wait(lab, A, address, f"{family} announce in A -> B's entry is A's MAC")
    assert b_reaches(address)

    refused = c.call(op="add", address=address)
    assert not refused["ok"] and refused["problem"] == "in-use", refused
    lab.timings[f"{family} refused add in C"] = refused["ms"]  # type: ignore[assignment]
    assert refused["holder"] == lab.macs[A], refused
    assert f"in use by {lab.macs[A]}" in str(refused["error"]), refused
    assert c.call(op="held", address=address)["result"] is False

    moved = c.call(op="add", address=address, tolerate=[lab.macs[A]])
    assert moved["ok"] and moved["result"] is True, moved
    lab.timings[f"{family} add in C (A tolerated)"] = moved["ms"]  # type: ignore[assignment]
    announce_and_wait(lab, C, address, f"{family} announce in C -> B's entry is C's MAC")
    assert a.call(op="remove", address=address)["result"] is True
    assert b_reaches(address)
    assert neighbour(address) == lab.macs[C]

    assert a.call(op="remove", address=address)["result"] is False, "absent: nothing to do"
    assert c.call(op="remove", address=address)["result"] is True
    assert c.call(op="remove", address=address)["result"] is False
    gone = c.call(op="remove", address=address, device="nosuch0")
    assert gone["ok"] and gone["result"] is False, gone


@pytest.mark.parametrize("address", [OTHER_V4, OTHER_V6])
def test_an_address_with_a_lifetime_goes_unless_renewed(lab: Lab, address: str) -> None:
    a = lab.agent(A)
    added = a.call(op="add", address=address, probe_s=0, lifetime_s=2)
    assert added["ok"] and added["result"] is True, added
    shown = sh("ip", "-n", A, "addr", "show", "dev", "eth0").stdout
    assert "valid_lft 2sec" in shown or "valid_lft 1sec" in shown, shown
    for _ in range(3):  # renewed every second for 3 s: it stays
        time.sleep(1.0)
        renewed = a.call(op="renew", address=address, lifetime_s=2)
        assert renewed["ok"], renewed
        assert a.call(op="held", address=address)["result"] is True
    gone = wait_for(lambda: a.call(op="held", address=address)["result"] is False, 5.0,
                    f"{address} to expire")
    assert 1.0 < gone < 4.0, gone  # the lifetime, give or take the kernel's tick


def test_a_named_device_that_does_not_exist_is_refused(lab: Lab) -> None:
    answer = lab.agent(A).call(op="add", address=f"{V4}@nosuch0")
    assert not answer["ok"] and answer["problem"] == "no-device", answer
    assert "nosuch0" in str(answer["error"]), answer


def test_announcing_an_address_the_host_does_not_hold_is_refused(lab: Lab) -> None:
    answer = lab.agent(A).call(op="announce", address=OTHER_V6, device="eth0")
    assert not answer["ok"] and answer["problem"] == "failed", answer
    assert "not usable on this host" in str(answer["error"]), answer


def test_without_the_capabilities_the_add_is_refused_clearly(lab: Lab) -> None:
    no_admin = Agent(A, "setpriv", "--inh-caps", "-net_admin", "--bounding-set", "-net_admin")
    try:
        answer = no_admin.call(op="add", address=OTHER_V4)
    finally:
        no_admin.close()
    assert not answer["ok"] and answer["problem"] == "no-permission", answer
    assert "CAP_NET_ADMIN" in str(answer["error"]), answer

    nothing = Agent(A, "setpriv", "--inh-caps", "-all", "--bounding-set", "-all")
    try:
        probed = nothing.call(op="add", address=OTHER_V6)
        unprobed = nothing.call(op="add", address=OTHER_V4, probe_s=0)
    finally:
        nothing.close()
    assert not probed["ok"] and probed["problem"] == "no-permission", probed
    assert "CAP_NET_RAW" in str(probed["error"]), probed
    assert not unprobed["ok"] and unprobed["problem"] == "no-permission", unprobed
    assert "CAP_NET_ADMIN" in str(unprobed["error"]), unprobed
    assert lab.agent(A).call(op="held", address=OTHER_V4)["result"] is False
