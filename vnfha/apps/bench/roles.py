"""Role handover times on a real 3-member etcd on loopback, against DESIGN.md's budgets.

    vnfha bench roles [--switchovers 50] [--stops 20] [--crashes 3] [--members 3]

- ``switchover``: ``await member.switchover()`` on the active, from the call to the moment the
  standby (same process, its own etcd connection) holds ACTIVE. Budget p99 100 ms.
- ``clean_stop``: ``await active.stop()`` (on_quiesce, release with a handover hint) to the
  standby holding ACTIVE. Budget p99 100 ms.
- ``crash``: SIGKILL of an active member *process* to the standby process reporting ACTIVE.
  Today this path waits for the lease to expire (TTL 2 s), so its budget here is issue 3's
  "TTL + 1 s"; DESIGN.md's 250 ms for a crash comes with replication-stream detection.

Prints one JSON object with p50/p99/max per path and whether each budget is met; exit status 0
when all are.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Sequence
from typing import Any

from vnfha import Config, Role
from vnfha.apps.bench._common import is_role, parser, positive_int, report, summary
from vnfha.member import Member, MemberEvent, RoleChanged
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.member_proc import MemberProcess

BUDGET_P99_MS = {"switchover": 100.0, "clean_stop": 100.0, "crash": 3000.0}


def times(ms: list[float]) -> dict[str, float]:
    """How many, and p50/p99/max in ms."""
    return {"n": len(ms), **summary(ms, unit="_ms")}


def became_active(member: Member) -> asyncio.Future[float]:
    """A future set to perf_counter() when ``member`` next becomes ACTIVE."""
    fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def listener(ev: MemberEvent) -> None:
        if isinstance(ev, RoleChanged) and ev.role is Role.ACTIVE and not fut.done():
            fut.set_result(time.perf_counter())

    member.add_listener(listener)
    return fut


async def switchovers(endpoints: tuple[str, ...], n: int) -> list[float]:
    cfg = {"group": "bench-sw", "etcd_endpoints": endpoints}
    out: list[float] = []
    async with (Member(Config(member="a", **cfg)) as a,  # type: ignore[arg-type]
                Member(Config(member="b", **cfg)) as b):  # type: ignore[arg-type]
        await a.wait_for_role(Role.ACTIVE, 10)
        await b.wait_for_role(Role.STANDBY, 10)
        pair = [a, b]
        for _ in range(n + 3):
            active, standby = pair
            await asyncio.sleep(0.05)
            done = became_active(standby)
            t0 = time.perf_counter()
            await active.switchover()
            out.append((await asyncio.wait_for(done, 5) - t0) * 1000)
            await active.wait_for_role(Role.STANDBY, 5)
            pair.reverse()
    return out[3:]


async def clean_stops(endpoints: tuple[str, ...], n: int) -> list[float]:
    out: list[float] = []
    for i in range(n + 2):
        cfg = {"group": f"bench-stop-{i}", "etcd_endpoints": endpoints}
        a = Member(Config(member="a", **cfg))  # type: ignore[arg-type]
        b = Member(Config(member="b", **cfg))  # type: ignore[arg-type]
        await a.start()
        await a.wait_for_role(Role.ACTIVE, 10)
        await b.start()
        await b.wait_for_role(Role.STANDBY, 10)
        await asyncio.sleep(0.05)
        done = became_active(b)
        t0 = time.perf_counter()
        await a.stop()
        out.append((await asyncio.wait_for(done, 5) - t0) * 1000)
        await b.stop()
    return out[2:]


def crashes(endpoints: tuple[str, ...], n: int) -> list[float]:
    out: list[float] = []
    for i in range(n):
        group = f"bench-crash-{i}"
        a = MemberProcess(group, "a", endpoints)
        b: MemberProcess | None = None
        try:
            first = a.wait_for(is_role("active"), 20)
            b = MemberProcess(group, "b", endpoints)
            b.wait_for(is_role("standby"), 20)
            time.sleep(0.3)
            killed = time.time()
            a.proc.send_signal(signal.SIGKILL)
            took = b.wait_for(is_role("active", first["epoch"]), 10)
            out.append((took["t"] - killed) * 1000)
        finally:
            a.kill()
            if b is not None:
                b.kill()
    return out


async def run(endpoints: tuple[str, ...], opts: argparse.Namespace) -> dict[str, Any]:
    results = {"switchover": times(await switchovers(endpoints, opts.switchovers)),
               "clean_stop": times(await clean_stops(endpoints, opts.stops))}
    if opts.crashes:
        results["crash"] = times(await asyncio.to_thread(crashes, endpoints, opts.crashes))
    return results


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every budget met)."""
    p = parser(__doc__, prog)
    p.add_argument("--switchovers", type=positive_int, default=50,
                   help="timed switchovers (default: %(default)s)")
    p.add_argument("--stops", type=positive_int, default=20,
                   help="timed clean stops (default: %(default)s)")
    p.add_argument("--crashes", type=int, default=3,
                   help="timed crashes of a member process; 0 skips them (default: %(default)s)")
    p.add_argument("--members", type=positive_int, default=3,
                   help="etcd cluster size (default: %(default)s)")
    opts = p.parse_args(argv)
    if opts.crashes < 0:
        p.error(f"--crashes {opts.crashes}: must be >= 0")
    with EtcdCluster(opts.members) as cluster:
        results = asyncio.run(run(cluster.endpoints, opts))
    budgets = {k: {"budget_p99_ms": BUDGET_P99_MS[k], "met": v["p99_ms"] <= BUDGET_P99_MS[k]}
               for k, v in results.items()}
    ok = all(b["met"] for b in budgets.values())
    return report({"benchmark": "roles", "etcd_members": opts.members, "results": results,
                   "budgets": budgets, "all_met": ok}, ok)
