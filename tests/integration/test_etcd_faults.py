"""etcd faults below the detection threshold cause no failover (I7): the etcd leader is killed
(a new leader is elected, which extends every lease) while an active writes and its standby
follows, and nobody changes role; the standby's lease polling, if it runs, sees the extension
as a refresh and proves nothing. The history checker agrees, with each leader loss recorded as a
fault below the detection threshold."""

from __future__ import annotations

import time
from typing import Any

from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.history import BatchApplied, Fault, check
from vnfha.testing.member_proc import MemberProcess

BUDGET_S = 1.0
"""I6's budget: with no failover there must be one active throughout, so any budget holds."""


def role_is(role: str) -> Any:
    return lambda e: e["event"] == "role" and e["role"] == role


def test_killing_the_etcd_leader_causes_no_failover(own_etcd3: EtcdCluster) -> None:
    cluster = own_etcd3
    procs: list[MemberProcess] = []
    try:
        a = MemberProcess("leaderloss", "a", cluster.endpoints, "--quiet-acts", "--write",
                          "1000000", "--ack", "one", "--report-every", "200")
        procs.append(a)
        first = a.wait_for(role_is("active"), 20)
        b = MemberProcess("leaderloss", "b", cluster.endpoints, "--quiet-acts",
                          "--trace-applied")
        procs.append(b)
        b.wait_for(role_is("standby"), 20)
        a.wait_for(lambda e: e["event"] == "acked" and e["index"] >= 400, 20)
        faults: list[Fault] = []
        for n in range(2):  # two leader losses in a row
            leader = cluster.leader_index()
            assert leader is not None
            start = time.monotonic()
            cluster.members[leader].kill()
            time.sleep(3.0)  # more than the lease TTL
            cluster.members[leader].restart()
            cluster.wait_healthy()
            faults.append(Fault(start, time.monotonic(), f"etcd leader {leader} killed ({n})",
                                expect_failover=False))
            time.sleep(BUDGET_S)  # I6 is judged at each heal + BUDGET_S, before the next fault
        end = time.monotonic()
        histories = {"a": a.history(), "b": b.history()}
        roles = [e for p in procs for e in p.events if e["event"] == "role"
                 and e["t"] > first["t"]]
        assert [(e["role"], e["epoch"]) for e in roles if e["role"] != "standby"] == [], roles
        # and the active kept writing through it, every write acknowledged by the standby
        written = [e for e in a.events if e["event"] == "acked"]
        assert written[-1]["index"] > 1000
        assert all(e["epoch"] == first["epoch"] for e in written)
        # I7 (no change of active under these faults) and every other invariant
        assert check(histories, budget_s=BUDGET_S, faults=faults, end=end) == []
        assert any(isinstance(r, BatchApplied) for r in histories["b"])
    finally:
        for p in procs:
            p.kill()
