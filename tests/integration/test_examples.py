"""The examples under examples/, run as their READMEs run them: real etcd, every member and
client a process of its own, members killed with SIGKILL mid-traffic.

- udp_counter: the 2N pair keeps counting through a SIGKILL of the active, no acknowledged
  increment is lost and the client's outage stays under a generous bound;
- nway: the active is killed twice and each time a ranked standby takes over with the registry;
- stateless: three actives share one UDP port; after one is killed the other two serve it all.

The checkers the clients rely on are tested first, without processes, so that a client that
reports "nothing lost" is known to be able to report a loss.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vnfha.apps.examples.udp_counter import client as counter_client
from vnfha.apps.examples.udp_counter import vnf as counter_vnf
from vnfha.testing.etcd import EtcdCluster, free_port

EXAMPLES = Path(__file__).parents[2] / "examples"


def load_example(relative: str) -> ModuleType:
    """An example script imported as a module (they are importable as well as runnable)."""
    path = EXAMPLES / relative
    name = "example_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- the pure parts the end-to-end checks rest on ------------------------------------------------


def test_counter_client_reports_a_lost_increment_and_a_double_one() -> None:
    check = counter_client.SessionCheck("s")
    assert [check.answered(1), check.answered(2)] == [None, None]
    assert check.answered(2) == "lost"  # the reply to request 3 said 2: increment 3 is gone
    check.given_up()  # request 4 was given up: it may or may not have counted
    assert check.answered(4) is None  # request 5: 4 (request 4 was not applied) is fine
    check.given_up()
    assert check.answered(6) is None  # ... and so is 6 (it was)
    assert check.answered(8) == "double"


def test_counter_client_outage_meter_keeps_the_longest_gap() -> None:
    meter = counter_client.OutageMeter(100.0, 1_000.0, 0.05)
    for t in (100.01, 100.02, 100.30, 100.31):
        meter.answered(t)
    meter.given_up(101.0)
    assert meter.longest == (100.31, 101.0)
    assert [(round(b, 2), round(e, 2)) for b, e in meter.outages] == [(100.02, 100.3),
                                                                      (100.31, 101.0)]
    assert meter.unix(100.31) == 1_000.31


def test_counter_client_reports_a_reply_from_a_deposed_active() -> None:
    check = counter_client.ReplyCheck()
    assert check.reply(3, 1.0, "s", 1) and check.reply(3, 1.1, "s", 2)
    assert check.reply(7, 2.0, "s", 3)  # the successor's first reply
    assert not check.reply(3, 2.1, "s", 4)  # the deposed active, after it: stale
    assert check.reply(7, 2.2, "s", 5)
    assert check.stale_count == 1
    assert check.stale == [{"epoch": 3, "after_epoch": 7, "session": "s", "seq": 4, "t": 2.1}]
    assert check.by_epoch == {3: [3, 1.0, 2.1], 7: [2, 2.0, 2.2]}


async def test_counter_client_takes_replies_from_the_target_only() -> None:
    """A responder that answers every request twice, first from another port (a reply from
    elsewhere: counted, not used) and then from the target, with epoch 5 until seq 3, then
    epoch 9, and once more epoch 5 (a deposed active after its successor: stale)."""
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []

    class Responder(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport  # a datagram transport (not typed as one by asyncio)

        def datagram_received(self, data: bytes, addr: Any) -> None:
            seen.append(data)
            session, seq = data.decode().split()
            epoch = 5 if int(seq) <= 3 or int(seq) == 5 else 9
            other.sendto(f"{session} {seq} 999 {epoch}".encode(), addr)
            self.transport.sendto(f"{session} {seq} {seq} {epoch}".encode(), addr)

    target, _ = await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", 0))
    other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                   local_addr=("127.0.0.1", 0))
    try:
        port = target.get_extra_info("sockname")[1]
        report = await counter_client.run_client(counter_client.ClientOptions(
            port=port, rate=200, sessions=1, duration_s=0.05, progress_s=None))
    finally:
        target.close()
        other.close()
    assert report.answered == report.sent == len(seen) >= 6
    assert report.lost_increments == [] and report.double_increments == 0  # 999 not used
    assert report.replies_from_elsewhere == report.sent
    assert report.elsewhere_sources == [f"127.0.0.1:{other.get_extra_info('sockname')[1]}"]
    assert report.stale_replies == 1 and report.stale_examples[0]["seq"] == 5
    assert set(report.replies_by_epoch) == {"5", "9"}
    assert report.ok is False


def test_counter_member_counts_each_request_once() -> None:
    vnf = counter_vnf
    record = vnf.Record()
    record = vnf.apply_request(record, None)  # a bare request: one more
    record = vnf.apply_request(record, 1)
    assert (record.count, record.seq) == (2, 1)
    assert vnf.apply_request(record, 1) == record  # a retransmission: same count
    assert vnf.apply_request(vnf.apply_request(record, 2), 1) is None  # an old seq: dropped
    assert vnf.Record.decode(record.encode()) == record
    assert vnf.parse_request(b"s1 7") == vnf.Request("s1", 7)
    assert vnf.parse_request(b"s1 7").reply(3) == b"s1 7 3"
    assert vnf.parse_request(b"s1 7").reply(3, 12) == b"s1 7 3 12"  # the epoch answering
    for bad in (b"", b"a b c", b"s1 0", b"s1 x", b"\xff", b"x" * 65):
        assert vnf.parse_request(bad) is None, bad


def test_registry_commands() -> None:
    registry = load_example("nway/registry.py")
    data: dict[str, bytes] = {}
    reply, change = registry.execute(["SET", "001", "cell", "7"], data.get)
    assert (reply, change) == ("OK 001 v1", ("001", b"1 cell 7"))
    data["001"] = change[1]
    assert registry.execute(["SET", "001", "cell-8"], data.get)[0] == "OK 001 v2"
    assert registry.execute(["GET", "001"], data.get) == ("001 v1 cell 7", None)
    assert registry.execute(["GET", "002"], data.get) == ("NOTFOUND 002", None)
    assert registry.execute(["DEL", "001"], data.get) == ("OK 001 deleted", ("001", None))
    assert registry.execute(["SET", "001"], data.get)[0].startswith("ERR ")


def test_responder_answers_the_same_on_every_member() -> None:
    responder = load_example("stateless/responder.py")
    client = load_example("stateless/client.py")
    for name in ("www.example.test", "Host7.example.test"):
        assert responder.resolve(name) == client.expected_address(name)
    assert responder.answer(b"a.test", "m") == f"a.test A {responder.resolve('a.test')} m".encode()
    assert responder.answer(b"bad name", "m") is None


# -- processes -----------------------------------------------------------------------------


class Example:
    """An example script in its own process, printing its events as JSON lines (``--json``),
    collected by a reader thread. ``kill`` acts on its pid only."""

    def __init__(self, script: str, member: str, *args: str) -> None:
        self.member = member
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), "--member", member, "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        """Lines that are not events (log lines on stderr)."""
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                if line.startswith("{"):
                    self.events.append(json.loads(line))
                else:
                    self.other.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                 what: str = "event") -> dict[str, Any]:
        """The first event, already printed or to come, that matches ``predicate``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = next((e for e in self.events if predicate(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.member}: no {what} within {timeout_s} s; "
                        f"exit={self.proc.poll()} events={self.events[-5:]} "
                        f"log={''.join(self.other[-20:])}")
                self._cond.wait(left)

    def kill(self) -> None:
        """SIGKILL by pid, reap, and wait until everything it printed has been read."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


Start = Callable[..., Example]


@pytest.fixture
def start(etcd3: EtcdCluster, group: str) -> Iterator[Start]:
    """Start an example member of this test's group on the shared etcd; every one is killed
    (by pid) at the end, and the test fails if one is still alive after that."""
    procs: list[Example] = []

    def launch(script: str, member: str, *args: str) -> Example:
        proc = Example(script, member, "--group", group, "--etcd", ",".join(etcd3.endpoints),
                       *args)
        procs.append(proc)
        proc.wait_for(lambda e: e["event"] == "ready", 20, "ready")
        return proc

    yield launch
    for proc in procs:
        proc.kill()
    assert all(proc.proc.poll() is not None for proc in procs)


def event(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == name and all(e.get(k) == v for k, v in fields.items())


def active_after(epoch: int) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == "active" and e["epoch"] > epoch


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_client(script: str, *args: str, timeout_s: float = 30) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    result["returncode"] = done.returncode
    return result


def first_active(candidates: list[Example], epoch: int, timeout_s: float) -> Example:
    """The candidate that reports ``active`` above ``epoch`` first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in candidates:
            if any(active_after(epoch)(e) for e in list(proc.events)):
                return proc
        time.sleep(0.01)
    raise AssertionError(f"no takeover above epoch {epoch}: "
                         f"{[(p.member, p.events[-3:]) for p in candidates]}")


# -- the examples, end to end --------------------------------------------------------------


@pytest.mark.etcd
def test_udp_counter_pair_keeps_every_acknowledged_increment_across_sigkill(
    start: Start,
) -> None:
    port = str(free_udp_port())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", int(port)))  # a leftover process holding the port
        a = start("udp_counter/vnf.py", "a", "--port", port)
        first = a.wait_for(event("active"), 15)
        a.wait_for(event("bind_failed"), 5)  # not shared silently: reported, and retried
    assert a.wait_for(event("serving"), 5)["attempts"] > 1
    b = start("udp_counter/vnf.py", "b", "--port", port)
    b.wait_for(event("standby"), 15)
    a.wait_for(event("in_sync", standbys=["b"]), 10, "b in sync")

    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "udp_counter/client.py"), "--port", port, "--rate",
         "200", "--sessions", "4", "--duration-s", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert client.stderr is not None
        for line in client.stderr:  # progress lines, one a second: kill the active mid-traffic
            if line.startswith("t=") and int(line.split(" answered ")[1].split()[0]) >= 300:
                break
        killed = time.time()
        a.kill()
        took = b.wait_for(active_after(first["epoch"]), 5, "b active")
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            os.kill(client.pid, signal.SIGKILL)
            client.communicate(timeout=10)
    report = json.loads(out)

    assert took["t"] - killed < 2.0, took["t"] - killed  # the crash path, not the lease path
    assert took["previous"] == "standby" and took["sessions"] == 4
    b.wait_for(event("serving"), 5)
    assert client.returncode == 0, (report, err)
    assert report["lost_increments"] == [] and report["double_increments"] == 0
    assert report["lost"] == 0 and report["answered"] == report["sent"] > 500
    # every answered request counted exactly once: the counters went on from the last
    # acknowledged value on the new active
    assert sum(report["final_counts"].values()) == report["answered"]
    assert report["outage_ms"] < 5000, report
    assert report["duration_s"] < 5 + 5
    print(f"udp_counter SIGKILL failover: takeover {(took['t'] - killed) * 1000:.0f} ms after "
          f"the kill, client outage {report['outage_ms']} ms, "
          f"max latency {report['latency_ms']['max']} ms")


@pytest.mark.etcd
def test_nway_registry_standbys_take_over_in_turn_with_the_registry(start: Start) -> None:
    port = str(free_port())
    # two kills seconds apart, on purpose: not a poisoned state (test_poison_registry.py)
    off = ("--poison-policy", "off")
    a = start("nway/registry.py", "a", "--port", port, "--priority", "0", *off)
    first = a.wait_for(event("active"), 15)
    standbys = [start("nway/registry.py", name, "--port", port, "--priority", priority, *off)
                for name, priority in (("b", "10"), ("c", "20"))]
    a.wait_for(event("in_sync", standbys=["b", "c"]), 10, "b and c in sync")
    loaded = run_client("nway/client.py", "--port", port, "load", "200", "--round", "1")
    assert loaded["returncode"] == 0 and loaded["loaded"] == 200

    a.kill()
    second = first_active(standbys, first["epoch"], 5)
    took = second.wait_for(active_after(first["epoch"]), 1)
    assert took["subscribers"] == 200 and took["previous"] == "standby"
    last = next(p for p in standbys if p is not second)
    second.wait_for(event("in_sync", standbys=[last.member]), 10, f"{last.member} in sync")
    checked = run_client("nway/client.py", "--port", port, "check", "200", "--round", "1")
    assert checked["ok"] and checked["served_by"].startswith(f"{second.member} epoch"), checked
    loaded = run_client("nway/client.py", "--port", port, "load", "200", "--round", "2")
    assert loaded["returncode"] == 0

    second.kill()
    third = last.wait_for(active_after(took["epoch"]), 5, f"{last.member} active")
    assert third["subscribers"] == 200
    checked = run_client("nway/client.py", "--port", port, "check", "200", "--round", "2")
    assert checked["ok"] and checked["served_by"].startswith(f"{last.member} epoch"), checked
    print(f"nway takeover order: a -> {second.member} -> {last.member} (priorities b=10, c=20)")


@pytest.mark.etcd
def test_stateless_actives_share_one_port_and_survivors_serve_it_all(start: Start) -> None:
    port = str(free_udp_port())
    members = {name: start("stateless/responder.py", name, "--port", port)
               for name in ("a", "b", "c")}
    for proc in members.values():
        proc.wait_for(event("serving"), 15)
        assert [e["event"] for e in proc.events if e["event"] == "active"] == ["active"]
    query = ("stateless/client.py", "--port", port, "--queries", "300", "--sockets", "60")

    spread = run_client(*query)
    assert spread["ok"] and set(spread["by_member"]) == {"a", "b", "c"}, spread

    members["b"].kill()
    after = run_client(*query)
    assert after["ok"] and set(after["by_member"]) == {"a", "c"}, after
    for name in ("a", "c"):  # the survivors never stopped serving
        assert not [e for e in members[name].events if e["event"] in ("standby", "closed")]
