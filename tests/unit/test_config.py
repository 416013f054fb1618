"""Config validation, the pure timer relations, from_mapping, load_config (TOML + environment)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vnfha
from vnfha.config import OTHER_ENV_VARS, Config, load_config
from vnfha.errors import ConfigError
from vnfha.model import Redundancy
from vnfha.timing import TimingProblem, check_timing, default_keepalive_interval_s

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def make(**changes: Any) -> Config:
    return Config(**{"group": "vfw", "member": "vfw-a", **changes})


def config_error(**changes: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make(**changes)
    return info.value


# -- timing: the pure relations ---------------------------------------------------------------

DEFAULT_TIMING: dict[str, Any] = {
    "heartbeat_interval_s": 0.05,
    "suspicion_s": 0.3,
    "lease_ttl_s": 2,
    "keepalive_interval_s": 0.5,
    "lease_margin_s": 0.2,
    "etcd_request_timeout_s": 0.5,
}


def relations(**changes: float) -> list[str]:
    return [p.relation for p in check_timing(**{**DEFAULT_TIMING, **changes})]


def test_default_timing_satisfies_every_relation() -> None:
    assert check_timing(**DEFAULT_TIMING) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # R1 heartbeat < suspicion (equal is a violation; R2 then fails too)
        ({"heartbeat_interval_s": 0.3}, ["R1", "R2"]),
        ({"heartbeat_interval_s": 0.2999}, ["R2"]),
        # R2 suspicion >= 2 x heartbeat: exactly 2x is allowed
        ({"suspicion_s": 0.1}, []),
        ({"suspicion_s": 0.0999}, ["R2"]),
        ({"heartbeat_interval_s": 0.15}, []),
        ({"heartbeat_interval_s": 0.1501}, ["R2"]),
        # R3 suspicion < TTL
        ({"suspicion_s": 1.999}, []),
        ({"suspicion_s": 2.0}, ["R3"]),
        # R4 keepalive <= TTL / 3: exactly a third is allowed
        ({"lease_ttl_s": 3, "keepalive_interval_s": 1.0}, []),
        ({"lease_ttl_s": 3, "keepalive_interval_s": 1.001}, ["R4"]),
        ({"keepalive_interval_s": 0.67}, ["R4"]),
        # R5 margin < TTL / 2
        ({"lease_margin_s": 0.999}, []),
        ({"lease_margin_s": 1.0}, ["R5", "R6"]),
        # R6 keepalive + request timeout < TTL - margin (equal is a violation)
        ({"lease_ttl_s": 1, "keepalive_interval_s": 0.3, "etcd_request_timeout_s": 0.5}, ["R6"]),
        ({"lease_ttl_s": 1, "keepalive_interval_s": 0.3, "etcd_request_timeout_s": 0.49}, []),
        ({"etcd_request_timeout_s": 1.3}, ["R6"]),
        ({"etcd_request_timeout_s": 1.29}, []),
        # R7 TTL >= 1 (and a tiny TTL breaks the others as well)
        ({"lease_ttl_s": 1}, ["R4", "R6"]),
        ({"lease_ttl_s": 1, "keepalive_interval_s": 0.25}, []),
        ({"lease_ttl_s": 0.9, "suspicion_s": 0.1, "keepalive_interval_s": 0.1,
          "lease_margin_s": 0.1, "etcd_request_timeout_s": 0.1}, ["R7"]),
    ],
)
def test_each_relation_and_its_boundary(changes: dict[str, float], expected: list[str]) -> None:
    assert relations(**changes) == expected


def test_boundaries_are_judged_in_decimal_not_binary_float() -> None:
    # 0.1 + 0.7 is 0.7999999999999999 in binary floats, which would slip under 1 - 0.2 = 0.8
    assert 0.1 + 0.7 < 1 - 0.2
    assert relations(lease_ttl_s=1, keepalive_interval_s=0.1, etcd_request_timeout_s=0.7) == [
        "R6"
    ]
    # 3 x 0.1 is 0.30000000000000004 in floats: suspicion 0.3 is still >= 3 x 0.1 here
    assert relations(heartbeat_interval_s=0.15, suspicion_s=0.3) == []


def test_messages_name_every_field_with_its_value() -> None:
    [problem] = check_timing(**{**DEFAULT_TIMING, "suspicion_s": 0.08, "heartbeat_interval_s": 0.05,
                                "lease_ttl_s": 2})
    assert problem == TimingProblem(
        "R2", ("suspicion_s", "heartbeat_interval_s"), problem.message
    )
    assert problem.field == "suspicion_s"
    assert problem.message.startswith(
        "suspicion_s=0.08 must be at least 2 x heartbeat_interval_s=0.05 (0.1)"
    )
    [r6] = check_timing(**{**DEFAULT_TIMING, "etcd_request_timeout_s": 1.5})
    for text in ("keepalive_interval_s=0.5", "etcd_request_timeout_s=1.5", "(2)",
                 "lease_ttl_s=2", "lease_margin_s=0.2", "(1.8)"):
        assert text in r6.message
    assert r6.fields == ("keepalive_interval_s", "etcd_request_timeout_s", "lease_ttl_s",
                         "lease_margin_s")


def test_every_violation_is_reported_in_table_order() -> None:
    problems = check_timing(heartbeat_interval_s=1.0, suspicion_s=0.5, lease_ttl_s=0.5,
                            keepalive_interval_s=0.5, lease_margin_s=0.5,
                            etcd_request_timeout_s=0.5)
    assert [p.relation for p in problems] == ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
    for p in problems:
        for name in p.fields:
            assert f"{name}=" in p.message


def test_a_derived_keepalive_says_where_it_came_from() -> None:
    [p] = check_timing(**{**DEFAULT_TIMING, "lease_ttl_s": 1, "keepalive_interval_s": 0.25,
                          "etcd_request_timeout_s": 0.6}, keepalive_derived=True)
    assert "keepalive_interval_s=0.25 (lease_ttl_s / 4)" in p.message


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_check_timing_refuses_non_finite_numbers(bad: float) -> None:
    with pytest.raises(ValueError, match="suspicion_s"):
        check_timing(**{**DEFAULT_TIMING, "suspicion_s": bad})


def test_check_timing_refuses_non_numbers() -> None:
    with pytest.raises(TypeError, match="lease_ttl_s"):
        check_timing(**{**DEFAULT_TIMING, "lease_ttl_s": True})


def test_default_keepalive_is_a_quarter_of_the_ttl() -> None:
    assert default_keepalive_interval_s(2) == 0.5
    assert default_keepalive_interval_s(1) == 0.25


positive = st.floats(min_value=0.001, max_value=100.0, allow_nan=False, allow_infinity=False)


@given(hb=positive, sus=positive, ttl=st.integers(1, 30), ka=positive, margin=positive,
       timeout=positive)
def test_timing_that_passes_satisfies_the_session_preconditions(
    hb: float, sus: float, ttl: int, ka: float, margin: float, timeout: float
) -> None:
    problems = check_timing(heartbeat_interval_s=hb, suspicion_s=sus, lease_ttl_s=ttl,
                            keepalive_interval_s=ka, lease_margin_s=margin,
                            etcd_request_timeout_s=timeout)
    exact = {name: Fraction(repr(v)) for name, v in
             {"hb": hb, "sus": sus, "ka": ka, "margin": margin, "timeout": timeout}.items()}
    holds = (exact["hb"] < exact["sus"] and exact["sus"] >= 2 * exact["hb"]
             and exact["sus"] < ttl and exact["ka"] <= Fraction(ttl, 3)
             and exact["margin"] < Fraction(ttl, 2)
             and exact["ka"] + exact["timeout"] < ttl - exact["margin"])
    assert (problems == []) == holds
    if not problems:
        # what Session and session_state.started() require of the same numbers
        assert 0 < ka < ttl
        assert 0 < margin < ttl


# -- Config: defaults and the documented example ----------------------------------------------


def test_defaults_are_valid_and_match_the_design() -> None:
    cfg = make()
    assert cfg.etcd_endpoints == ("127.0.0.1:2379",)
    assert cfg.listen == "127.0.0.1:0"
    assert cfg.redundancy is Redundancy.TWO_N
    assert (cfg.heartbeat_interval_s, cfg.suspicion_s, cfg.lease_ttl_s) == (0.05, 0.3, 2)
    assert cfg.keepalive_interval_s is None
    assert cfg.keepalive_interval_s_effective == 0.5
    assert cfg.etcd_password_effective is None


def test_the_design_example_builds() -> None:
    cfg = vnfha.Config(group="vfw", member="vfw-a", etcd_endpoints=("127.0.0.1:2379",),
                       listen="127.0.0.1:0", redundancy=vnfha.Redundancy.TWO_N)
    assert cfg.member == "vfw-a"
    assert vnfha.load_config is load_config


def test_defaults_are_valid_with_a_one_second_lease() -> None:
    assert make(lease_ttl_s=1).keepalive_interval_s_effective == 0.25


def test_config_is_frozen_keyword_only_and_hashable() -> None:
    cfg = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.group = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config("vfw", "vfw-a")  # type: ignore[call-arg]
    assert cfg == make() and hash(cfg) == hash(make())
    assert cfg != make(priority=1)


def test_config_error_is_a_value_error_with_structured_fields() -> None:
    err = config_error(priority=1001)
    assert isinstance(err, ValueError)
    assert (err.field, err.value) == ("priority", 1001)
    assert "0..1000" in err.problem
    assert str(err).startswith("priority=1001: ")


# -- Config: each field's bad values name it --------------------------------------------------

BAD_VALUES: list[tuple[str, object, str]] = [
    ("group", "", "1-63 characters"),
    ("group", "VFW", "a-z"),
    ("group", "-vfw", "starting"),
    ("group", "vfw-", "ending"),
    ("group", "v_fw", "a-z"),
    ("group", "a" * 64, "1-63"),
    ("group", 7, "expected a string, got int"),
    ("member", "vfw a", "a-z"),
    ("member", None, "expected a string, got NoneType"),
    ("etcd_endpoints", (), "at least one"),
    ("etcd_endpoints", "", "at least one"),
    ("etcd_endpoints", ("127.0.0.1",), "host:port"),
    ("etcd_endpoints", ("127.0.0.1:0",), "1..65535"),
    ("etcd_endpoints", ("127.0.0.1:65536",), "1..65535"),
    ("etcd_endpoints", ("127.0.0.1:23x9",), "1..65535"),
    ("etcd_endpoints", (":2379",), "host ''"),
    ("etcd_endpoints", ("https://etcd:2379",), "without a scheme"),
    ("etcd_endpoints", ("::1:2379",), "brackets"),
    ("etcd_endpoints", ("[::g]:2379",), "IPv6"),
    ("etcd_endpoints", ("[::1]",), "IPv6"),
    ("etcd_endpoints", ("a:1", "b:2", "a:1"), "'a:1' is listed twice"),
    ("etcd_endpoints", "a:1,", "host:port"),
    ("etcd_endpoints", 2379, "expected a list"),
    ("etcd_endpoints", ("a:1", 2), "expected a 'host:port' string, got int"),
    ("listen", "127.0.0.1", "host:port"),
    ("listen", "127.0.0.1:-1", "0..65535"),
    ("listen", "bad host:1", "host 'bad host'"),
    ("redundancy", "3n", "expected one of '2n', 'n-way', 'n-way-active', 'no-redundancy'"),
    ("redundancy", 2, "expected one of"),
    ("priority", -1, "0..1000"),
    ("priority", 1001, "0..1000"),
    ("priority", True, "expected an integer, got bool"),
    ("priority", 1.0, "expected an integer, got float"),
    ("no_failover", 1, "expected true or false, got int"),
    ("no_failover", "yes", "expected true or false, got str"),
    ("key_prefix", "vnfha", "start with '/'"),
    ("key_prefix", "/vnfha/", "not end with '/'"),
    ("key_prefix", "/", "not end with '/'"),
    ("key_prefix", "/vn fha", "whitespace"),
    ("key_prefix", None, "expected a string"),
    ("etcd_tls", "true", "expected true or false"),
    ("etcd_ca_file", "", "must not be empty"),
    ("etcd_username", "a\nb", "control characters"),
    ("etcd_password_file", 3, "expected a string"),
    ("lease_ttl_s", 0, "at least 1"),
    ("lease_ttl_s", 2.5, "expected an integer, got float"),
    ("lease_ttl_s", "2", "expected an integer, got str"),
    ("keepalive_interval_s", 0, "greater than 0"),
    ("metrics_port", 65536, "0..65535"),
    ("metrics_port", -1, "0..65535"),
    ("metrics_port", "9400", "expected an integer"),
    ("metrics_host", "127.0.0.1:9400", "without a port or brackets"),
    ("metrics_host", "[::1]", "without a port or brackets"),
    ("metrics_host", "", "expected an IP address"),
    ("metrics_host", 0, "expected an address string"),
    ("checkpoint_degrade_ack", "maybe", "expected true or false"),
    ("checkpoint_max_key_bytes", 0, "at least 1"),
    ("checkpoint_max_value_bytes", 1.5, "expected an integer"),
    ("checkpoint_max_section_bytes", -1, "at least 1"),
    ("checkpoint_max_message_bytes", 100, "must hold one change"),
    ("checkpoint_max_backlog_entries", 0, "at least 1"),
    ("progress_interval_s", 0, "greater than 0"),
    ("progress_interval_s", 0.01, "at least heartbeat_interval_s"),
    ("replication_ca_file", 3, "expected a string"),
    ("replication_cert_file", "/no/such/cert.pem", "replication TLS needs all of"),
    ("replication_key_file", "", "empty"),
    ("bridge_endpoint", "bridge", "host:port"),
    ("bridge_endpoint", "bridge:0", "1..65535"),
    ("bridge_ca_file", "/no/such/ca.pem", "no such readable file"),
    ("bridge_cert_file", "/no/such/cert.pem", "go together"),
    ("bridge_key_file", "/no/such/key.pem", "go together"),
    ("watchdog_timeout_s", 0.9, "greater than keepalive_interval_s"),
    ("watchdog_timeout_s", 2.5, "at most lease_ttl_s"),
    ("watchdog_action", "reboot", "one of 'reset', 'poweroff', 'pause', 'none'"),
    ("fence_mode", 1, "expected a string"),
    ("fence_mode", "shoot", "one of 'kill', 'stop'"),
    ("placement_policy", "spread", "one of 'anti-affinity'"),
    ("placement_violation", "ignore", "one of 'warn', 'refuse'"),
    ("health_check_timeout_s", 6.0, "at most health_check_period_s"),
    ("health_fail_after", 0, "1..1000"),
    ("health_recover_after", 1001, "1..1000"),
    ("checks", 5, "expected a list of checks"),  # the keys of a check: test_config_checks.py
    ("ladder_restart_max_count", -1, "0..1000"),
    ("ladder_failover_max_count", 1.5, "expected an integer"),
    ("ladder_reboot_vm_max_count", 1001, "0..1000"),
    ("ladder_evacuate_vm_max_count", "x", "expected an integer"),
    ("failover_budget_crash_ms", 0, "greater than 0"),
    ("failover_budget_crash_ms", 1000, "the worst case of a crash"),
    ("failover_budget_hang_ms", -5.0, "greater than 0"),
    ("failover_budget_hang_ms", math.inf, "greater than 0"),
    ("failover_budget_hang_ms", 1400, "the worst case of a hang without a bridge"),
    ("failover_budget_switchover_ms", True, "expected a number of milliseconds, got bool"),
    ("failover_budget_switchover_ms", "100", "expected a number of milliseconds, got str"),
    ("failover_budget_switchover_ms", 100, "the worst case of a switchover"),
    ("alarm_command", [], "must not be empty"),
    ("alarm_command", "", "must not be empty"),
    ("alarm_command", ["notify", ""], "item 1 ('') must be a non-empty string"),
    ("alarm_command", ["notify", 3], "item 1 (3) is not a string but int"),
    ("alarm_command", ["a\0b"], "without NUL characters"),
    ("alarm_command", "notify 'unclosed", "cannot split into arguments"),
    ("alarm_command", 5, "expected a list of strings"),
    ("alarm_command_timeout_s", 0, "greater than 0"),
    ("alarm_command_timeout_s", -1.0, "greater than 0"),
    ("alarm_command_timeout_s", math.inf, "greater than 0"),
    ("alarm_command_timeout_s", "5", "expected a number of seconds"),
    ("poison_policy", "rollbak", "must be one of 'rollback', 'hold', 'off'"),
    ("service_addresses", ["198.51.100.10"], "prefix"),
    ("service_addresses", "198.51.100.10/24,198.51.100.10/25", "listed twice"),
    ("service_addresses", 5, "expected a list of addresses"),
    ("service_address_mode", "cloud", "must be one of 'local', 'nfvi'"),
    ("service_address_mode", "nfvi", "nfvi needs bridge_endpoint"),
    ("address_move_timeout_s", 0, "greater than 0"),
    ("poison_policy", 1, "expected a string, got int"),
    ("poison_probation_s", 0, "greater than 0"),
    ("poison_window_s", -1.0, "greater than 0"),
    ("poison_undo_max_entries", 0, "at least 1"),
    ("poison_undo_max_bytes", "big", "expected an integer"),
    ("repair_after_s", 0, "greater than 0"),
    ("repair_after_s", math.nan, "greater than 0"),
]

DURATIONS = ["etcd_request_timeout_s", "etcd_connect_timeout_s", "heartbeat_interval_s",
             "suspicion_s", "lease_margin_s", "standby_lease_margin_s", "callback_timeout_s",
             "keepalive_interval_s",
             "checkpoint_ack_timeout_s", "bridge_timeout_s", "health_check_period_s",
             "ladder_restart_probation_s", "ladder_failover_probation_s",
             "ladder_reboot_vm_probation_s", "ladder_evacuate_vm_probation_s"]
BAD_VALUES += [(name, bad, "greater than 0") for name in DURATIONS
               for bad in (0, 0.0, -0.5, math.inf, math.nan)]
BAD_VALUES += [(name, bad, "expected a number of seconds") for name in DURATIONS
               for bad in (True, "0.5")]
BAD_VALUES += [("standby_lease_s", bad, "0 (off) or more") for bad in (-0.1, math.inf, math.nan)]
BAD_VALUES += [("standby_lease_s", 0.15, "must be at least 2 x"),
               ("standby_lease_s", 1.9, "must be less than lease_ttl_s"),
               ("standby_lease_s", True, "a number of seconds (0: off)")]


@pytest.mark.parametrize(("name", "value", "problem"), BAD_VALUES)
def test_a_bad_value_names_its_field_and_value(name: str, value: object, problem: str) -> None:
    err = config_error(**{name: value})
    assert err.field == name
    # list fields name the offending item rather than the whole list
    assert err.value is value or err.value == value or name in ("etcd_endpoints",
                                                                "service_addresses")
    assert problem in err.problem
    assert str(err).startswith(f"{name}=")


def test_every_field_has_a_bad_value_test() -> None:
    tested = {name for name, _, _ in BAD_VALUES}
    # etcd_cert_file / etcd_key_file / etcd_password are covered by the security tests below
    fields = {f.name for f in dataclasses.fields(Config) if f.init}
    assert fields - tested == {"etcd_cert_file", "etcd_key_file", "etcd_password"}


@pytest.mark.parametrize("name", ["a", "vfw", "vfw-a", "0", "a" * 63, "a-b-c-1"])
def test_good_names(name: str) -> None:
    assert make(group=name, member=name).group == name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a:1", "b:2"], ("a:1", "b:2")),
        ("a:1, b:2", ("a:1", "b:2")),
        ("etcd-0.example.net:2379", ("etcd-0.example.net:2379",)),
        (("[::1]:2379", "[fe80::1]:65535"), ("[::1]:2379", "[fe80::1]:65535")),
    ],
)
def test_endpoints_are_normalised_to_a_tuple(value: object, expected: tuple[str, ...]) -> None:
    assert make(etcd_endpoints=value).etcd_endpoints == expected


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "0.0.0.0:7400", "[::]:0", "localhost:65535"])
def test_listen_allows_port_zero_and_ipv6(listen: str) -> None:
    assert make(listen=listen).listen == listen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2n", Redundancy.TWO_N),
        ("TWO_N", Redundancy.TWO_N),
        ("n-way", Redundancy.N_WAY),
        ("n_way", Redundancy.N_WAY),
        ("N-WAY-ACTIVE", Redundancy.N_WAY_ACTIVE),
        ("no_redundancy", Redundancy.NO_REDUNDANCY),
        (Redundancy.N_WAY, Redundancy.N_WAY),
    ],
)
def test_redundancy_accepts_its_strings(value: object, expected: Redundancy) -> None:
    assert make(redundancy=value).redundancy is expected


@pytest.mark.parametrize(("name", "value"),
                         [("metrics_host", "0.0.0.0"), ("metrics_host", "::"),
                          ("metrics_host", "fd00::2"), ("metrics_host", "node-1.example"),
                          ("priority", 0), ("priority", 1000), ("metrics_port", 0),
                          ("metrics_port", 65535), ("metrics_port", None),
                          ("key_prefix", "/a/b-c"), ("no_failover", True),
                          ("failover_budget_crash_ms", 1250), ("failover_budget_hang_ms", 4000.5),
                          ("failover_budget_hang_ms", None),
                          ("failover_budget_switchover_ms", 8000)])
def test_boundary_values_are_accepted(name: str, value: object) -> None:
    assert getattr(make(**{name: value}), name) == value


def test_integer_durations_become_floats() -> None:
    cfg = make(callback_timeout_s=5, keepalive_interval_s=1 / 2)
    assert type(cfg.callback_timeout_s) is float
    assert cfg.keepalive_interval_s_effective == 0.5


# -- Config: timing relations at construction -------------------------------------------------


def test_config_reports_all_violated_relations_at_once() -> None:
    err = config_error(suspicion_s=0.08, etcd_request_timeout_s=1.5)
    assert (err.field, err.value) == ("suspicion_s", 0.08)
    assert err.problem.startswith("2 timing relations violated: (1) ")
    assert "suspicion_s=0.08 must be at least 2 x heartbeat_interval_s=0.05 (0.1)" in err.problem
    assert "(2) keepalive_interval_s=0.5 (lease_ttl_s / 4) + etcd_request_timeout_s=1.5" \
        in err.problem


def test_a_single_violation_is_its_own_message() -> None:
    err = config_error(keepalive_interval_s=0.7)
    assert (err.field, err.value) == ("keepalive_interval_s", 0.7)
    assert err.problem.startswith("keepalive_interval_s=0.7 must be at most lease_ttl_s=2 / 3")


def test_a_derived_keepalive_is_reported_with_its_value() -> None:
    err = config_error(lease_ttl_s=1, etcd_request_timeout_s=0.6)
    assert (err.field, err.value) == ("keepalive_interval_s", 0.25)


# -- Config: etcd TLS and auth ----------------------------------------------------------------


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_tls_files_need_etcd_tls(pem: Path) -> None:
    err = config_error(etcd_ca_file=str(pem))
    assert (err.field, err.value) == ("etcd_tls", False)
    assert "etcd_ca_file=" in err.problem and "etcd_tls=true" in err.problem
    assert make(etcd_tls=True, etcd_ca_file=str(pem)).etcd_ca_file == str(pem)


def test_tls_without_files_uses_the_system_roots() -> None:
    assert make(etcd_tls=True).etcd_ca_file is None


@pytest.mark.parametrize("given", ["etcd_cert_file", "etcd_key_file"])
def test_cert_and_key_go_together(pem: Path, given: str) -> None:
    err = config_error(etcd_tls=True, **{given: str(pem)})
    assert (err.field, err.value) == (given, str(pem))
    assert "go together" in err.problem
    cfg = make(etcd_tls=True, etcd_cert_file=str(pem), etcd_key_file=str(pem))
    assert cfg.etcd_key_file == str(pem)


@pytest.mark.parametrize("name", ["etcd_ca_file", "etcd_cert_file", "etcd_key_file"])
def test_a_missing_tls_file_is_refused(tmp_path: Path, pem: Path, name: str) -> None:
    files = {"etcd_cert_file": str(pem), "etcd_key_file": str(pem),
             name: str(tmp_path / "nope.pem")}
    err = config_error(etcd_tls=True, **files)
    assert (err.field, err.value) == (name, str(tmp_path / "nope.pem"))
    assert "no such readable file" in err.problem


def test_a_directory_is_not_a_tls_file(tmp_path: Path) -> None:
    assert config_error(etcd_tls=True, etcd_ca_file=str(tmp_path)).field == "etcd_ca_file"


def test_username_needs_a_password() -> None:
    err = config_error(etcd_username="vfw")
    assert (err.field, err.value) == ("etcd_username", "vfw")
    assert "etcd_password" in err.problem


def test_password_needs_a_username_and_never_shows() -> None:
    err = config_error(etcd_password="hunter2")
    assert (err.field, err.value) == ("etcd_password", "***")
    assert "hunter2" not in str(err)


def test_a_bad_password_never_shows() -> None:
    err = config_error(etcd_username="vfw", etcd_password="hun\tter2")
    assert err.value == "***" and "hun" not in str(err)
    err = config_error(etcd_username="vfw", etcd_password=b"hunter2")
    assert err.value == "***" and "hunter2" not in str(err)


def test_password_is_masked_in_repr_and_describe() -> None:
    cfg = make(etcd_username="vfw", etcd_password="hunter2")
    assert cfg.etcd_password_effective == "hunter2"
    assert "hunter2" not in repr(cfg) and "etcd_password='***'" in repr(cfg)
    described = cfg.describe()
    assert described["etcd_password"] == "***"
    assert "hunter2" not in json.dumps(described)
    assert "etcd_password=None" in repr(make())
    assert make().describe()["etcd_password"] is None


def test_password_file_is_read_when_built(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = make(etcd_username="vfw", etcd_password_file=str(secret))
    secret.write_text("changed\n")
    assert cfg.etcd_password_effective == "s3cret"
    assert cfg.etcd_password is None
    assert "s3cret" not in repr(cfg) and "s3cret" not in json.dumps(cfg.describe())
    assert cfg == make(etcd_username="vfw", etcd_password_file=str(secret))


@pytest.mark.parametrize(("content", "expected"),
                         [("pw", "pw"), ("pw\r\n", "pw"), ("pw\n\n", "pw\n"), (" pw ", " pw ")])
def test_password_file_drops_one_trailing_newline(
    tmp_path: Path, content: str, expected: str
) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(content.encode())
    assert make(etcd_username="u", etcd_password_file=str(secret)).etcd_password_effective \
        == expected


@pytest.mark.parametrize(("content", "problem"),
                         [(None, "cannot read"), (b"", "empty"), (b"\n", "empty"),
                          (b"\xff\xfe", "UTF-8")])
def test_a_bad_password_file_is_refused(tmp_path: Path, content: bytes | None,
                                        problem: str) -> None:
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_bytes(content)
    err = config_error(etcd_username="vfw", etcd_password_file=str(secret))
    assert (err.field, err.value) == ("etcd_password_file", str(secret))
    assert problem in err.problem


def test_password_and_password_file_are_exclusive(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("pw")
    err = config_error(etcd_username="vfw", etcd_password="x", etcd_password_file=str(secret))
    assert err.field == "etcd_password_file" and "not both" in err.problem


def test_password_file_without_username_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("pw")
    err = config_error(etcd_password_file=str(secret))
    assert err.field == "etcd_password_file" and "etcd_username" in err.problem


# -- replace and describe ---------------------------------------------------------------------


def test_replace_returns_a_validated_copy() -> None:
    cfg = make()
    moved = cfg.replace(lease_ttl_s=4, member="vfw-b")
    assert (moved.lease_ttl_s, moved.member, moved.group) == (4, "vfw-b", "vfw")
    assert moved.keepalive_interval_s_effective == 1.0
    assert cfg.lease_ttl_s == 2
    with pytest.raises(ConfigError, match=r"suspicion_s=0\.01"):
        cfg.replace(suspicion_s=0.01)
    with pytest.raises(ConfigError) as info:
        cfg.replace(priority=-1)
    assert info.value.field == "priority"


def test_replace_normalises_like_the_constructor() -> None:
    cfg = make().replace(etcd_endpoints="a:1,b:2", redundancy="n_way")
    assert cfg.etcd_endpoints == ("a:1", "b:2") and cfg.redundancy is Redundancy.N_WAY


def test_replace_refuses_unknown_fields_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        make().replace(lease_ttl=3)
    assert info.value.field == "lease_ttl"
    assert "did you mean 'lease_ttl_s'?" in info.value.problem
    with pytest.raises(ConfigError):
        make().replace(_password_from_file="x")


def test_replace_rereads_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("one")
    cfg = make(etcd_username="u", etcd_password_file=str(secret))
    secret.write_text("two")
    assert cfg.replace(priority=1).etcd_password_effective == "two"


def test_describe_is_plain_json_and_round_trips() -> None:
    cfg = make(etcd_endpoints=("a:1", "[::1]:2"), redundancy=Redundancy.N_WAY_ACTIVE,
               keepalive_interval_s=0.4, metrics_port=9400)
    described = cfg.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["etcd_endpoints"] == ["a:1", "[::1]:2"]
    assert described["redundancy"] == "n-way-active"
    assert list(described) == [f.name for f in dataclasses.fields(Config) if f.init]
    assert Config.from_mapping(described) == cfg


# -- from_mapping -----------------------------------------------------------------------------


def test_from_mapping_suggests_the_nearest_field() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"group": "g", "member": "m", "lease_ttl": 3}, source="vnfha.toml")
    assert (info.value.field, info.value.value) == ("lease_ttl", 3)
    assert info.value.problem == "unknown field 'lease_ttl' in vnfha.toml; did you mean " \
                                 "'lease_ttl_s'?"


def test_from_mapping_lists_the_fields_when_nothing_is_near() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"group": "g", "member": "m", "zzzz": 1})
    assert "unknown field 'zzzz' in <mapping>; the fields are group, member," in str(info.value)


def test_from_mapping_masks_a_misspelt_password() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"group": "g", "member": "m", "etcd_pasword": "hunter2"})
    assert "did you mean 'etcd_password'?" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_from_mapping_coerces_strings() -> None:
    cfg = Config.from_mapping({
        "group": "g", "member": "m", "lease_ttl_s": " 3 ", "priority": "+7",
        "no_failover": "Yes", "etcd_tls": "off", "suspicion_s": "0.5",
        "keepalive_interval_s": "", "metrics_port": "9400", "etcd_endpoints": "a:1,b:2",
        "redundancy": "n-way", "etcd_ca_file": "",
    })
    assert (cfg.lease_ttl_s, cfg.priority, cfg.no_failover, cfg.etcd_tls) == (3, 7, True, False)
    assert (cfg.suspicion_s, cfg.keepalive_interval_s, cfg.metrics_port) == (0.5, None, 9400)
    assert cfg.etcd_endpoints == ("a:1", "b:2") and cfg.redundancy is Redundancy.N_WAY
    assert cfg.etcd_ca_file is None


@pytest.mark.parametrize(("key", "raw", "problem"),
                         [("lease_ttl_s", "2.0", "expected an integer"),
                          ("lease_ttl_s", "two", "expected an integer"),
                          ("suspicion_s", "fast", "expected a number of seconds"),
                          ("suspicion_s", "inf", "finite"),
                          ("no_failover", "maybe", "expected true/false"),
                          ("metrics_port", "0x10", "expected an integer")])
def test_from_mapping_names_a_string_that_does_not_parse(key: str, raw: str,
                                                         problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"group": "g", "member": "m", key: raw}, source="test")
    assert info.value.field == key
    assert problem in info.value.problem


def test_from_mapping_says_where_a_bad_value_came_from() -> None:
    with pytest.raises(ConfigError, match=r"0\.\.1000 \(set in my.yaml\)"):
        Config.from_mapping({"group": "g", "member": "m", "priority": 5000}, source="my.yaml")


def test_from_mapping_requires_group_and_member() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"group": "g"}, source="x.toml")
    assert info.value.field == "member" and "not set in x.toml" in info.value.problem


def test_from_mapping_refuses_non_string_keys() -> None:
    with pytest.raises(ConfigError, match="field names are strings"):
        Config.from_mapping({"group": "g", "member": "m", 1: 2})  # type: ignore[dict-item]


# -- load_config: files -----------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "vnfha.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_config_reads_a_flat_toml_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
group = "vfw"
member = "vfw-a"
redundancy = "n-way"
etcd_endpoints = ["a:1", "b:2"]
lease_ttl_s = 3
lease_margin_s = 1
no_failover = true
metrics_port = 9400
""")
    cfg = load_config(path, environ={})
    assert cfg.redundancy is Redundancy.N_WAY
    assert cfg.etcd_endpoints == ("a:1", "b:2")
    assert (cfg.lease_ttl_s, cfg.lease_margin_s, cfg.no_failover) == (3, 1.0, True)
    assert load_config(str(path), environ={}) == cfg


def test_the_documented_example_file_loads(tmp_path: Path) -> None:
    [example] = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    cfg = load_config(write(tmp_path, example), environ={})
    assert (cfg.group, cfg.member, cfg.metrics_port) == ("vfw", "vfw-a", 9400)


def test_the_docs_table_lists_every_field() -> None:
    text = DOCS.read_text()
    for f in dataclasses.fields(Config):
        if f.init:
            assert f"| `{f.name}` |" in text, f.name


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", environ={})
    assert (info.value.field, info.value.value) == ("config_file", str(tmp_path / "nope.toml"))
    assert "cannot read" in info.value.problem


def test_invalid_toml_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "vfw"\nmember = vfw-a\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.field == "config_file" and info.value.value == str(path)
    assert "invalid TOML" in info.value.problem and "line 2" in info.value.problem


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vnfha.toml"
    path.write_bytes(b'group = "\xff"\n')
    with pytest.raises(ConfigError, match="config_file"):
        load_config(path, environ={})


def test_an_unknown_key_in_a_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\nsuspicion = 0.3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problem == f"unknown field 'suspicion' in {path}; did you mean " \
                                 "'suspicion_s'?"


def test_a_table_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\n[etcd]\nendpoints = ["a:1"]\n')
    with pytest.raises(ConfigError, match=r"the file is flat"):
        load_config(path, environ={})


def test_a_bad_value_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\nlease_ttl_s = 2.5\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.field == "lease_ttl_s"
    assert info.value.problem.endswith(f"(set in {path})")


def test_relative_files_are_relative_to_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf" / "pki").mkdir(parents=True)
    (tmp_path / "conf" / "pki" / "ca.pem").write_text("x")
    (tmp_path / "conf" / "pw").write_text("secret\n")
    write(tmp_path / "conf", 'group = "g"\nmember = "m"\netcd_tls = true\n'
          'etcd_ca_file = "pki/ca.pem"\netcd_username = "u"\netcd_password_file = "pw"\n')
    monkeypatch.chdir(tmp_path)
    cfg = load_config("conf/vnfha.toml", environ={})
    assert cfg.etcd_ca_file == str(tmp_path / "conf" / "pki" / "ca.pem")
    assert cfg.etcd_password_effective == "secret"


# -- load_config: environment -----------------------------------------------------------------


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\nlease_ttl_s = 2\npriority = 5\n')
    cfg = load_config(path, environ={
        "VNFHA_LEASE_TTL_S": "3",
        "VNFHA_ETCD_ENDPOINTS": "a:1,b:2",
        "VNFHA_NO_FAILOVER": "true",
        "VNFHA_MEMBER": "m2",
        "VNFHA_REDUNDANCY": "no_redundancy",
        "VNFHA_KEEPALIVE_INTERVAL_S": "0.5",
    })
    assert (cfg.lease_ttl_s, cfg.priority, cfg.no_failover, cfg.member) == (3, 5, True, "m2")
    assert cfg.etcd_endpoints == ("a:1", "b:2")
    assert cfg.redundancy is Redundancy.NO_REDUNDANCY
    assert cfg.keepalive_interval_s == 0.5


@pytest.mark.parametrize(("raw", "expected"),
                         [("true", True), ("FALSE", False), ("1", True), ("0", False),
                          ("yes", True), ("no", False), ("on", True), ("Off", False)])
def test_environment_booleans(raw: str, expected: bool) -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "VNFHA_NO_FAILOVER": raw}
    assert load_config(None, environ=env).no_failover is expected


def test_an_empty_variable_unsets_an_optional_field(tmp_path: Path) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\nmetrics_port = 9400\n')
    assert load_config(path, environ={"VNFHA_METRICS_PORT": ""}).metrics_port is None


def test_a_bad_environment_value_names_the_variable() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "VNFHA_LEASE_TTL_S": "0"}
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=env)
    assert info.value.field == "lease_ttl_s"
    assert "(set in environment variable VNFHA_LEASE_TTL_S)" in info.value.problem
    env["VNFHA_LEASE_TTL_S"] = "soon"
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(None, environ=env)


def test_an_unknown_vnfha_variable_is_refused_with_a_suggestion() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "VNFHA_LEASE_TTL": "3"}
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=env)
    assert info.value.field == "VNFHA_LEASE_TTL"
    assert "did you mean VNFHA_LEASE_TTL_S?" in info.value.problem


def test_a_misspelt_password_variable_does_not_leak() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "VNFHA_ETCD_PASSWD": "hunter2"}
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=env)
    assert "hunter2" not in str(info.value)


def test_variable_names_are_upper_case() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "VNFHA_lease_ttl_s": "3"}
    with pytest.raises(ConfigError, match="did you mean VNFHA_LEASE_TTL_S"):
        load_config(None, environ=env)


def test_other_variables_are_ignored() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m", "HOME": "/root", "vnfha_x": "1",
           **dict.fromkeys(OTHER_ENV_VARS, "/usr/bin/etcd")}
    assert "VNFHA_ETCD_BIN" in OTHER_ENV_VARS
    assert load_config(None, environ=env) == make(group="g", member="m")


def test_environ_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'group = "g"\nmember = "m"\n')
    monkeypatch.setenv("VNFHA_PRIORITY", "42")
    assert load_config(path).priority == 42
    assert load_config(path, environ={}).priority == 0


def test_group_and_member_are_required() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={"VNFHA_MEMBER": "m"})
    assert info.value.field == "group"
    assert "not set in the environment" in info.value.problem


def test_public_names_are_exported() -> None:
    assert vnfha.Config is Config and vnfha.load_config is load_config
    assert "Config" in vnfha.__all__ and "load_config" in vnfha.__all__


def test_the_standby_lease_is_derived_unless_set() -> None:
    def effective(**changes: Any) -> float:
        return Config(group="g", member="a", **changes).standby_lease_s_effective

    assert effective() == 0.3  # the suspicion
    assert effective(heartbeat_interval_s=0.15) == pytest.approx(0.4)  # R8's least
    assert effective(standby_lease_s=0.5) == 0.5
    assert effective(standby_lease_s=0) == 0.0
    # not below lease_ttl_s - lease_margin_s (R9): the etcd lease is as fast, so off
    assert effective(lease_ttl_s=1, suspicion_s=0.9) == 0.0
    with pytest.raises(ConfigError, match="must be less than lease_ttl_s"):
        Config(group="g", member="a", lease_ttl_s=1, standby_lease_s=0.9)


def test_the_alarm_command_is_an_argv_tuple_from_a_list_the_file_or_the_environment(
        tmp_path: Path) -> None:
    assert make().alarm_command is None and make().alarm_command_timeout_s == 5.0
    cfg = make(alarm_command=["/bin/notify", "--to", "noc ops"], alarm_command_timeout_s=2)
    assert cfg.alarm_command == ("/bin/notify", "--to", "noc ops")
    assert cfg.alarm_command_timeout_s == 2.0
    assert Config.from_mapping(cfg.describe()) == cfg
    path = write(tmp_path, 'group = "vfw"\nmember = "vfw-a"\n'
                           'alarm_command = ["/bin/notify", "--to", "noc ops"]\n')
    assert load_config(path, environ={}).alarm_command == cfg.alarm_command
    env = {"VNFHA_ALARM_COMMAND": "/bin/notify --to 'noc ops'",
           "VNFHA_ALARM_COMMAND_TIMEOUT_S": "2.5"}
    from_env = load_config(path, environ=env)
    assert (from_env.alarm_command, from_env.alarm_command_timeout_s) == (cfg.alarm_command, 2.5)
    assert load_config(path, environ={"VNFHA_ALARM_COMMAND": ""}).alarm_command is None

