"""The simulator driver: instances are local processes that the driver launches and owns, the way
a hypervisor owns its VMs; hosts are labels.

It implements :class:`vnfha.bridge.drivers.driver.Driver` for tests, examples and the demo, and runs
anywhere (Linux; it uses process groups and ``/proc``)::

    sim = SimDriver(log_dir="sim-logs")
    await sim.launch("vm-a", group="vfw", member="vfw-a", host="host-1",
                     argv=[sys.executable, "app.py"], env={"ROLE": "a"})
    await sim.pause("vm-a")        # SIGSTOP to its process group; returns once it is stopped
    await sim.reset("vm-a")        # SIGKILL, then the same argv/env/cwd launched again
    sim.fail_host("host-1")        # fault injection: its instances die, HOST_DOWN
    await sim.close()              # kills every process it launched

What maps to what:

=================  ============================================================================
``power_off``      SIGKILL to the instance's process group; returns once the process is reaped
``pause``          SIGSTOP to the group; returns once ``/proc`` shows the process stopped
``resume``         SIGCONT to the group
``reset``          power off, then launch again with the same argv, env and cwd (a new pid)
``start``          launch again a STOPPED or CRASHED instance (its host must be up)
``migrate``        power off, relabel the host, launch again (a cold migration)
``move_address``   record the address -> instance binding, the "cloud's port binding"
                   (:class:`~vnfha.bridge.drivers.driver.AddressMover`); nothing on the host
=================  ============================================================================

Guarantees, beyond the driver interface's:

- Every process is started in a new session (its own process group), and every signal goes to
  the whole group, so children of the instance die or freeze with it.
- A process that exits without the driver killing it makes its instance CRASHED and publishes
  ``VM_CRASHED`` with its exit status.
- :meth:`close` kills (SIGKILL, by process group) every process the driver launched and waits
  for each; nothing it launched outlives it.
- Output: with ``log_dir``, each instance's stdout and stderr are appended to
  ``<log_dir>/<instance>.log`` (every incarnation, with a header line per launch); without it
  they go to ``/dev/null``.
- ``env`` entries are added to (and override) the environment the driver itself runs with.
- A host that :meth:`fail_host` took down refuses launches, starts, resets and migrations to
  it with :class:`~vnfha.bridge.drivers.driver.HostDown` until :meth:`restore_host`;
  :meth:`list_hosts` still lists it, and :meth:`list_instances` its instances. The simulator's
  hosts are *dead* when down, in the driver interface's terms: their instances are CRASHED
  (each with ``VM_CRASHED``), ``power_off`` confirms at once, and ``migrate`` evacuates them to
  a host that is up.
- Service addresses (:meth:`move_address`, :meth:`address_holder`) are only recorded: the
  simulator configures no interface, route or ARP entry (a cloud would reprogram its virtual
  switch or floating IP; a lab that needs packets to follow uses ``service_address_mode =
  "local"``). A binding stays while its instance stops, crashes, resets or migrates, as a
  cloud port's does; a move to an instance of a down host raises ``HostDown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from vnfha.bridge._fanout import Fanout
from vnfha.bridge.drivers.driver import (
    DriverError,
    EventKind,
    HostDown,
    HostsDownFirst,
    InfraEvent,
    Instance,
    InstanceState,
    UnknownHost,
    UnknownInstance,
)
from vnfha.clock import Clock, SystemClock
from vnfha.net.address import ServiceAddress

__all__ = ["LaunchSpec", "SimDriver", "proc_state"]

log = logging.getLogger("vnfha.nfvi.sim")

_FAILED = "host failed"  # the detail of a failed host's HOST_DOWN


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """How to (re-)launch an instance's process: the same spec on every incarnation."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


class _Slot:
    """One instance: its inventory record, its spec and its current process."""

    def __init__(self, instance: Instance, spec: LaunchSpec) -> None:
        self.instance = instance
        self.spec = spec
        self.process: asyncio.subprocess.Process | None = None
        self.reaper: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    def set_state(self, state: InstanceState, host: str | None = None) -> None:
        self.instance = replace(self.instance, state=state,
                                host=self.instance.host if host is None else host)


def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc/<pid>/stat`` (R, S, T, Z, ...), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may contain spaces: the state follows the last ')'
    return stat.rsplit(")", 1)[1].split()[0]


class SimDriver:
    """Processes as VMs, labels as hosts (see the module docstring).

    ``clock`` times the waits for a process to die or stop (``kill_timeout_s``, polling every
    ``stop_poll_s``); ``hosts`` are known from the start (more are added by :meth:`launch`);
    ``max_queued_events`` bounds each :meth:`events` subscriber's backlog.
    """

    def __init__(self, *, clock: Clock | None = None, hosts: Iterable[str] = (),
                 log_dir: str | Path | None = None, kill_timeout_s: float = 5.0,
                 stop_poll_s: float = 0.001, max_queued_events: int = 10_000) -> None:
        self._clock: Clock = clock or SystemClock()
        self._hosts: set[str] = set(hosts)
        self._down: set[str] = set()
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._kill_timeout_s = kill_timeout_s
        self._stop_poll_s = stop_poll_s
        self._slots: dict[str, _Slot] = {}
        self._addresses: dict[str, str] = {}  # service address's IP -> instance
        self._events: Fanout[InfraEvent] = Fanout(
            max_queued=max_queued_events,
            lagged=lambda n: DriverError(f"sim events: subscriber fell {n} events behind",
                                         operation="events"))
        self._closed = False

    @property
    def name(self) -> str:
        """``"sim"``."""
        return "sim"

    # -- inventory --------------------------------------------------------------------------------

    async def list_instances(self) -> list[Instance]:
        """Every instance, sorted by name."""
        return [self._slots[n].instance for n in sorted(self._slots)]

    async def get_instance(self, name: str) -> Instance:
        """One instance; :class:`UnknownInstance` if there is none."""
        return self._slot(name, "get_instance").instance

    async def list_hosts(self) -> list[str]:
        """Every host label, sorted, including hosts that are down."""
        return sorted(self._hosts)

    def pid(self, name: str) -> int | None:
        """The pid of the instance's current process, None when it is not running."""
        process = self._slot(name, "pid").process
        return None if process is None or process.returncode is not None else process.pid

    def host_is_up(self, host: str) -> bool:
        """False for a host that :meth:`fail_host` took down (and no :meth:`restore_host`)."""
        if host not in self._hosts:
            raise UnknownHost(host, operation="host_is_up")
        return host not in self._down

    def add_host(self, host: str) -> None:
        """Make ``host`` known (up). Idempotent."""
        if not host:
            raise DriverError("a host label must not be empty", operation="add_host")
        self._hosts.add(host)

    def log_path(self, name: str) -> Path | None:
        """Where the instance's stdout and stderr go, None when they are discarded."""
        self._slot(name, "log_path")
        return None if self._log_dir is None else self._log_dir / f"{name}.log"

    # -- launching ------------------------------------------------------------------------------

    async def launch(self, name: str, *, group: str, member: str, host: str,
                     argv: Sequence[str], env: Mapping[str, str] | None = None,
                     cwd: str | None = None) -> Instance:
        """Create instance ``name`` for ``group``/``member`` on ``host`` (added if new) and start
        ``argv``; returns it RUNNING. :class:`DriverError` if the name is taken, a field is
        empty, the host is down or the program cannot be started."""
        self._check_open("launch", name)
        for label, value in (("name", name), ("group", group), ("member", member),
                             ("host", host)):
            if not value:
                raise DriverError(f"launch: {label} must not be empty", instance=name or None,
                                  operation="launch")
        if not argv:
            raise DriverError(f"launch {name!r}: argv must not be empty", instance=name,
                              operation="launch")
        if name in self._slots:
            raise DriverError(f"instance {name!r} already exists", instance=name,
                              operation="launch")
        self.add_host(host)
        self._check_host_up(host, name, "launch")
        slot = _Slot(Instance(name, group, member, host, InstanceState.STOPPED),
                     LaunchSpec(tuple(argv), dict(env or {}), cwd))
        self._slots[name] = slot
        try:
            async with slot.lock:
                await self._spawn(slot, "launched")
        except BaseException:
            del self._slots[name]
            raise
        return slot.instance

    async def _spawn(self, slot: _Slot, why: str) -> None:
        """Start the slot's spec (lock held); RUNNING and VM_STARTED once the process exists."""
        name = slot.instance.name
        env = {**os.environ, **slot.spec.env}
        out = self._open_log(slot, why)
        try:
            process = await asyncio.create_subprocess_exec(
                *slot.spec.argv, env=env, cwd=slot.spec.cwd, stdin=asyncio.subprocess.DEVNULL,
                # without a log: /dev/null, never the bridge's own stdout (an instance's output
                # would mix into it, and the pipe would stay open after the bridge exits)
                stdout=out if out is not None else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT if out is not None else
                asyncio.subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            raise DriverError(f"instance {name!r}: cannot start {slot.spec.argv[0]!r}: {e}",
                              instance=name, operation="start") from e
        finally:
            if out is not None:
                out.close()
        slot.process = process
        slot.set_state(InstanceState.RUNNING)
        slot.reaper = asyncio.create_task(self._reap(slot, process), name=f"sim-reap-{name}")
        log.info("sim: %s %s on %s (pid %d)", name, why, slot.instance.host, process.pid)
        self._publish(EventKind.VM_STARTED, slot, f"{why} (pid {process.pid})")

    def _open_log(self, slot: _Slot, why: str) -> IO[bytes] | None:
        if self._log_dir is None:
            return None
        self._log_dir.mkdir(parents=True, exist_ok=True)
        out = (self._log_dir / f"{slot.instance.name}.log").open("ab")
        out.write(f"--- vnfha sim: {slot.instance.name} {why} on {slot.instance.host}: "
                  f"{' '.join(slot.spec.argv)}\n".encode())
        out.flush()
        return out

    async def _reap(self, slot: _Slot, process: asyncio.subprocess.Process) -> None:
        """Wait for ``process``; if it is still the slot's and nobody killed it, it crashed."""
        code = await process.wait()
        if slot.process is not process:
            return  # the driver killed it on purpose and has moved on
        slot.process = None
        slot.set_state(InstanceState.CRASHED)
        log.warning("sim: %s (pid %d) exited on its own with status %d", slot.instance.name,
                    process.pid, code)
        self._publish(EventKind.VM_CRASHED, slot, f"pid {process.pid} exited with status {code}")

    async def _kill(self, slot: _Slot, operation: str) -> bool:
        """SIGKILL the slot's process group and wait until it is reaped (lock held). Returns
        whether there was a live process."""
        process, slot.process = slot.process, None
        if slot.reaper is not None:
            slot.reaper.cancel()
            slot.reaper = None
        if process is None or process.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            await self._clock.wait_for(process.wait(), self._kill_timeout_s)
        except TimeoutError as e:
            raise DriverError(f"instance {slot.instance.name!r}: pid {process.pid} did not die "
                              f"within {self._kill_timeout_s} s of SIGKILL",
                              instance=slot.instance.name, operation=operation) from e
        return True

    # -- the Driver actions ---------------------------------------------------------------------

    async def power_off(self, name: str) -> None:
        """SIGKILL; returns once reaped. Idempotent (an instance that is not running is left as
        it is, STOPPED or CRASHED)."""
        slot = self._slot(name, "power_off")
        async with slot.lock:
            if await self._kill(slot, "power_off"):
                slot.set_state(InstanceState.STOPPED)
                self._publish(EventKind.VM_STOPPED, slot, "powered off")

    async def pause(self, name: str) -> None:
        """SIGSTOP the process group; returns once ``/proc`` shows the process stopped.
        Idempotent; :class:`DriverError` for an instance that is not running."""
        slot = self._slot(name, "pause")
        async with slot.lock:
            state = slot.instance.state
            if state is InstanceState.PAUSED:
                return
            process = self._running(slot, "pause")
            self._signal(slot, process, signal.SIGSTOP, "pause")
            await self._wait_stopped(slot, process)
            slot.set_state(InstanceState.PAUSED)
            self._publish(EventKind.VM_PAUSED, slot, f"SIGSTOP to pid {process.pid}")

    async def resume(self, name: str) -> None:
        """SIGCONT the process group. Idempotent for a RUNNING instance; :class:`DriverError`
        for one that is STOPPED or CRASHED."""
        slot = self._slot(name, "resume")
        async with slot.lock:
            if slot.instance.state is InstanceState.RUNNING:
                return
            process = self._running(slot, "resume")
            self._signal(slot, process, signal.SIGCONT, "resume")
            slot.set_state(InstanceState.RUNNING)
            self._publish(EventKind.VM_RESUMED, slot, f"SIGCONT to pid {process.pid}")

    async def start(self, name: str) -> None:
        """Launch a STOPPED or CRASHED instance again on its host. Idempotent for RUNNING;
        :class:`DriverError` for PAUSED (resume it) or when its host is down."""
        slot = self._slot(name, "start")
        async with slot.lock:
            state = slot.instance.state
            if state is InstanceState.RUNNING:
                return
            if state is InstanceState.PAUSED:
                raise DriverError(f"instance {name!r} is paused: resume it, not start it",
                                  instance=name, operation="start")
            self._check_host_up(slot.instance.host, name, "start")
            await self._spawn(slot, "started")

    async def reset(self, name: str) -> None:
        """Kill whatever runs (even a paused process) and launch the same spec again; returns
        once RUNNING with a new pid. :class:`DriverError` when its host is down."""
        slot = self._slot(name, "reset")
        async with slot.lock:
            self._check_host_up(slot.instance.host, name, "reset")
            if await self._kill(slot, "reset"):
                slot.set_state(InstanceState.STOPPED)
                self._publish(EventKind.VM_STOPPED, slot, "reset")
            await self._spawn(slot, "reset")

    async def migrate(self, name: str, host: str) -> None:
        """Kill, relabel to ``host``, launch again; returns once RUNNING there. Migrating to the
        host it is on restarts it in place. :class:`UnknownHost`, or :class:`DriverError` when
        ``host`` is down."""
        slot = self._slot(name, "migrate")
        if host not in self._hosts:
            raise UnknownHost(host, operation="migrate")
        async with slot.lock:
            self._check_host_up(host, name, "migrate")
            source = slot.instance.host
            await self._kill(slot, "migrate")
            slot.set_state(InstanceState.STOPPED, host=host)
            self._publish(EventKind.VM_MIGRATED, slot, f"from {source} to {host}")
            await self._spawn(slot, f"migrated from {source}")

    def events(self) -> AsyncIterator[InfraEvent]:
        """A ``HOST_DOWN`` for each host down now, then every event from now on (bounded
        backlog per subscriber), until :meth:`close`."""
        live = self._events.subscribe()
        return HostsDownFirst({} if self._closed else dict.fromkeys(self._down, _FAILED), live)

    async def close(self) -> None:
        """Kill every process this driver launched (by process group, waiting for each) and end
        every events iterator. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors: list[DriverError] = []
        for slot in self._slots.values():
            try:
                if await self._kill(slot, "close"):
                    slot.set_state(InstanceState.STOPPED)
            except DriverError as e:
                errors.append(e)
        self._events.close()
        if errors:
            raise errors[0]

    # -- service addresses (AddressMover) --------------------------------------------------------

    async def move_address(self, group: str, address: ServiceAddress, instance: str) -> None:
        """Record that ``address`` (by its IP) is bound to ``instance`` from now on (see the
        module docstring). Idempotent. :class:`UnknownInstance`; :class:`DriverError` if the
        instance is not ``group``'s; :class:`HostDown` if its host is down."""
        self._check_open("move_address", instance)
        slot = self._slot(instance, "move_address")
        if slot.instance.group != group:
            raise DriverError(f"move_address {address}: instance {instance!r} runs group "
                              f"{slot.instance.group!r}, not {group!r}", instance=instance,
                              operation="move_address")
        self._check_host_up(slot.instance.host, instance, "move_address")
        before = self._addresses.get(str(address.ip))
        self._addresses[str(address.ip)] = instance
        if before != instance:
            log.info("sim: address %s bound to %s (was %s)", address, instance, before or "none")

    async def address_holder(self, address: ServiceAddress) -> str | None:
        """The instance ``address`` (by its IP) is bound to, None if none."""
        return self._addresses.get(str(address.ip))

    # -- fault injection (tests and the demo) ---------------------------------------------------

    async def fail_host(self, host: str) -> None:
        """Take ``host`` down: publish ``HOST_DOWN``, then kill each of its instances (CRASHED,
        ``VM_CRASHED``). It refuses launches until :meth:`restore_host`. Failing a host that is
        down does nothing (one outage, one ``HOST_DOWN``)."""
        if host not in self._hosts:
            raise UnknownHost(host, operation="fail_host")
        if host in self._down:
            return
        self._down.add(host)
        self._events.publish(InfraEvent(EventKind.HOST_DOWN, host=host, detail=_FAILED))
        for slot in [s for s in self._slots.values() if s.instance.host == host]:
            async with slot.lock:
                if await self._kill(slot, "fail_host"):
                    slot.set_state(InstanceState.CRASHED)
                    self._publish(EventKind.VM_CRASHED, slot, f"host {host} down")

    def restore_host(self, host: str) -> None:
        """Bring ``host`` back up (``HOST_UP``); its instances stay down until started."""
        if host not in self._hosts:
            raise UnknownHost(host, operation="restore_host")
        if host in self._down:
            self._down.discard(host)
            self._events.publish(InfraEvent(EventKind.HOST_UP, host=host, detail="restored"))

    def plan_maintenance(self, host: str, deadline_unix_s: float) -> None:
        """Announce that ``host`` goes down for maintenance at ``deadline_unix_s`` (wall clock):
        publishes ``MAINTENANCE_PLANNED``, as a hypervisor that schedules maintenance would.
        Nothing is killed; call :meth:`fail_host` at the deadline to play it out. (An operator
        announces one for any driver through the bridge: ``Operations/PlanMaintenance``; both
        reach members through the bridge's one event routing.)"""
        if host not in self._hosts:
            raise UnknownHost(host, operation="plan_maintenance")
        self._events.publish(InfraEvent(EventKind.MAINTENANCE_PLANNED, host=host,
                                        detail="planned maintenance",
                                        deadline_unix_s=deadline_unix_s))

    # -- helpers --------------------------------------------------------------------------------

    def _slot(self, name: str, operation: str) -> _Slot:
        slot = self._slots.get(name)
        if slot is None:
            raise UnknownInstance(name, operation=operation)
        return slot

    def _check_open(self, operation: str, name: str) -> None:
        if self._closed:
            raise DriverError(f"{operation} {name!r}: the sim driver is closed", instance=name,
                              operation=operation)

    def _check_host_up(self, host: str, name: str, operation: str) -> None:
        if host in self._down:
            raise HostDown(host, "failed by fail_host, not restored", instance=name,
                           operation=operation)

    def _running(self, slot: _Slot, operation: str) -> asyncio.subprocess.Process:
        process = slot.process
        if process is None or process.returncode is not None:
            raise DriverError(f"{operation} {slot.instance.name!r}: it is "
                              f"{slot.instance.state}, not running", instance=slot.instance.name,
                              operation=operation)
        return process

    def _signal(self, slot: _Slot, process: asyncio.subprocess.Process, sig: signal.Signals,
                operation: str) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError as e:
            raise DriverError(f"{operation} {slot.instance.name!r}: pid {process.pid} is gone",
                              instance=slot.instance.name, operation=operation) from e

    async def _wait_stopped(self, slot: _Slot, process: asyncio.subprocess.Process) -> None:
        """Poll ``/proc`` until the process is in stopped state (T), within kill_timeout_s."""
        async def stopped() -> None:
            while proc_state(process.pid) not in ("T", "t", "Z", None):
                await self._clock.sleep(self._stop_poll_s)
        try:
            await self._clock.wait_for(stopped(), self._kill_timeout_s)
        except TimeoutError as e:
            raise DriverError(f"pause {slot.instance.name!r}: pid {process.pid} not stopped "
                              f"within {self._kill_timeout_s} s of SIGSTOP",
                              instance=slot.instance.name, operation="pause") from e

    def _publish(self, kind: EventKind, slot: _Slot, detail: str) -> None:
        self._events.publish(InfraEvent(kind, instance=slot.instance.name,
                                        host=slot.instance.host, detail=detail))
