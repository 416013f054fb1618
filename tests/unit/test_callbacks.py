"""The callback runner on a fake clock: order, one at a time, the timeout, how failures are
reported, cancellation and the bounded drain; and the listeners that receive the reports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from vnfha.callbacks import CallbackRunner
from vnfha.events import CallbackFailed, Listeners, MemberEvent, RoleChanged
from vnfha.model import Role
from vnfha.testing import FakeClock

TIMEOUT_S = 2.0


class Component:
    """Records what ran; ``hang`` waits forever, ``boom`` raises."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.running = 0
        self.most_at_once = 0

    async def _step(self, name: str) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.log.append(f"{name} start")
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        finally:
            self.running -= 1
        self.log.append(f"{name} end")

    async def one(self, arg: str) -> None:
        await self._step(f"one({arg})")

    async def two(self) -> None:
        await self._step("two")

    async def boom(self) -> None:
        self.log.append("boom")
        raise RuntimeError("broke")

    async def hang(self) -> None:
        self.log.append("hang start")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.log.append("hang cancelled")
            raise


class Env:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.component = Component()
        self.reports: list[object] = []
        self.runner = CallbackRunner(
            self.component, member="m1", clock=self.clock, timeout_s=TIMEOUT_S,
            emit=self.reports.append,
            on_failure=lambda name, error: self.reports.append(("ladder", name, error)))
        self.drained = False  # a drain ends the runner; a second one would wait out the clock


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    e.runner.start()
    yield e
    if not e.drained:
        await e.runner.drain()


async def test_callbacks_run_in_order_one_at_a_time(env: Env) -> None:
    futures = [env.runner.enqueue("one", "x"), env.runner.enqueue("two"),
               env.runner.enqueue("missing"), env.runner.enqueue("one", "y")]
    await asyncio.gather(*futures)
    assert env.component.log == ["one(x) start", "one(x) end", "two start", "two end",
                                 "one(y) start", "one(y) end"]
    assert env.component.most_at_once == 1
    assert env.runner.failures == 0 and env.reports == []


async def test_before_start_nothing_runs_and_the_future_is_done() -> None:
    e = Env()
    fut = e.runner.enqueue("two")
    assert fut.done()
    await e.clock.settle()
    assert e.component.log == []
    await e.runner.drain()  # nothing started: returns at once


async def test_a_raise_is_counted_logged_emitted_then_sent_to_the_ladder(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "vnfha.member")
    await env.runner.enqueue("boom")
    assert env.runner.failures == 1
    assert env.reports == [CallbackFailed("m1", "boom", "RuntimeError: broke", False),
                           ("ladder", "boom", "RuntimeError: broke")]
    assert "member=m1 callback=boom failed: RuntimeError: broke" in caplog.text
    await env.runner.enqueue("two")  # the runner carries on
    assert env.component.log[-1] == "two end"


async def test_an_overrun_is_cancelled_reported_and_does_not_block_the_next(env: Env) -> None:
    hung = env.runner.enqueue("hang")
    after = env.runner.enqueue("two")
    await env.clock.settle()
    assert env.component.log == ["hang start"] and not hung.done()
    await env.clock.advance(TIMEOUT_S - 0.1)
    assert not hung.done() and env.runner.failures == 0
    await env.clock.advance(0.2)
    await asyncio.wait_for(after, 1)  # real-time guard only
    assert env.component.log == ["hang start", "hang cancelled", "two start", "two end"]
    error = f"did not return within callback_timeout_s={TIMEOUT_S}"
    assert env.reports == [CallbackFailed("m1", "hang", error, True), ("ladder", "hang", error)]


async def test_cancelling_the_runner_cancels_the_callback_and_is_not_swallowed(
        env: Env) -> None:
    env.drained = True  # no drain afterwards: the runner is gone, nothing runs the queue out
    env.runner.enqueue("hang")
    await env.clock.settle()
    task = env.runner.task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await env.clock.settle()
    assert env.component.log == ["hang start", "hang cancelled"]
    assert env.runner.failures == 0


async def test_drain_runs_the_queue_out_then_cancels_what_the_runner_owns(env: Env) -> None:
    owned = asyncio.create_task(asyncio.Event().wait())
    env.runner.adopt(owned)
    env.runner.enqueue("two")
    env.drained = True
    await env.runner.drain()
    assert env.component.log == ["two start", "two end"]
    assert owned.cancelled()


async def test_drain_lets_overrunning_callbacks_time_out_then_returns(env: Env) -> None:
    env.runner.enqueue("hang")
    env.runner.enqueue("hang")
    await env.clock.settle()  # the first one runs, one more is queued
    env.drained = True
    drain = asyncio.create_task(env.runner.drain())
    await env.clock.advance(2 * TIMEOUT_S + 0.1, step=0.1)
    assert drain.done()
    assert env.component.log.count("hang cancelled") == 2 and env.runner.failures == 2


async def test_drain_is_bounded_by_one_timeout_per_queued_callback(env: Env) -> None:
    runner = env.runner.task
    assert runner is not None
    runner.cancel()  # a runner that no longer runs anything: the queue never runs out
    await env.clock.settle()
    env.runner.enqueue("two")
    env.runner.enqueue("two")
    env.drained = True
    drain = asyncio.create_task(env.runner.drain())
    await env.clock.advance(3 * TIMEOUT_S - 0.1, step=0.1)
    assert not drain.done()
    await env.clock.advance(0.2, step=0.1)
    assert drain.done() and env.component.log == []


def test_listeners_are_called_in_order_and_a_failing_one_is_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    listeners = Listeners("m1")
    seen: list[tuple[str, MemberEvent]] = []

    def broken(event: MemberEvent) -> None:
        raise ValueError("listener bug")

    def adds_another(event: MemberEvent) -> None:
        seen.append(("first", event))
        listeners.add(lambda e: seen.append(("late", e)))

    listeners.add(adds_another)
    listeners.add(broken)
    listeners.add(lambda e: seen.append(("third", e)))
    event = RoleChanged("m1", Role.ACTIVE, Role.STANDBY, 7, "won")
    with caplog.at_level(logging.ERROR, "vnfha.member"):
        listeners.emit(event)
    assert seen == [("first", event), ("third", event)]  # the late one gets the next event
    assert any("member listener" in r.message and r.exc_info for r in caplog.records)
