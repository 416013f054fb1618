"""vnfha.blocking: blocking members on one shared loop thread and the in-memory store (real
gRPC streams on 127.0.0.1, real time). The tests themselves are plain threads, as a blocking
VNF is: no event loop runs in them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vnfha import (
    Ack,
    Assignment,
    CheckpointLimitError,
    Config,
    ConfigError,
    NotActive,
    Role,
)
from vnfha import Component as AsyncComponent
from vnfha.blocking import Component, LoopThread, Member
from vnfha.events import CallbackFailed, MemberEvent
from vnfha.store.memory import MemoryStore


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread("test-loop") as lt:
        yield lt


@pytest.fixture
def store(loop: LoopThread) -> Iterator[MemoryStore]:
    s = MemoryStore()
    yield s
    loop.run(s.close())


def cfg(name: str, **kw: Any) -> Config:
    return Config(group="vfw", member=name, checkpoint_ack_timeout_s=1.0, **kw)


def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


class Recorder(Component):
    """Records, per callback, the thread it ran in; on_quiesce writes a last checkpoint."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.member: Member | None = None

    def on_active(self, a: Assignment) -> None:
        self.threads["on_active"] = threading.current_thread()

    def on_standby(self, a: Assignment) -> None:
        self.threads["on_standby"] = threading.current_thread()

    def on_quiesce(self) -> None:
        self.threads["on_quiesce"] = threading.current_thread()
        assert self.member is not None
        self.member.checkpoint.put("s", "last", b"from on_quiesce")  # no deadlock


@contextlib.contextmanager
def pair(loop: LoopThread, store: MemoryStore, a_comp: object = None,
         b_comp: object = None) -> Iterator[tuple[Member, Member]]:
    """a active, b its in-sync standby; both stopped at the end."""
    with Member(cfg("a"), a_comp, store=store, loop=loop) as a:
        a.wait_for_role(Role.ACTIVE, 5)
        with Member(cfg("b"), b_comp, store=store, loop=loop) as b:
            b.wait_for_role(Role.STANDBY, 5)
            until(lambda: a.checkpoint.in_sync == ("b",))
            yield a, b


def test_two_members_elect_replicate_and_refuse_writes_on_the_standby(
    loop: LoopThread, store: MemoryStore,
) -> None:
    with pair(loop, store) as (a, b):
        seq = a.checkpoint.put("sessions", "k1", b"v1", ack=Ack.ONE)
        assert b.checkpoint.get("sessions", "k1") == b"v1"  # acknowledged: on b already
        assert b.checkpoint.position == a.checkpoint.position == (a.epoch, seq)
        a.checkpoint.delete("sessions", "k1", ack=Ack.ALL)
        a.checkpoint.put("sessions", "k2", b"v2", ack=Ack.ONE)
        assert b.checkpoint.items("sessions") == [("k2", b"v2")]
        assert (b.checkpoint.sections(), b.checkpoint.count("sessions"), len(b.checkpoint)) \
            == (["sessions"], 1, 1)
        assert a.is_active() and not b.is_active()
        assert a.check_active() == a.epoch == b.epoch
        with pytest.raises(NotActive) as e:
            b.checkpoint.put("sessions", "k3", b"x")
        assert e.value.member == "b"
        with pytest.raises(ConfigError):
            a.checkpoint.put("sessions", "k3", "not bytes")  # type: ignore[arg-type]
        with pytest.raises(CheckpointLimitError):
            a.checkpoint.put("sessions", "k3", b"x" * (a.asyncio_member.config
                                                       .checkpoint_max_value_bytes + 1))
        with pytest.raises(TimeoutError):
            b.wait_for_role(Role.ACTIVE, 0.05)


def test_items_while_the_active_writes_on_the_loop(loop: LoopThread, store: MemoryStore) -> None:
    """items() copies the section on the loop thread: a writer there never breaks it."""
    with pair(loop, store) as (a, b):
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                a.checkpoint.put("s", f"k{i % 500}", b"v")
                if i % 3 == 0:
                    a.checkpoint.delete("s", f"k{(i * 7) % 500}")
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for _ in range(200):
                assert all(v == b"v" for _, v in b.checkpoint.items("s"))
                assert all(v == b"v" for _, v in a.checkpoint.items("s"))
        finally:
            stop.set()
            writer.join()


def test_switchover_and_callbacks_in_worker_threads(loop: LoopThread,
                                                    store: MemoryStore) -> None:
    ra, rb = Recorder(), Recorder()
    with pair(loop, store, ra, rb) as (a, b):
        ra.member, rb.member = a, b
        old = a.epoch
        new = a.switchover()
        assert new > old
        b.wait_for_role(Role.ACTIVE, 5)
        a.wait_for_role(Role.STANDBY, 5)
        assert b.checkpoint.get("s", "last") == b"from on_quiesce"
        until(lambda: {"on_active", "on_quiesce", "on_standby"} <= ra.threads.keys()
              and "on_active" in rb.threads)
    for thread in [*ra.threads.values(), *rb.threads.values()]:
        assert thread is not loop.thread
        assert thread.name.startswith(("vnfha-a-on_", "vnfha-b-on_"))
        assert thread.daemon


def test_an_async_component_runs_unchanged_on_the_loop(loop: LoopThread,
                                                       store: MemoryStore) -> None:
    seen: list[threading.Thread] = []

    class Async(AsyncComponent):
        async def on_active(self, a: Assignment) -> None:
            seen.append(threading.current_thread())

    with Member(cfg("a"), Async(), store=store, loop=loop) as a:
        a.wait_for_role(Role.ACTIVE, 5)
        until(lambda: len(seen) == 1)
    assert seen == [loop.thread]


def test_an_overrunning_callback_is_reported_and_its_thread_left_running(
    loop: LoopThread, store: MemoryStore,
) -> None:
    release = threading.Event()
    ended = threading.Event()

    class Stuck(Component):
        def on_active(self, a: Assignment) -> None:
            release.wait(30)
            ended.set()

    events: list[MemberEvent] = []
    a = Member(cfg("a", callback_timeout_s=0.2), Stuck(), store=store, loop=loop)
    a.add_listener(events.append)
    with a:
        a.wait_for_role(Role.ACTIVE, 5)
        until(lambda: any(isinstance(e, CallbackFailed) for e in events))
        (failed,) = [e for e in events if isinstance(e, CallbackFailed)]
        assert failed.callback == "on_active" and failed.timed_out
        assert a.role is Role.ACTIVE and not ended.is_set()  # the role stands; still running
        release.set()
        assert ended.wait(5)  # its late return is dropped, nothing breaks


def test_a_call_on_the_loop_thread_raises_instead_of_deadlocking(
    loop: LoopThread, store: MemoryStore,
) -> None:
    errors: list[BaseException] = []

    def listener(event: MemberEvent) -> None:
        try:
            _ = a.role
        except RuntimeError as e:
            errors.append(e)

    a = Member(cfg("a"), store=store, loop=loop)
    a.add_listener(listener)
    with a:
        a.wait_for_role(Role.ACTIVE, 5)
        with pytest.raises(RuntimeError, match="event loop's own thread would deadlock"):
            loop.call(lambda: a.checkpoint.get("s", "k"))
        with pytest.raises(RuntimeError, match="own thread"):
            loop.call(a.stop)
    assert errors and "would deadlock" in str(errors[0])


def test_stop_is_idempotent_ends_the_thread_and_later_calls_raise() -> None:
    # its own loop thread; the store's expiry task ends with that loop
    a = Member(cfg("a"), store=MemoryStore())
    thread = a.loop.thread
    assert thread.name == "vnfha-a" and thread.daemon and thread.is_alive()
    a.start()
    a.wait_for_role(Role.ACTIVE, 5)
    a.stop()
    assert not thread.is_alive()
    a.stop()
    with pytest.raises(RuntimeError, match="member a is stopped"):
        _ = a.role
    with pytest.raises(RuntimeError, match="stopped"):
        a.checkpoint.put("s", "k", b"v")
    with pytest.raises(RuntimeError, match="stopped"):
        a.start()
    assert (a.name, a.group) == ("a", "vfw")

    never = Member(cfg("c"), store=MemoryStore())  # stopped without ever starting
    never.stop()
    assert not never.loop.thread.is_alive()


def test_a_failed_start_stops_the_member_and_its_thread() -> None:
    store = MemoryStore()
    store.set_unavailable(True)
    a = Member(cfg("a"), store=store)
    with pytest.raises(Exception) as e:
        a.start()
    assert type(e.value).__module__ == "vnfha.errors"  # the async member's own error
    assert not a.loop.thread.is_alive()
    with pytest.raises(RuntimeError, match="stopped"):
        a.start()



def test_a_hung_health_check_holds_one_thread_and_fails_each_period(
    loop: LoopThread, store: MemoryStore,
) -> None:
    """Its later periods fail at once instead of starting a thread each; once it returns,
    the check runs (and passes) again."""
    release = threading.Event()
    calls: list[str] = []

    class Hung(Component):
        def health_check(self) -> None:
            calls.append(threading.current_thread().name)
            if len(calls) == 1:
                release.wait(30)

    config = cfg("a", health_check_period_s=0.02, health_check_timeout_s=0.02,
                 health_fail_after=3, ladder_restart_max_count=0)
    with Member(config, Hung(), store=store, loop=loop) as a:
        a.wait_for_role(Role.ACTIVE, 5)
        failing = lambda: loop.call(lambda: a.asyncio_member.supervisor.monitor.failing)  # noqa: E731
        until(lambda: failing() == ("health_check",))
        time.sleep(0.2)  # ten more periods
        assert calls == ["vnfha-a-health_check"]
        release.set()
        until(lambda: failing() == ())
        assert len(calls) >= 3 and set(calls) == {"vnfha-a-health_check"}


def test_callbacks_run_on_the_loop_when_no_thread_may_start(
    loop: LoopThread, store: MemoryStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.12+ refuses new threads at interpreter exit, where an atexit stop runs
    on_quiesce: the callback then runs on the loop thread instead of failing."""
    ra = Recorder()
    with Member(cfg("a"), ra, store=store, loop=loop) as a:
        ra.member = a
        a.wait_for_role(Role.ACTIVE, 5)
        until(lambda: "on_active" in ra.threads)
        start = threading.Thread.start

        def refuse(self: threading.Thread) -> None:
            if self.name.startswith("vnfha-a-"):
                raise RuntimeError("can't create new thread at interpreter shutdown")
            start(self)

        monkeypatch.setattr(threading.Thread, "start", refuse)
    assert ra.threads["on_quiesce"] is loop.thread  # the stop's handover ran it, inline
    assert ra.threads["on_active"] is not loop.thread
