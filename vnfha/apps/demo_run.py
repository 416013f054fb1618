"""The steps of ``vnfha demo`` and the state of one run (:class:`DemoRun`): start etcd and
launch the pair, follow what the members and the bridge say, inject the fault, repair. The
story is told by :mod:`vnfha.apps.demo` (which owns the order of the steps and the cleanup);
the pure part (parsing member events, the lines printed) is :mod:`vnfha.apps.demo_timeline`.

Guarantees:

- **Every process started is recorded** in :attr:`DemoRun.pids` the moment its pid is known
  (etcd, each incarnation of each member, as the sim driver and the bridge's events report
  them), so that the caller can check that all are gone after the cleanup.
- **Every wait has a deadline** from :class:`DemoOptions` (:meth:`DemoRun.wait_until`); a step
  that misses it, or a member that exits while it is awaited, raises :class:`DemoError`
  naming the step, with where the logs are or how the member's log ends.
- **Every line carries the seconds since the demo started**, on the injected clock; member
  events are placed on the same axis from the Unix times they print.
- **The members run on the demo's settings only**: :func:`without_vnfha_env` keeps the
  caller's ``VNFHA_*`` variables away from them.
- **No source checkout needed**: a member is ``python -m`` :data:`MEMBER_MODULE`, the
  udp_counter example shipped in the package.
- **Where each member runs is a** :class:`Site`: by default both on this machine, serving
  127.0.0.1 (host labels ``host-a``, ``host-b`` for the sim); :mod:`vnfha.apps.demo_hosts` puts
  them on lab hosts, behind a service address, and adds the ``partition`` fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

from vnfha.admin import GroupStatus, group_status, request_switchover
from vnfha.apps.demo_timeline import (
    Entry,
    MemberEvent,
    describe_bridge_event,
    describe_member_event,
    find_takeover,
    format_roles,
    format_step,
    parse_member_line,
)
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.clock import Clock
from vnfha.config import ENV_PREFIX
from vnfha.errors import ConfigError, EtcdLaunchError, StoreError, SwitchoverError, VnfhaError
from vnfha.nfvi.model import EventKind
from vnfha.nfvi.wire import Caller
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster

__all__ = ["ALL_KILL_MODES", "KEY_PREFIX", "KILL_MODES", "MEMBER_COMMAND", "MEMBER_MODULE",
           "DemoError", "DemoOptions", "DemoRun", "MemberLog", "Partitioner", "Site",
           "free_udp_port", "without_vnfha_env"]

KILL_MODES = ("sigkill", "sigstop", "switchover")
"""The faults ``--kill`` injects into the active: a crash, a freeze, a graceful handover."""

ALL_KILL_MODES = (*KILL_MODES, "partition")
"""With the members on hosts of their own, also ``partition``: the active's host is cut off
from every other host (the standby has the bridge fence it, as for a freeze)."""

MEMBER_MODULE = "vnfha.apps.examples.udp_counter.vnf"
"""The example member the demo runs, as a module of the installed package."""

MEMBER_COMMAND = (sys.executable, "-m", MEMBER_MODULE)
"""How the demo starts a member (its options follow): this Python, running :data:`MEMBER_MODULE`."""

KEY_PREFIX = "/vnfha"
"""The members' etcd key prefix (their default)."""

T = TypeVar("T")


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
    member_command: tuple[str, ...] = MEMBER_COMMAND
    """The program that runs one member, before its options (``--member``, ``--group``,
    ``--etcd``, ``--port``, ``--json``): the udp_counter example, from the installed package."""
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
class Site:
    """Where a member runs and serves: ``host``, the host label its VM is filed under in the
    sim; ``prefix``, the command that starts a program on that host (``ip netns exec NS`` for a
    lab host; empty: this machine); ``env``, the ``VNFHA_*`` settings it gets besides the
    bridge's address; ``serve``, the member's options that say where it serves (none: the
    default port's ``--host 127.0.0.1``); ``address``, the host's own address, for the story."""

    host: str
    prefix: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    serve: tuple[str, ...] = ()
    address: str = ""


class Partitioner(Protocol):
    """Cuts a member's host off the network and heals it (the ``partition`` fault)."""

    def cut(self, member: str) -> str:
        """Drop every packet to and from ``member``'s host; says what was done."""

    def heal(self, member: str) -> None:
        """Undo :meth:`cut`."""


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


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago (the pair's service port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MemberLog:
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


class DemoRun:
    """One run: what it started, what it saw, and the lines it printed.

    ``entries`` holds every printed step in the order printed (each with its time, so the
    timeline can sort them); ``events`` every member event read so far, in time order within
    each read; ``pids`` every process started, the moment its pid is known. The driver, bridge
    and store are set as they start; :func:`vnfha.apps.demo.run_demo` owns their cleanup.
    """

    def __init__(self, out: TextIO, kill: str, options: DemoOptions, clock: Clock, *,
                 sites: Mapping[str, Site] | None = None, service_host: str = "127.0.0.1",
                 partitioner: Partitioner | None = None) -> None:
        self.out = out
        self.kill = kill
        self.o = options
        self.clock = clock
        self.mono_start = clock.monotonic()
        self.wall_start = time.time()  # member events and the client's report use Unix time
        self.entries: list[Entry] = []
        self.events: list[MemberEvent] = []
        self.pids: list[int] = []
        self.logs: list[MemberLog] = []
        self.members = ("a", "b")
        self.sites = dict(sites) if sites else {m: Site(f"host-{m}") for m in self.members}
        self.service_host = service_host
        """Where the pair serves: the client sends there."""
        self.partitioner = partitioner
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
        return await group_status(self.store, KEY_PREFIX, self.o.group)

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

    async def launch_pair(self, endpoints: Sequence[str], port: int, log_dir: Path) -> None:
        """The two members as simulated VMs on their sites, told the bridge's address through
        the env."""
        assert self.driver is not None and self.bridge is not None
        for member in self.members:
            site = self.sites[member]
            env = {"VNFHA_BRIDGE_ENDPOINT": self.bridge.address, **site.env}
            argv = [*self.o.member_command, "--member", member, "--group", self.o.group,
                    "--etcd", ",".join(endpoints), "--port", str(port), *site.serve, "--json"]
            await self.driver.launch(f"vm-{member}", group=self.o.group, member=member,
                                     host=site.host, argv=[*site.prefix, *without_vnfha_env(
                                         argv, os.environ, keep=env)], env=env)
            pid = self.driver.pid(f"vm-{member}")
            if pid is not None:
                self.pids.append(pid)
            self.logs.append(MemberLog(member, log_dir / f"vm-{member}.log"))
            where = f" ({site.address})" if site.address else ""
            self.say(f"launched member {member} as vm-{member} on {site.host}{where} (pid "
                     f"{pid}): udp_counter on {self.service_host}:{port}, bridge "
                     f"{self.bridge.address}")

    def check_active(self, active: str, epoch: int) -> None:
        """DemoError if another member than ``active`` has taken the role since ``epoch`` (a
        false suspicion, on a machine too busy for the members' heartbeats): the fault would
        hit the wrong member."""
        self.poll_logs()
        taken = find_takeover(self.events, active, epoch)
        if taken is not None:
            raise DemoError("inject the fault", f"the active changed before the fault: "
                            f"{taken.member} took over at epoch {taken.fields.get('epoch')} "
                            f"({taken.fields.get('reason')}); is the machine overloaded?")

    async def inject(self, active: str) -> float:
        """The fault, on the active member's VM; returns its time (seconds since the start).

        - ``sigkill``: SIGKILL to the VM's process, by the pid the sim driver reports (a crash:
          the sim sees it exit on its own, VM_CRASHED);
        - ``sigstop``: the sim driver pauses the VM (SIGSTOP to its process group) and returns
          once ``/proc`` shows it stopped: a frozen VM that still holds its sockets;
        - ``switchover``: a request through etcd (:func:`vnfha.admin.request_switchover`),
          which returns once the new active holds the key;
        - ``partition``: the :class:`Partitioner` cuts the active's host off from every other
          host; the time is when that call returned (the rules are in force from then on).
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
        elif self.kill == "partition":
            if self.partitioner is None:
                raise DemoError("partition the active", "the members share one host")
            asked = self.now()
            what = await asyncio.to_thread(self.partitioner.cut, active)
            at = self.now()  # the rules are in force from here on
            self.say(f"FAULT: {what} (in force {(at - asked) * 1000:.1f} ms after the "
                     "request)", t=at)
        else:
            at = self.now()
            self.say(f"switchover requested through etcd (active {active})", t=at)
            try:
                done = await request_switchover(self.store, KEY_PREFIX, self.o.group,
                                                timeout_s=self.o.failover_s, clock=self.clock)
            except (SwitchoverError, StoreError) as e:
                raise DemoError("switch over", str(e)) from e
            self.say(f"switchover done: {done.from_member} (epoch {done.from_epoch}) -> "
                     f"{done.to} (epoch {done.to_epoch}) in {done.seconds * 1000:.1f} ms")
        return at

    async def repair(self, member: str) -> None:
        """Relaunch a fenced (or still frozen) member's VM, as the NFVI's repair would; after a
        partition, heal it first."""
        assert self.driver is not None
        if self.kill == "partition" and self.partitioner is not None:
            await asyncio.to_thread(self.partitioner.heal, member)
            self.say(f"partition healed: {self.sites[member].host} is back on the network")
        vm = f"vm-{member}"
        await self.driver.reset(vm)
        pid = self.driver.pid(vm)
        if pid is not None and pid not in self.pids:
            self.pids.append(pid)
        self.say(f"repair: {vm} relaunched (pid {pid}); {member} rejoins as a standby")
