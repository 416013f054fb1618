"""The hang path with an NFVI bridge, two ways, over N trials each, against the 600 ms budget
(DESIGN.md section 4): the fence path (fault -> suspicion -> fence -> takeover) and the
fence-free NFVI-report path (issue 17: the hang, then the host fails -> VM_CRASHED -> takeover).

Each trial: a fresh group on a shared 3-member etcd; the active writes ``Ack.ONE`` checkpoints
and prints each acknowledged index; the standby runs in this process with ``bridge_endpoint``
set (its "VM" is a sleeper the sim driver knows, so the bridge accepts its calls), on a sim
host other than the active's. Measured to the standby's ACTIVE role change and to its first
accepted checkpoint write; checked: every index the active saw acknowledged is in the new
active's state, and the epoch grew.

- ``fence`` (the top-level figures): the active is a process the sim driver launched (so the
  bridge can fence it). The fault is SIGSTOP of the active (a hang: nothing refuses a
  connection); t=0 is the SIGSTOP. Also checked: the frozen active was fenced (stopped) by the
  bridge, not replaced on the lease.
- ``nfvi-report`` (under ``"nfvi_report"``): the active's "VM" is a sleeper the sim driver
  launched on a host of its own, and the active member a process of its own, SIGSTOPped; 100 ms
  later (below the 300 ms suspicion threshold) the sim fails the active's host
  (``SimDriver.fail_host``: HOST_DOWN, then VM_CRASHED for the sleeper, in the epoch the bridge
  last saw the active arm or kick its watchdog in). t=0 is the call of ``fail_host``. The
  frozen member stands for a member on a dead host: nothing refuses a connection, so only the
  report can prove it gone before the suspicion (were the sim to kill the member's process, the
  standby's refused reconnect would race the report). Also checked: the new active's failover
  history record gives cause ``nfvi-event`` and the standby asked for no fence.

- ``qemu`` (under ``"qemu"``; only when asked for, it needs QEMU and libvirtd): the fence path
  on a real hypervisor. The bridge runs the libvirt driver over two private libvirt daemons
  (:mod:`vnfha.testing.libvirtd`, standing in for two hosts); each member's "VM" is a real
  QEMU domain (TCG, idle firmware) with vnfha's metadata, and the members run beside their
  domains. The fault is SIGSTOP of the active's process; the standby has the bridge fence the
  active's domain (KILL: confirmed by its pause, destroyed right after). Also checked: the
  domain was fenced (not running) and the standby's fence did not fail. Without libvirt's
  binding, libvirtd or QEMU, ``--paths qemu`` is a usage error (exit 2) naming what is missing.

    vnfha bench fence [--trials 20] [--paths fence,nfvi-report,qemu]

Prints one JSON object; exit 0 when every path run met the p99 budget (first write) and passed
its checks (``all_met``); ``met`` is the fence path's verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vnfha import Config, Member, Role, VnfhaError
from vnfha.admin import GroupNotFound, group_history, group_status
from vnfha.apps.bench._common import add_paths, parser, positive_int, report, summary
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.member import MemberEvent, RoleChanged
from vnfha.nfvi.model import InstanceState
from vnfha.roles.history import Cause
from vnfha.store.etcd import EtcdOptions, EtcdStore
from vnfha.testing.etcd import EtcdCluster

BUDGET_P99_MS = 600.0
"""The hang budget, for the first write of either path."""
PATHS = ("fence", "nfvi-report", "qemu")
DEFAULT_PATHS = ("fence", "nfvi-report")
HANG_BEFORE_FAIL_S = 0.1
"""On the nfvi-report path: from the active's SIGSTOP to the host failure (below the standby's
300 ms suspicion threshold, so no fence has started)."""
PREFIX = "/vnfha"

ACTIVE = """
import asyncio, sys
import vnfha
async def main():
    group, etcd, bridge = sys.argv[1:4]
    cfg = vnfha.Config(group=group, member="a", etcd_endpoints=tuple(etcd.split(",")),
                       bridge_endpoint=bridge, priority=100)
    async with vnfha.Member(cfg) as m:
        i = armed = 0
        while True:
            if m.is_active():
                if m.nfvi is not None and m.nfvi.armed_epoch == m.epoch != armed:
                    armed = m.epoch
                    print(f"armed {armed}", flush=True)
                try:
                    await m.checkpoint.put("data", f"k{i}", b"x" * 100, ack=vnfha.Ack.ONE)
                except vnfha.VnfhaError:
                    await asyncio.sleep(0.01)
                    continue
                print(f"acked {i}", flush=True)
                i += 1
            else:
                await asyncio.sleep(0.01)
asyncio.run(main())
"""

SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Lab:
    """What every trial shares: the etcd, the sim driver, its bridge and the log directory;
    for the qemu path, the private libvirt daemons and the bridge over them instead."""

    etcd: EtcdCluster
    sim: SimDriver
    server: BridgeServer
    logs: Path
    qemu: QemuHosts | None = None

    async def place(self, name: str, group: str, member: str, host: str) -> None:
        """Give member ``member`` of ``group`` a "VM" ``name`` on ``host``: a sleeper the sim
        launched, or on the qemu path a running domain."""
        if self.qemu is not None:
            await asyncio.to_thread(self.qemu.start, name, group, member, host)
        else:
            await self.sim.launch(name, group=group, member=member, host=host, argv=SLEEPER)

    def active_argv(self, group: str) -> list[str]:
        """The command line of the active member ``a`` of ``group``."""
        return [sys.executable, "-c", ACTIVE, group, ",".join(self.etcd.endpoints),
                self.server.address]

    async def start_active(self, group: str, log: Path) -> asyncio.subprocess.Process:
        """The active member ``a`` of ``group`` as a process of this benchmark's own (not the
        sim's), printing to ``log``."""
        with log.open("wb") as out:
            return await asyncio.create_subprocess_exec(
                *self.active_argv(group), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)

    async def with_store(self, use: Callable[[EtcdStore], Awaitable[T]]) -> T:
        """Run ``use`` with a fresh client of the etcd, closed afterwards."""
        store = EtcdStore(EtcdOptions(endpoints=self.etcd.endpoints))
        try:
            return await use(store)
        finally:
            await store.close()


async def poll(cond: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Until ``cond()``: the processes it watches have no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await cond():
                return
            await asyncio.sleep(0.02)


def read_log(log: Path) -> str:
    """What an active printed so far (a few KB: read at once)."""
    return log.read_text(errors="replace")


async def is_active(lab: Lab, group: str, member: str) -> bool:
    async def active(store: EtcdStore) -> bool:
        try:
            return (await group_status(store, PREFIX, group)).active == member
        except GroupNotFound:
            return False
    return await lab.with_store(active)


async def takeover(lab: Lab, group: str, log: Path, host: str, *,
                   fault: Callable[[], Awaitable[float]],
                   judge: Callable[[Member], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """One trial once the active ``a`` of ``group`` (printing to ``log``) is launched: start
    the standby ``b`` (its sleeper VM on ``host``), wait until the active's watchdog is armed
    and it has 20 writes acknowledged, inject ``fault`` (it returns t=0, monotonic), time the
    takeover and the first write, count the lost acknowledged writes; ``judge`` adds the path's
    own checks, before ``b`` stops."""
    vm_b = f"{group}-b"
    await lab.place(vm_b, group, "b", host)
    roles: list[tuple[float, RoleChanged]] = []

    def record(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            roles.append((time.monotonic(), event))

    cfg = Config(group=group, member="b", etcd_endpoints=lab.etcd.endpoints,
                 bridge_endpoint=lab.server.address)
    await poll(lambda: is_active(lab, group, "a"), 20)
    b = Member(cfg)
    b.add_listener(record)
    await b.start()

    async def ready() -> bool:
        text = read_log(log)
        return "armed " in text and "acked 20" in text

    try:
        await b.wait_for_role(Role.STANDBY, 20)
        await poll(ready, 20)
        await asyncio.sleep(0.3)
        first_epoch = b.epoch
        t0 = await fault()
        await b.wait_for_role(Role.ACTIVE, 10)
        took = next(t for t, e in roles if e.role is Role.ACTIVE)
        while True:  # the first write the new active gets accepted
            try:
                await b.checkpoint.put("data", "after", b"1")
                break
            except VnfhaError:  # not active for writes yet: try again
                await asyncio.sleep(0.001)
        wrote = time.monotonic()
        text = read_log(log)
        acked = [int(line.split()[1]) for line in text.splitlines() if line.startswith("acked ")]
        lost = [i for i in acked if b.checkpoint.get("data", f"k{i}") is None]
        return {"on_active_ms": (took - t0) * 1000, "first_write_ms": (wrote - t0) * 1000,
                "acked": len(acked), "lost_acked": len(lost), "epoch_grew": b.epoch > first_epoch,
                **await judge(b)}
    finally:
        await b.stop()
        pid = None if lab.qemu is not None else lab.sim.pid(vm_b)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


async def fence_trial(n: int, lab: Lab) -> dict[str, Any]:
    """The fence path: the sim launched the active, SIGSTOP it, the standby fences it."""
    group = f"fence{n}-{os.getpid()}"
    vm_a = f"{group}-a"
    await lab.sim.launch(vm_a, group=group, member="a", host="host-a",
                         argv=lab.active_argv(group))

    async def hang() -> float:
        pid = lab.sim.pid(vm_a)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        return time.monotonic()

    async def fenced(b: Member) -> dict[str, Any]:
        state = (await lab.sim.get_instance(vm_a)).state
        monitor = b.monitor
        return {"fenced": state in (InstanceState.STOPPED, InstanceState.PAUSED)
                and monitor is not None and not monitor.fence_failed}

    try:
        return await takeover(lab, group, lab.logs / f"{vm_a}.log", "host-b", fault=hang,
                              judge=fenced)
    finally:
        pid = lab.sim.pid(vm_a)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


async def report_trial(n: int, lab: Lab) -> dict[str, Any]:
    """The nfvi-report path: the active member hangs, then the sim fails its VM's host."""
    group = f"report{n}-{os.getpid()}"
    vm_a, host_a = f"{group}-a", f"report-a{n}"
    await lab.sim.launch(vm_a, group=group, member="a", host=host_a, argv=SLEEPER)
    log = lab.logs / f"{group}-member-a.log"
    active = await lab.start_active(group, log)

    async def hang_then_fail_host() -> float:
        active.send_signal(signal.SIGSTOP)
        await asyncio.sleep(HANG_BEFORE_FAIL_S)
        t0 = time.monotonic()
        await lab.sim.fail_host(host_a)
        return t0

    async def by_report(b: Member) -> dict[str, Any]:
        causes: list[str] = []

        async def recorded() -> bool:
            records = await lab.with_store(lambda s: group_history(s, PREFIX, group))
            causes[:] = [r.cause for r in records if r.epoch == b.epoch]
            return bool(causes)

        with contextlib.suppress(TimeoutError):  # written at the first accepted write
            await poll(recorded, 5)
        agent = b.nfvi
        return {"cause": causes[0] if causes else "none",
                "fences": agent.fences if agent is not None else -1,
                "crashed": (await lab.sim.get_instance(vm_a)).state is InstanceState.CRASHED}

    try:
        return await takeover(lab, group, log, f"report-b{n}", fault=hang_then_fail_host,
                              judge=by_report)
    finally:
        with contextlib.suppress(ProcessLookupError):  # SIGKILL ends a stopped process too
            active.kill()
        await active.wait()


class QemuHosts:
    """Two private libvirt daemons (``host-a``, ``host-b``) and domains on them."""

    HOSTS = ("host-a", "host-b")

    def __init__(self) -> None:
        import libvirt  # noqa: PLC0415 - optional: only the qemu path needs it

        from vnfha.testing.libvirtd import Libvirtd  # noqa: PLC0415

        self._libvirt = libvirt
        # short labels and names: QEMU's monitor socket lives under the daemon's directory,
        # named after the domain, and a unix socket path has at most 107 bytes
        self.daemons = {host: Libvirtd(f"b{host[-1]}") for host in self.HOSTS}
        self.conns: dict[str, Any] = {}

    def open(self) -> None:
        """Start the daemons and connect to them."""
        for host, daemon in self.daemons.items():
            daemon.start()
            self.conns[host] = self._libvirt.open(daemon.uri)

    def start(self, name: str, group: str, member: str, host: str) -> None:
        """Define and start an idle domain ``name`` for ``group``/``member`` on ``host``."""
        from vnfha.testing.qemu_guest import domain_xml  # noqa: PLC0415

        serial = self.daemons[host].shared_dir("serial") / f"{name}.sock"
        self.conns[host].defineXML(domain_xml(name, None, serial=serial, group=group,
                                              member=member, memory_mib=64)).create()

    def running(self, host: str, name: str) -> bool:
        """Whether domain ``name`` on ``host`` is running (not paused, not off)."""
        state = self.conns[host].lookupByName(name).state()[0]
        return bool(state == self._libvirt.VIR_DOMAIN_RUNNING)

    def remove(self, prefix: str) -> None:
        """Destroy and undefine every domain whose name starts with ``prefix``."""
        for conn in self.conns.values():
            for domain in conn.listAllDomains(0):
                if domain.name().startswith(prefix):
                    with contextlib.suppress(self._libvirt.libvirtError):
                        domain.destroy()
                    domain.undefine()

    def close(self) -> None:
        """Close the connections and stop the daemons (their QEMUs with them)."""
        for conn in self.conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        for daemon in self.daemons.values():
            daemon.stop()


def qemu_missing() -> str | None:
    """What the qemu path needs and this machine lacks, in words; None if nothing."""
    import shutil  # noqa: PLC0415

    from vnfha.testing.libvirtd import find_libvirtd  # noqa: PLC0415

    missing = [what for what, there in (
        ("libvirt's Python binding (pip install -e '.[libvirt]')",
         importlib.util.find_spec("libvirt") is not None),
        ("libvirtd (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)",
         find_libvirtd() is not None),
        ("qemu-system-x86_64 (apt-get install qemu-system-x86)",
         shutil.which("qemu-system-x86_64") is not None)) if not there]
    return " and ".join(missing) or None


async def qemu_trial(n: int, lab: Lab) -> dict[str, Any]:
    """The fence path on real domains: SIGSTOP the active, the standby fences its domain."""
    qemu = lab.qemu
    assert qemu is not None
    group = f"q{n}"  # a fresh etcd per run: unique enough, and short (see QemuHosts)
    vm_a = f"{group}-a"
    await lab.place(vm_a, group, "a", "host-a")
    log = lab.logs / f"{vm_a}.log"
    active = await lab.start_active(group, log)

    async def hang() -> float:
        active.send_signal(signal.SIGSTOP)
        return time.monotonic()

    async def fenced(b: Member) -> dict[str, Any]:
        monitor = b.monitor
        return {"fenced": not await asyncio.to_thread(qemu.running, "host-a", vm_a)
                and monitor is not None and not monitor.fence_failed}

    try:
        return await takeover(lab, group, log, "host-b", fault=hang, judge=fenced)
    finally:
        with contextlib.suppress(ProcessLookupError):
            active.kill()
        await active.wait()
        await asyncio.to_thread(qemu.remove, f"{group}-")


async def run_qemu(trials: int, etcd: EtcdCluster, sim: SimDriver,
                   logs: Path) -> list[dict[str, Any]]:
    """The qemu path's trials, on daemons and a bridge of their own."""
    from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415

    qemu = QemuHosts()
    try:
        await asyncio.to_thread(qemu.open)
        driver = await LibvirtDriver.open({h: d.uri for h, d in qemu.daemons.items()})
        try:
            async with BridgeServer(driver) as server:
                lab = Lab(etcd, sim, server, logs, qemu)
                return [await qemu_trial(n, lab) for n in range(trials)]
        finally:
            await driver.close()
    finally:
        await asyncio.to_thread(qemu.close)


TRIALS: dict[str, Callable[[int, Lab], Awaitable[dict[str, Any]]]] = {
    "fence": fence_trial, "nfvi-report": report_trial}


def figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What both paths report: the times against the budget, the writes, the epochs."""
    return {
        "on_active_ms": summary([r["on_active_ms"] for r in results]),
        "first_write_ms": summary([r["first_write_ms"] for r in results]),
        "budget_p99_ms": BUDGET_P99_MS,
        "acked_writes": sum(r["acked"] for r in results),
        "lost_acked": sum(r["lost_acked"] for r in results),
        "every_epoch_grew": all(r["epoch_grew"] for r in results),
    }


def verdict(out: dict[str, Any], check: str) -> bool:
    """The budget met, nothing lost, every epoch grew and every trial passed ``check``."""
    return bool(out["first_write_ms"]["p99"] <= BUDGET_P99_MS and out["lost_acked"] == 0
                and out["every_epoch_grew"] and out[check])


async def main_async(trials: int, paths: Sequence[str] = PATHS) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
    with tempfile.TemporaryDirectory() as tmp, EtcdCluster(3) as etcd:
        sim = SimDriver(log_dir=tmp)
        try:
            async with BridgeServer(sim) as server:
                lab = Lab(etcd, sim, server, Path(tmp))
                for path in paths:
                    if path == "qemu":
                        results[path] = await run_qemu(trials, etcd, sim, Path(tmp))
                        continue
                    for n in range(trials):
                        results[path].append(await TRIALS[path](n, lab))
        finally:
            await sim.close()
    out: dict[str, Any] = {"benchmark": "fence", "paths": list(paths), "trials": trials}
    if "fence" in results:
        fence = results["fence"]
        out.update({"path": "hang with NFVI bridge (SIGSTOP, fenced, then takeover)",
                    **figures(fence),
                    "every_takeover_fenced": all(r["fenced"] for r in fence)})
        out["met"] = verdict(out, "every_takeover_fenced")
    if "nfvi-report" in results:
        rep = results["nfvi-report"]
        part = {"path": "hang, then the sim fails the active's host: VM_CRASHED in the "
                        "active's epoch, takeover on the report, no fence",
                "t0": f"the call of SimDriver.fail_host on the active's host, "
                      f"{HANG_BEFORE_FAIL_S * 1000:.0f} ms after the active's SIGSTOP",
                "hang_before_fault_ms": HANG_BEFORE_FAIL_S * 1000,
                **figures(rep),
                "causes": dict(Counter(r["cause"] for r in rep)),
                "every_takeover_by_report": all(
                    r["cause"] == Cause.NFVI_EVENT and r["fences"] == 0 and r["crashed"]
                    for r in rep)}
        part["met"] = verdict(part, "every_takeover_by_report")
        out["nfvi_report"] = part
    if "qemu" in results:
        real = results["qemu"]
        part = {"path": "hang with the libvirt driver over real QEMU domains (two private "
                        "libvirt daemons): SIGSTOP, the domain fenced, then takeover",
                **figures(real),
                "every_takeover_fenced": all(r["fenced"] for r in real)}
        part["met"] = verdict(part, "every_takeover_fenced")
        out["qemu"] = part
    verdicts: list[bool] = [part["met"] for part in (out, out.get("nfvi_report", {}),
                                                     out.get("qemu", {})) if "met" in part]
    out["all_met"] = all(verdicts)
    return out


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every path run met the budget, nothing lost,
    every takeover as the path requires: fenced, or on the NFVI report)."""
    p = parser(__doc__, prog)
    p.add_argument("--trials", type=positive_int, default=20,
                   help="hangs injected per path, each in a fresh group (default: %(default)s)")
    add_paths(p, PATHS, DEFAULT_PATHS)
    args = p.parse_args(argv)
    paths: list[str] = args.paths
    if "qemu" in paths and (missing := qemu_missing()):
        p.error(f"--paths qemu needs {missing}")
    out = asyncio.run(main_async(args.trials, paths))
    return report(out, out["all_met"])
