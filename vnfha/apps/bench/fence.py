"""The hang path with an NFVI bridge: fault -> fence -> takeover, over N trials, against the
600 ms budget (DESIGN.md section 4).

Each trial: a fresh group on a shared 3-member etcd; the active is a process the sim driver
launched (so the bridge can fence it), writing ``Ack.ONE`` checkpoints and printing each
acknowledged index; the standby runs in this process with ``bridge_endpoint`` set (its "VM" is
a sleeper the sim driver knows, so the bridge accepts its calls). The fault is SIGSTOP of the
active (a hang: nothing refuses a connection). Measured from the SIGSTOP to the standby's
ACTIVE role change and to its first accepted checkpoint write; checked: every index the active
saw acknowledged is in the new active's state, the epoch grew, and the frozen active was fenced
(stopped) by the bridge, not replaced on the lease.

    vnfha bench fence [--trials 20]

Prints one JSON object; exit 0 when the p99 budget is met and nothing was lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from vnfha import Config, Member, Role, VnfhaError
from vnfha.admin import GroupNotFound, group_status
from vnfha.apps.bench._common import parser, positive_int, report, summary
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.member import MemberEvent, RoleChanged
from vnfha.nfvi.model import InstanceState
from vnfha.store.etcd import EtcdOptions, EtcdStore
from vnfha.testing.etcd import EtcdCluster

BUDGET_P99_MS = 600.0

ACTIVE = """
import asyncio, sys
import vnfha
async def main():
    group, etcd, bridge = sys.argv[1:4]
    cfg = vnfha.Config(group=group, member="a", etcd_endpoints=tuple(etcd.split(",")),
                       bridge_endpoint=bridge, priority=100)
    async with vnfha.Member(cfg) as m:
        i = 0
        while True:
            if m.is_active():
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


async def poll(cond: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Until ``cond()``: the processes it watches have no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await cond():
                return
            await asyncio.sleep(0.02)


async def is_active(etcd: EtcdCluster, group: str, member: str) -> bool:
    store = EtcdStore(EtcdOptions(endpoints=etcd.endpoints))
    try:
        return (await group_status(store, "/vnfha", group)).active == member
    except GroupNotFound:
        return False
    finally:
        await store.close()


async def trial(n: int, etcd: EtcdCluster, sim: SimDriver, server: BridgeServer,
                logs: Path) -> dict[str, Any]:
    group = f"fence{n}-{os.getpid()}"
    vm_a, vm_b = f"a{n}", f"b{n}"
    await sim.launch(vm_a, group=group, member="a", host="host-a",
                     argv=[sys.executable, "-c", ACTIVE, group, ",".join(etcd.endpoints),
                           server.address])
    await sim.launch(vm_b, group=group, member="b", host="host-b", argv=SLEEPER)
    roles: list[tuple[float, RoleChanged]] = []

    def record(event: MemberEvent) -> None:
        if isinstance(event, RoleChanged):
            roles.append((time.monotonic(), event))

    cfg = Config(group=group, member="b", etcd_endpoints=etcd.endpoints,
                 bridge_endpoint=server.address)
    await poll(lambda: is_active(etcd, group, "a"), 20)
    b = Member(cfg)
    b.add_listener(record)
    await b.start()

    async def acked_enough() -> bool:
        return "acked 20" in (logs / f"{vm_a}.log").read_text(errors="replace")

    try:
        await b.wait_for_role(Role.STANDBY, 20)
        await poll(acked_enough, 20)
        await asyncio.sleep(0.3)
        first_epoch = b.epoch
        pid = sim.pid(vm_a)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        fault = time.monotonic()
        await b.wait_for_role(Role.ACTIVE, 10)
        took = next(t for t, e in roles if e.role is Role.ACTIVE)
        while True:  # the first write the new active gets accepted
            try:
                await b.checkpoint.put("data", "after", b"1")
                break
            except VnfhaError:  # not active for writes yet: try again
                await asyncio.sleep(0.001)
        wrote = time.monotonic()
        log = (logs / f"{vm_a}.log").read_text(errors="replace")
        acked = [int(line.split()[1]) for line in log.splitlines() if line.startswith("acked ")]
        lost = [i for i in acked if b.checkpoint.get("data", f"k{i}") is None]
        state = (await sim.get_instance(vm_a)).state
        monitor = b.monitor
        return {
            "on_active_ms": (took - fault) * 1000, "first_write_ms": (wrote - fault) * 1000,
            "acked": len(acked), "lost_acked": len(lost), "epoch_grew": b.epoch > first_epoch,
            "fenced": state in (InstanceState.STOPPED, InstanceState.PAUSED)
            and monitor is not None and not monitor.fence_failed,
        }
    finally:
        await b.stop()
        for vm in (vm_a, vm_b):
            pid = sim.pid(vm)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)


async def main_async(trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, EtcdCluster(3) as etcd:
        logs = Path(tmp)
        sim = SimDriver(log_dir=logs)
        results = []
        try:
            async with BridgeServer(sim) as server:
                for n in range(trials):
                    results.append(await trial(n, etcd, sim, server, logs))
        finally:
            await sim.close()
    on_active = [r["on_active_ms"] for r in results]
    first = [r["first_write_ms"] for r in results]
    out = {
        "benchmark": "fence",
        "path": "hang with NFVI bridge (SIGSTOP, fenced, then takeover)",
        "trials": trials,
        "on_active_ms": summary(on_active),
        "first_write_ms": summary(first),
        "budget_p99_ms": BUDGET_P99_MS,
        "acked_writes": sum(r["acked"] for r in results),
        "lost_acked": sum(r["lost_acked"] for r in results),
        "every_epoch_grew": all(r["epoch_grew"] for r in results),
        "every_takeover_fenced": all(r["fenced"] for r in results),
    }
    out["met"] = (out["first_write_ms"]["p99"] <= BUDGET_P99_MS and out["lost_acked"] == 0
                  and out["every_epoch_grew"] and out["every_takeover_fenced"])
    return out


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: the budget met, nothing lost, every takeover
    fenced)."""
    p = parser(__doc__, prog)
    p.add_argument("--trials", type=positive_int, default=20,
                   help="hangs injected, each in a fresh group (default: %(default)s)")
    args = p.parse_args(argv)
    out = asyncio.run(main_async(args.trials))
    return report(out, out["met"])
