"""vnfha.apps.demo_timeline, the demo's pure part: reading member events, deciding roles, takeover
and verdict, and the lines it prints. The end-to-end runs are in tests/integration/test_demo.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from vnfha.admin import GroupStatus, MemberStatus
from vnfha.apps.demo import main
from vnfha.apps.demo_run import without_vnfha_env
from vnfha.apps.demo_timeline import (
    Entry,
    MemberEvent,
    client_summary,
    describe_member_event,
    find_takeover,
    format_client,
    format_roles,
    format_step,
    format_timeline,
    judge,
    pair_roles,
    parse_member_line,
)
from vnfha.bridge.drivers.driver import Instance, InstanceState

WALL = 1_700_000_000.0


def ev(member: str, kind: str, t: float = 0.0, **fields: Any) -> MemberEvent:
    return MemberEvent(member, kind, t, {"event": kind, **fields})


def test_member_lines_are_events_on_the_demo_axis_and_the_rest_is_skipped() -> None:
    line = json.dumps({"event": "active", "member": "b", "t": WALL + 2.5, "epoch": 9})
    event = parse_member_line(line, "b", WALL)
    assert event is not None
    assert (event.member, event.kind, event.t, event.fields["epoch"]) == ("b", "active", 2.5, 9)
    for other in ("--- vnfha sim: vm-a launched on host-a: python vnf.py",
                  "2024-01-01 WARNING vnfha something", '{"event": "act', '{"no": "event"}',
                  '{"event": "x", "t": "noon"}', ""):
        assert parse_member_line(other, "a", WALL) is None, other


def test_pair_is_ready_only_when_the_active_counts_the_other_in_sync() -> None:
    events = [ev("a", "ready"), ev("a", "active", epoch=3), ev("b", "standby", epoch=3)]
    assert pair_roles(events, ("a", "b")) is None
    events.append(ev("a", "in_sync", standbys=[]))
    assert pair_roles(events, ("a", "b")) is None
    events.append(ev("a", "in_sync", standbys=["b"]))
    assert pair_roles(events, ("a", "b")) == ("a", "b")
    events.append(ev("a", "standby", epoch=5))  # deposed: no longer a ready pair
    assert pair_roles(events, ("a", "b")) is None


def test_takeover_is_another_member_above_the_old_epoch() -> None:
    events = [ev("a", "active", 1.0, epoch=3), ev("b", "active", 2.0, epoch=3),
              ev("a", "active", 3.0, epoch=9), ev("b", "active", 4.0, epoch=12)]
    found = find_takeover(events, "a", 3)
    assert found is not None and (found.member, found.t) == ("b", 4.0)
    assert find_takeover(events[:3], "a", 3) is None


def test_verdict_needs_a_higher_epoch_and_no_lost_acknowledged_increment() -> None:
    assert judge(ev("b", "active", epoch=9), 3, 0) == ""
    assert "no other member" in judge(None, 3, 0)
    assert "did not rise above 3" in judge(ev("b", "active", epoch=3), 3, 0)
    assert "lost 2 acknowledged" in judge(ev("b", "active", epoch=9), 3, 2)


@pytest.mark.parametrize(("kind", "fields", "expected"), [
    ("active", {"epoch": 9, "previous": "standby", "sessions": 4},
     "ACTIVE at epoch 9 (was standby, 4 sessions in its checkpoint)"),
    ("active", {"epoch": 9, "previous": "standby", "sessions": 4,
                "reason": "took over (epoch 9)"},
     "ACTIVE at epoch 9: took over (was standby, 4 sessions in its checkpoint)"),
    ("standby", {"role": "spare", "epoch": 3}, "SPARE at epoch 3"),
    ("in_sync", {"standbys": []}, "standbys in sync: none"),
    ("serving", {"address": "127.0.0.1:5300"}, "serving UDP on 127.0.0.1:5300"),
    ("status", {}, None),
])
def test_member_events_read_as_one_line(kind: str, fields: dict[str, Any],
                                        expected: str | None) -> None:
    assert describe_member_event(ev("b", kind, **fields)) == expected


def status(active: str | None, *members: tuple[str, str, bool]) -> GroupStatus:
    rows = tuple(MemberStatus(member=m, role=role, epoch=9, holds_active_key=holds,
                              in_sync=True, priority=0, no_failover=False,
                              listen=f"127.0.0.1:4{i}", etcd_endpoint="127.0.0.1:2379", pid=100 + i,
                              host="box")
                 for i, (m, role, holds) in enumerate(members))
    return GroupStatus("g", "2n", active, 9, rows, 14, "127.0.0.1:2379")


def test_roles_table_marks_the_key_holder_and_lists_vms_that_left_the_group() -> None:
    vms = [Instance("vm-a", "g", "a", "host-a", InstanceState.STOPPED),
           Instance("vm-b", "g", "b", "host-b", InstanceState.RUNNING)]
    lines = format_roles(status("b", ("b", "active", True)), vms)
    assert lines[0].startswith("group g  redundancy 2n  active b (epoch 9)")
    assert lines[1].split() == ["MEMBER", "ROLE", "EPOCH", "SYNC", "LISTEN", "PID", "VM"]
    assert lines[2].split() == ["b", "active*", "9", "-", "127.0.0.1:40", "100",
                                "vm-b@host-b", "running"]
    assert lines[3].split() == ["a", "-", "-", "-", "-", "-", "vm-a@host-a", "stopped"]


def test_timeline_starts_at_the_fault_in_time_order() -> None:
    entries = [Entry(1.0, "demo", "roles"), Entry(2.0, "demo", "FAULT"),
               Entry(2.0083, "b", "ACTIVE"), Entry(2.004, "bridge", "vm-crashed")]
    lines = format_timeline(entries, 2.00004)
    assert [line.split()[-1] for line in lines] == ["FAULT", "vm-crashed", "ACTIVE"]
    assert lines[0].split()[:2] == ["+0.0", "ms"]
    assert lines[2].split()[:3] == ["+8.3", "ms", "b"]
    assert format_step(2.0083, "b", "ACTIVE") == "[  2.008s] b       ACTIVE"


def client_report(**overrides: Any) -> dict[str, Any]:
    report = {"sent": 900, "answered": 900, "lost": 0, "retransmissions": 3, "refused": 1,
              "outage_ms": 40.0, "outage_start": WALL + 3.0, "outage_end": WALL + 3.04,
              "outages": [], "latency_ms": {"p50": 0.5, "p99": 2.0, "max": 9.0},
              "lost_increments": [], "double_increments": 0}
    return {**report, **overrides}


def test_the_outage_at_the_failover_is_the_longest_gap_that_overlaps_it() -> None:
    outages = [{"start": WALL + 1.0, "end": WALL + 1.04, "ms": 40.0},  # before: noise
               {"start": WALL + 1.996, "end": WALL + 2.010, "ms": 14.0},  # spans the fault
               {"start": WALL + 2.012, "end": WALL + 2.025, "ms": 13.0},  # before serving
               {"start": WALL + 3.0, "end": WALL + 3.04, "ms": 40.0}]  # after: noise
    summary = client_summary(client_report(outages=outages), WALL, 2.0, 2.020)
    assert (summary["fault_outage_ms"], summary["fault_outage_start_ms"],
            summary["fault_outage_end_ms"]) == (14.0, -4.0, 10.0)
    assert (summary["outage_start_ms"], summary["outage_end_ms"]) == (1000.0, 1040.0)
    quiet = client_summary(client_report(lost_increments=[{"session": "s"}]), WALL, 2.0, 2.02)
    assert quiet["fault_outage_ms"] is None and quiet["lost_increments"] == 1
    lines = format_client(quiet, 0.01)
    assert "outage at the failover under 10 ms" in lines[1]
    assert lines[2].startswith("client: acknowledged increments lost: 1")


def test_unknown_kill_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--kill", "sighup"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sighup'" in capsys.readouterr().err


def test_members_get_none_of_the_callers_vnfha_variables_but_the_demos() -> None:
    argv = ["python", "vnf.py", "--json"]
    assert without_vnfha_env(argv, {"PATH": "/bin", "VNFHA_X": ""}, {"VNFHA_X": "1"}) == argv
    cmd = without_vnfha_env(argv, {"VNFHA_LEASE_TTL_S": "3", "VNFHA_BRIDGE_ENDPOINT": "x",
                                   "HOME": "/root", "VNFHA_REQUIRE_LIBVIRT": "1"},
                            {"VNFHA_BRIDGE_ENDPOINT": "127.0.0.1:1"})
    assert cmd[0].endswith("env")
    assert cmd[1:] == ["-u", "VNFHA_LEASE_TTL_S", "-u", "VNFHA_REQUIRE_LIBVIRT", *argv]
