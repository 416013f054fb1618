"""``vnfha ladder GROUP`` (issue 16, item 8): each member's stored ladder counters with the
probation windows its member stored with them, an unreadable record named as such, and
``--reset MEMBER`` deleting one member's counters; on a real etcd, through the command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from vnfha import Config
from vnfha.health.counters import LadderCounters, ladder_key
from vnfha.health.incarnation import Life, LifeState
from vnfha.health.ladder import LadderHistory, Rung, Use
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.wiring import ladder_policy

pytestmark = pytest.mark.etcd


def vnfha(etcd: EtcdCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vnfha", *args, "--etcd",
                           ",".join(etcd.endpoints)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_ladder_shows_counters_with_windows_and_resets_one_member(
        etcd3: EtcdCluster, group: str) -> None:
    policy = ladder_policy(Config(group=group, member="a", ladder_restart_max_count=5,
                                  ladder_restart_probation_s=120.0))

    async def store_counters() -> None:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            now = time.monotonic()
            history = LadderHistory((Use(now - 30, Rung.RESTART), Use(now - 10, Rung.RESTART),
                                     Use(now - 5, Rung.FAILOVER)), now - 5)
            await LadderCounters(store, "/vnfha", group, "a", policy=policy).save(
                history, now, time.time(), Life(3, LifeState.RUNNING, 12))
            await store.put(ladder_key("/vnfha", group, "b"), b"{garbage")
    asyncio.run(store_counters())

    out = vnfha(etcd3, "ladder", group, "--json")
    assert out.returncode == 0, out.stderr
    a, b = json.loads(out.stdout)
    rungs = {r["rung"]: r for r in a["rungs"]}
    assert (a["member"], len(rungs["restart"]["ages_s"]), rungs["restart"]["max_count"],
            rungs["restart"]["probation_s"]) == ("a", 2, 5, 120.0)
    assert len(rungs["failover"]["ages_s"]) == 1 and rungs["reboot-vm"]["ages_s"] == []
    assert (a["incarnation"], a["life"], a["counted_epoch"]) == (3, "running", 12)
    assert b["member"] == "b" and b["problem"].startswith("unreadable")
    text = vnfha(etcd3, "ladder", group).stdout.splitlines()
    assert text[0].split() == ["MEMBER", "RUNG", "USED", "MAX", "PROBATION", "LAST", "USE",
                               "LAST", "FAULT"]
    assert any(line.split()[:5] == ["a", "restart", "2", "5", "120"] for line in text)
    assert "a: incarnation 3, running; crash failovers counted up to epoch 12" in text

    reset = vnfha(etcd3, "ladder", group, "--reset", "a")
    assert reset.returncode == 0 and "deleted" in reset.stdout
    assert [m["member"] for m in json.loads(vnfha(etcd3, "ladder", group, "--json").stdout)] \
        == ["b"]
    again = vnfha(etcd3, "ladder", group, "--reset", "a")
    assert "were not stored" in again.stdout
