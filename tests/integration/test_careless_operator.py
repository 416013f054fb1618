"""A careless operator with ``etcdctl``, on real etcd, against a 2N pair of member processes
writing ``Ack.ONE`` (issue 12): property-based.

Hypothesis draws a sequence of puts and deletes on the group's keys: garbage, valid-looking
records naming a member, another member or nobody, bound to no lease, to another member's
lease or to a lease nobody owns, with and without a replication secret; member records deleted
or overwritten; the sync record, the handover hint and the switchover request trashed. While
they land, the active keeps writing. Afterwards:

- the history checker finds nothing (I1-I5, I8: no two actives acting at once, no acknowledged
  write lost, epochs only grow; I6 from the end of the interference with a budget of
  2 x lease TTL; I7 does not apply: every operation may move the active);
- the group has exactly one active within 2 x lease TTL (I6, from the end of the
  interference), the active's writes are acknowledged again, and it ends with one active and
  one standby;
- both processes are still running.

``CARELESS_EXAMPLES`` sets the number of sequences (default 3; each takes about 7 s);
``CARELESS_EXPLORE=1`` draws new ones on every run instead of the fixed set.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from vnfha.apps.bench.failover import ARGS, TTL_S
from vnfha.roles.keys import ActiveRecord, GroupKeys, MemberRecord, SyncRecord, new_secret
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.history import Fault, check, count
from vnfha.testing.member_proc import MemberProcess

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("CARELESS_EXAMPLES", "3"))
EXPLORE = bool(os.environ.get("CARELESS_EXPLORE"))
"""Set: new sequences every run (a bug hunt); unset: the same fixed set every run (CI)."""
BUDGET_S = 2 * TTL_S
KEYS = ("active", "members/a", "members/b", "sync", "handover", "admin/switchover")
LEASES = ("none", "a", "b", "fresh")

Op = tuple[Any, ...]

garbage = st.one_of(st.binary(max_size=48), st.sampled_from(
    [b"", b"garbage", b"{}", b"null", b"[1,2]", b'{"member": 7}', b"1e999999", b"[" * 3000]))
ops = st.one_of(
    st.tuples(st.just("garbage"), st.sampled_from(KEYS), garbage),
    st.tuples(st.just("active"), st.sampled_from(["a", "b", "nobody"]),
              st.sampled_from(LEASES), st.booleans()),
    st.tuples(st.just("member"), st.sampled_from(["a", "b"]), st.sampled_from(LEASES),
              st.sampled_from(["active", "standby", "spare"])),
    st.tuples(st.just("sync"), st.sampled_from(["a", "b"]), st.sampled_from(LEASES)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
)
plans = st.lists(st.tuples(ops, st.floats(0.0, 0.4)), min_size=4, max_size=20)


async def interfere(endpoints: tuple[str, ...], group: str,
                    plan: list[tuple[Op, float]]) -> list[float]:
    """Run ``plan`` against the group's keys, as ``etcdctl`` would; when each operation began."""
    keys = GroupKeys("/vnfha", group)
    async with EtcdStore.connect(endpoints) as store:
        fresh = (await store.grant(10)).id  # a lease that belongs to no member

        async def lease_of(kind: str) -> int:
            if kind == "none":
                return 0
            if kind == "fresh":
                return fresh
            kv = await store.get(keys.member(kind))
            return kv.lease if kv is not None else 0

        began: list[float] = []
        for op, delay in plan:
            began.append(time.monotonic())
            kind = op[0]
            if kind == "garbage":
                await store.put(keys.root + op[1], op[2])
            elif kind == "active":
                record = ActiveRecord(op[1], "127.0.0.1:1", new_secret() if op[3] else "")
                await store.put(keys.active, record.encode(), lease=await lease_of(op[2]))
            elif kind == "member":
                record = MemberRecord(op[1], "2n", role=op[3])
                await store.put(keys.member(op[1]), record.encode(),
                                lease=await lease_of(op[2]))
            elif kind == "sync":
                sync = SyncRecord("a", ((op[1], await lease_of(op[2])),))
                await store.put(keys.sync, sync.encode())
            else:
                await store.delete(keys.root + op[1])
            await asyncio.sleep(delay)
        return began


def protected_write_after(procs: list[MemberProcess], t: float, timeout_s: float) -> str:
    """Until a member reports an ``Ack.ONE`` write it started after ``t``; that member."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if any(e["event"] == "acked" and e["protected"] and e["t_start_mono"] > t
                   for e in list(p.events)):
                return p.member
        time.sleep(0.02)
    raise AssertionError(f"no protected write started after {t} within {timeout_s} s; "
                         + describe(procs, t))


def describe(procs: list[MemberProcess], since: float) -> str:
    """The members' role changes since ``since`` (and a little before), with their reasons."""
    roles = sorted((round(e["t_mono"] - since, 3), p.member, e["role"], e["epoch"], e["reason"])
                   for p in procs for e in list(p.events)
                   if e["event"] == "role" and e["t_mono"] > since - 1)
    tails = [f"{p.member} stderr: {''.join(p.stderr[-15:])}" for p in procs]
    return "\n".join(["roles (s, member, role, epoch, reason):", *map(str, roles), *tails])


# no shrinking: each try costs seconds of real processes; a failure prints its whole plan
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not EXPLORE, database=None,
          phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=plans)
def test_a_careless_operator_loses_nothing_and_the_group_recovers(
        etcd3: EtcdCluster, plan: list[tuple[Op, float]]) -> None:
    group = f"careless-{uuid.uuid4().hex[:8]}"
    procs = [MemberProcess(group, name, etcd3.endpoints, *ARGS) for name in ("a", "b")]
    try:
        for p in procs:
            p.wait_for(lambda e: e["event"] == "ready", 20, "ready")
        protected_write_after(procs, time.monotonic(), 20)
        began = asyncio.run(interfere(etcd3.endpoints, group, plan))
        heal = time.monotonic()
        # I6 below says exactly one active from heal + BUDGET_S on; here: it works again
        protected_write_after(procs, heal, 20)
        time.sleep(max(0.0, heal + BUDGET_S + 0.5 - time.monotonic()))
        assert all(p.proc.poll() is None for p in procs), "a member process died"
        assert sorted(str(p.role()) for p in procs) == ["active", "standby"]
        end = time.monotonic()
        histories = {p.member: p.history() for p in procs}
        roles = [(p.member, round(e["t_mono"] - began[0], 3), e["role"], e["epoch"],
                  e["reason"]) for p in procs for e in list(p.events) if e["event"] == "role"]
    finally:
        for p in procs:
            p.kill()
    # the operations are one fault that heals when they stop (I6: from then on, one active).
    # I7 does not apply: every operation may move the active, and it moves it at the etcd
    # revision the operation lands at, which a timestamp taken around the put cannot place
    # exactly against the member's log of the grant it causes (seen: 7 ms apart, reversed)
    whole = Fault(began[0], heal, "the careless operator", expect_failover=True)
    violations = [v for v in check(histories, budget_s=BUDGET_S, faults=[whole], end=end)
                  if v.invariant != "I7"]
    if violations:
        lines = [f"{count(violations)} for plan {plan}", *map(str, violations[:5]),
                 "roles (member, s after the interference began, role, epoch, reason):",
                 *map(str, sorted(roles, key=lambda r: r[1]))]
        pytest.fail("\n".join(lines))
