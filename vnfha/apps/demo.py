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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from vnfha.admin import GroupStatus
from vnfha.apps.demo_run import (
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
)
from vnfha.apps.examples.udp_counter import client as counter_client
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.clock import Clock, SystemClock
from vnfha.errors import StoreError
from vnfha.store.etcd import EtcdStore

__all__ = ["KILL_MODES", "DemoError", "DemoOptions", "DemoReport", "Entry", "main", "run_demo"]


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


async def run_demo(*, out: TextIO, kill: str = "sigkill", options: DemoOptions | None = None,
                   clock: Clock | None = None) -> DemoReport:
    """Run the demo (see the module docstring), printing its steps on ``out``; the report says
    what happened. Raises :class:`DemoError` when a step cannot be done (after cleaning up)."""
    if kill not in KILL_MODES:
        raise DemoError("start", f"kill={kill!r} is not one of {', '.join(KILL_MODES)}")
    demo = DemoRun(out, kill, options or DemoOptions(), clock or SystemClock())
    o = demo.o
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
        port = free_udp_port()
        await demo.launch_pair(etcd, port, root / "vms")
        for follow in (demo.follow_logs, demo.follow_bridge):
            stack.push_async_callback(_cancel, asyncio.create_task(follow()))
        return await _play(demo, port)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns or raises


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its result or error is dropped)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _play(demo: DemoRun, port: int) -> DemoReport:
    """Steps 4 to 7: the roles, the traffic, the fault, the takeover and the verdict."""
    o = demo.o
    active, standby = await demo.wait_until(
        "wait for an active with its standby in sync", o.pair_ready_s,
        lambda: pair_roles(demo.events, demo.members), failed=demo.member_exited)
    before = await demo.status()
    demo.say(f"roles: {active} is ACTIVE at epoch {before.epoch}, {standby} is its STANDBY, "
             "in sync")
    await demo.show_roles(before)
    options = counter_client.ClientOptions(
        port=port, rate=o.rate, sessions=o.sessions, retry_after_s=o.client_retry_s,
        timeout_s=o.client_give_up_s,
        duration_s=o.traffic_before_fault_s + o.traffic_after_fault_s, progress_s=None,
        outage_threshold_s=o.outage_threshold_s, session_prefix="demo")
    traffic = asyncio.create_task(counter_client.run_client(options), name="demo-client")
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


def _finish(demo: DemoRun, *, before: GroupStatus, takeover: MemberEvent,
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
