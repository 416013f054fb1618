"""``vnfha demo`` end to end: its own etcd, the bridge with the sim driver, the udp_counter pair as
simulated VMs, traffic, a fault, and the cleanup.

Each path is checked on its report (another member took over at a higher epoch, nothing
acknowledged lost, the client's outage at the failover under a generous bound) and on what it
leaves behind: every process it started is gone. ``python -m vnfha.apps.demo`` is run as a
program once for ``--json`` and once interrupted with SIGINT in the middle of the traffic.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vnfha.apps.demo import DemoError, DemoOptions, DemoReport, run_demo

pytestmark = pytest.mark.etcd

OUTAGE_BOUND_MS = {"sigkill": 2_000.0, "sigstop": 3_000.0, "switchover": 2_000.0}
"""Generous bounds on the client's outage at the failover (budgets: 250 / 600 / 100 ms p99)."""


def alive(pid: int) -> bool:
    """Whether ``pid`` still exists (a zombie counts as gone: it can no longer act)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def assert_all_gone(pids: list[int] | tuple[int, ...]) -> None:
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], f"left running: {[p for p in pids if alive(p)]}"


def check_report(report: DemoReport, out: str, kill: str) -> None:
    assert report.ok, (report.problem, out)
    assert report.kill == kill and report.problem == ""
    assert report.active_after != report.active_before
    assert report.epoch_after > report.epoch_before
    client = report.client
    assert client["lost_increments"] == 0 and client["double_increments"] == 0, client
    assert client["answered"] > 300 and client["lost"] == 0, client
    fault_outage = client["fault_outage_ms"] or 0.0  # None: under the client's threshold
    assert fault_outage < OUTAGE_BOUND_MS[kill], client
    assert 0 <= report.takeover_ms <= report.serving_ms < OUTAGE_BOUND_MS[kill], report
    assert len(report.pids) >= 3  # etcd and the two members
    assert report.duration_s < 20, report.duration_s
    # what an operator reads: the fault, the takeover, the client, the verdict, the cleanup
    assert f"failover timeline ({kill}" in out
    assert f"ACTIVE at epoch {report.epoch_after}" in out
    assert "acknowledged increments lost: 0" in out
    assert "RESULT: OK" in out
    assert out.rstrip().endswith("temporary files removed")
    assert json.loads(json.dumps(report.as_json()))["ok"] is True


async def test_sigkill_of_the_active_fails_over_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the caller's VNFHA_* settings must not reach the demo's members: an unknown one makes
    # load_config refuse to start, a known one would change the demo (this TTL is invalid)
    monkeypatch.setenv("VNFHA_REQUIRE_LIBVIRT", "1")
    monkeypatch.setenv("VNFHA_LEASE_TTL_S", "0.1")
    out = io.StringIO()
    report = await run_demo(out=out, kill="sigkill")
    check_report(report, out.getvalue(), "sigkill")
    assert "FAULT: SIGKILL to the active" in out.getvalue()
    assert report.takeover_ms < 1_000, report.takeover_ms  # the crash path, not the lease
    assert_all_gone(report.pids)


async def test_frozen_active_is_fenced_through_the_bridge_and_repaired() -> None:
    out = io.StringIO()
    report = await run_demo(out=out, kill="sigstop")
    text = out.getvalue()
    check_report(report, text, "sigstop")
    # the standby had the bridge fence the frozen active instead of waiting for its lease
    fenced = [e for e in report.timeline if e.source == "bridge" and "vm-stopped" in e.text]
    assert fenced and fenced[0].t - report.fault_at_s < 1.5, (fenced, report.fault_at_s)
    assert "repair: vm-" in text
    assert_all_gone(report.pids)


def test_switchover_as_a_program_prints_a_json_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vnfha.apps.demo", "--kill", "switchover", "--json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["kill"] == "switchover", report
    assert report["active_after"] != report["active_before"]
    assert report["epoch_after"] > report["epoch_before"]
    assert report["client"]["lost_increments"] == 0
    assert (report["client"]["fault_outage_ms"] or 0.0) < OUTAGE_BOUND_MS["switchover"]
    assert "switchover done:" in done.stderr and "RESULT: OK" in done.stderr
    assert_all_gone(report["pids"])


def test_ctrl_c_in_the_middle_stops_everything() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vnfha.apps.demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "requests/s over" in line:  # the traffic runs: everything is up
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    out = "".join(lines) + rest
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    pids = [int(p) for p in re.findall(r"\bpid (\d+)", out)]
    assert len(set(pids)) >= 3, out  # etcd and both members were up
    assert_all_gone(pids)


async def test_a_member_that_cannot_start_stops_the_demo_at_once_with_its_error(
    tmp_path: Path,
) -> None:
    vnf = tmp_path / "vnf.py"
    vnf.write_text(
        "import sys\nprint('vnf.py: error: no can do', file=sys.stderr)\nsys.exit(2)\n")
    out = io.StringIO()
    started = time.monotonic()
    with pytest.raises(DemoError) as error:
        await run_demo(out=out, options=DemoOptions(member_command=(sys.executable, str(vnf)),
                                                    pair_ready_s=60))
    assert time.monotonic() - started < 20  # not the 60 s deadline: the exit is noticed
    assert error.value.step == "wait for an active with its standby in sync"
    assert "exited" in str(error.value) and "vnf.py: error: no can do" in str(error.value)
    kept = re.search(r"the logs are kept in (\S+)", out.getvalue())
    assert kept is not None, out.getvalue()
    try:
        assert "no can do" in (Path(kept[1]) / "vms" / "vm-a.log").read_text()
        pids = [int(p) for p in re.findall(r"\bpid (\d+)", out.getvalue())]
        assert len(set(pids)) >= 3
        assert_all_gone(pids)
    finally:
        shutil.rmtree(kept[1], ignore_errors=True)
