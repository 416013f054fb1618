"""FakeClock: time moves only when the test moves it, sleepers wake at their own deadlines in
order, and timeouts fire exactly when fake time says so."""

from __future__ import annotations

import asyncio

import pytest

from vnfha.testing import FakeClock


async def _record_wakeups(clock: FakeClock, delays: list[float], log: list[tuple[int, float]]
                          ) -> list[asyncio.Task[None]]:
    async def sleeper(i: int, delay: float) -> None:
        await clock.sleep(delay)
        log.append((i, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(i, d)) for i, d in enumerate(delays)]
    await clock.settle()
    return tasks


def test_time_starts_where_asked_and_never_goes_back() -> None:
    clock = FakeClock(start=5.0)
    assert clock.monotonic() == 5.0
    clock.jump(1.5)
    assert clock.monotonic() == 6.5
    with pytest.raises(ValueError, match="cannot go back"):
        clock.jump(-0.1)
    assert clock.monotonic() == 6.5


async def test_sleepers_wake_in_deadline_order_at_their_own_deadline() -> None:
    clock = FakeClock(start=100.0)
    log: list[tuple[int, float]] = []
    tasks = await _record_wakeups(clock, [3.0, 1.0, 2.0, 1.0], log)
    assert clock.pending_sleepers == 4
    assert clock.next_deadline() == 101.0
    await clock.advance(5.0)
    # equal deadlines keep the order they were registered in
    assert log == [(1, 101.0), (3, 101.0), (2, 102.0), (0, 103.0)]
    assert clock.monotonic() == 105.0
    assert clock.pending_sleepers == 0 and clock.next_deadline() is None
    await asyncio.gather(*tasks)


async def test_nothing_wakes_before_its_deadline() -> None:
    clock = FakeClock()
    log: list[tuple[int, float]] = []
    tasks = await _record_wakeups(clock, [1.0], log)
    await clock.advance(0.999)
    assert log == []
    await clock.advance(0.001)
    assert log == [(0, 1001.0)]
    await asyncio.gather(*tasks)


async def test_sleeping_for_no_time_does_not_wait_for_the_clock() -> None:
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), 1.0)
    await asyncio.wait_for(clock.sleep(-3), 1.0)
    assert clock.monotonic() == 1000.0
    assert clock.pending_sleepers == 0


async def test_jump_wakes_due_sleepers_without_running_them() -> None:
    clock = FakeClock()
    log: list[tuple[int, float]] = []
    tasks = await _record_wakeups(clock, [1.0, 2.0], log)
    clock.jump(1.5)
    assert clock.pending_sleepers == 1  # the 1 s sleeper is woken...
    assert log == []  # ...but has not run yet
    await clock.settle()
    assert log == [(0, 1001.5)]  # it sees the time it was woken at, after the jump
    assert clock.next_deadline() == 1002.0
    clock.jump(0.5)
    await asyncio.gather(*tasks)
    assert log == [(0, 1001.5), (1, 1002.0)]


async def test_advance_wakes_a_periodic_task_at_each_of_its_deadlines() -> None:
    clock = FakeClock(start=0.0)
    ticks: list[float] = []

    async def every_half_second() -> None:
        while True:
            await clock.sleep(0.5)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(every_half_second())
    await clock.advance(2.0)
    assert ticks == [0.5, 1.0, 1.5, 2.0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_advance_with_step_moves_in_increments_even_with_no_sleeper() -> None:
    clock = FakeClock(start=0.0)
    seen: set[float] = set()
    stop = False

    async def observe() -> None:
        while not stop:
            seen.add(round(clock.monotonic(), 6))
            await asyncio.sleep(0)

    task = asyncio.create_task(observe())
    await clock.advance(0.5, step=0.1)
    assert {0.1, 0.2, 0.3, 0.4, 0.5} <= seen
    assert clock.monotonic() == pytest.approx(0.5)

    seen.clear()
    await clock.advance(0.5)  # without a step: straight from 0.5 to the target
    assert seen == {0.5, 1.0}
    stop = True
    await task


async def test_wait_for_returns_the_result_when_it_comes_in_time() -> None:
    clock = FakeClock()

    async def answer() -> int:
        await clock.sleep(0.5)
        return 42

    result = asyncio.create_task(clock.wait_for(answer(), 1.0))
    await clock.advance(0.5)
    assert await result == 42
    # the timer was cancelled: nothing is left waiting on the clock
    assert clock.pending_sleepers == 0


async def test_wait_for_times_out_exactly_and_cancels_the_awaitable() -> None:
    clock = FakeClock()
    cancelled = asyncio.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiter = asyncio.create_task(clock.wait_for(never(), 2.0))
    await clock.advance(1.999)
    assert not waiter.done()
    await clock.advance(0.001)
    assert waiter.done()
    with pytest.raises(TimeoutError):
        waiter.result()
    assert cancelled.is_set()


async def test_cancelling_wait_for_cancels_both_the_awaitable_and_the_timer() -> None:
    clock = FakeClock()
    inner = asyncio.create_task(asyncio.Event().wait())
    waiter = asyncio.create_task(clock.wait_for(inner, 5.0))
    await clock.settle()
    assert clock.pending_sleepers == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await clock.settle()
    assert inner.cancelled()
    assert clock.pending_sleepers == 0
