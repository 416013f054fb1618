"""Session on a fake clock: keepalive cadence, the deadline anchored at send time, and the
CONNECTED / SUSPENDED / LOST transitions as the store stops answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from vnfha.errors import LeaseNotFound, SessionLost, StoreUnavailable
from vnfha.store import Lease
from vnfha.store.session import Session, SessionState
from vnfha.testing import FakeClock


@dataclass
class ScriptedLeases:
    """Just the lease calls a Session makes, with scripted latency and failures."""

    clock: FakeClock
    granted_ttl_s: int = 2
    grant_delay_s: float = 0.0
    reply_delay_s: float = 0.0
    unavailable: bool = False
    gone: bool = False
    hang: bool = False
    sent: list[float] = field(default_factory=list)
    revoked: list[int] = field(default_factory=list)

    async def grant(self, ttl_s: int, *, timeout_s: float | None = None) -> Lease:
        if self.grant_delay_s:  # e.g. retried across endpoints
            await self.clock.sleep(self.grant_delay_s)
        return Lease(id=42, ttl_s=max(ttl_s, self.granted_ttl_s))

    async def keepalive(self, lease_id: int, *, timeout_s: float | None = None) -> int:
        self.sent.append(self.clock.monotonic())
        if self.hang:  # a store that ignores its own timeout (stuck finding a connection)
            await asyncio.Event().wait()
        if self.unavailable:
            raise StoreUnavailable("scripted outage", endpoint="fake:1")
        if self.reply_delay_s:
            try:
                await self.clock.wait_for(self.clock.sleep(self.reply_delay_s), timeout_s or 1e9)
            except TimeoutError as e:
                raise StoreUnavailable("keepalive unanswered", endpoint="fake:1") from e
        if self.gone:
            raise LeaseNotFound(lease_id)
        return self.granted_ttl_s

    async def revoke(self, lease_id: int, *, timeout_s: float | None = None) -> None:
        self.revoked.append(lease_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
def leases(clock: FakeClock) -> ScriptedLeases:
    return ScriptedLeases(clock)


@pytest.fixture
async def session(clock: FakeClock, leases: ScriptedLeases) -> AsyncIterator[Session]:
    s = Session(leases, ttl_s=2, keepalive_interval_s=0.5, margin_s=0.2,  # type: ignore[arg-type]
                clock=clock, request_timeout_s=0.3, retry_interval_s=0.1)
    async with s:
        yield s


async def test_keepalives_every_interval_and_the_deadline_follows(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    assert session.deadline == pytest.approx(101.8)
    await clock.advance(2.05)
    assert leases.sent == pytest.approx([100.5, 101.0, 101.5, 102.0])
    assert session.state is SessionState.CONNECTED
    assert session.deadline == pytest.approx(102.0 + 2 - 0.2)


async def test_deadline_is_anchored_at_send_time_not_reply_time(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    leases.reply_delay_s = 0.25  # the reply arrives 0.25 s after the request left
    await clock.advance(0.8)
    assert leases.sent[0] == pytest.approx(100.5)
    assert session.deadline == pytest.approx(100.5 + 2 - 0.2)


async def test_a_slow_grant_is_kept_alive_at_once_not_an_interval_later(
    clock: FakeClock, leases: ScriptedLeases
) -> None:
    leases.grant_delay_s = 1.2  # of a 2 s TTL: 0.6 s left before the margin
    s = Session(leases, ttl_s=2, keepalive_interval_s=0.5, margin_s=0.2,  # type: ignore[arg-type]
                clock=clock, request_timeout_s=0.3, retry_interval_s=0.1)
    opening = asyncio.ensure_future(s.open())
    await clock.advance(1.2)
    await opening
    # anchored when the grant was sent (100.0), the first keepalive was due at 100.5: it went
    # out as soon as the grant returned, instead of at 101.7 with 0.1 s of the lease left
    assert leases.sent == pytest.approx([101.2])
    assert s.deadline == pytest.approx(101.2 + 2 - 0.2)
    await clock.advance(0.6)
    assert leases.sent == pytest.approx([101.2, 101.7])
    assert s.state is SessionState.CONNECTED
    await s.close()


async def test_etcd_granting_more_than_asked_is_used(clock: FakeClock) -> None:
    leases = ScriptedLeases(clock, granted_ttl_s=5)
    async with Session(leases, ttl_s=2, keepalive_interval_s=0.5,  # type: ignore[arg-type]
                       margin_s=0.2, clock=clock) as s:
        assert s.granted_ttl_s == 5
        assert s.deadline == pytest.approx(104.8)


async def test_outage_suspends_then_recovery_reconnects(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    states: list[SessionState] = []
    session.add_listener(lambda v: states.append(v.state))
    await clock.advance(0.6)
    leases.unavailable = True
    await clock.advance(1.0)  # to 101.6, still before the deadline (101.8 + 0.5 = 102.3)
    assert session.state is SessionState.SUSPENDED
    assert "scripted outage" in session.view.reason
    # after the first failure (101.0), retries come every retry_interval_s (0.1 s)
    retries = [t for t in leases.sent if t > 100.5]
    assert retries == pytest.approx([101.0 + 0.1 * i for i in range(7)])
    leases.unavailable = False
    await clock.advance(0.2)
    assert session.state is SessionState.CONNECTED
    assert states == [SessionState.SUSPENDED, SessionState.CONNECTED]


async def test_outage_past_the_deadline_is_lost_exactly_at_the_deadline(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    await clock.advance(0.6)  # last acknowledged keepalive sent at 100.5
    leases.unavailable = True
    lost_at: list[float] = []
    session.add_listener(
        lambda v: lost_at.append(clock.monotonic()) if v.state is SessionState.LOST else None)
    await clock.advance(1.65)  # to 102.25; the deadline is 100.5 + 2 - 0.2 = 102.3
    assert session.state is SessionState.SUSPENDED
    await clock.advance(0.05)
    assert session.state is SessionState.LOST
    assert lost_at == [pytest.approx(102.3, abs=0.011)]
    with pytest.raises(SessionLost, match="deadline passed"):
        session.check()
    # LOST is final, even if etcd comes back
    leases.unavailable = False
    await clock.advance(1.0)
    assert session.state is SessionState.LOST


async def test_unanswered_keepalives_count_as_failures(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    leases.reply_delay_s = 10.0  # a frozen server: requests are never answered
    await clock.advance(1.0)
    assert session.state is SessionState.SUSPENDED
    await clock.advance(1.0)
    assert session.state is SessionState.LOST
    assert not session.valid()


async def test_lease_gone_is_lost_at_once(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    leases.gone = True
    await clock.advance(0.6)
    assert session.state is SessionState.LOST
    assert "gone" in session.view.reason
    lost = await asyncio.wait_for(session.wait_lost(), 1)
    assert lost.state is SessionState.LOST


async def test_a_resumed_process_sees_lost_before_acting(
    session: Session, clock: FakeClock
) -> None:
    """SIGSTOP modelled as time jumping with no task running: the first check after the jump
    already says LOST, before the keepalive loop has had a chance to run."""
    clock.jump(5.0)
    assert not session.valid()
    assert session.state is SessionState.LOST


async def test_close_revokes_the_lease(clock: FakeClock, leases: ScriptedLeases) -> None:
    s = Session(leases, ttl_s=2, keepalive_interval_s=0.5, margin_s=0.2,  # type: ignore[arg-type]
                clock=clock)
    async with s:
        assert not s.closed
    assert leases.revoked == [42]
    assert s.state is SessionState.LOST and s.closed  # LOST by the holder's own close


@pytest.mark.parametrize(("ttl", "interval"), [(0, 0.5), (2, 0.0), (2, 2.0)])
def test_bad_timers_are_refused(leases: ScriptedLeases, ttl: int, interval: float) -> None:
    with pytest.raises(ValueError, match=r"ttl_s|keepalive_interval_s"):
        Session(leases, ttl_s=ttl, keepalive_interval_s=interval,  # type: ignore[arg-type]
                margin_s=0.2)


async def test_a_keepalive_stuck_past_its_timeout_suspends_and_is_retried(
    session: Session, clock: FakeClock, leases: ScriptedLeases
) -> None:
    leases.hang = True
    await clock.advance(0.5 + 0.3 + 0.15 + 0.01)  # interval, then timeout + half a timeout
    assert session.state is SessionState.SUSPENDED
    leases.hang = False
    await clock.advance(0.2)  # retried after retry_interval_s, and answered
    assert session.state is SessionState.CONNECTED
    assert len(leases.sent) == 2
