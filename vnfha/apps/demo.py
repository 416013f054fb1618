"""``vnfha demo``: a failover on this machine, from nothing, in about five seconds.

It starts a one-member etcd (data in a temporary directory), an NFVI bridge over the simulator
driver (in this process), and the ``examples/udp_counter`` pair as two simulated VMs on hosts
``host-a`` and ``host-b``; it waits for one ACTIVE member with its STANDBY in sync, prints the
roles as ``vnfha status`` does, sends counter traffic over UDP, injects the fault, and prints
the failover as it happens and then as a timeline: the fault, the standby's promotion and the
epoch it took, what the bridge did, and what the client saw (requests, longest outage,
acknowledged increments lost)::

    python -m vnfha.apps.demo                      # SIGKILL of the active (default)
    python -m vnfha.apps.demo --kill sigstop       # freeze it: the standby has the bridge fence it
    python -m vnfha.apps.demo --kill switchover    # graceful handover through etcd
    python -m vnfha.apps.demo --json               # the report as JSON on stdout, steps on stderr
    python -m vnfha.apps.demo --hosts              # across hosts, through a service address (root)
    python -m vnfha.apps.demo --hosts --kill partition   # cut the active's host off

The steps, each a line with the seconds since the start:

1. a one-member etcd on free ports, its data in a temporary directory;
2. the bridge (:class:`~vnfha.bridge.server.BridgeServer` over a
   :class:`~vnfha.bridge.drivers.sim.SimDriver`) on 127.0.0.1, port chosen by the system;
3. members ``a`` and ``b`` launched as VMs ``vm-a`` / ``vm-b``, each told the bridge's address
   in ``VNFHA_BRIDGE_ENDPOINT`` (so each arms the hypervisor watchdog while active, and a
   standby can have a silent active fenced);
4. the roles once one member is ACTIVE and counts the other in sync, as ``vnfha status``
   prints them, with each member's VM;
5. the example's client in this process: ``rate`` requests/s over a few sessions, every reply
   checked against the last count acknowledged to it;
6. the fault (:meth:`vnfha.apps.demo_run.DemoRun.inject`); for ``sigstop``, once the standby
   took over, the frozen VM is relaunched as a repair would, and rejoins as a standby;
7. the takeover as the members, the bridge and etcd report it, then the timeline from the
   fault on (with the client's last reply from the old epoch and first from the new one), the
   epochs before and after, and the client's counts and outages.

``--hosts`` (root) plays the same story across the hosts of a lab
(:mod:`vnfha.apps.demo_hosts`): etcd, the bridge, each member and the client on a host of its
own, the pair behind the service address ``198.51.100.100/24`` that follows the active, the
client sending to that address only. It adds the fault ``partition`` (the active's host cut off
from every other host; the standby has the bridge fence it).

Guarantees:

- Every line carries the seconds since the demo started (monotonic); member events are placed
  on the same axis from the times they print.
- Everything it starts is stopped in ``finally`` (also on Ctrl-C and cancellation): the bridge,
  every simulated VM (killed by process group, by the sim driver), the etcd member (by pid), the
  temporary directory. :attr:`DemoReport.pids` lists every process it started, for checking.
- :attr:`DemoReport.ok` (exit status 0) only when another member took the active role at a
  higher epoch, the client saw no acknowledged increment lost, and no reply came from the
  deposed active after its successor's first one, or from another address than the service's.
- Every wait has a deadline from :class:`DemoOptions`; a step that misses it ends the demo with
  :class:`DemoError` naming the step, after the cleanup.

It needs no source checkout: the pair is the udp_counter example shipped in the package
(:mod:`vnfha.apps.examples.udp_counter`; a member is run as ``python -m``). The steps and the
state of a run are :mod:`vnfha.apps.demo_run`; what is printed is decided in the pure
:mod:`vnfha.apps.demo_timeline`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from vnfha.admin import GroupStatus
from vnfha.apps import demo_hosts
from vnfha.apps.demo_hosts import Stage
from vnfha.apps.demo_run import (
    ALL_KILL_MODES,
    KILL_MODES,
    DemoError,
    DemoOptions,
    DemoRun,
    free_udp_port,
)
from vnfha.apps.demo_timeline import (
    Entry,
    MemberEvent,
    client_summary,
    find_takeover,
    format_client,
    format_timeline,
    judge,
    pair_roles,
    reply_epochs,
)
from vnfha.apps.examples.udp_counter import client as counter_client
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.clock import Clock, SystemClock
from vnfha.errors import StoreError, VnfhaError
from vnfha.store.etcd import EtcdStore

__all__ = ["ALL_KILL_MODES", "KILL_MODES", "DemoError", "DemoOptions", "DemoReport", "Entry",
           "Traffic", "main", "play", "run_demo"]

Traffic = Callable[[counter_client.ClientOptions, Callable[[], None]],
                   Awaitable[Mapping[str, Any]]]
"""``traffic(options, sending)`` runs the client with ``options`` and returns its report
(``ClientReport.as_json()``), calling ``sending()`` once the client sends (a client started as
a program takes a moment to)."""


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
    first_reply_ms: float | None
    """From the fault to the client's first reply from the new active's epoch (None: none)."""
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


async def run_demo(*, out: TextIO, kill: str = "sigkill", options: DemoOptions | None = None,
                   clock: Clock | None = None, stage: Stage | None = None) -> DemoReport:
    """Run the demo (see the module docstring), printing its steps on ``out``; the report says
    what happened. Raises :class:`DemoError` when a step cannot be done (after cleaning up).

    ``stage``: play it across the lab's hosts (:mod:`vnfha.apps.demo_hosts`); then this must
    run on the stage's ``nfvi`` host (:func:`vnfha.apps.demo_hosts.run_on_host`)."""
    modes = KILL_MODES if stage is None else ALL_KILL_MODES
    if kill not in modes:
        raise DemoError("start", f"kill={kill!r} is not one of {', '.join(modes)}"
                        + ("" if stage else " (partition needs --hosts)"))
    demo = DemoRun(out, kill, options or DemoOptions(), clock or SystemClock(),
                   **demo_hosts.placement(stage))
    o = demo.o
    root = demo.root = Path(tempfile.mkdtemp(prefix="vnfha-demo-"))
    where = "" if stage is None else " across hosts, through a service address"
    demo.say(f"vnfha demo: a 2N pair of examples/udp_counter{where}, then {kill} of its active")
    async with contextlib.AsyncExitStack() as stack:
        stack.push(demo.remove_files)
        if stage is None:
            etcd = demo.start_etcd(root)
            stack.callback(etcd.stop)
            endpoints, listen, port = etcd.endpoints, "127.0.0.1:0", free_udp_port()
        else:
            endpoints, listen, port = (stage.etcd.endpoints, stage.bridge_listen,
                                       demo_hosts.SERVICE_PORT)
            pids = [m.pid for m in stage.etcd.members if m.pid is not None]
            demo.pids.extend(pids)
            demo.say(f"lab {stage.lab.name}: hosts " + ", ".join(
                f"{h.name} {h.ipv4}" for h in stage.lab.hosts))
            demo.say(f"etcd serving on {endpoints[0]} (1 member on host etcd, pid "
                     f"{', '.join(map(str, pids))})")
        demo.store = EtcdStore.connect(endpoints, request_timeout_s=o.etcd_request_s,
                                       connect_timeout_s=o.etcd_request_s)
        stack.push_async_callback(demo.store.close)
        demo.driver = SimDriver(clock=demo.clock, log_dir=root / "vms")
        stack.push_async_callback(demo.driver.close)
        demo.bridge = await stack.enter_async_context(
            BridgeServer(demo.driver, listen=listen, clock=demo.clock))
        demo.say(f"NFVI bridge (sim driver) serving on {demo.bridge.address}")
        await demo.launch_pair(endpoints, port, root / "vms")
        for follow in (demo.follow_logs, demo.follow_bridge):
            stack.push_async_callback(_cancel, asyncio.create_task(follow()))
        traffic: Traffic = _local_traffic if stage is None else (
            lambda options, sending: stage.traffic(options, sending, demo.pids.append))
        return await play(demo, port, traffic)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns or raises


async def _local_traffic(options: counter_client.ClientOptions,
                         sending: Callable[[], None]) -> Mapping[str, Any]:
    sending()  # in this process: it sends as soon as it runs
    return (await counter_client.run_client(options)).as_json()


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its result or error is dropped)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def play(demo: DemoRun, port: int, traffic: Traffic) -> DemoReport:
    """Steps 4 to 7, once the pair is launched: the roles, the traffic (``traffic`` runs the
    client), the fault, the takeover and the verdict."""
    o = demo.o
    active, standby = await demo.wait_until(
        "wait for an active with its standby in sync", o.pair_ready_s,
        lambda: pair_roles(demo.events, demo.members), failed=demo.member_exited)
    before = await demo.status()
    demo.say(f"roles: {active} is ACTIVE at epoch {before.epoch}, {standby} is its STANDBY, "
             "in sync")
    await demo.show_roles(before)
    options = counter_client.ClientOptions(
        host=demo.service_host, port=port, rate=o.rate, sessions=o.sessions,
        retry_after_s=o.client_retry_s, timeout_s=o.client_give_up_s,
        duration_s=o.traffic_before_fault_s + o.traffic_after_fault_s, progress_s=None,
        outage_threshold_s=o.outage_threshold_s, session_prefix="demo")
    sending = asyncio.Event()
    task = asyncio.create_task(_report(traffic(options, sending.set)), name="demo-client")
    try:
        await demo.wait_until("start the client", o.pair_ready_s,
                              lambda: True if sending.is_set() else None,
                              failed=lambda: _failed(task))
        demo.say(f"{o.rate:g} requests/s over {o.sessions} sessions to "
                 f"{demo.service_host}:{port}, each reply checked against the last "
                 "acknowledged count", "client")
        await demo.clock.sleep(o.traffic_before_fault_s)
        demo.check_active(active, before.epoch)
        fault_at = await demo.inject(active)
        takeover: MemberEvent = await demo.wait_until(
            "wait for the standby to take over", o.failover_s,
            lambda: find_takeover(demo.events, active, before.epoch))
        if demo.kill in ("sigstop", "partition"):  # fenced by now, or still frozen or cut off
            await demo.repair(active)
        serving: MemberEvent = await demo.wait_until(
            "wait for the new active to serve", o.failover_s,
            lambda: next((e for e in demo.events if e.kind == "serving"
                          and e.member == takeover.member and e.t >= takeover.t), None))
        after = await demo.status()
        demo.say(f"the active key is held by {after.active} at epoch {after.epoch} "
                 f"(was {before.active} at epoch {before.epoch})", "etcd")
        report = await task
    finally:
        await _cancel(task)
    demo.poll_logs()
    new_epoch = int(takeover.fields.get("epoch", 0))
    summary = client_summary(report, demo.wall_start, fault_at, serving.t, new_epoch=new_epoch)
    for t, text in reply_epochs(report, demo.wall_start, before.epoch, new_epoch):
        demo.say(text, "client", t=t)
    demo.say(f"done: {summary['answered']} of {summary['sent']} requests answered, "
             f"{summary['lost_increments']} acknowledged increments lost", "client")
    with contextlib.suppress(StoreError):
        await demo.show_roles(await demo.status())
    return _finish(demo, before=before, takeover=takeover, serving=serving, fault_at=fault_at,
                   summary=summary)


async def _report(traffic: Awaitable[Mapping[str, Any]]) -> Mapping[str, Any]:
    return await traffic


def _failed(task: asyncio.Task[Any]) -> str | None:
    """Why the client ended before it sent (its error), or None while it runs."""
    if not task.done():
        return None
    return f"the client ended: {task.exception()!r}" if not task.cancelled() else "cancelled"


def _finish(demo: DemoRun, *, before: GroupStatus, takeover: MemberEvent,
            serving: MemberEvent, fault_at: float, summary: dict[str, Any]) -> DemoReport:
    """Print the timeline and the verdict; build the report."""
    problem = judge(takeover, before.epoch, summary["lost_increments"],
                    stale_replies=summary["stale_replies"],
                    replies_from_elsewhere=summary["replies_from_elsewhere"])
    demo.keep_files = demo.keep_files or bool(problem)
    out = demo.out
    print(f"\nfailover timeline ({demo.kill}; milliseconds after the fault):", file=out)
    for line in format_timeline(demo.entries, fault_at):
        print(line, file=out)
    takeover_ms = round((takeover.t - fault_at) * 1000, 1)
    serving_ms = round((serving.t - fault_at) * 1000, 1)
    first_reply_ms = summary["first_reply_ms"]
    print(f"\nactive {before.active} (epoch {before.epoch}) -> {takeover.member} (epoch "
          f"{takeover.fields.get('epoch')}): took over {takeover_ms} ms after the fault, "
          f"serving at {serving_ms} ms" + ("" if first_reply_ms is None else
                                           f", first reply to the client at {first_reply_ms} ms"),
          file=out)
    for line in format_client(summary, demo.o.outage_threshold_s):
        print(line, file=out)
    print("RESULT: " + ("OK: the standby took over and no acknowledged increment was lost"
                        if not problem else f"FAILED: {problem}"), file=out, flush=True)
    return DemoReport(
        kill=demo.kill, ok=not problem, problem=problem, group=demo.o.group,
        active_before=before.active or "", epoch_before=before.epoch,
        active_after=takeover.member, epoch_after=int(takeover.fields.get("epoch", 0)),
        fault_at_s=round(fault_at, 4), takeover_ms=takeover_ms, serving_ms=serving_ms,
        first_reply_ms=first_reply_ms,
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
    p.add_argument("--kill", choices=ALL_KILL_MODES, default="sigkill",
                   help="sigkill: crash the active; sigstop: freeze it (the standby has the "
                   "bridge fence it); switchover: graceful handover; partition (--hosts only): "
                   "cut the active's host off (default: %(default)s)")
    p.add_argument("--hosts", action="store_true",
                   help="run etcd, the bridge, each member and the client on hosts of their own "
                   "(network namespaces of a lab; needs root), the pair behind the service "
                   f"address {demo_hosts.SERVICE_ADDRESS} that follows the active")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON on stdout (the steps go to stderr)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the temporary directory with etcd's and the members' logs (it is "
                   "kept anyway when the demo fails)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when the failover happened and nothing acknowledged was lost, 1
    otherwise, 2 for bad options (``--hosts`` without root among them), 130 on Ctrl-C (after
    cleaning up)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.kill == "partition" and not args.hosts:
        parser.error("--kill partition needs --hosts: the members share one host otherwise")
    if args.hosts and (reason := demo_hosts.unavailable()) is not None:
        parser.error(f"--hosts: {reason}")
    out = sys.stderr if args.json else sys.stdout
    # the bridge's and the sim's own warnings repeat what the demo prints: errors only
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr,
                        format="%(name)s %(levelname)s: %(message)s")
    options = DemoOptions(keep_logs=args.keep_logs)

    async def run(stage: Stage | None = None) -> DemoReport:
        return await run_demo(out=out, kill=args.kill, options=options, stage=stage)

    async def run_here() -> DemoReport:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run()

    try:
        if args.hosts:
            with demo_hosts.open_stage("vdemo") as stage:
                report = demo_hosts.run_on_host(stage.nfvi, lambda: run(stage))
        else:
            report = asyncio.run(run_here())
    except VnfhaError as e:  # DemoError, or the lab's (LabError, EtcdLaunchError)
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
