"""``vnfha demo``: a failover on this machine, from nothing, in about five seconds.

It starts a one-member etcd (data in a temporary directory), an NFVI bridge over the simulator
driver (in this process), and the ``examples/udp_counter`` pair as two simulated VMs on hosts
``host-a`` and ``host-b``; it waits for one ACTIVE member with its STANDBY in sync, prints the
roles as ``vnfha status`` does, sends counter traffic over UDP, injects the fault, and prints
the failover as it happens and then as a timeline: the fault, the standby's promotion and the
epoch it took, what the bridge did, and what the client saw (requests, longest outage,
acknowledged increments lost)::

    python -m vnfha.demo                      # SIGKILL of the active (default)
    python -m vnfha.demo --kill sigstop       # freeze it: the standby has the bridge fence it
    python -m vnfha.demo --kill switchover    # graceful handover through etcd
    python -m vnfha.demo --json               # the report as JSON on stdout, steps on stderr

The steps, each a line with the seconds since the start:

1. a one-member etcd on free ports, its data in a temporary directory;
2. the bridge (:class:`~vnfha.nfvi.server.BridgeServer` over a
   :class:`~vnfha.nfvi.sim.SimDriver`) on 127.0.0.1, port chosen by the system;
3. members ``a`` and ``b`` launched as VMs ``vm-a`` / ``vm-b``, each told the bridge's address
   in ``VNFHA_BRIDGE_ENDPOINT`` (so each arms the hypervisor watchdog while active, and a
   standby can have a silent active fenced);
4. the roles once one member is ACTIVE and counts the other in sync, as ``vnfha status``
   prints them, with each member's VM;
5. the example's client in this process: ``rate`` requests/s over a few sessions, every reply
   checked against the last count acknowledged to it;
6. the fault (:meth:`_Demo.inject`); for ``sigstop``, once the standby took over, the frozen
   VM is relaunched as a repair would, and rejoins as a standby;
7. the takeover as the members, the bridge and etcd report it, then the timeline from the
   fault on, the epochs before and after, and the client's counts and outages.

Guarantees:

- Every line carries the seconds since the demo started (monotonic); member events are placed
  on the same axis from the times they print.
- Everything it starts is stopped in ``finally`` (also on Ctrl-C and cancellation): the bridge,
  every simulated VM (killed by process group, by the sim driver), the etcd member (by pid), the
  temporary directory. :attr:`DemoReport.pids` lists every process it started, for checking.
- :attr:`DemoReport.ok` (exit status 0) only when another member took the active role at a
  higher epoch and the client saw no acknowledged increment lost.
- Every wait has a deadline from :class:`DemoOptions`; a step that misses it ends the demo with
  :class:`DemoError` naming the step, after the cleanup.

The demo needs the ``examples/`` directory of a source checkout (it runs the example scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO, TypeVar

from vnfha.admin import GroupStatus, group_status, request_switchover
from vnfha.clock import Clock, SystemClock
from vnfha.config import ENV_PREFIX
from vnfha.demo_timeline import (
    Entry,
    MemberEvent,
    client_summary,
    describe_bridge_event,
    describe_member_event,
    find_takeover,
    format_client,
    format_roles,
    format_step,
    format_timeline,
    judge,
    pair_roles,
    parse_member_line,
)
from vnfha.errors import ConfigError, EtcdLaunchError, StoreError, SwitchoverError, VnfhaError
from vnfha.nfvi.driver import EventKind
from vnfha.nfvi.server import BridgeServer
from vnfha.nfvi.sim import SimDriver
from vnfha.nfvi.wire import Caller
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster

__all__ = ["DemoError", "DemoOptions", "DemoReport", "Entry", "KILL_MODES", "main", "run_demo"]

KILL_MODES = ("sigkill", "sigstop", "switchover")
"""The faults ``--kill`` injects into the active: a crash, a freeze, a graceful handover."""

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "udp_counter"
"""Where the example pair lives in a source checkout."""

T = TypeVar("T")

_KEY_PREFIX = "/vnfha"


class DemoError(VnfhaError):
    """A step of the demo could not be done; ``step`` names it."""

    def __init__(self, step: str, problem: str) -> None:
        self.step = step
        super().__init__(f"{step}: {problem}")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo runs and how long each step may take (seconds; generous for two busy
    cores). The traffic runs ``traffic_before_fault_s`` before the fault and
    ``traffic_after_fault_s`` after it."""

    group: str = "udp-counter"
    rate: float = 200.0
    """Client requests per second over all its sessions."""
    sessions: int = 4
    traffic_before_fault_s: float = 2.0
    traffic_after_fault_s: float = 2.5
    etcd_start_s: float = 30.0
    pair_ready_s: float = 20.0
    """From launch to one ACTIVE member with the other in sync as its STANDBY."""
    failover_s: float = 10.0
    """From the fault to the new active serving (and the switchover's own deadline)."""
    client_retry_s: float = 0.02
    """The client retransmits an unanswered request this often: the resolution of the outage
    it measures (a retransmission is never counted twice: requests carry a sequence number)."""
    client_give_up_s: float = 3.0
    """The client gives a request up (counts it lost) this long after its first send."""
    outage_threshold_s: float = 0.01
    """Gaps between replies at least this long count as outages (at 200 requests/s a reply is
    due every 5 ms)."""
    etcd_request_s: float = 1.0
    poll_s: float = 0.02
    log_tail_lines: int = 6
    """How much of a failed member's log an error message quotes."""
    example_dir: Path = EXAMPLE_DIR
    keep_logs: bool = False
    """Keep the temporary directory (etcd's and the members' logs) even after a success; it is
    always kept after a failure."""

    def __post_init__(self) -> None:
        """Refuse a duration, rate or count that cannot work (ConfigError naming it)."""
        for name in ("rate", "traffic_before_fault_s", "traffic_after_fault_s", "etcd_start_s",
                     "pair_ready_s", "failover_s", "client_retry_s", "client_give_up_s",
                     "outage_threshold_s", "etcd_request_s", "poll_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "must be greater than 0")
        for name in ("sessions", "log_tail_lines"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be at least 1")


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What happened. Times are seconds since the demo started; ``*_ms`` are after the fault.

    ``ok``: another member took the active role at a higher epoch and no acknowledged increment
    was lost; otherwise ``problem`` says why not.
    """

    kill: str
    ok: bool
    problem: str
    group: str
    active_before: str
    epoch_before: int
    active_after: str
    epoch_after: int
    fault_at_s: float
    takeover_ms: float
    """From the fault to the new active's ``active`` event."""
    serving_ms: float
    """From the fault to the new active's service socket being bound."""
    client: Mapping[str, Any]
    """The client's counts: sent, answered, lost, retransmissions, refused, outage_ms,
    outage_start_ms / outage_end_ms (after the fault), lost_increments, double_increments."""
    pids: tuple[int, ...]
    """Every process the demo started (etcd, each incarnation of each member)."""
    timeline: tuple[Entry, ...]
    duration_s: float

    @property
    def lost_increments(self) -> int:
        """Replies that went back below a count already acknowledged (must be 0)."""
        return int(self.client.get("lost_increments", 0))

    def as_json(self) -> dict[str, Any]:
        """A plain dict (``--json``), timeline entries as objects."""
        report = asdict(self)
        report["client"] = dict(self.client)
        report["timeline"] = [asdict(e) for e in self.timeline]
        return report


# -- the run --------------------------------------------------------------------------------------


def _load_module(path: Path, name: str) -> ModuleType:
    """An example script imported as a module (they are importable as well as runnable); once
    per process."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DemoError("load the example", f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def without_vnfha_env(argv: Sequence[str], environ: Mapping[str, str],
                      keep: Mapping[str, str]) -> list[str]:
    """``argv`` run through ``env -u`` so that the ``VNFHA_*`` variables of ``environ`` that are
    not in ``keep`` do not reach it: the demo's members run on the defaults and the demo's own
    settings, whatever the caller exported (a ``VNFHA_LEASE_TTL_S`` of theirs, a CI switch that
    load_config would refuse as unknown). ``env`` execs the program: the pid stays the same."""
    drop = sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in keep)
    if not drop:
        return list(argv)
    return [shutil.which("env") or "/usr/bin/env", *(a for v in drop for a in ("-u", v)), *argv]


def _free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago (the pair's service port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _MemberLog:
    """A member's log file (written by the sim driver), read as it grows."""

    def __init__(self, member: str, path: Path) -> None:
        self.member = member
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_new(self) -> list[str]:
        """The complete lines appended since the last call."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines of the whole file (for an error message)."""
        try:
            return self.path.read_text("utf-8", "replace").splitlines()[-count:]
        except FileNotFoundError:
            return [f"({self.path} is missing)"]


class _Demo:
    """One run: what it started, what it saw, and the lines it printed.

    ``entries`` holds every printed step in the order printed (each with its time, so the
    timeline can sort them); ``events`` every member event read so far, in time order within
    each read; ``pids`` every process started, the moment its pid is known. The driver, bridge
    and store are set as they start; :func:`run_demo` owns their cleanup.
    """

    def __init__(self, out: TextIO, kill: str, options: DemoOptions, clock: Clock) -> None:
        self.out = out
        self.kill = kill
        self.o = options
        self.clock = clock
        self.mono_start = clock.monotonic()
        self.wall_start = time.time()  # member events and the client's report use Unix time
        self.entries: list[Entry] = []
        self.events: list[MemberEvent] = []
        self.pids: list[int] = []
        self.logs: list[_MemberLog] = []
        self.members = ("a", "b")
        self.driver: SimDriver | None = None
        self.bridge: BridgeServer | None = None
        self.store: EtcdStore | None = None
        self.root: Path | None = None
        self.keep_files = options.keep_logs
        """Keep the temporary directory (the members' logs) for a look after a failure."""

    def remove_files(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Last cleanup step: delete the temporary directory, unless something failed (then
        say where the members' logs are)."""
        if self.root is None:
            return
        if self.keep_files or (exc_type is not None and issubclass(exc_type, Exception)):
            self.say(f"stopped everything; the logs are kept in {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
            self.say("stopped everything: bridge, VMs, etcd; temporary files removed")

    def now(self) -> float:
        """Seconds since the demo started, on the injected clock."""
        return self.clock.monotonic() - self.mono_start

    def say(self, text: str, source: str = "demo", t: float | None = None) -> None:
        """Record and print one line (at ``t``, default now)."""
        entry = Entry(round(self.now() if t is None else t, 4), source, text)
        self.entries.append(entry)
        print(format_step(entry.t, source, text), file=self.out, flush=True)

    def show(self, lines: Iterable[str]) -> None:
        """Print lines as they are (a table), indented under the steps."""
        for line in lines:
            print(f"           {line}", file=self.out, flush=True)

    # -- watching ---------------------------------------------------------------------------------

    def poll_logs(self) -> None:
        """Read the members' new events; print the ones worth a line."""
        new = [e for log in self.logs for line in log.read_new()
               if (e := parse_member_line(line, log.member, self.wall_start)) is not None]
        for event in sorted(new, key=lambda e: e.t):
            self.events.append(event)
            text = describe_member_event(event)
            if text is not None:
                self.say(text, event.member, t=event.t)

    async def wait_until(self, step: str, timeout_s: float, found: Callable[[], T | None], *,
                         failed: Callable[[], str | None] = lambda: None) -> T:
        """Poll the logs every ``poll_s`` until ``found()`` returns something other than None,
        and return it; :class:`DemoError` naming ``step`` (and where the logs are) once
        ``timeout_s`` has passed, or at once with the message ``failed()`` returns."""
        deadline = self.clock.monotonic() + timeout_s
        while True:
            self.poll_logs()
            result = found()
            if result is not None:
                return result
            problem = failed()
            if problem is not None:
                raise DemoError(step, problem)
            if self.clock.monotonic() >= deadline:
                raise DemoError(step, f"not done within {timeout_s} s; member logs in "
                                f"{', '.join(str(log.path) for log in self.logs)}")
            await self.clock.sleep(self.o.poll_s)

    async def follow_logs(self) -> None:
        """Print the members' events as they come, every ``poll_s``, until cancelled."""
        while True:
            self.poll_logs()
            await self.clock.sleep(self.o.poll_s)

    async def follow_bridge(self) -> None:
        """Print the group's infrastructure events; note the pid of every VM started."""
        assert self.bridge is not None and self.driver is not None
        caller = Caller(self.o.group, self.members[0], 0)
        try:
            async for event in await self.bridge.core.watch_events(caller, None):
                if event.kind is EventKind.VM_STARTED:
                    with contextlib.suppress(VnfhaError):
                        pid = self.driver.pid(event.instance)
                        if pid is not None and pid not in self.pids:
                            self.pids.append(pid)
                self.say(describe_bridge_event(event), "bridge")
        except Exception as e:  # a lagging watch, say: the demo goes on without these lines
            self.say(f"stopped following the bridge's events: {e!r}", "bridge")

    def member_exited(self) -> str | None:
        """Which member's VM is not running any more, and how its log ends; None if all run."""
        assert self.driver is not None
        for log in self.logs:
            if self.driver.pid(f"vm-{log.member}") is None:
                tail = "\n    ".join(log.tail(self.o.log_tail_lines))
                return f"member {log.member} exited; the end of its log:\n    {tail}"
        return None

    async def status(self) -> GroupStatus:
        """The group as etcd has it now (one consistent read)."""
        assert self.store is not None
        return await group_status(self.store, _KEY_PREFIX, self.o.group)

    async def show_roles(self, status: GroupStatus) -> None:
        """The roles table, with each member's VM from the sim's inventory."""
        assert self.driver is not None
        self.show(format_roles(status, await self.driver.list_instances()))

    # -- the steps --------------------------------------------------------------------------------

    def start_etcd(self, root: Path) -> EtcdCluster:
        """A one-member etcd on free ports (blocks the loop for its start, under a second)."""
        etcd = EtcdCluster(1, data_root=root / "etcd", log_level="warn")
        try:
            etcd.start(self.o.etcd_start_s)
        except EtcdLaunchError as e:
            raise DemoError("start etcd", str(e)) from e
        pid = etcd.members[0].pid
        if pid is not None:
            self.pids.append(pid)
        self.say(f"etcd serving on {etcd.endpoints[0]} (1 member, pid {pid}, data in {root})")
        return etcd

    async def launch_pair(self, etcd: EtcdCluster, port: int, log_dir: Path) -> None:
        """The two members as simulated VMs, told the bridge's address through the env."""
        assert self.driver is not None and self.bridge is not None
        vnf = self.o.example_dir / "vnf.py"
        env = {"VNFHA_BRIDGE_ENDPOINT": self.bridge.address}
        for member in self.members:
            argv = [sys.executable, str(vnf), "--member", member, "--group", self.o.group,
                    "--etcd", ",".join(etcd.endpoints), "--port", str(port), "--json"]
            await self.driver.launch(f"vm-{member}", group=self.o.group, member=member,
                                     host=f"host-{member}", argv=without_vnfha_env(
                                         argv, os.environ, keep=env), env=env)
            pid = self.driver.pid(f"vm-{member}")
            if pid is not None:
                self.pids.append(pid)
            self.logs.append(_MemberLog(member, log_dir / f"vm-{member}.log"))
            self.say(f"launched member {member} as vm-{member} on host-{member} (pid {pid}): "
                     f"udp_counter on 127.0.0.1:{port}, bridge {self.bridge.address}")

    async def inject(self, active: str) -> float:
        """The fault, on the active member's VM; returns its time (seconds since the start).

        - ``sigkill``: SIGKILL to the VM's process, by the pid the sim driver reports (a crash:
          the sim sees it exit on its own, VM_CRASHED);
        - ``sigstop``: the sim driver pauses the VM (SIGSTOP to its process group) and returns
          once ``/proc`` shows it stopped: a frozen VM that still holds its sockets;
        - ``switchover``: a request through etcd (:func:`vnfha.admin.request_switchover`),
          which returns once the new active holds the key.
        """
        assert self.driver is not None and self.store is not None
        vm = f"vm-{active}"
        if self.kill == "sigkill":
            pid = self.driver.pid(vm)
            if pid is None:
                raise DemoError("kill the active", f"{vm} is not running")
            at = self.now()
            os.kill(pid, signal.SIGKILL)
            self.say(f"FAULT: SIGKILL to the active, member {active} ({vm}, pid {pid})", t=at)
        elif self.kill == "sigstop":
            at = self.now()
            await self.driver.pause(vm)
            self.say(f"FAULT: SIGSTOP to the active, member {active} ({vm}): frozen", t=at)
        else:
            at = self.now()
            self.say(f"switchover requested through etcd (active {active})", t=at)
            try:
                done = await request_switchover(self.store, _KEY_PREFIX, self.o.group,
                                                timeout_s=self.o.failover_s, clock=self.clock)
            except (SwitchoverError, StoreError) as e:
                raise DemoError("switch over", str(e)) from e
            self.say(f"switchover done: {done.from_member} (epoch {done.from_epoch}) -> "
                     f"{done.to} (epoch {done.to_epoch}) in {done.seconds * 1000:.1f} ms")
        return at

    async def repair(self, member: str) -> None:
        """Relaunch a fenced (or still frozen) member's VM, as the NFVI's repair would."""
        assert self.driver is not None
        vm = f"vm-{member}"
        await self.driver.reset(vm)
        pid = self.driver.pid(vm)
        if pid is not None and pid not in self.pids:
            self.pids.append(pid)
        self.say(f"repair: {vm} relaunched (pid {pid}); {member} rejoins as a standby")


async def run_demo(*, out: TextIO, kill: str = "sigkill", options: DemoOptions | None = None,
                   clock: Clock | None = None) -> DemoReport:
    """Run the demo (see the module docstring), printing its steps on ``out``; the report says
    what happened. Raises :class:`DemoError` when a step cannot be done (after cleaning up)."""
    if kill not in KILL_MODES:
        raise DemoError("start", f"kill={kill!r} is not one of {', '.join(KILL_MODES)}")
    demo = _Demo(out, kill, options or DemoOptions(), clock or SystemClock())
    o = demo.o
    for script in ("vnf.py", "client.py"):
        if not (o.example_dir / script).is_file():
            raise DemoError("find the example", f"{o.example_dir / script} not found: run the "
                            "demo from a source checkout (it runs examples/udp_counter)")
    client = _load_module(o.example_dir / "client.py", "vnfha_demo_udp_counter_client")
    root = demo.root = Path(tempfile.mkdtemp(prefix="vnfha-demo-"))
    demo.say(f"vnfha demo: a 2N pair of examples/udp_counter, then {kill} of its active")
    async with contextlib.AsyncExitStack() as stack:
        stack.push(demo.remove_files)
        etcd = demo.start_etcd(root)
        stack.callback(etcd.stop)
        demo.store = EtcdStore.connect(etcd.endpoints, request_timeout_s=o.etcd_request_s,
                                       connect_timeout_s=o.etcd_request_s)
        stack.push_async_callback(demo.store.close)
        demo.driver = SimDriver(clock=demo.clock, log_dir=root / "vms")
        stack.push_async_callback(demo.driver.close)
        demo.bridge = await stack.enter_async_context(
            BridgeServer(demo.driver, listen="127.0.0.1:0", clock=demo.clock))
        demo.say(f"NFVI bridge (sim driver) serving on {demo.bridge.address}")
        port = _free_udp_port()
        await demo.launch_pair(etcd, port, root / "vms")
        for follow in (demo.follow_logs, demo.follow_bridge):
            stack.push_async_callback(_cancel, asyncio.create_task(follow()))
        return await _play(demo, client, port)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns or raises


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its result or error is dropped)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _play(demo: _Demo, client: ModuleType, port: int) -> DemoReport:
    """Steps 4 to 7: the roles, the traffic, the fault, the takeover and the verdict."""
    o = demo.o
    active, standby = await demo.wait_until(
        "wait for an active with its standby in sync", o.pair_ready_s,
        lambda: pair_roles(demo.events, demo.members), failed=demo.member_exited)
    before = await demo.status()
    demo.say(f"roles: {active} is ACTIVE at epoch {before.epoch}, {standby} is its STANDBY, "
             "in sync")
    await demo.show_roles(before)
    options = client.ClientOptions(
        port=port, rate=o.rate, sessions=o.sessions, retry_after_s=o.client_retry_s,
        timeout_s=o.client_give_up_s,
        duration_s=o.traffic_before_fault_s + o.traffic_after_fault_s, progress_s=None,
        outage_threshold_s=o.outage_threshold_s, session_prefix="demo")
    traffic = asyncio.create_task(client.run_client(options), name="demo-client")
    try:
        demo.say(f"{o.rate:g} requests/s over {o.sessions} sessions to "
                 f"127.0.0.1:{port}, each reply checked against the last acknowledged count",
                 "client")
        await demo.clock.sleep(o.traffic_before_fault_s)
        fault_at = await demo.inject(active)
        takeover: MemberEvent = await demo.wait_until(
            "wait for the standby to take over", o.failover_s,
            lambda: find_takeover(demo.events, active, before.epoch))
        if demo.kill == "sigstop":  # fenced (killed) by now, or still frozen on the port
            await demo.repair(active)
        serving: MemberEvent = await demo.wait_until(
            "wait for the new active to serve", o.failover_s,
            lambda: next((e for e in demo.events if e.kind == "serving"
                          and e.member == takeover.member and e.t >= takeover.t), None))
        after = await demo.status()
        demo.say(f"the active key is held by {after.active} at epoch {after.epoch} "
                 f"(was {before.active} at epoch {before.epoch})", "etcd")
        report = (await traffic).as_json()
    finally:
        await _cancel(traffic)
    demo.poll_logs()
    summary = client_summary(report, demo.wall_start, fault_at, serving.t)
    demo.say(f"done: {summary['answered']} of {summary['sent']} requests answered, "
             f"{summary['lost_increments']} acknowledged increments lost", "client")
    with contextlib.suppress(StoreError):
        await demo.show_roles(await demo.status())
    return _finish(demo, before=before, takeover=takeover, serving=serving, fault_at=fault_at,
                   summary=summary)


def _finish(demo: _Demo, *, before: GroupStatus, takeover: MemberEvent,
            serving: MemberEvent, fault_at: float, summary: dict[str, Any]) -> DemoReport:
    """Print the timeline and the verdict; build the report."""
    problem = judge(takeover, before.epoch, summary["lost_increments"])
    demo.keep_files = demo.keep_files or bool(problem)
    out = demo.out
    print(f"\nfailover timeline ({demo.kill}; milliseconds after the fault):", file=out)
    for line in format_timeline(demo.entries, fault_at):
        print(line, file=out)
    takeover_ms = round((takeover.t - fault_at) * 1000, 1)
    serving_ms = round((serving.t - fault_at) * 1000, 1)
    print(f"\nactive {before.active} (epoch {before.epoch}) -> {takeover.member} (epoch "
          f"{takeover.fields.get('epoch')}): took over {takeover_ms} ms after the fault, "
          f"serving at {serving_ms} ms", file=out)
    for line in format_client(summary, demo.o.outage_threshold_s):
        print(line, file=out)
    print("RESULT: " + ("OK: the standby took over and no acknowledged increment was lost"
                        if not problem else f"FAILED: {problem}"), file=out, flush=True)
    return DemoReport(
        kill=demo.kill, ok=not problem, problem=problem, group=demo.o.group,
        active_before=before.active or "", epoch_before=before.epoch,
        active_after=takeover.member, epoch_after=int(takeover.fields.get("epoch", 0)),
        fault_at_s=round(fault_at, 4), takeover_ms=takeover_ms, serving_ms=serving_ms,
        client=summary, pids=tuple(demo.pids), timeline=tuple(demo.entries),
        duration_s=round(demo.now(), 3))


# -- the command -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """``vnfha demo``'s arguments."""
    p = argparse.ArgumentParser(
        prog="vnfha demo",
        description="Start a local etcd, an NFVI bridge (sim driver) and the udp_counter "
        "example pair; show the roles, send traffic, fault the active, and print the failover "
        "timeline and what the client saw. Everything is stopped at the end.")
    p.add_argument("--kill", choices=KILL_MODES, default="sigkill",
                   help="sigkill: crash the active; sigstop: freeze it (the standby has the "
                   "bridge fence it); switchover: graceful handover (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON on stdout (the steps go to stderr)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the temporary directory with etcd's and the members' logs (it is "
                   "kept anyway when the demo fails)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when the failover happened and nothing acknowledged was lost, 1
    otherwise, 130 on Ctrl-C (after cleaning up)."""
    args = build_parser().parse_args(argv)
    out = sys.stderr if args.json else sys.stdout
    # the bridge's and the sim's own warnings repeat what the demo prints: errors only
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr,
                        format="%(name)s %(levelname)s: %(message)s")

    async def run() -> DemoReport:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_demo(out=out, kill=args.kill,
                              options=DemoOptions(keep_logs=args.keep_logs))

    try:
        report = asyncio.run(run())
    except DemoError as e:
        print(f"vnfha demo: error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("vnfha demo: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
