"""The failover history (issue 16, item 3) with member processes on a real etcd: after a
SIGKILL failover and a switchover, ``vnfha history`` shows both, newest first, each with its
cause and a timeline in order; the new active logged the same timeline as one line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from vnfha.admin import group_history, request_switchover
from vnfha.roles.history import KEEP, FailoverRecord, write_record
from vnfha.roles.keys import GroupKeys
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

pytestmark = pytest.mark.etcd

Spawn = Callable[..., MemberProcess]
WRITER = ("--quiet-acts", "--write", "1000000", "--ack", "none", "--report-every", "1000",
          "--rewrite", "--log-level", "INFO")


def role_is(role: str, above: int = 0) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role and e["epoch"] > above


def history(etcd: EtcdCluster, group: str) -> list[FailoverRecord]:
    async def read() -> list[FailoverRecord]:
        async with EtcdStore.connect(etcd.endpoints) as store:
            return await group_history(store, "/vnfha", group)
    return asyncio.run(read())


def wait_history(etcd: EtcdCluster, group: str, n: int) -> list[FailoverRecord]:
    deadline = time.monotonic() + 15
    while len(records := history(etcd, group)) < n:
        assert time.monotonic() < deadline, records
        time.sleep(0.2)
    return records


def test_history_shows_a_crash_and_a_switchover_with_their_timelines(
        spawn: Spawn, etcd3: EtcdCluster, group: str) -> None:
    a = spawn("a", *WRITER)
    first = a.wait_for(role_is("active"), 10)
    b = spawn("b", *WRITER)
    b.wait_for(role_is("standby"), 10)
    wait_history(etcd3, group, 1)  # the election of a
    a.kill()
    took = b.wait_for(role_is("active", first["epoch"]), 5)
    c = spawn("c", *WRITER)
    c.wait_for(role_is("standby"), 10)
    wait_history(etcd3, group, 2)

    async def switch() -> None:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            await request_switchover(store, "/vnfha", group, "c")
    asyncio.run(switch())
    records = wait_history(etcd3, group, 3)
    switched, crashed, elected = records
    assert (elected.cause, elected.to_member, elected.from_member) == ("election", "a", "")
    assert (crashed.cause, crashed.from_member, crashed.to_member) == ("crash", "a", "b")
    assert (crashed.from_epoch, crashed.epoch) == (first["epoch"], took["epoch"])
    assert (switched.cause, switched.from_member, switched.to_member) == ("switchover", "b", "c")
    assert "switchover to c" in switched.reason
    for r in (crashed, switched):
        t = r.timeline_ms
        assert list(t) == ["proof", "key_taken", "on_active", "first_write"], r
        assert 0 <= t["proof"] <= t["key_taken"] <= t["on_active"] <= t["first_write"] < 5000, r
    logged = [line for line in b.stderr if "failover group=" in line and "cause=crash" in line]
    assert len(logged) == 1 and f"epoch={crashed.epoch}" in logged[0]

    out = subprocess.run([sys.executable, "-m", "vnfha", "history", group, "--etcd",
                          ",".join(etcd3.endpoints)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["WHEN", "(UTC)", "FROM"]
    assert [line.split()[6] for line in lines[1:]] == ["switchover", "crash", "election"]
    as_json = subprocess.run([sys.executable, "-m", "vnfha", "history", group, "--json",
                              "--etcd", ",".join(etcd3.endpoints)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert [r["cause"] for r in json.loads(as_json.stdout)] == ["switchover", "crash",
                                                                "election"]


def test_history_keeps_the_last_hundred(etcd3: EtcdCluster, group: str) -> None:
    keys = GroupKeys("/vnfha", group)

    async def fill() -> None:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            for epoch in range(1, KEEP + 6):
                await write_record(store, keys, FailoverRecord(epoch=epoch, to_member="a"))
    asyncio.run(fill())
    records = history(etcd3, group)
    assert len(records) == KEEP and records[0].epoch == KEEP + 5 and records[-1].epoch == 6
