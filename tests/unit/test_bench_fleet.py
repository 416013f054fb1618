"""The fleet benchmark's arithmetic: Prometheus-style quantiles, the projection, the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from vnfha.apps.bench.fleet import group_counts, histogram_quantile, judge, projection


def test_quantile_interpolates_inside_the_bucket_as_prometheus_does() -> None:
    buckets = {"0.001": 50, "0.002": 90, "0.005": 100, "+Inf": 100}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.001)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.0015)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.0047)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.0005)  # from 0 to 1 ms


def test_quantile_of_nothing_is_none_and_above_every_bound_is_the_last_bound() -> None:
    assert histogram_quantile(0.99, {"0.001": 0, "+Inf": 0}) is None
    assert histogram_quantile(0.99, {"0.001": 1, "2.0": 1, "+Inf": 10}) == 2.0


def test_group_counts_are_sorted_unique_and_positive() -> None:
    assert group_counts("300,10,100,10") == (10, 100, 300)
    with pytest.raises(ValueError, match="must be >= 1"):
        group_counts("0,5")
    with pytest.raises(ValueError, match="comma-separated counts"):
        group_counts("ten")


def level(groups: int, **over: Any) -> dict[str, Any]:
    lv = {"groups": groups, "leases_lost": 0, "role_changes": 0, "etcd_revision_growth": 0,
          "etcd_requests_per_s": 4.0 * groups, "etcd_cpu_cores": 0.001 * groups,
          "members_cpu_cores": 0.002 * groups, "machine_saturated": False,
          "machine_cpu_busy": 0.5, "members": 2 * groups, "keepalives_per_s": 4.0 * groups,
          "etcd_watchers": 2 * groups, "etcd_requests_per_s_by_method": {
              "LeaseKeepAlive_msgs": 4.0 * groups},
          "failover": {"first_write_ms": {"p99": 12.0}, "lost_acked": 0, "violations": 0}}
    lv.update(over)
    return lv


def result(*levels: dict[str, Any], alone_p99: float = 10.0) -> dict[str, Any]:
    return {"alone": {"first_write_ms": {"p99": alone_p99}}, "levels": list(levels),
            "idle": None}


def test_projection_scales_the_largest_level_per_group() -> None:
    p = projection([level(10), level(300)], 1000)
    assert p is not None and p["from_groups"] == 300
    assert p["etcd_requests_per_s"] == 4000 and p["etcd_cpu_cores"] == 1.0
    assert projection([], 1000) is None


def test_a_clean_fleet_within_the_failover_ratio_meets_every_target() -> None:
    checks = judge(result(level(10), level(100)), (10, 100))
    assert all(c["met"] for c in checks.values()), checks
    assert checks["failover_p99_vs_alone"]["ratio"] == 1.2


@pytest.mark.parametrize("bad", [{"leases_lost": 1}, {"role_changes": 2},
                                 {"etcd_revision_growth": 3}])
def test_a_lost_lease_a_role_change_or_a_write_fails_the_fleet(bad: dict[str, Any]) -> None:
    checks = judge(result(level(10), level(100, **bad)), (10, 100))
    assert not checks["no_lease_lost_no_role_change_no_write"]["met"]
    assert checks["no_lease_lost_no_role_change_no_write"]["clean"] == [10]


def test_a_slow_failover_or_a_lost_write_fails_the_ratio() -> None:
    slow = level(100, failover={"first_write_ms": {"p99": 16.0}, "lost_acked": 0,
                                "violations": 0})
    assert not judge(result(slow), (100,))["failover_p99_vs_alone"]["met"]
    lost = level(100, failover={"first_write_ms": {"p99": 10.0}, "lost_acked": 1,
                                "violations": 0})
    assert not judge(result(lost), (100,))["failover_p99_vs_alone"]["met"]


def test_a_saturated_machine_is_named_as_the_limit() -> None:
    checks = judge(result(level(10), level(300, machine_saturated=True,
                                           machine_cpu_busy=0.97)), (10, 300, 1000))
    assert checks["reached"] == {"asked": 1000, "reached": 300, "met": False,
                                 "limit": "this machine's CPU (busy 97%)"}


def test_idle_growth_fails_the_flat_database_target() -> None:
    r = result(level(10))
    r["idle"] = {"window_s": 3600.0, "etcd_revision_growth": 0,
                 "etcd_db_in_use_growth_per_hour_bytes": 4096}
    assert not judge(r, (10,))["db_flat_while_idle"]["met"]
    r["idle"]["etcd_db_in_use_growth_per_hour_bytes"] = 0
    assert judge(r, (10,))["db_flat_while_idle"]["met"]


@pytest.mark.parametrize("bad", [{"keepalives_per_s": 50.0}, {"etcd_watchers": 25},
                                 {"etcd_requests_per_s_by_method": {"Put": 1.0}}])
def test_more_keepalives_watches_or_other_requests_than_the_bound_fail(
        bad: dict[str, Any]) -> None:
    checks = judge(result(level(10, **bad)), (10,))
    assert not checks["one_keepalive_per_interval_one_watch_per_member"]["met"]
    assert judge(result(level(10)), (10,))["one_keepalive_per_interval_one_watch_per_member"][
        "met"]
