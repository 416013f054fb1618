"""vnfha.metrics: values after each call (read back from the member's registry), label
validation, independent registries, and the exposition against SPECS. No sockets."""

from __future__ import annotations

import inspect
import math
import platform
import sys
import threading

import pytest

from vnfha import ConfigError
from vnfha.errors import (
    Compacted,
    LeaseNotFound,
    StoreAuthError,
    StoreError,
    StoreNoSpace,
    StoreRequestError,
    StoreUnavailable,
)
from vnfha.metrics import (
    SPECS,
    CheckKind,
    EtcdErrorKind,
    EtcdRequest,
    LadderAction,
    MemberMetrics,
    Metrics,
    NfviMethod,
    NullMetrics,
    ReasonKind,
    Rung,
    StaleSide,
    WriteResult,
    error_kind,
    sample_names,
)
from vnfha.model import Ack, Role

G, M = "vfw", "vfw-a"


@pytest.fixture
def metrics() -> MemberMetrics:
    return MemberMetrics(G, M, version="9.9.9")


def value(m: MemberMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"group": m.group, "member": m.member, **labels})


def roles(m: MemberMetrics) -> dict[str, float | None]:
    return {r.value: value(m, "vnfha_role", role=r.value) for r in Role}


def exercise(m: Metrics) -> None:
    """One call of every recording method, with valid arguments."""
    m.role_changed(Role.SPARE, Role.ACTIVE, 5, ReasonKind.ELECTED)
    m.failover_completed(ReasonKind.TAKEOVER, 0.12)
    m.checkpoint_lag("vfw-b", 3, 0.25)
    m.in_sync_standbys(1)
    m.checkpoint_write(Ack.ONE, WriteResult.OK, 0.002)
    m.health_check_failed(CheckKind.APP)
    m.escalated(Rung.RESTART)
    m.ladder_decided(LadderAction.RESTART)
    m.nfvi_rpc(NfviMethod.FENCE, "OK", 0.3)
    m.stale_epoch_rejected(StaleSide.STANDBY)
    m.etcd_error(EtcdRequest.WRITE, EtcdErrorKind.NOSPACE)
    m.lease_keepalive(0.002)
    m.lease_lost()
    m.service_address("198.51.100.10/24", True)


# -- values ----------------------------------------------------------------------------------------


def test_starts_spare_with_build_info_and_zero_counters(metrics: MemberMetrics) -> None:
    assert roles(metrics) == {"active": 0, "standby": 0, "quiesced": 0, "spare": 1}
    assert value(metrics, "vnfha_epoch") == 0
    assert value(metrics, "vnfha_in_sync_standbys") == 0
    info = value(metrics, "vnfha_build_info", version="9.9.9", python=platform.python_version())
    assert info == 1
    for rung in Rung:  # one-enum counters exist at zero, so increase() sees the first event
        assert value(metrics, "vnfha_escalations_total", rung=rung.value) == 0
    for check in CheckKind:
        assert value(metrics, "vnfha_health_check_failures_total", check=check.value) == 0
    for action in LadderAction:
        assert value(metrics, "vnfha_ladder_decisions_total", action=action.value) == 0
    for side in StaleSide:
        assert value(metrics, "vnfha_stale_epoch_rejections_total", side=side.value) == 0
    for request in EtcdRequest:
        for kind in EtcdErrorKind:
            assert value(metrics, "vnfha_etcd_errors_total", request=request.value,
                         kind=kind.value) == 0
    assert value(metrics, "vnfha_lease_keepalive_seconds_count") == 0
    assert value(metrics, "vnfha_leases_lost_total") == 0


def test_initial_role_may_be_given() -> None:
    m = MemberMetrics(G, M, role=Role.STANDBY)
    assert roles(m)["standby"] == 1 and roles(m)["spare"] == 0
    with pytest.raises(ConfigError, match="role='leader'"):
        MemberMetrics(G, M, role="leader")


def test_role_changes_set_one_role_the_epoch_and_count_transitions(
        metrics: MemberMetrics) -> None:
    metrics.role_changed(Role.SPARE, Role.STANDBY, 7, ReasonKind.ASSIGNED)
    metrics.role_changed("standby", "active", 12, "takeover")  # string values are accepted
    assert roles(metrics) == {"active": 1, "standby": 0, "quiesced": 0, "spare": 0}
    assert value(metrics, "vnfha_epoch") == 12
    t = "vnfha_role_transitions_total"
    assert value(metrics, t, **{"from": "spare", "to": "standby", "reason_kind": "assigned"}) == 1
    assert value(metrics, t, **{"from": "standby", "to": "active", "reason_kind": "takeover"}) == 1


def test_an_epoch_change_in_the_same_role_is_not_a_transition(metrics: MemberMetrics) -> None:
    metrics.role_changed(Role.SPARE, Role.STANDBY, 7, ReasonKind.ASSIGNED)
    metrics.role_changed(Role.STANDBY, Role.STANDBY, 9, ReasonKind.ASSIGNED)
    assert value(metrics, "vnfha_epoch") == 9
    same = {"from": "standby", "to": "standby", "reason_kind": "assigned"}
    assert value(metrics, "vnfha_role_transitions_total", **same) is None


def test_lag_per_standby_and_its_removal(metrics: MemberMetrics) -> None:
    metrics.role_changed(Role.SPARE, Role.ACTIVE, 3, ReasonKind.ELECTED)
    metrics.checkpoint_lag("vfw-b", 10, 0.5)
    metrics.checkpoint_lag("vfw-c", 0, 0.0)
    metrics.checkpoint_lag("vfw-b", 4, 0.1)
    assert value(metrics, "vnfha_checkpoint_lag_entries", standby="vfw-b") == 4
    assert value(metrics, "vnfha_checkpoint_lag_seconds", standby="vfw-b") == 0.1
    assert value(metrics, "vnfha_checkpoint_lag_entries", standby="vfw-c") == 0
    metrics.standby_gone("vfw-c")
    metrics.standby_gone("vfw-c")  # twice, and for one never seen: no error
    metrics.standby_gone("vfw-z")
    assert value(metrics, "vnfha_checkpoint_lag_entries", standby="vfw-c") is None
    assert value(metrics, "vnfha_checkpoint_lag_entries", standby="vfw-b") == 4


def test_leaving_active_clears_lag_and_in_sync(metrics: MemberMetrics) -> None:
    metrics.role_changed(Role.SPARE, Role.ACTIVE, 3, ReasonKind.ELECTED)
    metrics.checkpoint_lag("vfw-b", 2, 0.01)
    metrics.in_sync_standbys(1)
    metrics.role_changed(Role.ACTIVE, Role.QUIESCED, 3, ReasonKind.SWITCHOVER)
    assert value(metrics, "vnfha_checkpoint_lag_entries", standby="vfw-b") is None
    assert value(metrics, "vnfha_checkpoint_lag_seconds", standby="vfw-b") is None
    assert value(metrics, "vnfha_in_sync_standbys") == 0


def test_checkpoint_writes_and_ack_latency(metrics: MemberMetrics) -> None:
    metrics.checkpoint_write(Ack.ONE, WriteResult.OK, 0.0004)
    metrics.checkpoint_write(Ack.ONE, WriteResult.OK, 0.003)
    metrics.checkpoint_write(Ack.ALL, WriteResult.TIMEOUT)
    metrics.checkpoint_write(Ack.NONE, "ok")
    w = "vnfha_checkpoint_writes_total"
    assert value(metrics, w, ack="one", result="ok") == 2
    assert value(metrics, w, ack="all", result="timeout") == 1
    assert value(metrics, w, ack="none", result="ok") == 1
    h = "vnfha_checkpoint_ack_latency_seconds"
    assert value(metrics, f"{h}_count", ack="one") == 2
    assert value(metrics, f"{h}_sum", ack="one") == pytest.approx(0.0034)
    assert value(metrics, f"{h}_bucket", ack="one", le="0.0005") == 1
    assert value(metrics, f"{h}_bucket", ack="one", le="0.005") == 2
    assert value(metrics, f"{h}_count", ack="all") is None  # no latency without an ack


def test_failover_histogram_buckets_cover_10ms_to_5s(metrics: MemberMetrics) -> None:
    metrics.failover_completed(ReasonKind.TAKEOVER, 0.2)
    metrics.failover_completed(ReasonKind.SWITCHOVER, 0.03)
    h = "vnfha_failover_duration_seconds"
    assert value(metrics, f"{h}_bucket", reason_kind="takeover", le="0.01") == 0
    assert value(metrics, f"{h}_bucket", reason_kind="takeover", le="0.25") == 1
    assert value(metrics, f"{h}_bucket", reason_kind="takeover", le="5.0") == 1
    assert value(metrics, f"{h}_count", reason_kind="switchover") == 1
    bounds = bucket_bounds(metrics, h)
    assert bounds[0] == 0.01 and bounds[-2] == 5.0 and math.isinf(bounds[-1])
    for budget in (0.1, 0.25, 0.6):  # the design's failover budgets are exact bounds
        assert budget in bounds


def bucket_bounds(m: MemberMetrics, name: str) -> list[float]:
    return [float(s.labels["le"]) for fam in m.registry.collect() if fam.name == name
            for s in fam.samples if s.name.endswith("_bucket")]


def test_ack_latency_buckets_cover_100us_to_1s(metrics: MemberMetrics) -> None:
    metrics.checkpoint_write(Ack.ONE, WriteResult.OK, 0.001)
    bounds = bucket_bounds(metrics, "vnfha_checkpoint_ack_latency_seconds")
    assert bounds[0] == 0.0001 and bounds[-2] == 1.0


def test_health_ladder_nfvi_and_stale_counters(metrics: MemberMetrics) -> None:
    metrics.health_check_failed(CheckKind.TCP)
    metrics.health_check_failed("tcp")
    metrics.escalated(Rung.ALARM)
    metrics.ladder_decided(LadderAction.WAIT)
    metrics.nfvi_rpc(NfviMethod.KICK, "OK", 0.0008)
    metrics.nfvi_rpc("Fence", "UNAVAILABLE", 2.0)
    metrics.stale_epoch_rejected(StaleSide.ACTIVE)
    assert value(metrics, "vnfha_health_check_failures_total", check="tcp") == 2
    assert value(metrics, "vnfha_escalations_total", rung="alarm") == 1
    assert value(metrics, "vnfha_escalations_total", rung="restart") == 0
    assert value(metrics, "vnfha_ladder_decisions_total", action="wait") == 1
    rpc = "vnfha_nfvi_rpc_duration_seconds"
    assert value(metrics, f"{rpc}_count", method="Kick", code="OK") == 1
    assert value(metrics, f"{rpc}_bucket", method="Fence", code="UNAVAILABLE", le="1.0") == 0
    assert value(metrics, f"{rpc}_bucket", method="Fence", code="UNAVAILABLE", le="2.5") == 1
    assert value(metrics, "vnfha_stale_epoch_rejections_total", side="active") == 1


def test_etcd_errors_keepalives_and_lost_leases(metrics: MemberMetrics) -> None:
    metrics.etcd_error(EtcdRequest.WRITE, EtcdErrorKind.NOSPACE)
    metrics.etcd_error("write", "nospace")
    metrics.etcd_error(EtcdRequest.KEEPALIVE, EtcdErrorKind.UNAVAILABLE)
    metrics.lease_keepalive(0.0007)
    metrics.lease_keepalive(1.5)
    metrics.lease_lost()
    errors = "vnfha_etcd_errors_total"
    assert value(metrics, errors, request="write", kind="nospace") == 2
    assert value(metrics, errors, request="keepalive", kind="unavailable") == 1
    assert value(metrics, errors, request="read", kind="nospace") == 0
    keepalive = "vnfha_lease_keepalive_seconds"
    assert value(metrics, f"{keepalive}_count") == 2
    assert value(metrics, f"{keepalive}_bucket", le="0.0005") == 0
    assert value(metrics, f"{keepalive}_bucket", le="0.001") == 1
    assert value(metrics, f"{keepalive}_bucket", le="2.0") == 2
    assert value(metrics, "vnfha_leases_lost_total") == 1


def test_keepalive_buckets_cover_half_a_millisecond_to_2s(metrics: MemberMetrics) -> None:
    bounds = bucket_bounds(metrics, "vnfha_lease_keepalive_seconds")
    assert bounds[0] == 0.0005 and bounds[-2] == 2.0


ERROR_KINDS = [
    (StoreNoSpace("etcdserver: mvcc: database space exceeded"), EtcdErrorKind.NOSPACE),
    (StoreUnavailable("no endpoint"), EtcdErrorKind.UNAVAILABLE),
    (StoreAuthError("permission denied"), EtcdErrorKind.AUTH),
    (LeaseNotFound(7), EtcdErrorKind.LEASE_NOT_FOUND),
    (Compacted(3, 9), EtcdErrorKind.COMPACTED),
    (StoreRequestError("request is too large"), EtcdErrorKind.REFUSED),
    (StoreError("something else"), EtcdErrorKind.OTHER),
]


@pytest.mark.parametrize(("error", "kind"), ERROR_KINDS,
                         ids=[type(e).__name__ for e, _ in ERROR_KINDS])
def test_error_kind_names_the_most_specific_class(error: StoreError,
                                                  kind: EtcdErrorKind) -> None:
    assert error_kind(error) is kind


# -- validation ------------------------------------------------------------------------------------

BAD_CALLS = [
    ("role_changed", ("spare", "leader", 1, "elected"), "role='leader'"),
    ("role_changed", ("boss", "active", 1, "elected"), "previous='boss'"),
    ("role_changed", ("spare", "active", 1, "lease expired at 12:00"), "reason_kind="),
    ("role_changed", ("spare", "active", -1, "elected"), "epoch=-1"),
    ("failover_completed", ("deposed", 0.1), "reason_kind='deposed'"),
    ("failover_completed", ("takeover", -0.1), "seconds=-0.1"),
    ("failover_completed", ("takeover", float("nan")), "seconds=nan"),
    ("checkpoint_lag", ("Not A Name", 1, 0.0), "standby='Not A Name'"),
    ("checkpoint_lag", ("vfw-b", -1, 0.0), "entries=-1"),
    ("standby_gone", ("",), "standby=''"),
    ("in_sync_standbys", (-2,), "count=-2"),
    ("checkpoint_write", ("quorum", "ok"), "ack='quorum'"),
    ("checkpoint_write", ("one", "maybe"), "result='maybe'"),
    ("checkpoint_write", ("one", "ok", -0.5), "ack_latency_s=-0.5"),
    ("health_check_failed", ("db",), "check='db'"),
    ("escalated", ("reboot",), "rung='reboot'"),
    ("ladder_decided", ("panic",), "action='panic'"),
    ("nfvi_rpc", ("Reboot", "OK", 0.1), "method='Reboot'"),
    ("nfvi_rpc", ("Fence", "ok", 0.1), "code='ok'"),
    ("nfvi_rpc", ("Fence", "OK", -1.0), "seconds=-1.0"),
    ("stale_epoch_rejected", ("both",), "side='both'"),
    ("etcd_error", ("watch", "nospace"), "request='watch'"),
    ("etcd_error", ("write", "NOSPACE"), "kind='NOSPACE'"),
    ("lease_keepalive", (-0.001,), "seconds=-0.001"),
    ("lease_keepalive", (float("nan"),), "seconds=nan"),
]


@pytest.mark.parametrize(("method", "args", "named"), BAD_CALLS,
                         ids=[f"{m}-{n}" for m, _, n in BAD_CALLS])
@pytest.mark.parametrize("kind", [MemberMetrics, NullMetrics])
def test_bad_label_values_raise_naming_them_and_record_nothing(
        kind: type[Metrics], method: str, args: tuple[object, ...], named: str) -> None:
    m = MemberMetrics(G, M) if kind is MemberMetrics else NullMetrics()
    before = m.exposition() if isinstance(m, MemberMetrics) else ""
    with pytest.raises(ValueError, match=named.replace("(", r"\(")) as e:
        getattr(m, method)(*args)
    assert isinstance(e.value, ConfigError)
    if isinstance(m, MemberMetrics):
        assert m.exposition() == before


@pytest.mark.parametrize("kind", [MemberMetrics, NullMetrics])
def test_writes_are_validated_however_many_came_before(kind: type[Metrics]) -> None:
    """The per-write fast path (members as they are, the series found once) checks as much as
    the first write did; a value's string and its member count in one series."""
    m = MemberMetrics(G, M) if kind is MemberMetrics else NullMetrics()
    for ack in Ack:
        for result in WriteResult:
            m.checkpoint_write(ack, result)
            m.checkpoint_write(ack, result, 0.001)
    m.checkpoint_write("none", "ok")
    before = m.exposition() if isinstance(m, MemberMetrics) else ""
    for args, named in [(("quorum", WriteResult.OK), "ack='quorum'"),
                        ((Ack.NONE, "maybe"), "result='maybe'"),
                        ((Ack.ONE, WriteResult.OK, -0.5), "ack_latency_s=-0.5"),
                        ((Ack.NONE, WriteResult.OK, math.nan), "ack_latency_s=nan")]:
        with pytest.raises(ConfigError, match=named):
            m.checkpoint_write(*args)  # type: ignore[arg-type]
    if isinstance(m, MemberMetrics):
        assert m.exposition() == before
        assert value(m, "vnfha_checkpoint_writes_total", ack="none", result="ok") == 3
        assert value(m, "vnfha_checkpoint_ack_latency_seconds_count", ack="none") == 5


def test_write_counts_are_exact_under_concurrent_scrapes(metrics: MemberMetrics) -> None:
    """Writes are tallied in plain ints and added to the counter on every read: two scraping
    threads see the count only grow, and the last read sees every write."""
    w = "vnfha_checkpoint_writes_total"
    metrics.checkpoint_write(Ack.NONE, WriteResult.OK)
    stop = threading.Event()
    seen: list[list[float]] = [[], []]

    def scrape(out: list[float]) -> None:
        while not stop.is_set():
            out.append(value(metrics, w, ack="none", result="ok") or 0.0)

    threads = [threading.Thread(target=scrape, args=(out,)) for out in seen]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, inside the tally's updates
    try:
        for t in threads:
            t.start()
        for i in range(30_000):
            metrics.checkpoint_write(Ack.NONE, WriteResult.OK)
            if i % 1000 == 0:  # a new series appearing while the scrapers read
                metrics.checkpoint_write(Ack.ONE, WriteResult.OK, 0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
    assert all(out == sorted(out) and out for out in seen)
    assert value(metrics, w, ack="none", result="ok") == 30_001
    assert value(metrics, w, ack="one", result="ok") == 30


def test_the_error_lists_the_allowed_values() -> None:
    with pytest.raises(ConfigError) as e:
        MemberMetrics(G, M).escalated("reboot")
    assert e.value.field == "rung" and e.value.value == "reboot"
    assert "restart, failover, reboot-vm, evacuate-vm, alarm" in str(e.value)


def test_group_and_member_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="group='VFW'"):
        MemberMetrics("VFW", M)
    with pytest.raises(ConfigError, match="member=''"):
        MemberMetrics(G, "")


def test_null_metrics_has_the_same_methods_and_records_nothing() -> None:
    public = {n for n in dir(Metrics) if not n.startswith("_")}
    assert public <= set(dir(NullMetrics))
    for name in public:
        assert inspect.signature(getattr(MemberMetrics, name)) == \
            inspect.signature(getattr(Metrics, name)), name
    null = NullMetrics()
    exercise(null)
    assert null.serve(0) == 0
    null.close()


# -- registries and exposition ---------------------------------------------------------------------


def test_two_members_registries_are_independent() -> None:
    a, b = MemberMetrics(G, "vfw-a"), MemberMetrics(G, "vfw-b")
    a.role_changed(Role.SPARE, Role.ACTIVE, 4, ReasonKind.ELECTED)
    a.escalated(Rung.RESTART)
    assert value(a, "vnfha_role", role="active") == 1
    assert value(b, "vnfha_role", role="active") == 0
    assert value(b, "vnfha_escalations_total", rung="restart") == 0
    assert 'member="vfw-a"' not in b.exposition()
    MemberMetrics(G, "vfw-a")  # the same names again in the same process: no collision


def test_the_registry_holds_exactly_the_specs() -> None:
    m = MemberMetrics(G, M)
    exercise(m)
    families = {f.name: f for f in m.registry.collect()}
    exposed = {}
    for fam in families.values():
        name = f"{fam.name}_total" if fam.type == "counter" else fam.name
        labels = {k for s in fam.samples for k in s.labels} - {"le"}
        exposed[name] = (fam.type, labels)
    assert exposed == {s.name: (s.kind, {"group", "member", *s.labels}) for s in SPECS}


def test_the_exposition_names_every_metric() -> None:
    m = MemberMetrics(G, M)
    exercise(m)
    text = m.exposition()
    for spec in SPECS:
        assert f"# TYPE {spec.name} {spec.kind}\n" in text, spec.name
    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
              if line and not line.startswith("#")}
    assert sample_names() <= series
    assert {s for s in series if not s.endswith("_created")} <= sample_names()


def test_specs_are_unique_prefixed_and_explained() -> None:
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    for s in SPECS:
        assert s.name.startswith("vnfha_") and s.meaning
        assert s.name.endswith("_total") == (s.kind == "counter"), s.name
        assert bool(s.buckets) == (s.kind == "histogram"), s.name


def test_the_ladder_vocabulary_matches_the_ladder() -> None:
    ladder = pytest.importorskip("vnfha.health.ladder")
    assert [r.value for r in ladder.Rung] == [r.value for r in Rung]
    assert {a.value for a in ladder.Action} == {a.value for a in LadderAction}
    for rung in ladder.Rung:  # the ladder's own enums are accepted as they are
        MemberMetrics(G, M).escalated(rung)


def test_a_service_address_is_held_then_released(metrics: MemberMetrics) -> None:
    metrics.service_address("198.51.100.10/24", True)
    assert value(metrics, "vnfha_service_address_held", address="198.51.100.10/24") == 1
    metrics.service_address("198.51.100.10/24", False)
    assert value(metrics, "vnfha_service_address_held", address="198.51.100.10/24") == 0
