"""The udp_counter pair across hosts: the stage of ``vnfha demo --hosts`` and ``vnfha bench
hosts``, built from a :class:`~vnfha.testing.lab.HostLab` (root only).

The hosts (network namespaces on one bridge, see ``docs/lab.md``), each with its own address in
198.51.100.0/24:

==========  ==================================================================================
``etcd``    a one-member etcd, ``198.51.100.10:2379``
``nfvi``    the NFVI bridge over the sim driver, ``198.51.100.11:50070``: the demo's (or
            bench's) own event loop runs here, on a thread that entered this host's network
            namespace (:func:`run_on_host`), so the bridge, the sim driver and the etcd client
            are the same in-process objects as in the loopback demo
``host_a``  member ``a``; its replication endpoint on ``198.51.100.12``
``host_b``  member ``b``; ``198.51.100.13``
``client``  the udp_counter client, a process of its own, sending to the service address
==========  ==================================================================================

The members serve :data:`SERVICE_ADDRESS` (``198.51.100.100/24``, port :data:`SERVICE_PORT`):
vnfha adds and announces it on the active's host before ``on_active`` and removes it when the
role ends. The client has no other way to the pair.

How the bridge fences a member on another host: the sim driver launches each member as
``ip netns exec <its host> python -m ...vnf``; ``ip netns exec`` execs in place, so the driver's
pid is the member's (pids are global across network namespaces), and SIGSTOP, SIGKILL and the
fence's power-off reach it as on one host. The bridge stands for a hypervisor that reaches its
VMs whatever their network does: a partition of a member's host does not stop its fence.

Guarantees:

- :func:`open_stage` removes the whole lab when it ends, whatever happened: every process in
  the hosts (members, client, etcd, anything they started) is killed, every namespace deleted;
  a lab whose owner was killed is swept by the next one.
- :func:`run_on_host` runs a coroutine to completion in a host's network namespace; Ctrl-C or
  SIGTERM in the main thread cancels it, waits (bounded) for its cleanup and raises
  KeyboardInterrupt.
- :meth:`Stage.traffic` runs the client on its host and returns its JSON report, or raises
  :class:`~vnfha.apps.demo_run.DemoError` with the end of its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, TypeVar

from vnfha.apps.demo_run import DemoError, Site
from vnfha.apps.examples.udp_counter.client import PROGRESS_S, ClientOptions
from vnfha.testing.lab import HostLab, LabEtcd, LabHost, LabProcess, unavailable
from vnfha.testing.lab_host import in_namespace

__all__ = ["BRIDGE_PORT", "CLIENT_MODULE", "LAB_HOSTS", "SERVICE_ADDRESS", "SERVICE_PORT",
           "Stage", "client_report", "open_stage", "placement", "run_on_host", "unavailable"]

LAB_HOSTS = ("etcd", "nfvi", "host_a", "host_b", "client")
"""The lab's hosts, in order (so ``198.51.100.10`` to ``.14``)."""

SERVICE_ADDRESS = "198.51.100.100/24"
"""The address that follows the active (``Config.service_addresses``)."""

SERVICE_PORT = 5300
BRIDGE_PORT = 50070

CLIENT_MODULE = "vnfha.apps.examples.udp_counter.client"

CANCEL_WAIT_S = 30.0
"""After Ctrl-C: how long :func:`run_on_host` waits for the cancelled run to clean up."""

CLIENT_MARGIN_S = 15.0
"""The client may run this long past its traffic and its give-up time (a start on a busy box)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stage:
    """A lab with its etcd running (see the module docstring); the demo's
    :class:`~vnfha.apps.demo_run.Partitioner` too."""

    lab: HostLab
    etcd: LabEtcd

    @property
    def nfvi(self) -> LabHost:
        """Where the bridge (and the run's event loop) lives."""
        return self.lab.host("nfvi")

    @property
    def client(self) -> LabHost:
        return self.lab.host("client")

    @property
    def service_ip(self) -> str:
        """The service address without its prefix: where the client sends."""
        return SERVICE_ADDRESS.split("/", 1)[0]

    @property
    def bridge_listen(self) -> str:
        return f"{self.nfvi.ipv4}:{BRIDGE_PORT}"

    def member_host(self, member: str) -> LabHost:
        """The host of member ``a`` or ``b``."""
        return self.lab.host(f"host_{member}")

    def sites(self) -> dict[str, Site]:
        """Each member on its host, replicating over the host's address, serving
        :data:`SERVICE_ADDRESS`."""
        sites = {}
        for member in ("a", "b"):
            host = self.member_host(member)
            sites[member] = Site(host.name, prefix=host.prefix,
                                 env={"VNFHA_LISTEN": f"{host.ipv4}:0"},
                                 serve=("--service-address", SERVICE_ADDRESS),
                                 address=host.ipv4)
        return sites

    def cut(self, member: str) -> str:
        """Partition the member's host from every other host (both ways)."""
        host = self.member_host(member)
        self.lab.partition(host)
        return (f"{host.name} ({host.ipv4}), the active {member}'s host, cut off from every "
                "other host (IPv4 and IPv6 both ways; ARP still passes)")

    def heal(self, member: str) -> None:
        self.lab.heal(self.member_host(member))

    def clear_service_address(self) -> None:
        """Remove the service address from both members' hosts: a member killed while
        active leaves it on its host until it starts again (the next run's members are new
        ones, in a new group)."""
        for member in ("a", "b"):
            self.member_host(member).run(["ip", "addr", "del", SERVICE_ADDRESS, "dev", "eth0"],
                                         check=False)

    def start_client(self, options: ClientOptions) -> LabProcess:
        """The udp_counter client on its host, with ``options`` (progress lines on: the first
        says it sends, the JSON report follows them)."""
        argv = replace(options, progress_s=PROGRESS_S).argv()
        return self.client.python("-m", CLIENT_MODULE, *argv, name="client")

    async def traffic(self, options: ClientOptions, sending: Callable[[], None],
                      started: Callable[[int], None] = lambda pid: None) -> dict[str, Any]:
        """Run the client on its host until it is done; its report (``ClientReport.as_json``).
        ``started(pid)`` is told its pid, ``sending()`` is called once it sends. Cancelled:
        the client is killed."""
        process = self.start_client(options)
        started(process.pid)
        limit = options.duration_s + options.timeout_s + CLIENT_MARGIN_S
        try:
            await asyncio.to_thread(process.wait_output, r"^sending to ", limit)
            sending()
            await asyncio.to_thread(_wait, process, limit)
        finally:
            process.kill()  # done by now, or cancelled or timed out: reaped either way
        return client_report(process.output())


def _wait(process: LabProcess, timeout_s: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):  # the report says what is missing
        process.wait(timeout_s)


def client_report(output: str) -> dict[str, Any]:
    """The JSON report at the end of the client's output; DemoError quoting the output when
    there is none."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line == "{"), None)
    if start is not None:
        with contextlib.suppress(ValueError):
            report = json.loads("\n".join(lines[start:]))
            if isinstance(report, dict):
                return report
    raise DemoError("run the client", f"no report in its output: {output[-2000:]!r}")


@contextlib.contextmanager
def open_stage(name_prefix: str) -> Iterator[Stage]:
    """Build the lab (:data:`LAB_HOSTS`) and start its etcd; remove everything at the end.
    DemoError when a lab cannot be built here (not root, a tool missing)."""
    reason = unavailable()
    if reason is not None:
        raise DemoError("build the lab", reason)
    with HostLab(LAB_HOSTS, name_prefix=name_prefix) as lab:
        etcd = lab.etcd([lab.host("etcd")])
        yield Stage(lab, etcd)


class _Runner:
    """A coroutine on an event loop of its own; cancellable from another thread."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self.main = main
        self.done = threading.Event()
        self.cancelled = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None

    def run(self) -> Any:
        try:
            return asyncio.run(self._run())
        finally:
            self.done.set()

    async def _run(self) -> Any:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        if self.cancelled:
            raise asyncio.CancelledError
        return await self.main()

    def cancel(self) -> None:
        self.cancelled = True
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to cancel
                loop.call_soon_threadsafe(task.cancel)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_on_host(host: LabHost, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``main()`` run to completion on a new event loop, on a thread that entered ``host``'s
    network namespace: every socket it opens (the bridge's, etcd clients') and every process it
    starts is on that host. Called from the main thread, Ctrl-C and SIGTERM cancel it; the
    cleanup it runs is waited for (up to :data:`CANCEL_WAIT_S`) before KeyboardInterrupt is
    raised."""
    runner = _Runner(main)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        result: T = in_namespace(host.netns, runner.run)
        return result
    except KeyboardInterrupt:
        runner.cancel()
        runner.done.wait(CANCEL_WAIT_S)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def placement(stage: Stage | None) -> Mapping[str, Any]:
    """The keyword arguments of :class:`~vnfha.apps.demo_run.DemoRun` that put the pair on
    ``stage`` (none: this machine)."""
    if stage is None:
        return {}
    return {"sites": stage.sites(), "service_host": stage.service_ip, "partitioner": stage}
