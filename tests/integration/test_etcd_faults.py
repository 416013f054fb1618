"""etcd faults below the detection threshold cause no failover (I7): the etcd leader is killed
(a new leader is elected, which extends every lease) while an active writes and its standby
follows, and nobody changes role; the standby's lease polling, if it runs, sees the extension
as a refresh and proves nothing."""

from __future__ import annotations

import time
from typing import Any

from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess


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
        b = MemberProcess("leaderloss", "b", cluster.endpoints, "--quiet-acts")
        procs.append(b)
        b.wait_for(role_is("standby"), 20)
        a.wait_for(lambda e: e["event"] == "acked" and e["index"] >= 400, 20)
        for _ in range(2):  # two leader losses in a row
            leader = cluster.leader_index()
            assert leader is not None
            cluster.members[leader].kill()
            time.sleep(3.0)  # more than the lease TTL
            cluster.members[leader].restart()
            cluster.wait_healthy()
        roles = [e for p in procs for e in p.events if e["event"] == "role"
                 and e["t"] > first["t"]]
        assert [(e["role"], e["epoch"]) for e in roles if e["role"] != "standby"] == [], roles
        # and the active kept writing through it, every write acknowledged by the standby
        written = [e for e in a.events if e["event"] == "acked"]
        assert written[-1]["index"] > 1000
        assert all(e["epoch"] == first["epoch"] for e in written)
    finally:
        for p in procs:
            p.kill()
