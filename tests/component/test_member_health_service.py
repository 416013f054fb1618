"""grpc.health.v1 on a member's replication port, probed over real gRPC: the whole member
follows its health checks (and its record, as ``vnfha status`` reads it, names the failing
ones), ``vnfha.active`` follows the role through a switchover, and a stopped
member stops answering (two real members with real replication, on the in-memory store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import grpc.aio
import pytest

from vnfha import Config, Member, Role
from vnfha.admin import group_status
from vnfha.grpc_health import ServingStatus, probe
from vnfha.health.serving import ACTIVE_SERVICE, REPLICATION_SERVICE
from vnfha.health.supervisor import APP_CHECK
from vnfha.store.memory import MemoryStore

S, N = ServingStatus.SERVING, ServingStatus.NOT_SERVING


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as s:
        yield s


class Sick:
    """A component whose ``health_check`` fails while ``sick`` is set."""

    def __init__(self) -> None:
        self.sick = False

    async def health_check(self) -> None:
        if self.sick:
            raise RuntimeError("database unreachable")


def cfg(name: str) -> Config:
    return Config(group="vfw", member=name, health_check_period_s=0.05,
                  health_check_timeout_s=0.05, health_fail_after=2, health_recover_after=2,
                  ladder_restart_max_count=100)


async def statuses(member: Member) -> dict[str, ServingStatus]:
    async with grpc.aio.insecure_channel(member.listen) as channel:
        return {s: await probe(channel, s, timeout_s=2)
                for s in ("", ACTIVE_SERVICE, REPLICATION_SERVICE)}


async def eventually(what: Callable[[], Awaitable[bool]], timeout_s: float = 5) -> None:
    async with asyncio.timeout(timeout_s):
        while not await what():
            await asyncio.sleep(0.02)


async def test_active_and_standby_answer_by_role_through_a_switchover(store: MemoryStore) -> None:
    async with Member(cfg("a"), store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        async with Member(cfg("b"), store=store) as b:
            await b.wait_for_role(Role.STANDBY, 5)
            assert await statuses(a) == {"": S, ACTIVE_SERVICE: S, REPLICATION_SERVICE: S}
            assert await statuses(b) == {"": S, ACTIVE_SERVICE: N, REPLICATION_SERVICE: N}
            await a.switchover()
            await b.wait_for_role(Role.ACTIVE, 5)

            async def flipped() -> bool:
                return ((await statuses(a))[ACTIVE_SERVICE], (await statuses(b))[ACTIVE_SERVICE]
                        ) == (N, S)
            await eventually(flipped)
            async with grpc.aio.insecure_channel(a.listen) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as e:
                    await probe(channel, "no.such.Service", timeout_s=2)
                assert e.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_failing_health_check_makes_the_member_not_serving_until_it_recovers(
        store: MemoryStore) -> None:
    component = Sick()
    async with Member(cfg("a"), component, store=store) as a:
        await a.wait_for_role(Role.ACTIVE, 5)
        assert (await statuses(a))[""] is S
        component.sick = True

        async def whole_is(status: ServingStatus) -> bool:
            return (await statuses(a))[""] is status
        await eventually(lambda: whole_is(N))
        assert (await statuses(a))[ACTIVE_SERVICE] is S  # sick, but still the active

        async def published_failing(expected: tuple[str, ...]) -> bool:  # vnfha status's view
            status = await group_status(store, "/vnfha", "vfw")
            return status.members[0].failing == expected
        await eventually(lambda: published_failing((APP_CHECK,)))
        component.sick = False
        await eventually(lambda: whole_is(S))
        await eventually(lambda: published_failing(()))


async def test_a_stopped_member_stops_answering(store: MemoryStore) -> None:
    a = Member(cfg("a"), store=store)
    await a.start()
    await a.wait_for_role(Role.ACTIVE, 5)
    address = a.listen
    assert (await statuses(a))[""] is S
    await a.stop()
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await probe(channel, "", timeout_s=1)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
