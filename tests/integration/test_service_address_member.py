"""Service addresses that follow the active (issue 18, item 2), on the lab of hosts: member
processes on hosts of their own, etcd on another, a client host looking on.

- the active holds the address (and its record and ``vnfha status`` say so), the standby not;
- after a SIGKILL of the active the standby takes the address and announces it: the client's
  neighbour entry moves to the new holder's MAC without the client asking; the killed
  active's host, which stays up, drops the address once its lifetime has run out;
- a switchover moves it: the old active removes it, the new one holds it;
- an active cut off from etcd removes it by itself at its lease deadline, as its writes stop;
- an address another host (not a member) answers for is not taken: the member refuses the
  active role with a clear error and ``on_active`` is not called.

Needs root (namespaces, raw sockets); skips with the reason otherwise, unless
``VNFHA_REQUIRE_NETNS=1``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vnfha.testing.lab import REQUIRE_ENV, HostLab, LabHost, unavailable
from vnfha.testing.member_proc import MemberProcess

ADDRESS = "198.51.100.100"
ARGS = ("--set", f"service_addresses={ADDRESS}/24", "--set", "poison_policy=off")

why = unavailable()
if why is not None and os.environ.get(REQUIRE_ENV) != "1":
    pytestmark = pytest.mark.skip(reason=why)


def role_is(role: str, after_epoch: int = 0) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > after_epoch


def holds(host: LabHost) -> bool:
    return f" {ADDRESS}/24" in host.run(["ip", "-br", "-4", "addr", "show", "dev", "eth0"]).stdout


def mac_of(host: LabHost) -> str:
    return host.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip()


def neighbour_mac(host: LabHost) -> str | None:
    out = host.run(["ip", "neigh", "show", ADDRESS]).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def until(what: Callable[[], bool], timeout_s: float, say: str) -> float:
    """Wait until ``what()``; the monotonic time it first held."""
    deadline = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {say}")
        time.sleep(0.01)
    return time.monotonic()


@pytest.fixture
def lab() -> Iterator[HostLab]:
    with HostLab(["etcd", "a", "b", "client"]) as lab:
        yield lab


def pair(lab: HostLab, *extra: str) -> tuple[list[str], MemberProcess, MemberProcess, int]:
    etcd = lab.etcd([lab.host("etcd")])
    a = lab.host("a").member("g", "a", etcd.endpoints, *ARGS, *extra)
    first = a.wait_for(role_is("active"), 20, "a active")["epoch"]
    b = lab.host("b").member("g", "b", etcd.endpoints, *ARGS, *extra)
    b.wait_for(role_is("standby"), 20, "b standby")
    return list(etcd.endpoints), a, b, first


def vnfha(lab: HostLab, endpoints: list[str], *args: str) -> str:
    """``vnfha ARGS --etcd ENDPOINTS`` on the client host (etcd is reachable from hosts)."""
    return lab.host("client").run([sys.executable, "-m", "vnfha", *args, "--etcd",
                                   ",".join(endpoints)]).stdout


def test_the_address_follows_the_active_through_a_crash(lab: HostLab) -> None:
    endpoints, a, b, first = pair(lab)
    host_a, host_b, client = lab.host("a"), lab.host("b"), lab.host("client")
    until(lambda: holds(host_a), 5, "a holds the address")
    shown = host_a.run(["ip", "-4", "addr", "show", "dev", "eth0"]).stdout
    assert "valid_lft 4sec" in shown or "valid_lft 3sec" in shown, shown  # renewed
    assert not holds(host_b)
    assert client.ping(ADDRESS, count=3).loss == 0
    assert neighbour_mac(client) == mac_of(host_a)
    members = json.loads(vnfha(lab, endpoints, "status", "g", "--json"))["members"]
    assert {m["member"]: m["addresses"] for m in members} == {"a": [f"{ADDRESS}/24"], "b": []}
    assert f"service addresses held by a: {ADDRESS}/24" in vnfha(lab, endpoints, "status", "g")

    killed = a.kill()
    b.wait_for(role_is("active", first), 5, "b active")
    took = until(lambda: holds(host_b), 5, "b holds the address")
    # the client learns the new holder from b's announcement, without asking
    until(lambda: neighbour_mac(client) == mac_of(host_b), 3, "the client's entry moved to b")
    assert client.ping(ADDRESS, count=3).loss == 0
    print(f"SIGKILL -> address on b: {(took - killed) * 1000:.0f} ms")
    # a's host stays up, and nothing released a's address: its kernel drops it once its
    # lifetime (twice the lease TTL: 4 s) has run out after a's last renewal
    dropped = until(lambda: not holds(host_a), 8, "a's host dropped the address")
    print(f"SIGKILL -> address off a's host: {(dropped - killed) * 1000:.0f} ms (lifetime 4 s)")
    assert dropped - killed > 2.0  # the lifetime, not a release, removed it
    assert holds(host_b) and client.ping(ADDRESS, count=3).loss == 0


def test_a_switchover_moves_the_address(lab: HostLab) -> None:
    endpoints, _, b, first = pair(lab)
    host_a, host_b = lab.host("a"), lab.host("b")
    until(lambda: holds(host_a), 5, "a holds the address")

    vnfha(lab, endpoints, "switchover", "g", "--to", "b")
    b.wait_for(role_is("active", first), 10, "b active")
    until(lambda: holds(host_b) and not holds(host_a), 5, "the address moved to b")


def test_an_active_cut_off_from_etcd_lets_the_address_go_at_its_deadline(lab: HostLab) -> None:
    _, a, b, first = pair(lab)
    host_a = lab.host("a")
    until(lambda: holds(host_a), 5, "a holds the address")
    cut = time.monotonic()
    with lab.partition(host_a, lab.host("etcd")):
        a.wait_for(lambda e: e["event"] == "role" and e["role"] != "active"
                   and e["t_mono"] > cut, 10, "a steps down at its deadline")
        gone = until(lambda: not holds(host_a), 3, "a removed the address")
        b.wait_for(role_is("active", first), 10, "b active")
        until(lambda: holds(lab.host("b")), 5, "b holds the address")
    print(f"cut from etcd -> address off a: {(gone - cut) * 1000:.0f} ms (TTL 2 s)")


def test_an_address_another_host_answers_for_is_not_taken(lab: HostLab) -> None:
    intruder = lab.host("client")  # not a member: it holds the address already
    intruder.run(["ip", "addr", "add", f"{ADDRESS}/24", "dev", "eth0"])
    etcd = lab.etcd([lab.host("etcd")])
    a = lab.host("a").member("g", "a", etcd.endpoints, *ARGS)
    a.wait_for(role_is("active"), 20, "a holds the active key")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "in use by" not in "".join(a.stderr):
        time.sleep(0.05)
    log = "".join(a.stderr)
    assert f"service address {ADDRESS}/24 on eth0: in use by {mac_of(intruder)}" in log, log
    assert not holds(lab.host("a"))
    assert not any(e["event"] == "callback" and e["name"] == "on_active" for e in a.events)
