"""Roles with real member processes on a real 3-member etcd: election, crash, switchover, clean
stop, N_WAY ranking, N_WAY_ACTIVE, a frozen active demoting itself, misbehaving callbacks."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.etcd


def role_is(role: str, epoch_above: int = 0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > epoch_above


def test_two_members_elect_exactly_one_active(spawn: Any) -> None:
    a = spawn("a")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b")
    b.wait_for(role_is("standby"), 10, "b standby")
    time.sleep(0.5)
    assert a.role() == "active" and b.role() == "standby"
    assert not any(e["event"] == "act" for e in b.events)
    # the standby knows the active's epoch
    assert b.wait_for(role_is("standby"), 1)["epoch"] == first["epoch"]


def test_sigkill_of_the_active_fails_over_within_ttl_plus_one_second(spawn: Any) -> None:
    # two crashes seconds apart, on purpose: not taken for a poisoned state (test_poison_*)
    off = ("--set", "poison_policy=off")
    a = spawn("a", *off)
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b", *off)
    b.wait_for(role_is("standby"), 10, "b standby")
    killed_at = time.time()
    a.kill()
    took_over = b.wait_for(role_is("active", first["epoch"]), 2 + 1 + 2, "b active")
    assert took_over["t"] - killed_at <= 2 + 1, took_over["t"] - killed_at
    assert took_over["epoch"] > first["epoch"]
    # and again: a restarted a joins as standby; killing b hands it back with a higher epoch
    a2 = spawn("a", *off)
    a2.wait_for(role_is("standby"), 10, "a2 standby")
    b.kill()
    back = a2.wait_for(role_is("active", took_over["epoch"]), 5, "a2 active")
    assert back["epoch"] > took_over["epoch"]


def test_clean_stop_hands_over_well_under_a_second(spawn: Any) -> None:
    a = spawn("a")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b")
    b.wait_for(role_is("standby"), 10, "b standby")
    stop_at = time.time()
    assert a.terminate() == 0
    assert a.events[-1]["event"] == "stopped"
    assert any(e["event"] == "callback" and e["name"] == "on_quiesce" for e in a.events)
    took_over = b.wait_for(role_is("active", first["epoch"]), 5, "b active")
    assert took_over["t"] - stop_at < 0.5, took_over["t"] - stop_at
    # a acted for the last time before b's first action
    last_a = max(e["t"] for e in a.events if e["event"] == "act")
    b.wait_for(lambda e: e["event"] == "act", 2, "b acts")
    first_b = min(e["t"] for e in b.events if e["event"] == "act")
    assert last_a < first_b


def test_n_way_keeps_one_active_and_ranked_standbys(spawn: Any) -> None:
    nway = ("--redundancy", "n-way")
    a = spawn("a", *nway, "--priority", "1")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b", *nway, "--priority", "5")
    c = spawn("c", *nway, "--priority", "3")
    b.wait_for(role_is("standby"), 10)
    c.wait_for(role_is("standby"), 10)
    a.kill()
    # b has the higher priority, so it is ranked first and takes over; c stays standby
    b_active = b.wait_for(role_is("active", first["epoch"]), 5, "b active")
    c.wait_for(lambda e: e["event"] == "role" and e["role"] == "standby"
               and e["epoch"] == b_active["epoch"], 5, "c follows b")
    time.sleep(0.3)
    assert c.role() == "standby"


def test_n_way_active_keeps_every_member_active(spawn: Any) -> None:
    opts = ("--redundancy", "n-way-active")
    members = [spawn(n, *opts) for n in ("a", "b", "c")]
    for m in members:
        m.wait_for(role_is("active"), 10)
    members[0].kill()
    time.sleep(0.5)
    for m in members[1:]:  # active once, never disturbed by the others joining or dying
        assert [e["role"] for e in m.events if e["event"] == "role"] == ["active"]


def test_a_paused_active_demotes_itself_before_acting_when_resumed(spawn: Any) -> None:
    a = spawn("a")
    first = a.wait_for(role_is("active"), 10, "a active")
    b = spawn("b")
    b.wait_for(role_is("standby"), 10)
    a.pause()
    paused_at = time.time()
    try:
        took_over = b.wait_for(role_is("active", first["epoch"]), 6, "b active")
        time.sleep(0.2)
    finally:
        a.resume()
    resumed_at = time.time()
    assert took_over["t"] - paused_at <= 2 + 1
    demoted = a.wait_for(lambda e: e["event"] == "role" and e["previous"] == "active", 5,
                         "a demotes")
    assert resumed_at > took_over["t"]
    # the first thing a did after it was resumed was to demote itself: no act of the old epoch
    after = [e for e in a.events if e["t"] > took_over["t"]]
    assert after[0] is demoted, after[:5]
    assert not [e for e in after if e["event"] == "act" and e["epoch"] == first["epoch"]]
    assert "session lost" in demoted["reason"] or "taken" in demoted["reason"], demoted
    a.wait_for(role_is("standby", first["epoch"]), 10, "a rejoins as standby")


def test_callbacks_that_raise_or_hang_are_reported_and_the_member_goes_on(spawn: Any) -> None:
    a = spawn("a", "--fail", "on_active", "--callback-timeout-s", "0.5")
    first = a.wait_for(role_is("active"), 10, "a active")
    failed = a.wait_for(lambda e: e["event"] == "callback_failed", 5, "failure report")
    assert failed["callback"] == "on_active" and "scripted failure" in failed["error"]
    assert not failed["timed_out"]
    b = spawn("b", "--hang", "on_standby", "--callback-timeout-s", "0.5")
    hung = b.wait_for(lambda e: e["event"] == "callback_failed", 5, "overrun report")
    assert hung["callback"] == "on_standby" and hung["timed_out"]
    # both keep running their roles: a crash of a still fails over to b
    a.wait_for(lambda e: e["event"] == "act", 2, "a acts despite its failed callback")
    a.kill()
    b.wait_for(role_is("active", first["epoch"]), 5, "b active")
    b.wait_for(lambda e: e["event"] == "act", 2, "b acts")
