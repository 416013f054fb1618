"""``vnfha status`` and ``vnfha switchover`` against a real etcd and real members, and their
refusals: unknown group, unknown or bad member name, unreachable etcd."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from vnfha.testing.etcd import EtcdCluster, free_port
from vnfha.testing.member_proc import MemberProcess

Spawn = Callable[..., MemberProcess]

pytestmark = pytest.mark.etcd


def vnfha(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vnfha", *args], capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def role_is(role: str, epoch_above: int = 0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > epoch_above


def test_status_and_switchover(etcd3: EtcdCluster, spawn: Spawn, group: str) -> None:
    etcd = ",".join(etcd3.endpoints)
    a = spawn("a")
    first = a.wait_for(role_is("active"), 10)
    b = spawn("b")
    b.wait_for(role_is("standby"), 10)
    time.sleep(0.2)  # let both records settle

    done = vnfha("status", group, "--etcd", etcd, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["active"] == "a" and status["epoch"] == first["epoch"]
    assert status["redundancy"] == "2n"
    roles = {m["member"]: (m["role"], m["holds_active_key"], m["in_sync"])
             for m in status["members"]}
    assert roles == {"a": ("active", True, False), "b": ("standby", False, True)}
    assert all(m["listen"].startswith("127.0.0.1:") and not m["listen"].endswith(":0")
               for m in status["members"])
    assert all(m["etcd_endpoint"] in etcd3.endpoints for m in status["members"])

    table = vnfha("status", group, "--etcd", etcd)
    assert table.returncode == 0
    assert f"active a (epoch {first['epoch']})" in table.stdout
    assert "active*" in table.stdout and "standby" in table.stdout

    done = vnfha("switchover", group, "--to", "b", "--etcd", etcd, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["from"], out["to"]) == ("a", "b") and out["to_epoch"] > first["epoch"]
    assert out["ms"] < 1000
    b.wait_for(role_is("active", first["epoch"]), 5)
    a.wait_for(lambda e: e["event"] == "callback" and e["name"] == "on_quiesce", 5)

    # no --to: the best standby (a) takes it back
    done = vnfha("switchover", group, "--etcd", etcd)
    assert done.returncode == 0, done.stderr
    assert f"switchover of {group}: b" in done.stdout and "-> a" in done.stdout


def test_switchover_refusals(etcd3: EtcdCluster, spawn: Spawn, group: str) -> None:
    etcd = ",".join(etcd3.endpoints)
    a = spawn("a")
    a.wait_for(role_is("active"), 10)
    cases = [
        (["--to", "zz"], 1, "no such member"),
        (["--to", "a"], 1, "already active"),
        (["--to", "Bad_Name"], 2, "'Bad_Name'"),
        ([], 1, "no eligible standby"),  # refused by the active itself: nobody to hand over to
    ]
    for extra, code, message in cases:
        done = vnfha("switchover", group, "--etcd", etcd, "--timeout-s", "5", *extra)
        assert done.returncode == code, (extra, done.stdout, done.stderr)
        assert message in done.stderr, (extra, done.stderr)
        assert done.stderr.startswith("vnfha switchover: error: ")
    assert a.role() == "active"  # nothing changed
    status = json.loads(vnfha("status", group, "--etcd", etcd, "--json").stdout)
    assert status["active"] == "a"


def test_unknown_group_bad_name_and_unreachable_etcd(etcd3: EtcdCluster) -> None:
    etcd = ",".join(etcd3.endpoints)
    done = vnfha("status", "no-such-group", "--etcd", etcd)
    assert done.returncode == 1
    assert "group 'no-such-group' not found" in done.stderr

    done = vnfha("status", "Not A Name", "--etcd", etcd)
    assert done.returncode == 2
    assert "'Not A Name'" in done.stderr

    done = vnfha("switchover", "no-such-group", "--etcd", etcd)
    assert done.returncode == 1 and "not found" in done.stderr

    dead = f"127.0.0.1:{free_port()}"
    for cmd in ("status", "switchover"):
        done = vnfha(cmd, "vfw", "--etcd", dead, "--request-timeout-s", "0.5")
        assert done.returncode == 3, done.stderr
        assert f"etcd unreachable at {dead}" in done.stderr


def test_quickstart_example_pair(etcd3: EtcdCluster, group: str) -> None:
    """docs/quickstart.md's steps: two hello_vnf members, status, switchover, clean stop."""
    import signal  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    example = Path(__file__).parents[2] / "examples" / "hello_vnf.py"
    etcd = ",".join(etcd3.endpoints)

    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(example), "--group", group, "--member",
                                 name, "--etcd", etcd], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def wait_line(proc: subprocess.Popen[str], text: str, seen: list[str]) -> None:
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed: {seen}")

    a, b = start("vfw-a"), None
    out_a: list[str] = []
    out_b: list[str] = []
    try:
        wait_line(a, "ACTIVE at epoch", out_a)
        b = start("vfw-b")
        wait_line(b, "STANDBY following vfw-a", out_b)
        done = vnfha("switchover", group, "--to", "vfw-b", "--etcd", etcd)
        assert done.returncode == 0, done.stderr
        wait_line(b, "ACTIVE at epoch", out_b)
        wait_line(b, "serving request 1", out_b)
        b.send_signal(signal.SIGINT)  # a clean stop hands the role back to vfw-a
        wait_line(b, "stopped", out_b)
        wait_line(a, "ACTIVE at epoch", out_a)
        assert b.wait(10) == 0
    finally:
        for proc in (a, b):
            if proc is not None:
                proc.kill()
                proc.communicate(timeout=10)


def test_status_shows_a_frozen_standbys_lag(etcd3: EtcdCluster, spawn: Spawn,
                                            group: str) -> None:
    etcd = ",".join(etcd3.endpoints)
    # TTL 4 s: the active drops a silent standby after 2 s, and publishes progress every 1 s
    ttl = ("--lease-ttl-s", "4")
    a = spawn("a", *ttl, "--write", "100000000", "--ack", "none", "--rewrite",
              "--report-every", "1000000", "--quiet-acts")
    a.wait_for(role_is("active"), 10)
    b = spawn("b", *ttl)
    b.wait_for(role_is("standby"), 10)

    def status() -> dict[str, Any]:
        done = vnfha("status", group, "--etcd", etcd, "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def standby_lag(s: dict[str, Any]) -> tuple[int | None, float | None]:
        (m,) = [m for m in s["members"] if m["member"] == "b"]
        return m["lag_entries"], m["lag_seconds"]

    deadline = time.monotonic() + 10
    while standby_lag(s := status())[0] is None:  # the first record after b joined
        assert time.monotonic() < deadline, s
        time.sleep(0.1)
    entries, seconds = standby_lag(s)
    assert entries is not None and seconds is not None and entries < 1000 and seconds < 0.5
    assert s["sequence"] > 0
    (active,) = [m for m in s["members"] if m["member"] == "a"]
    assert active["lag_entries"] is None  # the active has no lag of its own

    b.pause()
    try:
        deadline = time.monotonic() + 1.8  # before the active drops b as silent
        seen: list[tuple[int | None, float | None]] = []
        while time.monotonic() < deadline:
            seen.append(standby_lag(status()))
            if (seen[-1][0] or 0) > 50 and (seen[-1][1] or 0) > 0.2:
                break
            time.sleep(0.1)
        assert (seen[-1][0] or 0) > 50 and (seen[-1][1] or 0) > 0.2, seen
        table = vnfha("status", group, "--etcd", etcd).stdout
        assert "LAG" in table.splitlines()[1]
    finally:
        b.resume()
