"""A member in its own process, for tests that kill and pause members: ``python -m
vnfha.testing.member_proc --group g --member a --etcd 127.0.0.1:2379``.

It prints one JSON object per line on stdout, each with ``t`` (``time.time()``), ``t_mono``
(``time.monotonic()``: one clock for every process on a Linux host, so the logs of several
members and the harness's fault times merge by it; :mod:`vnfha.testing.history` checks
invariants over them) and ``pid``:

- ``{"event": "ready"}`` once joined;
- ``{"event": "role", "role", "previous", "epoch", "reason"}`` on every role change;
- ``{"event": "callback", "name", "epoch"}`` when a component callback starts;
- ``{"event": "callback_failed", "callback", "error", "timed_out"}``;
- ``{"event": "act", "epoch"}`` every ``--act-interval-s`` while active: the stand-in for a VNF
  serving traffic, which must never appear for an epoch after the member was deposed;
- ``{"event": "stopped"}`` after a clean stop (SIGTERM or SIGINT);
- ``{"event": "refused", "error", "type"}`` when its config is refused (a ConfigError: a
  failover budget its timers cannot meet, ``--budget-crash-ms``) or it does not join because
  its settings differ from the group's (GroupConfigMismatch); it then exits with status 2;
- ``{"event": "checkpoint", "epoch", "count", "first_missing", "position", "writers", "found"}``
  in ``on_active``: what the new active found in section ``data`` (``first_missing``: the lowest
  ``k<i>`` it lacks) and, per section, the highest write index up to which every write is there
  (``found``; ``writers`` for the ``--rewrite`` sections alone);
- ``{"event": "status", "role", "count", "position"}`` every ``--status-interval-s``;
- with ``--write N``, once active: ``{"event": "acked", "index", "section", "epoch", "first",
  "protected", "t_start_mono"}`` for the first write of each epoch and every ``--report-every``
  writes of ``data/k<i>`` (acknowledged as ``--ack`` asks; ``epoch`` is the one the write was
  issued in, at ``t_start_mono``), ``{"event": "ack_timeout", "index"}`` when one was not (it is
  retried), and ``{"event": "written", "count"}`` at the end;
- with ``--trace-applied``, on a standby: ``{"event": "applied", "epoch", "first", "last",
  "snapshot", "changes"}`` for every batch it applies (a snapshot has ``first == last``, its
  sequence).

``--listen HOST:PORT`` is the replication endpoint (a member in a network namespace listens on
its namespace's address). The harness (:class:`MemberProcess`) records ``killed``, ``paused``
and ``resumed`` events, with ``t_mono``, when it sends those signals (in ``marks``, apart from
what the child printed; :meth:`MemberProcess.history` merges both).

``--probe-limits`` makes the active first try an oversize value, a bad section name and an
empty key, emitting ``{"event": "refused", "error", "type"}`` for each.

``--set FIELD=VALUE`` (repeatable) sets any other :class:`~vnfha.config.Config` field, the value
read as in a config file's environment override (``--set bridge_endpoint=127.0.0.1:50070
--set ladder_restart_max_count=2``).

``--fail CALLBACK`` makes that callback raise; ``--hang CALLBACK`` makes it sleep forever
(``--fail health_check``: the component's health check fails every ``--health-period-s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from vnfha.component import Assignment, Component
from vnfha.config import Config
from vnfha.errors import (
    AckTimeout,
    CheckpointLimitError,
    ConfigError,
    NotActive,
)
from vnfha.member import CallbackFailed, Member, MemberEvent, RoleChanged
from vnfha.model import Ack, Redundancy
from vnfha.replication.standby import Applied
from vnfha.testing.history import Record, parse


class MemberProcess:
    """Runs this module in a child process and collects its events (for tests).

    ``kill`` (SIGKILL), ``pause`` (SIGSTOP), ``resume`` and ``terminate`` (SIGTERM: a clean
    stop) act on the child's pid only; the first three return the ``time.monotonic()`` at which
    they acted and record it in ``marks``. ``events`` grows as the child prints.
    ``prefix`` runs the child under a wrapper that must exec it in place, keeping the pid (such
    as ``ip netns exec NAME``).
    """

    def __init__(self, group: str, member: str, endpoints: Sequence[str], *extra: str,
                 prefix: Sequence[str] = ()) -> None:
        self.member = member
        cmd = [*prefix, sys.executable, "-m", "vnfha.testing.member_proc", "--group", group,
               "--member", member, "--etcd", ",".join(endpoints), *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.events: list[dict[str, Any]] = []
        self.marks: list[dict[str, Any]] = []
        """What the harness did to the child (``killed``, ``paused``, ``resumed``), as events."""
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError), self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float,
                 what: str = "event") -> dict[str, Any]:
        """The first event (already seen or to come) matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        seen = 0  # each event is tested once: children print thousands of events
        with self._cond:
            while True:
                while seen < len(self.events):
                    ev = self.events[seen]
                    seen += 1
                    if predicate(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._threads[0].is_alive()):
                    raise AssertionError(
                        f"{self.member}: no {what} within {timeout_s} s; exit={self.proc.poll()} "
                        f"events={self.events[-5:]} stderr={''.join(self.stderr[-20:])}")
                self._cond.wait(min(left, 0.1))

    def role(self) -> str | None:
        """The last role the child reported."""
        roles = [e["role"] for e in self.events if e["event"] == "role"]
        return roles[-1] if roles else None

    def history(self) -> list[Record]:
        """The child's events and the harness's marks so far, as :mod:`vnfha.testing.history`
        records in time order."""
        with self._cond:
            events = self.events + self.marks
        return parse(events)

    def _mark(self, event: str) -> float:
        now = time.monotonic()
        with self._cond:
            self.marks.append({"event": event, "t": time.time(), "t_mono": now,
                               "pid": self.proc.pid})
        return now

    def kill(self) -> float:
        """SIGKILL, reap, and close the pipes once everything printed has been read."""
        killed = self.proc.poll() is None
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._close_pipes()
        return self._mark("killed") if killed else time.monotonic()

    def _close_pipes(self) -> None:
        for thread in self._threads:
            thread.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def pause(self) -> float:
        """SIGSTOP: the child freezes with its sockets open (a hung process or VM)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        return self._mark("paused")

    def resume(self) -> float:
        """SIGCONT a paused child."""
        now = self._mark("resumed")
        os.kill(self.proc.pid, signal.SIGCONT)
        return now

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (a clean stop) and wait; SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipes()
        return self.proc.returncode


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed."""
    line = {"event": event, "t": time.time(), "t_mono": time.monotonic(), "pid": os.getpid(),
            **fields}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class Scripted(Component):
    """Reports every callback; raises or hangs in the ones it is told to."""

    def __init__(self, fail: set[str], hang: set[str]) -> None:
        self.fail = fail
        self.hang = hang
        self.member: Member | None = None

    async def _run(self, name: str, epoch: int, *, announced: bool = False) -> None:
        if not announced:
            emit("callback", name=name, epoch=epoch)
        if name in self.fail:
            raise RuntimeError(f"scripted failure in {name}")
        if name in self.hang:
            await asyncio.Event().wait()

    async def on_active(self, a: Assignment) -> None:
        emit("callback", name="on_active", epoch=a.epoch)
        if self.member is not None:
            cp = self.member.checkpoint
            keys = {k for k, _ in cp.items("data")}
            first_missing = next(i for i in range(len(keys) + 1) if f"k{i}" not in keys)
            # with --rewrite, each writer process has its own section w<pid> of --window keys,
            # each value the index of the write that set it: the highest index present is the
            # last write that reached this member (writes are applied in order)
            per_writer = {
                section: max((int(v.split(b"|")[0]) for _, v in cp.items(section)), default=-1)
                for section in cp.sections() if section.startswith("w")
            }
            emit("checkpoint", epoch=a.epoch, count=len(keys), first_missing=first_missing,
                 position=list(cp.position), writers=per_writer,
                 found={"data": first_missing - 1, **per_writer})
        await self._run("on_active", a.epoch, announced=True)

    async def health_check(self) -> None:
        """Raises with ``--fail health_check`` (reported by no event: it runs every period)."""
        if "health_check" in self.fail:
            raise RuntimeError("scripted health check failure")

    async def on_standby(self, a: Assignment) -> None:
        await self._run("on_standby", a.epoch)

    async def on_quiesce(self) -> None:
        await self._run("on_quiesce", 0)


def trace_applied(applied: Applied) -> None:
    """One ``applied`` event per batch a standby applies (``--trace-applied``)."""
    first = applied.sequence if applied.snapshot else applied.sequence - len(applied.changes) + 1
    emit("applied", epoch=applied.epoch, first=first, last=applied.sequence,
         snapshot=applied.snapshot, changes=len(applied.changes))


def on_event(event: MemberEvent) -> None:
    if isinstance(event, RoleChanged):
        emit("role", role=event.role.value, previous=event.previous.value, epoch=event.epoch,
             reason=event.reason)
    elif isinstance(event, CallbackFailed):
        emit("callback_failed", callback=event.callback, error=event.error,
             timed_out=event.timed_out)


async def run(args: argparse.Namespace) -> None:
    config = Config(
        group=args.group, member=args.member, etcd_endpoints=tuple(args.etcd.split(",")),
        redundancy=Redundancy(args.redundancy), priority=args.priority,
        lease_ttl_s=args.lease_ttl_s, callback_timeout_s=args.callback_timeout_s,
        **({"standby_lease_s": args.standby_lease_s} if args.standby_lease_s is not None
           else {}),
        health_check_period_s=args.health_period_s,
        health_check_timeout_s=min(2.0, args.health_period_s),
        failover_budget_crash_ms=args.budget_crash_ms,
        **({"listen": args.listen} if args.listen else {}),
    )
    if args.set:
        given = dict(item.split("=", 1) for item in args.set)
        parsed = Config.from_mapping({"group": args.group, "member": args.member, **given},
                                     source="--set")
        config = config.replace(**{name: getattr(parsed, name) for name in given})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    component = Scripted(set(args.fail), set(args.hang))
    member = Member(config, component)
    component.member = member
    member.add_listener(on_event)
    if args.trace_applied:
        member.checkpoint.track(trace_applied)
    writer: asyncio.Task[None] | None = None
    next_status = 0.0
    async with member:
        emit("ready", lease=member.lease_id, listen=member.listen)
        while not stop.is_set():
            if member.is_active():  # the deadline check comes before every action
                if not args.quiet_acts:
                    emit("act", epoch=member.epoch)
                if args.write and (writer is None or (args.rewrite and writer.done())):
                    writer = asyncio.create_task(write(member, args))
            now = time.monotonic()
            if args.status_interval_s and now >= next_status:
                next_status = now + args.status_interval_s
                emit("status", role=member.role.value, count=len(member.checkpoint),
                     position=list(member.checkpoint.position))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.act_interval_s)
        if writer is not None:
            writer.cancel()
    emit("stopped")


async def write(member: Member, args: argparse.Namespace) -> None:
    """Write data/k0 .. k<N-1>, each acknowledged as --ack asks (retried on AckTimeout)."""
    ack = Ack(args.ack)
    if args.probe_limits:
        too_big = b"x" * (member.config.checkpoint_max_value_bytes + 1)
        for section, key, value in (("data", "big", too_big), ("bad name", "k", b"x"),
                                    ("data", "", b"x")):
            try:
                await member.checkpoint.put(section, key, value)
            except (CheckpointLimitError, ConfigError) as e:
                emit("refused", error=str(e), type=type(e).__name__)
    payload = b"x" * args.value_bytes
    section = f"w{os.getpid()}" if args.rewrite else "data"
    i = _progress.get(section, 0)
    first = True
    while i < args.write:
        # with --rewrite, a lone active writes unprotected (NONE), paced, rather than stall
        used = ack if not args.rewrite or member.checkpoint.in_sync else Ack.NONE
        key, value = f"k{i}", payload
        if args.rewrite:
            key, value = f"k{i % args.window}", f"{i}|".encode() + payload
            if used is Ack.NONE:
                await asyncio.sleep(0.001)
        # the epoch the write is issued in: put checks it before its first await
        epoch, started = member.epoch, time.monotonic()
        try:
            await member.checkpoint.put(section, key, value, ack=used)
        except AckTimeout:
            emit("ack_timeout", index=i)
            continue
        except NotActive:
            return
        if first or i % args.report_every == 0 or i == args.write - 1:
            emit("acked", index=i, section=section, epoch=epoch, first=first,
                 protected=used is not Ack.NONE, t_start_mono=started)
            first = False
        i += 1
        _progress[section] = i
    emit("written", count=args.write)


_progress: dict[str, int] = {}
"""The next index per section, so a writer restarted in a later epoch (--rewrite) goes on."""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vnfha.testing.member_proc")
    p.add_argument("--group", required=True)
    p.add_argument("--member", required=True)
    p.add_argument("--etcd", required=True, help="comma-separated endpoints")
    p.add_argument("--redundancy", default=Redundancy.TWO_N.value,
                   choices=[r.value for r in Redundancy])
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--listen", help="replication endpoint HOST:PORT (default: Config's)")
    p.add_argument("--lease-ttl-s", type=int, default=2)
    p.add_argument("--standby-lease-s", type=float, default=None,
                   help="the standby lease (0: off; default: Config's)")
    p.add_argument("--callback-timeout-s", type=float, default=5.0)
    p.add_argument("--health-period-s", type=float, default=5.0)
    p.add_argument("--budget-crash-ms", type=float, default=None)
    p.add_argument("--act-interval-s", type=float, default=0.02)
    p.add_argument("--fail", action="append", default=[], choices=_CALLBACKS)
    p.add_argument("--hang", action="append", default=[], choices=_CALLBACKS)
    p.add_argument("--write", type=int, default=0, help="checkpoint writes once active")
    p.add_argument("--ack", default="one", choices=[a.value for a in Ack])
    p.add_argument("--value-bytes", type=int, default=100)
    p.add_argument("--report-every", type=int, default=100)
    p.add_argument("--status-interval-s", type=float, default=0.0)
    p.add_argument("--quiet-acts", action="store_true", help="do not print act events")
    p.add_argument("--probe-limits", action="store_true")
    p.add_argument("--rewrite", action="store_true",
                   help="write to section w<pid>, keys k<i %% window> = b'<i>|...', and start "
                   "writing again in every epoch in which this member is active")
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--trace-applied", action="store_true",
                   help="print an applied event for every batch applied as a standby")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="set another Config field (repeatable)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    import logging  # noqa: PLC0415

    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(run(args))
    except ConfigError as e:  # refused (settings, budgets) or did not join: say why, exit 2
        emit("refused", error=str(e), type=type(e).__name__)
        sys.exit(2)


_CALLBACKS = ("on_active", "on_standby", "on_quiesce", "health_check")

if __name__ == "__main__":
    main()
