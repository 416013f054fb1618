"""One group, one configuration (issue 16, item 5), with member processes on a real etcd: a
member whose redundancy model or lease TTL differs from the group's refuses to join, with exit
status 2 and a message naming the field and both values; the group goes on untouched. Records
that already disagree (members of an older vnfha did not check) are named by ``vnfha status``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from vnfha import Config
from vnfha.admin import group_status
from vnfha.roles.agreement import settings_of
from vnfha.roles.keys import GroupKeys, MemberRecord
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

pytestmark = pytest.mark.etcd

Spawn = Callable[..., MemberProcess]


@pytest.mark.parametrize(("extra", "field", "mine", "theirs"), [
    (("--redundancy", "n-way-active"), "redundancy", "n-way-active", "2n"),
    (("--lease-ttl-s", "3"), "lease_ttl_s", "3", "2"),
])
def test_a_member_that_disagrees_with_the_group_refuses_to_join(
        spawn: Spawn, etcd3: EtcdCluster, group: str, extra: tuple[str, ...], field: str,
        mine: str, theirs: str) -> None:
    a = spawn("a", "--quiet-acts")
    a.wait_for(lambda e: e["event"] == "role" and e["role"] == "active", 10)
    odd = MemberProcess(group, "b", etcd3.endpoints, "--quiet-acts", *extra)
    try:
        refused = odd.wait_for(lambda e: e["event"] == "refused", 20, "b refuses to join")
        assert odd.proc.wait(10) == 2
    finally:
        odd.kill()
    assert refused["type"] == "GroupConfigMismatch"
    assert f"{field}={mine!r}" in refused["error"] and f"{field}={theirs}" in refused["error"]
    assert "member a of group" in refused["error"]

    async def members() -> list[str]:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            return [m.member for m in (await group_status(store, "/vnfha", group)).members]
    assert asyncio.run(members()) == ["a"]  # b never published itself
    assert a.role() == "active"


def test_status_names_members_whose_records_disagree(etcd3: EtcdCluster, group: str) -> None:
    async def write() -> None:
        keys = GroupKeys("/vnfha", group)
        async with EtcdStore.connect(etcd3.endpoints) as store:
            for name, ttl in (("a", 2), ("b", 2), ("c", 3)):
                cfg = Config(group=group, member=name, lease_ttl_s=ttl)
                rec = MemberRecord(name, "2n", settings=settings_of(cfg))
                await store.put(keys.member(name), rec.encode())
    asyncio.run(write())
    out = subprocess.run([sys.executable, "-m", "vnfha", "status", group, "--etcd",
                          ",".join(etcd3.endpoints), "--json"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mismatches"] == ["lease_ttl_s: a/b 2, c 3"]
    text = subprocess.run([sys.executable, "-m", "vnfha", "status", group, "--etcd",
                           ",".join(etcd3.endpoints)], capture_output=True, text=True,
                          timeout=60, check=False).stdout
    assert "members disagree: lease_ttl_s: a/b 2, c 3" in text


def test_a_member_whose_timers_cannot_meet_its_budget_does_not_start(
        etcd3: EtcdCluster, group: str) -> None:
    """Issue 16, item 4, in a member process: a crash budget below what the default timers
    can give is refused when the config is built, before the member touches etcd."""
    proc = MemberProcess(group, "a", etcd3.endpoints, "--quiet-acts", "--budget-crash-ms", "50")
    try:
        refused = proc.wait_for(lambda e: e["event"] == "refused", 20, "a refuses to start")
        assert proc.proc.wait(10) == 2
    finally:
        proc.kill()
    assert refused["type"] == "ConfigError"
    assert "failover_budget_crash_ms=50" in refused["error"] and "worst case" in refused["error"]

    async def members() -> int:
        async with EtcdStore.connect(etcd3.endpoints) as store:
            return len((await store.range(f"/vnfha/{group}/", prefix=True)).kvs)
    assert asyncio.run(members()) == 0  # nothing was written
