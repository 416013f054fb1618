"""Administrative state (issue 16, item 1) with member processes on a real etcd: a locked
member is never promoted, a locked active hands over first, a paused group does not fail over
and resumes on unlock, and a lock survives the member's restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from vnfha.admin import GroupStatus, LockOutcome, group_status, lock, unlock
from vnfha.errors import LockError
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

pytestmark = pytest.mark.etcd

Spawn = Callable[..., MemberProcess]
QUIET = ("--quiet-acts",)
OUT_S = 4.0
"""Two lease TTLs after the active's death: time enough for any takeover to have happened."""


def role_is(role: str, after: float = 0.0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["t_mono"] > after


def run(etcd: EtcdCluster, what: Callable[[EtcdStore], Any]) -> Any:
    async def go() -> Any:
        async with EtcdStore.connect(etcd.endpoints) as store:
            return await what(store)
    return asyncio.run(go())


def status(etcd: EtcdCluster, group: str) -> GroupStatus:
    return run(etcd, lambda s: group_status(s, "/vnfha", group))  # type: ignore[no-any-return]


def pair(spawn: Spawn) -> tuple[MemberProcess, MemberProcess]:
    a = spawn("a", *QUIET)
    a.wait_for(role_is("active"), 10)
    b = spawn("b", *QUIET)
    b.wait_for(role_is("standby"), 10)
    return a, b


def test_a_locked_standby_is_never_promoted(spawn: Spawn, etcd3: EtcdCluster,
                                           group: str) -> None:
    a, b = pair(spawn)
    out: LockOutcome = run(etcd3, lambda s: lock(s, "/vnfha", group, "b", reason="test"))
    assert (out.member, out.active, out.handed_over) == ("b", "a", False)
    b.wait_for(role_is("spare"), 5, "b out of service")
    assert [m.locked for m in status(etcd3, group).members] == [False, True]
    killed = time.monotonic()
    a.kill()
    time.sleep(OUT_S)
    assert b.role() == "spare" and status(etcd3, group).active is None
    assert run(etcd3, lambda s: unlock(s, "/vnfha", group, "b")) is True
    b.wait_for(role_is("active", killed), 10, "b takes over once unlocked")


def test_a_locked_active_hands_over_first_and_the_last_one_needs_force(
        spawn: Spawn, etcd3: EtcdCluster, group: str) -> None:
    a, b = pair(spawn)
    t = time.monotonic()
    out = run(etcd3, lambda s: lock(s, "/vnfha", group, "a"))
    assert (out.active, out.handed_over) == ("b", True)
    b.wait_for(role_is("active", t), 5)
    a.wait_for(role_is("spare", t), 5, "a out of service")
    callbacks = [e["name"] for e in a.events if e["event"] == "callback" and e["t_mono"] > t]
    assert callbacks[:1] == ["on_quiesce"]  # it handed over gracefully, as a switchover
    with pytest.raises(LockError, match="the last member that may be active"):
        run(etcd3, lambda s: lock(s, "/vnfha", group, "b"))
    with pytest.raises(LockError, match="no such member"):
        run(etcd3, lambda s: lock(s, "/vnfha", group, "zz"))
    assert b.role() == "active"
    run(etcd3, lambda s: unlock(s, "/vnfha", group, "a"))
    a.wait_for(role_is("standby", t), 10, "a back in service")


def test_a_paused_group_does_not_fail_over_and_resumes_on_unlock(
        spawn: Spawn, etcd3: EtcdCluster, group: str) -> None:
    a, b = pair(spawn)
    run(etcd3, lambda s: lock(s, "/vnfha", group, reason="maintenance window"))
    killed = time.monotonic()
    a.kill()
    time.sleep(OUT_S)
    assert b.role() == "standby"
    notes = status(etcd3, group).notes()
    assert any(n.startswith("GROUP PAUSED") and "maintenance window" in n for n in notes)
    assert any(n.startswith("NO ACTIVE, and the group is paused") for n in notes)
    assert run(etcd3, lambda s: unlock(s, "/vnfha", group)) is True
    b.wait_for(role_is("active", killed), 10, "b takes over once the pause ends")


def test_a_lock_survives_the_member_s_restart(spawn: Spawn, etcd3: EtcdCluster,
                                              group: str) -> None:
    a, b = pair(spawn)
    run(etcd3, lambda s: lock(s, "/vnfha", group, "b"))
    b.wait_for(role_is("spare"), 5)
    b.kill()
    again = spawn("b", *QUIET)
    again.wait_for(role_is("spare"), 10, "b restarts out of service")
    time.sleep(1.0)
    assert again.role() == "spare" and a.role() == "active"
