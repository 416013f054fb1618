"""etcd's NOSPACE alarm (issue 15): a real etcd with a tiny quota, filled until it refuses
writes. The group keeps its roles while its leases hold (keepalives are still accepted and
timed) and its checkpoints (which never go through etcd); a switchover fails with an error that
names NOSPACE, the member counts the refusal in its metrics and logs it at ERROR with the cure;
after the operator's cure (delete, compact, defrag, ``alarm disarm``) the group works again with
no restart."""

from __future__ import annotations

import asyncio
import logging

import pytest

from vnfha import Ack, Config, Member, Role
from vnfha.admin import group_status
from vnfha.errors import StoreError
from vnfha.metrics import MemberMetrics
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.waiting import until

pytestmark = [pytest.mark.etcd, pytest.mark.timeout(180)]

QUOTA = 4 * 1024 * 1024
HELD_S = 6.0
"""Three lease TTLs: roles that survive this survive on keepalives, not on luck."""


def sample(metrics: MemberMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, {"group": "full", "member": "a", **labels})
    assert found is not None, name
    return found


async def test_nospace_keeps_roles_and_the_group_recovers_after_the_cure(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = MemberMetrics("full", "a")
    keepalives = "vnfha_lease_keepalive_seconds_count"
    with EtcdCluster(1, extra_args=(f"--quota-backend-bytes={QUOTA}",)) as etcd:
        endpoints = etcd.endpoints

        def cfg(name: str) -> Config:
            return Config(group="full", member=name, etcd_endpoints=endpoints)

        async with Member(cfg("a"), metrics=metrics) as a, Member(cfg("b")) as b, \
                EtcdStore.connect(endpoints) as operator:
            await a.wait_for_role(Role.ACTIVE, 10)
            await b.wait_for_role(Role.STANDBY, 10)
            # b counts for Ack.ONE once etcd lists it in sync: before the fill, or never
            await until(lambda: a.checkpoint.in_sync == ("b",), 10, "b listed in sync")
            with pytest.raises(StoreError, match="database space exceeded"):
                for n in range(10_000):
                    await operator.put(f"/fill/{n}", b"x" * 100_000)
            assert "NOSPACE" in etcd.etcdctl("alarm", "list")
            status = await group_status(operator, "/vnfha", "full")  # vnfha status shows it
            assert any("NOSPACE" in alarm for alarm in status.etcd_alarms)

            answered = sample(metrics, keepalives)
            await asyncio.sleep(HELD_S)
            assert a.role is Role.ACTIVE and b.role is Role.STANDBY
            assert sample(metrics, keepalives) > answered  # keepalives still answered
            await a.checkpoint.put("s", "k", b"v", ack=Ack.ONE)  # replication goes on
            assert b.checkpoint.get("s", "k") == b"v"

            with caplog.at_level(logging.ERROR, logger="vnfha.member"), \
                    pytest.raises(StoreError, match="NOSPACE") as refused:
                await a.switchover(to="b")  # a change through etcd is refused, and says why
            assert "etcdctl alarm disarm" in str(refused.value)
            assert sample(metrics, "vnfha_etcd_errors_total", request="write",
                          kind="nospace") >= 1
            assert any(r.levelno == logging.ERROR and "NOSPACE" in r.getMessage()
                       and "keeps its role" in r.getMessage() for r in caplog.records)
            await a.wait_for_role(Role.ACTIVE, 10)  # the failed switchover gave nothing away

            await operator.delete("/fill/", prefix=True)  # deletes are still accepted
            revision = (await operator.range("/", prefix=True, limit=1)).revision
            etcd.etcdctl("compact", str(revision))
            etcd.etcdctl("defrag")
            etcd.etcdctl("alarm", "disarm")
            assert "NOSPACE" not in etcd.etcdctl("alarm", "list")
            epoch = await a.switchover(to="b")  # a change through etcd works again
            assert b.role is Role.ACTIVE and b.epoch == epoch
            assert (await group_status(operator, "/vnfha", "full")).etcd_alarms == ()
