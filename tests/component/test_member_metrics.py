"""A member's Prometheus metrics, scraped over HTTP from ``metrics_port``: role, epoch,
checkpoint writes with their ack latency, the in-sync count, and the failover duration on the
member that took over (two real members with real replication, on the in-memory store)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator

import pytest

from vnfha import Ack, Config, Member, Role
from vnfha.metrics import MemberMetrics
from vnfha.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as s:
        yield s


def cfg(name: str) -> Config:
    return Config(group="vfw", member=name, metrics_port=0)


def scrape(member: Member) -> str:
    assert isinstance(member.metrics, MemberMetrics) and member.metrics.port
    with urllib.request.urlopen(f"http://127.0.0.1:{member.metrics.port}/metrics",
                                timeout=5) as reply:
        return reply.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n" + "\n".join(
        line for line in text.splitlines() if re.match(name, line)))


async def test_metrics_follow_roles_writes_and_a_failover(store: MemoryStore) -> None:
    a = Member(cfg("a"), store=store)
    await a.start()
    await a.wait_for_role(Role.ACTIVE, 5)
    async with Member(cfg("b"), store=store) as b:
        await b.wait_for_role(Role.STANDBY, 5)
        for i in range(5):
            await a.checkpoint.put("s", f"k{i}", b"v", ack=Ack.ONE)
        text = await asyncio.to_thread(scrape, a)
        assert sample(text, "vnfha_role", role="active") == 1
        assert sample(text, "vnfha_epoch") == a.epoch
        assert sample(text, "vnfha_checkpoint_writes_total", ack="one", result="ok") == 5
        assert sample(text, "vnfha_checkpoint_ack_latency_seconds_count", ack="one") == 5
        assert sample(text, "vnfha_in_sync_standbys") == 1
        await a.stop()  # a clean stop hands over: b becomes active
        await b.wait_for_role(Role.ACTIVE, 5)
        text = await asyncio.to_thread(scrape, b)
        assert sample(text, "vnfha_role", role="active") == 1
        assert sample(text, "vnfha_role", role="standby") == 0
        assert sample(text, "vnfha_failover_duration_seconds_count") == 1
