"""``vnfha demo --hosts`` end to end, as a program: etcd, the bridge, each member and the client
on lab hosts of their own, the pair behind the service address 198.51.100.100/24, a fault.

Each fault is checked on the report (another member took over at a higher epoch, nothing
acknowledged lost, no reply from the deposed active after its successor's first one or from
another address, the outage at the failover under a generous bound) and on what is left
behind: no process it started, no namespace of its lab. Needs root (skipped otherwise;
``VNFHA_REQUIRE_NETNS=1`` makes the skip a failure); without root the command refuses with
exit status 2, which is checked as any user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from vnfha.testing.lab import REQUIRE_ENV, unavailable
from vnfha.testing.lab_host import pid_alive

pytestmark = pytest.mark.etcd

OUTAGE_BOUND_MS = {"sigkill": 2_000.0, "sigstop": 3_000.0, "partition": 3_000.0}
"""Generous bounds on the client's outage at the failover (targets: 60 / 450 / 450 ms p99,
``vnfha bench hosts``)."""


def need_lab() -> None:
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


def demo(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """``python -m vnfha demo ARGS`` started (``prefix``: a command to run it under)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNFHA_")}
    return subprocess.Popen([*prefix, sys.executable, "-m", "vnfha", "demo", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def namespaces() -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("kill", ["sigkill", "sigstop", "partition"])
def test_the_pair_fails_over_across_hosts_through_the_service_address(kill: str) -> None:
    need_lab()
    proc = demo("--hosts", "--kill", kill, "--json")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.returncode, stderr[-4000:])
    report = json.loads(stdout)
    assert report["ok"] is True and report["problem"] == "", report
    assert report["kill"] == kill
    assert report["active_after"] != report["active_before"]
    assert report["epoch_after"] > report["epoch_before"]
    client = report["client"]
    assert client["lost_increments"] == 0 and client["double_increments"] == 0, client
    assert client["stale_replies"] == 0 and client["replies_from_elsewhere"] == 0, client
    assert client["answered"] > 300 and client["lost"] == 0, client
    assert (client["fault_outage_ms"] or 0.0) < OUTAGE_BOUND_MS[kill], client
    assert 0 <= report["takeover_ms"] <= report["serving_ms"] < OUTAGE_BOUND_MS[kill], report
    assert report["serving_ms"] <= report["first_reply_ms"] < OUTAGE_BOUND_MS[kill], report
    # the story an operator reads: hosts, the moving address, the timeline, the verdict
    assert "launched member a as vm-a on host_a (198.51.100.12)" in stderr
    assert "udp_counter on 198.51.100.100:5300" in stderr
    assert "serving UDP on 198.51.100.100:5300" in stderr
    assert f"first reply from epoch {report['epoch_after']}" in stderr
    assert f"failover timeline ({kill}" in stderr and "RESULT: OK" in stderr
    if kill == "partition":
        assert "cut off from every other host" in stderr and "partition healed" in stderr
    # everything it started is gone, and so is its lab
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in report["pids"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in report["pids"] if pid_alive(p)]
    assert len(report["pids"]) >= 4  # etcd, the two members, the client
    assert not [n for n in namespaces() if n.startswith(f"vdemo{proc.pid}-")]


def test_without_root_it_refuses_with_the_reason() -> None:
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("no setpriv to drop root with")
        prefix: tuple[str, ...] = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    else:
        prefix = ()
    proc = demo("--hosts", prefix=prefix)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2, (stdout, stderr)
    assert "--hosts: a host lab needs root" in stderr
    assert stdout == ""
