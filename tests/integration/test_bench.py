"""Every benchmark runs, at its smallest size, through the real command (``python -m vnfha bench
NAME`` or ``python benchmarks/NAME.py``) and prints the JSON its docs describe.

Timing targets are not asserted (a loaded CI box may miss them: the exit status may be 1), but
every figure must be a positive number, the exit status must agree with the report's verdict,
and the checks that do not depend on timing must pass: no acknowledged write lost, no overlap
of two epochs' writes, the epoch grew, the standby holds what the active wrote, every invariant
but I6 (which is judged at a deadline) unbroken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vnfha.apps.bench import BENCHMARKS
from vnfha.testing.lab import REQUIRE_ENV, unavailable

pytestmark = pytest.mark.etcd

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def bench(name: str, *args: str, script: bool = False) -> tuple[dict[str, Any], int]:
    """The report and exit status of one benchmark run (as a checkout's script, or as
    ``python -m vnfha bench``)."""
    argv = (f"benchmarks/{name}.py", *args) if script else ("-m", "vnfha", "bench", name, *args)
    proc = run(*argv)
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr[-3000:])
    report = json.loads(proc.stdout)
    assert isinstance(report, dict), proc.stdout
    return report, proc.returncode


def assert_verdict(ok: bool, code: int) -> None:
    assert code == (0 if ok else 1), (ok, code)


def assert_positive(figures: dict[str, Any], *keys: str) -> None:
    """Each of ``keys`` is a positive number in ``figures``."""
    for key in keys:
        value = figures[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, figures)
        assert value > 0, (key, figures)


def assert_summary(figures: dict[str, Any], unit: str = "") -> None:
    """p50, p99 and max (each key ending in ``unit``) are positive and in order."""
    p50, p99, top = (f"{k}{unit}" for k in ("p50", "p99", "max"))
    assert_positive(figures, p50, p99, top)
    assert figures[p50] <= figures[p99] <= figures[top], figures


def test_store() -> None:
    report, code = bench("store", "--samples", "3", script=True)
    assert report["benchmark"] == "store" and report["etcd_members"] == 1
    ops = {"put", "get", "txn", "keepalive", "put_to_watch"}
    assert set(report["results"]) == ops and set(report["targets"]) == ops
    for r in report["results"].values():
        assert r["n"] == 3
        assert_summary(r, "_ms")
        assert_positive(r, "ops_per_s")
    assert_verdict(report["all_met"], code)


def test_roles() -> None:
    report, code = bench("roles", "--switchovers", "1", "--stops", "1", "--crashes", "1",
                         "--members", "1")
    assert report["benchmark"] == "roles"
    assert set(report["results"]) == set(report["budgets"]) == {"switchover", "clean_stop",
                                                                "crash"}
    for r in report["results"].values():
        assert r["n"] == 1
        assert_summary(r, "_ms")
    assert_verdict(report["all_met"], code)


def test_checkpoint() -> None:
    report, code = bench("checkpoint", "--writes", "10", "--concurrent-writes", "4",
                         "--writers", "2", "--latency-samples", "5")
    results = report["results"]
    assert report["benchmark"] == "checkpoint" and report["value_bytes"] == 100
    assert results["standby_matches_active"] is True
    assert results["none"]["writes"] == 10 and results["one_concurrent"]["writes"] == 4
    assert results["none_concurrent"]["writes"] == 10
    assert report["standby"] == "own process"
    assert_positive(results["none"], "accepted_per_s", "replicated_per_s")
    assert_positive(results["none_concurrent"], "replicated_per_s")
    assert_positive(results["one_concurrent"], "per_s")
    assert_summary(results["none_concurrent"], "_ms")
    assert_summary(results["one_concurrent"], "_ms")
    for single in (results["one_latency"], results["transport_floor"]):
        assert single["n"] == 5
        assert_positive(single, "per_s")
        assert_summary(single, "_ms")
    assert set(report["targets"]) == {"none_per_s", "one_concurrent_per_s", "one_p50_ms",
                                      "one_p99_ms", "one_per_s", "none_concurrent_max_ms"}
    assert_verdict(report["all_met"], code)


def test_failover() -> None:
    report, code = bench("failover", "--trials", "1", "--paths", "switchover,sigkill")
    assert report["benchmark"] == "failover"
    assert set(report["results"]) == set(report["budgets"]) == {"switchover", "sigkill"}
    for path, r in report["results"].items():
        assert r["trials"] == 1, path
        assert_summary(r["on_active_ms"])
        assert_summary(r["first_write_ms"])
        assert r["lost_acked"] == 0, (path, r)
        assert r["overlap_ms_max"] == 0, (path, r)
        assert r["epoch_grew_every_time"] is True, (path, r)
        assert r["events_checked"] > 0, (path, r)
        broken = {k: n for k, n in r["violations"].items() if k != "I6" and n}
        assert not broken, (path, broken, r["violation_examples"])
    assert_verdict(report["all_met"], code)


def test_fence() -> None:
    report, code = bench("fence", "--trials", "1")
    assert report["benchmark"] == "fence" and report["trials"] == 1
    assert report["paths"] == ["fence", "nfvi-report"]
    # the fence path, at the top level as before
    assert_summary(report["on_active_ms"])
    assert_summary(report["first_write_ms"])
    assert report["acked_writes"] > 0
    assert report["lost_acked"] == 0, report
    assert report["every_epoch_grew"] is True, report
    assert report["every_takeover_fenced"] is True, report
    # the hang followed by the host's failure: the standby takes over on the NFVI report
    nfvi = report["nfvi_report"]
    assert_summary(nfvi["on_active_ms"])
    assert_summary(nfvi["first_write_ms"])
    assert nfvi["acked_writes"] > 0
    assert nfvi["lost_acked"] == 0, nfvi
    assert nfvi["every_epoch_grew"] is True, nfvi
    assert nfvi["causes"] == {"nfvi-event": 1}, nfvi  # not a fence, not the refused connection
    assert nfvi["every_takeover_by_report"] is True, nfvi
    assert_verdict(report["met"] and nfvi["met"], code)
    assert report["all_met"] == (report["met"] and nfvi["met"]), report
    assert "qemu" not in report  # only when asked for


def test_fence_on_real_qemu_domains() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "component"))
    from driver_rigs import require_libvirt, require_qemu  # noqa: PLC0415

    require_libvirt()
    require_qemu()
    report, code = bench("fence", "--trials", "1", "--paths", "qemu")
    assert report["paths"] == ["qemu"] and "first_write_ms" not in report
    qemu = report["qemu"]
    assert_summary(qemu["on_active_ms"])
    assert_summary(qemu["first_write_ms"])
    assert qemu["acked_writes"] > 0 and qemu["lost_acked"] == 0, qemu
    assert qemu["every_epoch_grew"] is True and qemu["every_takeover_fenced"] is True, qemu
    assert_verdict(qemu["met"], code)
    assert report["all_met"] == qemu["met"], report


def test_fleet() -> None:
    report, code = bench("fleet", "--groups", "2,4", "--per-process", "2", "--samples", "1",
                         "--window-s", "3", "--idle-s", "3", script=True)
    assert report["benchmark"] == "fleet"
    assert [lv["groups"] for lv in report["levels"]] == [2, 4]
    for lv in report["levels"]:
        assert lv["members"] == 2 * lv["groups"]
        assert lv["leases_lost"] == 0 and lv["role_changes"] == 0, lv
        assert lv["etcd_revision_growth"] == 0, lv  # idle groups write nothing
        assert lv["etcd_watchers"] <= lv["members"] + 2, lv  # one a member (+ the sample's)
        # every member renews every 0.5 s and its requests are all keepalives
        assert lv["keepalives_per_s"] > lv["members"], lv
        assert set(lv["etcd_requests_per_s_by_method"]) == {"LeaseKeepAlive_msgs"}, lv
        assert_positive(lv, "etcd_requests_per_s", "etcd_cpu_cores", "members_cpu_cores")
        assert 0 < lv["keepalive_rtt_ms"]["p50"] <= lv["keepalive_rtt_ms"]["p99"], lv
        assert lv["failover"]["lost_acked"] == 0 and lv["failover"]["violations"] == 0, lv
        assert_summary(lv["failover"]["first_write_ms"])
    assert report["idle"]["etcd_revision_growth"] == 0
    assert report["projection_1000"]["groups"] == 1000
    assert_summary(report["alone"]["first_write_ms"])
    assert_verdict(report["all_met"], code)


def test_hosts() -> None:
    reason = unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    report, code = bench("hosts", "--trials", "1", script=True)
    assert report["benchmark"] == "hosts" and report["trials"] == 1
    assert report["paths"] == ["sigkill", "sigstop", "partition"]
    assert set(report["results"]) == set(report["targets_p99_ms"]) == set(report["paths"])
    for path, r in report["results"].items():
        assert r["trials"] == 1 and r["failed_trials"] == 0, (path, r)
        for figure in ("outage_ms", "takeover_ms", "first_reply_ms"):
            assert_summary(r[figure])
        # the checks that do not depend on timing: one active at a time, nothing lost
        assert r["stale_replies"] == 0 and r["replies_from_elsewhere"] == 0, (path, r)
        assert r["lost_increments"] == 0 and r["answered"] > 100, (path, r)
        assert r["every_trial_checked"] is True, (path, r["problems"])
        assert r["outage_ms"]["max"] < 3_000, (path, r)  # targets: 60 / 450 ms p99
    assert_verdict(report["all_met"], code)


def test_help_lists_every_benchmark() -> None:
    proc = run("-m", "vnfha", "bench", "--help")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(BENCHMARKS), proc.stdout


def test_a_benchmark_help_is_its_own() -> None:
    proc = run("-m", "vnfha", "bench", "failover", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: vnfha bench failover [-h] [--trials TRIALS]")
    assert "lost_acked" in proc.stdout  # the module docstring: what is checked


@pytest.mark.parametrize(("argv", "message"), [
    (("nope",), "vnfha bench: error: unknown benchmark 'nope'; choose from store, roles, "
                "checkpoint, failover, fence, fleet"),
    ((), "vnfha bench: error: name a benchmark: one of store, roles"),
    (("fence", "--trials", "0"), "argument --trials: invalid count 0: must be >= 1"),
    (("failover", "--paths", "sigkill,reboot"), "unknown paths ['reboot']"),
    (("fence", "--paths", "fence,hang"), "unknown paths ['hang']"),
    (("fleet", "--groups", "10,x"), "--groups '10,x': comma-separated counts"),
    (("fleet", "--groups", "0,10"), "every count must be >= 1"),
    (("fleet", "--window-s", "0"), "--window-s 0.0: must be positive"),
])
def test_bad_usage_exits_2(argv: tuple[str, ...], message: str) -> None:
    proc = run("-m", "vnfha", "bench", *argv)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert proc.stdout == ""
