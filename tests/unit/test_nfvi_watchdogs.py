"""The bridge's watchdog timers: expiry exactly at the deadline, once, in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnfha.bridge.watchdogs import WatchdogTable
from vnfha.nfvi.model import WatchdogAction

RESET = WatchdogAction.RESET


def arm(table: WatchdogTable, instance: str, timeout_s: float, now: float) -> None:
    table.arm(instance, group="g", member=instance, epoch=1, timeout_s=timeout_s,
              action=RESET, now=now)


def test_kick_pushes_the_deadline_and_expiry_is_one_shot() -> None:
    table = WatchdogTable()
    arm(table, "vm", 1.0, now=10.0)
    assert table.next_deadline() == 11.0
    assert table.expire(10.9) == []
    kicked = table.kick("vm", epoch=1, now=10.9)
    assert kicked is not None and kicked.deadline == pytest.approx(11.9)
    assert kicked.remaining_s(11.0) == pytest.approx(0.9)
    assert table.expire(11.8) == []
    assert [a.instance for a in table.expire(11.9)] == ["vm"]
    assert table.expire(20.0) == [] and table.get("vm") is None
    assert table.kick("vm", epoch=1, now=20.0) is None


def test_rearm_replaces_and_disarm_is_idempotent() -> None:
    table = WatchdogTable()
    arm(table, "vm", 5.0, now=0.0)
    table.arm("vm", group="g", member="vm", epoch=2, timeout_s=1.0,
              action=WatchdogAction.PAUSE, now=1.0)
    armed = table.get("vm")
    assert armed is not None and armed.deadline == 2.0 and armed.action is WatchdogAction.PAUSE
    assert table.disarm("vm") is not None
    assert table.disarm("vm") is None
    assert table.next_deadline() is None and len(table) == 0
    with pytest.raises(ValueError, match="timeout_s=0"):
        arm(table, "vm", 0, now=0.0)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                          st.sampled_from(["arm", "kick", "disarm", "tick"]),
                          st.floats(0.01, 2.0)), max_size=50))
def test_expiry_matches_a_model(ops: list[tuple[str, str, float]]) -> None:
    table = WatchdogTable()
    model: dict[str, tuple[float, float]] = {}  # instance -> (timeout, deadline)
    now = 0.0
    for instance, op, value in ops:
        if op == "arm":
            arm(table, instance, value, now)
            model[instance] = (value, now + value)
        elif op == "kick":
            kicked = table.kick(instance, epoch=1, now=now)
            assert (kicked is None) == (instance not in model)
            if instance in model:
                model[instance] = (model[instance][0], now + model[instance][0])
        elif op == "disarm":
            assert (table.disarm(instance) is None) == (instance not in model)
            model.pop(instance, None)
        else:
            now += value
            fired = table.expire(now)
            expected = sorted((d, i) for i, (_, d) in model.items() if d <= now)
            assert [(a.deadline, a.instance) for a in fired] == expected
            for _, i in expected:
                del model[i]
        assert table.next_deadline() == min((d for _, d in model.values()), default=None)
