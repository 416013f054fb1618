"""vnfha.blocking against a real etcd: blocking members each on their own loop thread, the
blocking example as its docstring runs it, and a member the program never stopped, handed over
at interpreter exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from vnfha import AckTimeout, Config, NotActive, Role
from vnfha.blocking import Member
from vnfha.model import Ack
from vnfha.testing.etcd import EtcdCluster

pytestmark = pytest.mark.etcd

EXAMPLE = Path(__file__).parents[2] / "examples" / "blocking_vnf.py"


def cfg(etcd: EtcdCluster, group: str, name: str) -> Config:
    return Config(group=group, member=name, etcd_endpoints=etcd.endpoints)


def test_standby_takes_over_from_a_stopped_active_with_every_acked_write(
    etcd1: EtcdCluster, group: str,
) -> None:
    a = Member(cfg(etcd1, group, "a"))
    b = Member(cfg(etcd1, group, "b"))
    with a, b:
        a.wait_for_role(Role.ACTIVE, 10)
        b.wait_for_role(Role.STANDBY, 10)
        acked: list[int] = []
        refused: list[BaseException] = []

        def write() -> None:  # a blocking writer thread of the app, across the stop
            i = 0
            while True:
                try:
                    a.checkpoint.put("s", f"k{i}", b"%d" % i, ack=Ack.ONE)
                except AckTimeout:  # not acknowledged: allowed to be lost
                    pass
                except (NotActive, RuntimeError) as e:  # demoted, then stopped
                    refused.append(e)
                    return
                else:
                    acked.append(i)
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 30
        while len(acked) < 500:
            assert time.monotonic() < deadline and writer.is_alive()
            time.sleep(0.01)
        first_epoch = a.epoch
        a.stop()  # graceful: hands over while the writer is still writing
        writer.join(10)
        assert not writer.is_alive() and refused
        b.wait_for_role(Role.ACTIVE, 5)
        assert b.epoch > first_epoch
        lost = [i for i in acked if b.checkpoint.get("s", f"k{i}") != b"%d" % i]
        assert not lost and len(acked) >= 500


def _wait_line(proc: subprocess.Popen[str], text: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if text in line:
            return
        assert line or proc.poll() is None, f"exited before {text!r}: {seen}"
    raise AssertionError(f"{text!r} not printed: {seen}")


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_blocking_example_pair_hands_over_and_counts_on(etcd1: EtcdCluster, group: str) -> None:
    etcd = ",".join(etcd1.endpoints)

    def start(name: str) -> subprocess.Popen[str]:
        return _start(str(EXAMPLE), "--group", group, "--member", name, "--etcd", etcd)

    a, b = start("vfw-a"), None
    out_a: list[str] = []
    out_b: list[str] = []
    try:
        _wait_line(a, "ACTIVE at epoch", out_a)
        b = start("vfw-b")
        _wait_line(b, "STANDBY following vfw-a", out_b)
        _wait_line(a, "serving request 3 ", out_a)  # by now with b in sync: Ack.ONE
        a.send_signal(signal.SIGINT)  # a clean stop hands the role to vfw-b
        _wait_line(a, "quiescing: handing over", out_a)
        _wait_line(a, "stopped", out_a)
        assert a.wait(10) == 0
        served = max(int(line.split()[3]) for line in out_a if "serving request" in line)
        _wait_line(b, "ACTIVE at epoch", out_b)
        assert f"{served} requests served before" in out_b[-1]
        _wait_line(b, f"serving request {served + 1} ", out_b)
    finally:
        for proc in (a, b):
            if proc is not None:
                proc.kill()
                proc.communicate(timeout=10)


_UNSTOPPED = """
import sys, vnfha, vnfha.blocking

class Last(vnfha.blocking.Component):
    def on_quiesce(self):
        m.checkpoint.put("s", "last", b"at exit", ack=vnfha.Ack.ONE)
        print("quiesced", flush=True)

cfg = vnfha.Config(group=sys.argv[1], member="a", etcd_endpoints=tuple(sys.argv[2:]))
m = vnfha.blocking.Member(cfg, Last())
m.start()
m.wait_for_role(vnfha.Role.ACTIVE, 10)
print("active", flush=True)
sys.stdin.readline()
# no stop(): the interpreter exits with the member running
"""


def test_interpreter_exit_stops_a_running_member_gracefully(etcd1: EtcdCluster,
                                                            group: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_UNSTOPPED), group,
                             *etcd1.endpoints], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    try:
        _wait_line(proc, "active", out)
        with Member(cfg(etcd1, group, "b")) as b:
            b.wait_for_role(Role.STANDBY, 10)
            assert proc.stdin is not None
            proc.stdin.write("\n")  # let it fall off the end of the script
            proc.stdin.flush()
            _wait_line(proc, "quiesced", out)  # on_quiesce ran in a thread, during exit
            assert proc.wait(20) == 0, out
            b.wait_for_role(Role.ACTIVE, 5)
            assert b.checkpoint.get("s", "last") == b"at exit"
        rest = proc.communicate(timeout=10)[0]
        assert "Traceback" not in "".join(out) + rest, [*out, rest]
    finally:
        proc.kill()
