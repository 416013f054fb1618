"""``vnfha.blocking``: the asyncio API, synchronously, for VNFs that are blocking programs.

``vnfha.blocking.Member(config, component)`` runs one asyncio event loop in a daemon thread
(``vnfha-<member>``), builds the real :class:`vnfha.Member` on it, and forwards every call
there, waiting for the answer. It only marshals between threads; all HA logic is the async
member's. Guarantees:

- **Same semantics, same errors.** Each call runs the async call of the same name on the loop
  and returns its result or raises its exception unchanged (``NotActive``, ``AckTimeout``,
  ``CheckpointLimitError``, ``ConfigError``, ``SwitchoverError``, ``TimeoutError``...). A call
  waits as long as the async call does, which its own timeouts bound (``timeout_s``,
  ``checkpoint_ack_timeout_s``, the etcd request timeouts); the facade adds none.
- **Reads run on the loop too.** ``role`` may demote an active past its lease deadline, and
  the loop thread changes the checkpoint in steps (a snapshot clears it, then refills it), so a
  read from another thread could see a key missing that exists before and after. Every read
  (``role``, ``epoch``, ``checkpoint.get``...) therefore runs on the loop: one round trip
  between threads (about 0.1 ms on a 2-core VM). ``checkpoint.items`` returns a list.
- **No deadlock on the loop thread.** A call made on the loop thread itself (a listener, a
  ``track`` callback, an async component) raises RuntimeError at once; use the asyncio API
  there. Any other thread may call, blocking component callbacks included.
- **Stopped means stopped.** After :meth:`Member.stop` every call except ``name`` and
  ``group`` raises RuntimeError, and so does a call still waiting when the loop closes.
- **Interpreter exit.** A member not stopped is stopped at exit (``atexit``) as by ``stop()``:
  an active hands over gracefully, bounded by the config's timeouts. The loop thread and the
  callback threads are daemons: none of them holds the interpreter up by itself.

A blocking :class:`Component`'s callbacks each run in a new daemon thread
(``vnfha-<member>-<callback>``) while the loop awaits it, so a slow one never stalls heartbeats
or keepalives. The async side bounds a callback by ``callback_timeout_s``, but a thread cannot
be cancelled: one that overruns keeps running and its late result is dropped; other callbacks
start in new threads alongside it, while a new call of that same callback fails at once until
it returns (so a hung ``health_check`` is one thread, not one per period). Not
``asyncio.to_thread``: its pool is joined at exit, so a stuck callback would hang exit. Where
no thread may start (Python 3.12+ refuses them once the interpreter is exiting, which is when
an ``atexit`` stop runs ``on_quiesce``), the callback runs on the loop thread instead.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from vnfha.clock import Clock
from vnfha.component import Assignment
from vnfha.config import CheckSpec, Config
from vnfha.events import MemberEvent
from vnfha.member import Member as AsyncMember
from vnfha.model import Ack, Recovery, Role
from vnfha.replication.standby import Applied
from vnfha.store.base import Store

__all__ = ["Checkpoint", "Component", "LoopThread", "Member"]

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in a daemon thread named ``name``, until :meth:`close`
    (called at exit at the latest). :meth:`run` and :meth:`call` block the caller until the
    loop has done the work; :meth:`check_caller` says when they refuse. A :class:`Member`
    starts its own; pass one as ``loop=`` to put several members on one loop (and one
    ``MemoryStore``, in tests)."""

    def __init__(self, name: str = "vnfha-loop") -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.closed = False
        """True once :meth:`close` has begun."""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def thread(self) -> threading.Thread:
        """The thread the loop runs in."""
        return self._thread

    def in_loop_thread(self) -> bool:
        """True on the loop's own thread."""
        return threading.current_thread() is self._thread

    def refuse_own_thread(self) -> None:
        """RuntimeError on the loop's own thread, where a blocking call would deadlock."""
        if self.in_loop_thread():
            raise RuntimeError(f"{self.name}: a blocking vnfha call on the event loop's own "
                               "thread would deadlock; use the asyncio API there")

    def check_caller(self) -> None:
        """:meth:`refuse_own_thread`, and RuntimeError once closed."""
        self.refuse_own_thread()
        if self.closed:
            raise RuntimeError(f"{self.name} is closed")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the loop; its result or its exception. If the caller is interrupted
        (KeyboardInterrupt), the coroutine is cancelled."""
        try:
            with self._lock:  # nothing is submitted once close() has begun to cancel it all
                self.check_caller()
                fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise
        return self._wait(fut)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the loop thread; its result or its exception (no task: cheaper)."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def on_loop() -> None:
            if fut.set_running_or_notify_cancel():  # False: the caller gave up
                try:
                    fut.set_result(fn(*args))
                except BaseException as e:  # raised in the caller's thread
                    fut.set_exception(e)

        with self._lock:  # queued before close()'s cancellation, so it runs first
            self.check_caller()
            self.loop.call_soon_threadsafe(on_loop)
        return self._wait(fut)

    def _wait(self, fut: concurrent.futures.Future[T]) -> T:
        try:
            return fut.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError(f"{self.name}: the event loop closed during the call") from None
        finally:
            fut.cancel()  # a no-op once done

    def close(self) -> None:
        """Cancel every task still on the loop, stop it and join the thread. Idempotent."""
        self.refuse_own_thread()
        with self._lock:
            closing, self.closed = not self.closed, True
        if closing:
            atexit.unregister(self.close)
            asyncio.run_coroutine_threadsafe(self._cancel_all(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        if closing:
            self.loop.close()

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.shutdown_asyncgens()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Component:
    """What a blocking VNF implements: :class:`vnfha.Component`'s callbacks as plain
    functions, with the same contract, each run in a thread of its own (module docstring).
    They may call the blocking :class:`Member`: a last ``checkpoint.put`` in ``on_quiesce``."""

    def on_active(self, a: Assignment) -> None:
        """Start serving. Called once this member holds the active key (``a.epoch``)."""

    def on_standby(self, a: Assignment) -> None:
        """Stop serving, follow the active; also when an active is deposed."""

    def on_quiesce(self) -> None:
        """Graceful handover: drain, write the last checkpoint; the key is released after."""

    def health_check(self) -> None:
        """Raise to report the component unhealthy."""

    def restart(self) -> None:
        """Restart the component in place (the escalation ladder's first rung)."""

    def checks(self) -> Sequence[CheckSpec]:
        """Built-in health checks, as :meth:`vnfha.Component.checks` (called once, on the loop
        thread, when the member is built)."""
        return ()


class _Threaded:
    """A blocking :class:`Component` as :class:`vnfha.Member` sees a component: each callback
    an async function that runs the blocking one in a new daemon thread. A callback whose
    previous call has not returned yet fails at once instead (at most one thread each)."""

    _CALLBACKS = frozenset({"on_active", "on_standby", "on_quiesce", "health_check", "restart"})

    def __init__(self, component: Component, member: str) -> None:
        self._component = component
        self._member = member
        self._running: set[str] = set()  # touched on the loop thread only

    def checks(self) -> Sequence[CheckSpec]:
        """The blocking component's built-in checks (read once, not a callback)."""
        return self._component.checks()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        if name not in self._CALLBACKS:
            raise AttributeError(name)
        fn = getattr(self._component, name)
        return lambda *args: self._in_thread(name, fn, args)

    async def _in_thread(self, name: str, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        """``fn(*args)`` in a new daemon thread; its exception (an Exception) is raised here."""
        if name in self._running:
            raise RuntimeError(f"{name}: its previous call has not returned yet")
        self._running.add(name)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: Exception | None) -> None:
            self._running.discard(name)
            if done.done():  # cancelled: the callback overran, nobody waits for it
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def work() -> None:
            error: Exception | None = None
            try:
                fn(*args)
            except Exception as e:  # the callback runner reports it, as for async callbacks
                error = e
            except BaseException as e:  # SystemExit and the like must not end the runner
                error = RuntimeError(f"{name} raised {e!r}")
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(settle, error)

        thread = f"vnfha-{self._member}-{name}"
        try:
            threading.Thread(target=work, name=thread, daemon=True).start()
        except RuntimeError:
            # Python 3.12+ refuses new threads once the interpreter is exiting (an atexit
            # stop runs on_quiesce then): run it here, on the loop thread, which has nothing
            # else left to do
            work()
        await done


class Member:
    """:class:`vnfha.Member`, blocking (see the module docstring). Use ``with``.

    ``component`` is a blocking :class:`Component` (run in threads), or anything
    :class:`vnfha.Member` accepts (an async :class:`vnfha.Component` runs unchanged, on the
    loop thread). ``store`` and ``clock`` are passed through (test hooks); ``loop`` shares a
    :class:`LoopThread` (not closed by :meth:`stop`) instead of starting one.
    """

    def __init__(self, config: Config, component: object | None = None, *,
                 store: Store | None = None, clock: Clock | None = None,
                 loop: LoopThread | None = None) -> None:
        self._config = config
        self._owns_loop = loop is None
        self._loop = loop if loop is not None else LoopThread(f"vnfha-{config.member}")
        if isinstance(component, Component):
            component = _Threaded(component, config.member)
        self._started = self._stopped = False
        self._stop_lock = threading.Lock()
        try:
            self._member = self._loop.call(
                lambda: AsyncMember(config, component, store=store, clock=clock))
        except BaseException:
            self._finish()
            raise
        self.checkpoint = Checkpoint(self)
        """The replicated state, blocking (:class:`Checkpoint`)."""
        atexit.register(self.stop)

    def _call(self, fn: Callable[[AsyncMember], T]) -> T:
        self._check_running()
        return self._loop.call(fn, self._member)

    def _await(self, fn: Callable[[AsyncMember], Coroutine[Any, Any, T]]) -> T:
        self._check_running()
        return self._loop.run(fn(self._member))

    def _check_running(self) -> None:
        if self._stopped:
            raise RuntimeError(f"member {self.name} is stopped")
        self._loop.check_caller()

    @property
    def name(self) -> str:
        """This member's name (``config.member``); readable even after stop."""
        return self._config.member

    @property
    def group(self) -> str:
        """The group's name (``config.group``); readable even after stop."""
        return self._config.group

    @property
    def loop(self) -> LoopThread:
        """The thread running this member's event loop."""
        return self._loop

    @property
    def asyncio_member(self) -> AsyncMember:
        """The :class:`vnfha.Member` behind this one: touch it only on the loop thread."""
        return self._member

    @property
    def role(self) -> Role:
        """The current role (an active past its lease deadline demotes itself on this read)."""
        return self._call(lambda m: m.role)

    @property
    def epoch(self) -> int:
        """The epoch of the current active grant."""
        return self._call(lambda m: m.epoch)

    @property
    def listen(self) -> str:
        """The replication endpoint actually bound."""
        return self._call(lambda m: m.listen)

    def is_active(self) -> bool:
        """True only while this member holds the active key with a valid session."""
        return self._call(AsyncMember.is_active)

    def check_active(self) -> int:
        """The epoch, or NotActive if this member may not act as the active right now."""
        return self._call(AsyncMember.check_active)

    def wait_for_role(self, role: Role, timeout_s: float) -> None:
        """Return once the member holds ``role``; TimeoutError after ``timeout_s``."""
        self._await(lambda m: m.wait_for_role(role, timeout_s))

    def switchover(self, to: str | None = None, *, timeout_s: float | None = None) -> int:
        """Hand the active role over gracefully; the new epoch (``vnfha.Member.switchover``)."""
        return self._await(lambda m: m.switchover(to, timeout_s=timeout_s))

    def report_fault(self, reason: str, recommended: Recovery = Recovery.NONE) -> None:
        """Report a fault to the escalation ladder; returns at once."""
        self._call(lambda m: m.report_fault(reason, recommended))

    def add_listener(self, listener: Callable[[MemberEvent], None]) -> None:
        """Call ``listener(event)`` for every role change and callback failure, synchronously
        on the loop thread: keep it short, and do not call this facade from it."""
        self._call(lambda m: m.add_listener(listener))

    def start(self) -> None:
        """Join the group (``vnfha.Member.start``). If that fails, this member is stopped."""
        self._check_running()
        first, self._started = not self._started, True
        try:
            self._loop.run(self._member.start())
        except BaseException:
            if first:
                self.stop()
            raise

    def stop(self) -> None:
        """Leave the group as ``vnfha.Member.stop`` does (an active hands over first), then
        end the loop thread if this member started it. Idempotent."""
        self._loop.refuse_own_thread()  # before waiting for a lock another stop() may hold
        with self._stop_lock:
            if self._stopped:
                return
            try:
                if not self._loop.closed:  # else its close() cancelled all there was to stop
                    self._loop.run(self._member.stop())
            finally:
                self._finish()

    def _finish(self) -> None:
        self._stopped = True
        atexit.unregister(self.stop)
        if self._owns_loop:
            self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Checkpoint:
    """``member.checkpoint``, blocking: the calls of :class:`vnfha.checkpoint.Checkpoint`,
    with its guarantees, Ack semantics and errors, each run on the loop thread."""

    def __init__(self, member: Member) -> None:
        self._member = member

    def put(self, section: str, key: str, value: bytes, *, ack: Ack = Ack.NONE,
            timeout_s: float | None = None) -> int:
        """Set ``section``/``key``; returns once ``ack`` is met, with the write's sequence."""
        return self._member._await(
            lambda m: m.checkpoint.put(section, key, value, ack=ack, timeout_s=timeout_s))

    def delete(self, section: str, key: str, *, ack: Ack = Ack.NONE,
               timeout_s: float | None = None) -> int:
        """Remove ``section``/``key``; returns once ``ack`` is met, with the sequence."""
        return self._member._await(
            lambda m: m.checkpoint.delete(section, key, ack=ack, timeout_s=timeout_s))

    def get(self, section: str, key: str) -> bytes | None:
        """This member's copy of ``section``/``key``, or None."""
        return self._member._call(lambda m: m.checkpoint.get(section, key))

    def items(self, section: str) -> list[tuple[str, bytes]]:
        """This member's copy of the section as (key, value) pairs, copied at once."""
        return self._member._call(lambda m: list(m.checkpoint.items(section)))

    def sections(self) -> list[str]:
        """The names of this member's non-empty sections, sorted."""
        return self._member._call(lambda m: m.checkpoint.sections())

    def count(self, section: str) -> int:
        """How many keys this member's copy of ``section`` has."""
        return self._member._call(lambda m: m.checkpoint.count(section))

    def __len__(self) -> int:
        return self._member._call(lambda m: len(m.checkpoint))

    @property
    def position(self) -> tuple[int, int]:
        """(epoch, sequence) of the last change in this member's copy."""
        return self._member._call(lambda m: m.checkpoint.position)

    @property
    def in_sync(self) -> tuple[str, ...]:
        """On the active: the standbys published as in sync (their acks count)."""
        return self._member._call(lambda m: m.checkpoint.in_sync)

    @property
    def degraded_acks(self) -> int:
        """ONE/ALL writes returned unprotected because ``checkpoint_degrade_ack`` is set."""
        return self._member._call(lambda m: m.checkpoint.degraded_acks)

    def track(self, callback: Callable[[Applied], None]) -> None:
        """On a standby, call ``callback(applied)`` after every applied batch, synchronously
        on the loop thread: keep it short, and do not call this facade from it."""
        self._member._call(lambda m: m.checkpoint.track(callback))
