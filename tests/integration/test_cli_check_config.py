"""``vnfha check-config FILE [--json]`` as an operator runs it: a valid config (exit 0), one its
timers cannot meet a budget of (refused, exit 2, yet the report is printed), an invalid one
(exit 2, the field named), a missing file. No etcd is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BASE = 'group = "vfw"\nmember = "vfw-a"\n'


def check_config(path: Path | str, *args: str, cwd: Path | None = None,
                 **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VNFHA_")}
    return subprocess.run([sys.executable, "-m", "vnfha", "check-config", str(path), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**environ, **env}, cwd=cwd)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vnfha.toml"
    path.write_text(BASE + text)
    return path


def paths(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["path"]: p for p in out["paths"]}


def test_a_valid_config_prints_every_path(tmp_path: Path) -> None:
    path = write(tmp_path, "failover_budget_crash_ms = 1250\n"
                           "failover_budget_switchover_ms = 9000\n")
    done = check_config(path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == f"{path}: valid"
    assert lines[1] == "group vfw, member vfw-a, redundancy 2n, no NFVI bridge"
    table = done.stdout
    assert "crash                 1250 ms  failover_budget_crash_ms=1250: met" in table
    assert "hang-bridge           1650 ms  (not this config's path: no bridge_endpoint)" in table
    assert "hang-standby-lease    1450 ms  no budget" in table
    assert "hang-lease            4000 ms  (the fallback for a standby not listed in sync)" \
        in table
    assert "switchover            8000 ms  failover_budget_switchover_ms=9000: met" in table
    assert "       5000  on_quiesce" in table
    assert "not included: the component's own on_active time" in table

    done = check_config(path, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["valid"], out["error"], out["bridge"]) == (True, None, False)
    found = paths(out)
    assert {name: p["worst_case_ms"] for name, p in found.items()} == {
        "crash": 1250.0, "hang-bridge": 1650.0, "hang-standby-lease": 1450.0,
        "hang-lease": 4000.0, "switchover": 8000.0}
    assert found["crash"]["budget"] == {"field": "failover_budget_crash_ms", "ms": 1250,
                                        "met": True, "over_ms": 0.0}
    hang = found["hang-standby-lease"]
    assert hang["budget"] is None and hang["applies"] and out["standby_lease"]
    assert not found["hang-bridge"]["applies"] and not found["hang-lease"]["applies"]
    assert sum(t["ms"] for t in found["switchover"]["terms"]) == 8000.0


def test_a_config_that_cannot_meet_its_budget_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "failover_budget_crash_ms = 1250\nfailover_budget_hang_ms = 2300\n"
                           "standby_lease_s = 0\n")
    done = check_config(path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "vnfha check-config: error: failover_budget_hang_ms=2300: the worst case of a hang "
        "without a bridge (etcd lease) is 4000 ms (lease TTL 2000 + ")
    assert f"(set in {path})" in done.stderr
    # the report still comes, computed without the budget that failed
    assert done.stdout.startswith(f"{path}: REFUSED for its failover budgets\n")
    assert "hang-lease            4000 ms  failover_budget_hang_ms=2300: MISSED by 1700 ms" \
        in done.stdout
    assert "hang-standby-lease    4000 ms  (not this config's path: standby_lease_s = 0)" \
        in done.stdout
    assert "failover_budget_crash_ms=1250: met" in done.stdout

    done = check_config(path, "--json")
    assert done.returncode == 2
    out = json.loads(done.stdout)
    assert not out["valid"] and out["error"].startswith("failover_budget_hang_ms=2300: ")
    assert paths(out)["hang-lease"]["budget"] == {
        "field": "failover_budget_hang_ms", "ms": 2300, "met": False, "over_ms": 1700.0}


def test_the_environment_counts_as_for_a_member(tmp_path: Path) -> None:
    path = write(tmp_path, "failover_budget_hang_ms = 1650\nstandby_lease_s = 0\n")
    assert check_config(path).returncode == 2  # no bridge: the etcd lease path is 4000 ms
    done = check_config(path, VNFHA_BRIDGE_ENDPOINT="127.0.0.1:7500")
    assert done.returncode == 0, done.stderr
    assert "hang-bridge           1650 ms  failover_budget_hang_ms=1650: met" in done.stdout
    assert check_config(path, VNFHA_STANDBY_LEASE_S="0.3").returncode == 0  # 1450 ms
    assert "with an NFVI bridge" in done.stdout


@pytest.mark.parametrize(("text", "field"), [
    ("suspicion_s = 0.01\n", "heartbeat_interval_s"),
    ("failover_budget_crash_ms = -1\n", "failover_budget_crash_ms"),
    ("lease_ttl = 2\n", "lease_ttl"),
])
def test_an_invalid_config_is_refused_naming_the_field(tmp_path: Path, text: str,
                                                       field: str) -> None:
    path = write(tmp_path, text)
    done = check_config(path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"vnfha check-config: error: {field}=")
    if field != "failover_budget_crash_ms":  # a bad budget alone still gets the report
        assert done.stdout == ""
    else:
        assert "failover_budget_crash_ms=-1: refused: must be a finite number" in done.stdout


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    done = check_config(tmp_path / "nope.toml", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout) == {"file": str(tmp_path / "nope.toml"), "valid": False,
                                       "error": done.stderr.removeprefix(
                                           "vnfha check-config: error: ").strip()}
    assert "config_file=" in done.stderr and "cannot read" in done.stderr


def test_the_documented_example_is_what_it_prints(tmp_path: Path) -> None:
    """docs/operations.md's example: its settings give the lines it shows ("..." elides)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = doc.split("### `vnfha check-config FILE [--json]`")[1].split("\n## ")[0]
    settings = section.split("```toml\n")[1].split("```")[0]
    shown = section.split("$ vnfha check-config vnfha.toml\n")[1].split("\nnot included:")[0]
    (tmp_path / "vnfha.toml").write_text(settings)
    done = check_config("vnfha.toml", cwd=tmp_path)
    assert done.returncode == 2
    printed = done.stdout.splitlines()
    for line in shown.splitlines():
        if line.strip() != "...":
            assert line in printed
