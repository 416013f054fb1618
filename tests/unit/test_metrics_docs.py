"""The documents cannot drift from vnfha.metrics: the table in docs/operations.md lists exactly
the metrics of SPECS (name, type, labels), and every query of the Grafana dashboard and of the
alerting rules uses only those metrics and their labels."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vnfha.metrics import SPECS, MetricSpec, sample_names

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATIONS = DOCS / "operations.md"
DASHBOARD = DOCS / "grafana-dashboard.json"

_ROW = re.compile(r"^\| `(vnfha_\w+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)
_SERIES = re.compile(r"\bvnfha_[a-z0-9_]+")
_SELECTOR = re.compile(r"\b(vnfha_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_SCRAPE_LABELS = {"job", "instance", "le"}


def family(series: str) -> MetricSpec:
    for spec in SPECS:
        if series == spec.name or (spec.kind == "histogram" and series in
                                   {spec.name + s for s in ("_bucket", "_count", "_sum")}):
            return spec
    raise AssertionError(f"{series} is not a vnfha metric")


def check_query(expr: str) -> set[str]:
    """The vnfha series ``expr`` uses; fails on an unknown series or an unknown label in a
    selector."""
    used = set(_SERIES.findall(expr))
    assert used, f"no vnfha metric in {expr!r}"
    assert used <= sample_names(), f"unknown series {used - sample_names()} in {expr!r}"
    for series, matchers in _SELECTOR.findall(expr):
        spec = family(series)
        known = {"group", "member", *spec.labels} | _SCRAPE_LABELS
        labels = set(_MATCHER.findall(matchers))
        assert labels <= known, f"{series} has no label {labels - known} in {expr!r}"
    return used


def families(series: set[str]) -> set[str]:
    return {family(s).name for s in series}


# -- docs/operations.md ---------------------------------------------------------------------------


def test_the_operations_table_lists_exactly_the_metrics() -> None:
    rows = _ROW.findall(OPERATIONS.read_text())
    documented = {}
    for name, kind, labels in rows:
        names = tuple(re.findall(r"`(\w+)`", labels))
        assert names or labels.strip() == "-", f"{name}: labels column {labels!r}"
        documented[name] = (kind, names)
    assert len(documented) == len(rows), "a metric is listed twice"
    assert documented == {s.name: (s.kind, s.labels) for s in SPECS}


def alert_rules() -> str:
    text = OPERATIONS.read_text()
    blocks = re.findall(r"```yaml\n(groups:.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "one block of alerting rules"
    return blocks[0]


def test_every_alert_uses_only_known_metrics_and_labels() -> None:
    exprs = re.findall(r"^\s+expr: (.+)$", alert_rules(), re.MULTILINE)
    alerts = re.findall(r"^\s+- alert: (\w+)$", alert_rules(), re.MULTILINE)
    assert len(exprs) == len(alerts) >= 5
    used: set[str] = set()
    for expr in exprs:
        if "vnfha_" in expr:
            used |= families(check_query(expr))
    for needed in ("vnfha_role", "vnfha_checkpoint_lag_seconds", "vnfha_escalations_total"):
        assert needed in used, needed
    assert 'rung="alarm"' in alert_rules()


def test_promtool_accepts_the_alerting_rules(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        if os.environ.get("VNFHA_REQUIRE_PROMTOOL") == "1":  # set by .ci/run
            pytest.fail("promtool is not installed (Debian: apt-get install prometheus)")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    rules = tmp_path / "vnfha.rules.yml"
    rules.write_text(alert_rules())
    out = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


# -- docs/grafana-dashboard.json ------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    with DASHBOARD.open() as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep their panels inside
    return out


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_variable() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for name in ("group", "member"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        check_query(variables[name]["definition"])
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in panels(dashboard()):
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = p["title"]


def test_every_query_uses_only_known_metrics_and_the_datasource_variable() -> None:
    used: set[str] = set()
    for p in panels(dashboard()):
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            used |= families(check_query(t["expr"]))
    # the panels the operations guide promises
    for needed in ("vnfha_role", "vnfha_failover_duration_seconds",
                   "vnfha_checkpoint_lag_entries", "vnfha_checkpoint_lag_seconds",
                   "vnfha_checkpoint_ack_latency_seconds", "vnfha_health_check_failures_total",
                   "vnfha_escalations_total", "vnfha_nfvi_rpc_duration_seconds"):
        assert needed in used, needed


def test_the_checker_catches_unknown_names_and_labels() -> None:
    with pytest.raises(AssertionError, match="unknown series"):
        check_query("rate(vnfha_role_changes_total[5m])")
    with pytest.raises(AssertionError, match="no label"):
        check_query('vnfha_role{roles="active"}')
    with pytest.raises(AssertionError, match="no vnfha metric"):
        check_query("up")
    assert check_query('sum by (le) (rate(vnfha_failover_duration_seconds_bucket{le="0.6"}[1h]))'
                       ) == {"vnfha_failover_duration_seconds_bucket"}
