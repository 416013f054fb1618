"""The host lab (``vnfha.testing.lab``) as its users see it: hosts reach each other over IPv4
and IPv6; a partition silences a pair both ways or one way (checked with UDP, which a one-way
cut affects in one direction only, where TCP's handshake would fail both ways); a drop rate and
a delay act on the real packets of that pair alone; lab processes pause and die by pid; an etcd
spread over three hosts serves a client on a fourth, also with its leader's host cut off, and a
member process on a host joins it and becomes active, next to the NFVI bridge on another; and a
SIGKILLed lab owner's leftovers are swept by the next lab. Root only: skipped with the reason
otherwise, failed instead with ``VNFHA_REQUIRE_NETNS=1`` (CI)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vnfha.testing.lab import REQUIRE_ENV, HostLab, LabHost, unavailable
from vnfha.testing.lab_host import pid_alive

pytestmark = pytest.mark.etcd


def need_lab(*, delay: bool = False) -> None:
    reason = unavailable(delay=delay)
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    need_lab()
    with HostLab(4) as made:
        yield made


@pytest.fixture(autouse=True)
def healed(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "lab" in request.fixturenames:
        request.getfixturevalue("lab").heal()


def reaches(src: LabHost, dst: LabHost, family: int = socket.AF_INET, wait_s: float = 5.0) -> bool:
    """One UDP datagram from ``src`` arrives at ``dst`` within ``wait_s``."""
    with dst.socket(family, socket.SOCK_DGRAM) as rx, src.socket(family, socket.SOCK_DGRAM) as tx:
        rx.bind((dst.address(family), 0))
        rx.settimeout(wait_s)
        tx.sendto(b"hello", (dst.address(family), rx.getsockname()[1]))
        try:
            return rx.recv(100) == b"hello"
        except TimeoutError:
            return False


def silent(src: LabHost, dst: LabHost, family: int = socket.AF_INET) -> bool:
    """A UDP datagram from ``src`` does not arrive at ``dst`` within 0.3 s (locally it takes
    well under a millisecond)."""
    return not reaches(src, dst, family, wait_s=0.3)


def test_hosts_ping_each_other_over_ipv4_and_ipv6(lab: HostLab) -> None:
    assert [h.name for h in lab.hosts] == ["h0", "h1", "h2", "h3"]
    assert (lab.host("h2").ipv4, lab.host(2).ipv6) == ("198.51.100.12", "fd00:5a::12")
    for src in lab.hosts:
        for dst in lab.hosts:
            if src is not dst:
                for address in (dst.ipv4, dst.ipv6):
                    assert src.ping(address, count=2, interval_s=0.01).received == 2, \
                        (src, address)


def test_a_partition_silences_both_ways_until_healed(lab: HostLab) -> None:
    h0, h1, h2, _ = lab.hosts
    cut = lab.partition(h0, h1)
    assert lab.faults == (cut,)
    for family in (socket.AF_INET, socket.AF_INET6):
        assert silent(h0, h1, family) and silent(h1, h0, family)
        assert reaches(h0, h2, family) and reaches(h2, h1, family)
    assert h0.ping(h1.ipv6, count=3, interval_s=0.01, timeout_s=0.2).received == 0
    assert lab.heal(h1) == 1 and lab.faults == ()
    assert reaches(h0, h1) and reaches(h1, h0, socket.AF_INET6)

    with lab.partition(h0):  # from every other host
        assert all(silent(h0, h) and silent(h, h0) for h in lab.hosts[1:])
        assert reaches(h1, h2)
    assert all(reaches(h0, h) for h in lab.hosts[1:])


def test_a_one_way_partition_cuts_one_direction_only(lab: HostLab) -> None:
    h0, h1, h2, _ = lab.hosts
    lab.partition(h0, h1, direction="a->b")
    for family in (socket.AF_INET, socket.AF_INET6):
        assert silent(h0, h1, family)
        assert reaches(h1, h0, family)
        assert reaches(h0, h2, family)
    lab.partition(h2, h1, direction="b->a")
    assert silent(h1, h2) and reaches(h2, h1)


def test_a_drop_rate_loses_that_fraction_of_the_pairs_packets(lab: HostLab) -> None:
    h0, h1, h2, _ = lab.hosts
    lab.drop(h0, h1, 0.3, direction="a->b")
    lossy = h0.ping(h1.ipv4, count=300, interval_s=0.002, timeout_s=0.5)
    assert 0.18 <= lossy.loss <= 0.42, lossy.loss
    assert h0.ping(h2.ipv4, count=50, interval_s=0.002).loss == 0.0
    assert lab.heal(h0, h1) == 1
    assert h0.ping(h1.ipv4, count=50, interval_s=0.002).loss == 0.0


def test_a_delay_holds_the_real_packets_of_that_pair_only(lab: HostLab) -> None:
    need_lab(delay=True)
    h0, h1, h2, _ = lab.hosts
    baseline = h0.ping(h1.ipv4, count=10, interval_s=0.01)
    delay = lab.delay(h0, h1, 100, direction="a->b")
    for address in (h1.ipv4, h1.ipv6):
        slow = h0.ping(address, count=20, interval_s=0.01)
        assert slow.received == 20
        assert min(slow.rtts_ms) >= 100 and max(slow.rtts_ms) < 400, slow
    assert (h0.ping(h2.ipv4, count=10, interval_s=0.01).median_ms or 0) < 20
    assert (baseline.median_ms or 0) < 20
    delay.undo()
    with lab.delay(h1, h2, 50):  # both ways: a round trip crosses it twice
        both = h1.ping(h2.ipv4, count=5, interval_s=0.01)
        assert min(both.rtts_ms) >= 100 and max(both.rtts_ms) < 400, both
    assert (h0.ping(h1.ipv4, count=5, interval_s=0.01).median_ms or 0) < 20


def test_a_lab_process_is_paused_resumed_and_killed_by_pid(lab: HostLab) -> None:
    sleeper = lab.host("h3").python("-c", "import time\nprint('up', flush=True)\n"
                                    "while True: time.sleep(0.01)", name="sleeper")
    sleeper.wait_output("^up$")
    assert sleeper.pid in lab.host("h3").pids()

    def state() -> str:
        return Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    sleeper.pause()
    deadline = time.monotonic() + 5
    while state() != "T":
        assert time.monotonic() < deadline, state()
        time.sleep(0.01)
    sleeper.resume()
    sleeper.kill()
    assert sleeper.returncode == -signal.SIGKILL


def test_etcd_over_three_hosts_serves_a_fourth_also_with_its_leader_cut_off(
        lab: HostLab, group: str) -> None:
    h0, h1, h2, h3 = lab.hosts
    etcd = lab.etcd([h0, h1, h2])
    assert etcd.endpoints == ("198.51.100.10:2379", "198.51.100.11:2379", "198.51.100.12:2379")
    etcd.etcdctl("put", f"/{group}/k", "v1", host=h3)
    assert etcd.etcdctl("get", f"/{group}/k", "--print-value-only", host=h3).strip() == "v1"

    leader = etcd.leader_index()
    assert leader is not None
    with lab.partition(etcd.hosts[leader]):
        majority = [m for i, m in enumerate(etcd.members) if i != leader]
        deadline = time.monotonic() + 10  # a proposal sent to the old leader would time out
        while not any(m.is_leader() for m in majority):
            assert time.monotonic() < deadline, etcd.logs()
            time.sleep(0.02)
        endpoints = [m.endpoint for m in majority]
        etcd.etcdctl("put", f"/{group}/k", "v2", host=h3, endpoints=endpoints)
        assert etcd.etcdctl("get", f"/{group}/k", "--print-value-only", host=h3,
                            endpoints=endpoints).strip() == "v2"

    member = h3.member(group, "a", etcd.endpoints)
    member.wait_for(lambda e: e["event"] == "ready", 20, "ready")
    active = member.wait_for(lambda e: e["event"] == "role" and e["role"] == "active", 20,
                             "active")
    assert active["pid"] == member.pid and member.pid in h3.pids()

    bridge = lab.bridge(h2)
    address, port = bridge.endpoint.rsplit(":", 1)
    assert address == h2.ipv4
    h3.connect(address, int(port)).close()


OWNER = """
import json, sys, time
from vnfha.testing.lab import HostLab
lab = HostLab(2, name_prefix=sys.argv[1]).start()
child = lab.host("h1").python("-c", "import time\\nwhile True: time.sleep(1)")
lab.delay("h0", "h1", 10)
print(json.dumps({"names": [h.netns for h in lab.hosts] + [lab.switch_netns],
                  "pids": [child.pid], "workdir": str(lab.workdir)}), flush=True)
time.sleep(600)
"""


def netns_names() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                              check=True).stdout.split())


def root_links_and_tables() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                            check=True)
    return (" ".join(line.split()[1] for line in links.stdout.splitlines()), tables.stdout)


def test_what_a_killed_owner_left_is_swept_by_the_next_lab() -> None:
    need_lab(delay=True)
    before = root_links_and_tables()
    owner = subprocess.Popen([sys.executable, "-c", OWNER, "vlsweep"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        made = json.loads(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
    assert set(made["names"]) <= netns_names()
    leftovers = made["pids"] + [p for name in made["names"]
                                for p in map(int, subprocess.run(
                                    ["ip", "netns", "pids", name], capture_output=True,
                                    text=True, check=True).stdout.split())]
    assert len(set(leftovers)) >= 2  # the sleeper and the delayer outlived their owner
    assert Path(made["workdir"]).is_dir()

    with HostLab(1, name_prefix="vlsweep") as lab:
        assert not set(made["names"]) & netns_names()
        assert not Path(made["workdir"]).exists()
        deadline = time.monotonic() + 5
        while any(pid_alive(pid) for pid in leftovers):
            assert time.monotonic() < deadline, leftovers
            time.sleep(0.01)
        assert lab.switch_netns in netns_names()
        assert root_links_and_tables() == before  # a lab adds nothing to the root namespace
    assert not {n for n in netns_names() if n.startswith("vlsweep")}
