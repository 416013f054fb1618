"""What a member records about etcd, on the in-memory store and a fake clock, into a registry
given to it (``Member(..., metrics=...)``): its keepalives' round trips, every failed request by
kind, a lease lost while in use (and not its own close); and etcd's NOSPACE alarm, which refuses
a switchover before anything changes, is counted and logged at ERROR with the cure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import pytest

from vnfha import Config, Member, Role, StoreNoSpace
from vnfha.component import Component
from vnfha.metrics import MemberMetrics
from vnfha.roles.history import FIRST_WRITE_WAIT_S
from vnfha.store import Compare, Op, PutResult, TxnPut, TxnResult
from vnfha.store.memory import MemoryStore
from vnfha.testing import FakeClock

NOSPACE = "etcdserver: mvcc: database space exceeded"


class FullStore(MemoryStore):
    """A MemoryStore that can be full as etcd is under its NOSPACE alarm: while ``full``, every
    put, and every txn with a put in either branch, is refused; reads, deletes, lease revokes
    and keepalives still pass."""

    full = False

    def _refuse(self) -> None:
        if self.full:
            raise StoreNoSpace(NOSPACE, endpoint=self.endpoint)

    async def put(self, key: str, value: bytes, *, lease: int = 0, prev_kv: bool = False,
                  timeout_s: float | None = None) -> PutResult:
        self._refuse()
        return await super().put(key, value, lease=lease, prev_kv=prev_kv, timeout_s=timeout_s)

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op] = (),
                  failure: Sequence[Op] = (), *, timeout_s: float | None = None) -> TxnResult:
        if any(isinstance(op, TxnPut) for op in (*success, *failure)):
            self._refuse()
        return await super().txn(compares, success, failure, timeout_s=timeout_s)


class Quiesces(Component):
    def __init__(self) -> None:
        self.quiesced = 0

    async def on_quiesce(self) -> None:
        self.quiesced += 1


@pytest.fixture
async def full_store(clock: FakeClock) -> AsyncIterator[FullStore]:
    async with FullStore(clock) as s:
        yield s


def config(name: str) -> Config:
    return Config(group="vfw", member=name)


def value(metrics: MemberMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(
        name, {"group": metrics.group, "member": metrics.member, **labels})
    assert found is not None, (name, labels)
    return found


async def test_keepalives_errors_and_a_lost_lease_are_recorded_in_the_given_registry(
        clock: FakeClock, store: MemoryStore) -> None:
    metrics = MemberMetrics("vfw", "a")
    async with Member(config("a"), store=store, clock=clock, metrics=metrics) as a:
        assert a.metrics is metrics and a.store is store
        await clock.advance_until(lambda: a.role is Role.ACTIVE)
        await clock.advance(2.0)
        answered = value(metrics, "vnfha_lease_keepalive_seconds_count")
        assert answered >= 3  # every TTL/4
        # on the fake clock a keepalive is answered at once: all in the first bucket
        assert value(metrics, "vnfha_lease_keepalive_seconds_bucket", le="0.0005") == answered
        assert value(metrics, "vnfha_leases_lost_total") == 0

        store.pause()  # etcd stops answering; the lease runs out on the clock
        await clock.advance_until(lambda: a.role is Role.QUIESCED, limit_s=3)
        assert value(metrics, "vnfha_leases_lost_total") == 1
        assert value(metrics, "vnfha_etcd_errors_total", request="keepalive",
                     kind="unavailable") >= 1
        store.resume()
        await clock.advance_until(lambda: a.role is Role.ACTIVE, limit_s=10)
    assert value(metrics, "vnfha_leases_lost_total") == 1  # its own close on stop is not counted
    assert metrics.port is None  # given without metrics_port: never served


async def test_a_switchover_under_nospace_is_refused_before_anything_changes(
        clock: FakeClock, full_store: FullStore, caplog: pytest.LogCaptureFixture) -> None:
    metrics = MemberMetrics("vfw", "a")
    component = Quiesces()
    async with (Member(config("a"), component, store=full_store, clock=clock,
                       metrics=metrics) as a,
                Member(config("b"), store=full_store, clock=clock) as b):
        await clock.advance_until(lambda: a.role is Role.ACTIVE and b.role is Role.STANDBY)
        await clock.advance(FIRST_WRITE_WAIT_S + 1)  # the election's history record is written
        epoch = a.epoch
        full_store.full = True
        with caplog.at_level(logging.ERROR, logger="vnfha.member"):
            task = asyncio.create_task(a.switchover(to="b"))
            await clock.advance_until(task.done)
            with pytest.raises(StoreNoSpace, match="NOSPACE") as refused:
                task.result()
        assert "etcdctl alarm disarm" in str(refused.value)
        assert a.role is Role.ACTIVE and a.epoch == epoch and component.quiesced == 0
        assert value(metrics, "vnfha_etcd_errors_total", request="write", kind="nospace") == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "a: etcd refused a write request: its NOSPACE alarm is raised" in errors[0]
        assert "keeps its role while its lease holds" in errors[0]
        assert "etcdctl alarm disarm" in errors[0] and NOSPACE in errors[0]

        for _ in range(3):  # more refusals within 10 s: counted, not logged again
            with pytest.raises(StoreNoSpace):
                await a.switchover(to="b")
        assert value(metrics, "vnfha_etcd_errors_total", request="write", kind="nospace") == 4
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

        full_store.full = False  # the cure
        task = asyncio.create_task(a.switchover(to="b"))
        await clock.advance_until(task.done)
        assert b.role is Role.ACTIVE and b.epoch == task.result() > epoch
        assert component.quiesced == 1
