"""Health-aware election with member processes on a real etcd (issue 16, item 2): a standby
whose health checks fail is passed over for a healthy one when the active is killed, though its
priority is higher; a switchover to it is refused unless forced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from vnfha.admin import group_status, request_switchover
from vnfha.errors import SwitchoverError
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

Spawn = Callable[..., MemberProcess]

pytestmark = pytest.mark.etcd

QUIET = ("--quiet-acts", "--redundancy", "n-way")  # two standbys
FAILING = ("--fail", "health_check", "--health-period-s", "0.1")


def role_is(role: str, epoch_above: int = 0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > epoch_above


async def failing_and_in_sync(endpoints: tuple[str, ...], group: str, failing: str) -> None:
    """Until ``failing``'s record says its health check fails and every standby is in sync."""
    deadline = time.monotonic() + 15
    async with EtcdStore.connect(endpoints) as store:
        while True:
            status = await group_status(store, "/vnfha", group)
            rows = {m.member: m for m in status.members}
            if rows[failing].failing and all(m.in_sync for m in status.members
                                             if m.role == "standby"):
                return
            assert time.monotonic() < deadline, f"{failing} not published as failing: {rows}"
            await asyncio.sleep(0.05)


def test_a_failing_standby_is_passed_over_when_the_active_dies(
        spawn: Spawn, etcd3: EtcdCluster, group: str) -> None:
    a = spawn("a", *QUIET)
    first = a.wait_for(role_is("active"), 10)
    b = spawn("b", *QUIET, *FAILING, "--priority", "10")  # the better rank but for its health
    c = spawn("c", *QUIET)
    for standby in (b, c):
        standby.wait_for(role_is("standby"), 10)
    asyncio.run(failing_and_in_sync(etcd3.endpoints, group, "b"))
    a.kill()
    took = c.wait_for(role_is("active", first["epoch"]), 5, "c takes over")
    assert "dead active" in took["reason"] and "WARNING" not in took["reason"]
    assert b.role() == "standby"


def test_a_switchover_to_a_failing_member_needs_force(
        spawn: Spawn, etcd3: EtcdCluster, group: str) -> None:
    a = spawn("a", *QUIET)
    a.wait_for(role_is("active"), 10)
    b: MemberProcess = spawn("b", *QUIET, *FAILING)
    b.wait_for(role_is("standby"), 10)
    asyncio.run(failing_and_in_sync(etcd3.endpoints, group, "b"))

    async def switch(force: bool) -> str:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            return (await request_switchover(store, "/vnfha", group, "b", force=force)).to

    with pytest.raises(SwitchoverError, match="health checks are failing"):
        asyncio.run(switch(force=False))
    assert a.role() == "active"
    assert asyncio.run(switch(force=True)) == "b"
    b.wait_for(role_is("active"), 5, "b active")
