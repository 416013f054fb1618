"""A fleet of groups on one 3-member etcd, measured as it grows (issue 15).

    vnfha bench fleet [--groups 10,100,300,1000] [--per-process 100] [--window-s 30]
                      [--samples 10] [--fleet-heartbeat-s 0.2] [--idle-s 0]

etcd: 3 members on loopback, run as ``vnfha etcd`` runs one (raft 50/500 ms, periodic
auto-compaction keeping 10 minutes, a 2 GiB quota). The fleet: N groups of the TWO_N model,
each two whole :class:`vnfha.Member` s (their own etcd connection, lease session, watch,
replication server and metrics) with the default lease TTL (2 s) and keepalive (every 0.5 s);
member ``a`` of a group in one worker process (:mod:`vnfha.apps.bench.fleet_worker`), ``b``
in another, ``--per-process`` members a process. The fleet grows to each N in ``--groups``
in turn; once every group has an active and a standby, a window of ``--window-s`` measures:

- **etcd**, from its own metrics summed over its 3 members: requests per second by method
  (unary calls by ``grpc_server_handled_total``, stream messages by
  ``grpc_server_msg_received_total``: ``LeaseKeepAlive`` and ``Watch``), CPU (cores), the
  revision's growth and the database size (total and in use; growth per hour);
- **the members**: keepalive round trip p50/p99 (``histogram_quantile`` over their
  ``vnfha_lease_keepalive_seconds``, as Prometheus computes it: interpolated in the bucket),
  leases lost, failed etcd requests, role changes (an idle fleet has none), worker CPU;
- **the machine**: CPU busy (``/proc/stat``); when it is over 90% the figure says so
  (``machine_saturated``): this 2-core machine, not etcd, is then the limit.

Then ``--samples`` failovers of a sample group measured as ``vnfha bench failover``'s sigkill
path does (two member processes with the default timers writing ``Ack.ONE`` checkpoints; the
active SIGKILLed; from the kill to the new active's first accepted write), compared with the
same failovers run before the fleet starts, the group alone.

The fleet's own members send replication heartbeats every ``--fleet-heartbeat-s`` (0.2 s;
the sample group keeps the default 0.05 s): those go between members, never to etcd, and in
production run on as many hosts as there are members; here 2,000 members share 2 cores, and at
0.05 s their heartbeats alone take the CPU past what the machine has at about 300 groups
(docs/operations.md says what was seen). For the same reason the workers run at niceness
``--fleet-nice`` (10): on real hosts the fleet never takes the CPU of the sample group's
members or of etcd, so here it gets what they leave, and the failover comparison measures what
etcd's load does to a failover rather than how 2 cores are shared. ``--idle-s`` then keeps the
largest fleet idle that long (3600 for the hour of the targets), after compacting etcd's history
up to that moment, and reports the database size before and after and once a minute.

Targets: at every N, no lease lost and no role change in the window, etcd's revision unchanged
over it (idle groups write nothing), no request but keepalives, at most one keepalive per member
per 0.5 s and one watch per member; at the largest N, the sample failover's p99 within 1.5x of
the group alone; over ``--idle-s``, the database in use not grown. Where the machine saturates
the fleet stops growing; the report gives the largest N reached, what ran out, and etcd's cost
per group projected to 1,000 groups.

Prints one JSON object; exit 0 when every target is met.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from vnfha.apps.bench import failover
from vnfha.apps.bench._common import parser, positive_int, report
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster, housekeeping_args

GROUPS = (10, 100, 300, 1000)
QUOTA_BYTES = 2 * 1024**3
SATURATED_BUSY = 0.9
"""Machine CPU busy above which a window's figures measure the machine, not vnfha or etcd."""
FAILOVER_RATIO = 1.5
PREFIX = "fleet"
KEEPALIVE_INTERVAL_S = 0.5
"""The members' keepalive interval: TTL / 4 with the default TTL of 2 s."""
SAMPLE_MEMBERS = 2
"""Watchers beside the fleet's own: the sample group's members, between its failovers."""


# -- the worker processes ------------------------------------------------------------------------


class Worker:
    """One fleet worker process and the JSON lines it printed."""

    def __init__(self, endpoints: Sequence[str], member: str, first: int, count: int,
                 *, heartbeat_s: float, nice: int) -> None:
        self.member, self.first, self.count = member, first, count
        self.proc = subprocess.Popen(
            ["nice", "-n", str(nice), sys.executable, "-m", "vnfha.apps.bench.fleet_worker",
             "--etcd", ",".join(endpoints), "--member", member, "--prefix", PREFIX,
             "--first", str(first), "--count", str(count), "--heartbeat-s", str(heartbeat_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())
            del self.stderr[:-200]  # the last lines are what says why it failed

    def wait(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker {self.member}@{self.first} printed no {event!r} "
                                     f"within {timeout_s} s; its stderr ends: "
                                     f"{self.stderr[-5:]}") from None
            if line["event"] == event:
                return line

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return self.wait("stats", 60)

    def ask_stop(self) -> None:
        """Ask it to stop its members cleanly (their leases revoked); returns at once."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                stdin.write("stop\n")
                stdin.close()

    def stop(self) -> None:
        """:meth:`ask_stop`, then wait for it; kill it if that takes too long."""
        self.ask_stop()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Fleet:
    """Every worker of the fleet; grows by whole workers."""

    def __init__(self, endpoints: Sequence[str], per_process: int, heartbeat_s: float,
                 nice: int = 0) -> None:
        self.endpoints, self.per_process, self.heartbeat_s = endpoints, per_process, heartbeat_s
        self.nice = nice
        self.workers: list[Worker] = []
        self.groups = 0

    def grow(self, groups: int) -> float:
        """Start workers until ``groups`` groups run; the seconds it took until all were
        ready. Member ``a`` of each new group starts first, so it is usually the active."""
        t0 = time.monotonic()
        for member in ("a", "b"):
            started = [Worker(self.endpoints, member, first, min(self.per_process,
                                                                 groups - first),
                              heartbeat_s=self.heartbeat_s, nice=self.nice)
                       for first in range(self.groups, groups, self.per_process)]
            for w in started:
                w.wait("ready", 300)
            self.workers += started
        self.groups = groups
        return time.monotonic() - t0

    def stats(self) -> list[dict[str, Any]]:
        return [w.stats() for w in self.workers]

    def settle(self, timeout_s: float = 120.0) -> None:
        """Until every group has one active and one standby."""
        deadline = time.monotonic() + timeout_s
        while True:
            roles: dict[str, int] = {}
            for s in self.stats():
                for role, n in s["roles"].items():
                    roles[role] = roles.get(role, 0) + n
            if roles.get("active", 0) == self.groups and roles.get("standby", 0) == self.groups:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.groups} groups did not settle in {timeout_s} s: "
                                     f"roles {roles}")
            time.sleep(1.0)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    def stop(self) -> None:
        """Every worker asked at once (they stop in parallel), then each waited for."""
        for w in self.workers:
            w.ask_stop()
        for w in self.workers:
            w.stop()


# -- what is measured ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of every CPU of the machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def etcd_metrics(cluster: EtcdCluster) -> dict[str, float]:
    """etcd's counters and gauges of interest, summed over its members (sizes: the largest)."""
    out: dict[str, float] = {}
    for member in cluster.members:
        url = f"http://{member.host}:{member.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "grpc_server_handled_total":
                    key = f"call/{s.labels['grpc_method']}"
                elif (s.name == "grpc_server_msg_received_total"
                      and s.labels["grpc_type"] == "bidi_stream"):
                    key = f"message/{s.labels['grpc_method']}"
                elif s.name == "process_cpu_seconds_total":
                    key = "cpu_s"
                elif s.name in ("etcd_mvcc_db_total_size_in_bytes",
                                "etcd_mvcc_db_total_size_in_use_in_bytes"):
                    out[s.name] = max(out.get(s.name, 0.0), s.value)
                    continue
                elif s.name == "etcd_debugging_mvcc_watcher_total":
                    key = "watchers"
                elif s.name == "etcd_debugging_mvcc_current_revision":
                    key = "revision"
                    out[key] = max(out.get(key, 0.0), s.value)
                    continue
                else:
                    continue
                out[key] = out.get(key, 0.0) + s.value
    return out


def histogram_quantile(q: float, buckets: dict[str, int]) -> float | None:
    """The ``q`` quantile of a cumulative histogram (upper bound text to count), interpolated
    linearly inside its bucket as Prometheus's ``histogram_quantile`` does; None when empty."""
    bounds = sorted((float(le), n) for le, n in buckets.items())
    total = bounds[-1][1] if bounds else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for upper, count in bounds:
        if count >= rank:
            if upper == float("inf"):
                return lower  # above the last finite bound: that bound, as Prometheus says
            return lower + (upper - lower) * (rank - below) / max(1, count - below)
        lower, below = upper, count
    return lower


def delta_buckets(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {le: n - before.get(le, 0) for le, n in after.items()}


def summed(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' stats added up (histograms bucket by bucket)."""
    out: dict[str, Any] = {"keepalive_buckets": {}, "keepalive_count": 0, "keepalive_sum_s": 0.0,
                           "leases_lost": 0, "role_changes": 0, "etcd_errors": {}}
    for s in stats:
        for le, n in s["keepalive_buckets"].items():
            out["keepalive_buckets"][le] = out["keepalive_buckets"].get(le, 0) + n
        for kind, n in s["etcd_errors"].items():
            out["etcd_errors"][kind] = out["etcd_errors"].get(kind, 0) + n
        for key in ("keepalive_count", "keepalive_sum_s", "leases_lost", "role_changes"):
            out[key] += s[key]
    return out


def wait_quiet(cluster: EtcdCluster, quiet_s: float = 5.0, timeout_s: float = 120.0) -> float:
    """Until etcd's revision has not moved for ``quiet_s`` (the groups have published their
    in-sync sets and progress records: they are settled); the seconds it took."""
    t0 = time.monotonic()
    revision, since = etcd_metrics(cluster)["revision"], t0
    while time.monotonic() - since < quiet_s:
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"etcd's revision still moves {timeout_s} s after the fleet "
                                 "settled: the groups are not idle")
        time.sleep(0.5)
        now = etcd_metrics(cluster)["revision"]
        if now != revision:
            revision, since = now, time.monotonic()
    return since - t0


def window(cluster: EtcdCluster, fleet: Fleet, seconds: float) -> dict[str, Any]:
    """What the fleet costs over ``seconds`` of idling."""
    pids = fleet.pids()
    e0, m0, s0 = etcd_metrics(cluster), machine_cpu(), summed(fleet.stats())
    w0, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
    time.sleep(seconds)
    e1, m1, s1 = etcd_metrics(cluster), machine_cpu(), summed(fleet.stats())
    w1, dt = [cpu_seconds(p) for p in pids], time.monotonic() - t0
    rates = {k.split("/", 1)[1] + ("_msgs" if k.startswith("message/") else ""):
             round((e1[k] - e0.get(k, 0.0)) / dt, 1)
             for k in sorted(e1) if "/" in k and e1[k] - e0.get(k, 0.0) > 0}
    keepalive = delta_buckets(s1["keepalive_buckets"], s0["keepalive_buckets"])
    p50, p99 = histogram_quantile(0.5, keepalive), histogram_quantile(0.99, keepalive)
    busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    size, in_use = "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes"
    errors = {k: n - s0["etcd_errors"].get(k, 0) for k, n in s1["etcd_errors"].items()
              if n - s0["etcd_errors"].get(k, 0)}
    return {
        "window_s": round(dt, 1),
        "etcd_requests_per_s": round(sum(rates.values()), 1),
        "etcd_requests_per_s_by_method": rates,
        "etcd_cpu_cores": round((e1["cpu_s"] - e0["cpu_s"]) / dt, 3),
        "etcd_revision_growth": int(e1["revision"] - e0["revision"]),
        "etcd_watchers": int(e1["watchers"]),
        "etcd_db_bytes": int(e1[size]),
        "etcd_db_in_use_bytes": int(e1[in_use]),
        "etcd_db_in_use_growth_per_hour_bytes": int((e1[in_use] - e0[in_use]) / dt * 3600),
        "keepalives_per_s": round((s1["keepalive_count"] - s0["keepalive_count"]) / dt, 1),
        "keepalive_rtt_ms": {"p50": None if p50 is None else round(p50 * 1000, 2),
                             "p99": None if p99 is None else round(p99 * 1000, 2)},
        "leases_lost": s1["leases_lost"] - s0["leases_lost"],
        "role_changes": s1["role_changes"] - s0["role_changes"],
        "etcd_errors": errors,
        "members_cpu_cores": round((sum(w1) - sum(w0)) / dt, 3),
        "machine_cpu_busy": round(busy, 3),
        "machine_saturated": busy > SATURATED_BUSY,
    }


IN_USE = "etcd_mvcc_db_total_size_in_use_in_bytes"


def compact_now(endpoints: Sequence[str]) -> int:
    """Compact etcd's history up to its current revision; that revision. The setup and the
    sample groups' writes are then gone from the database, so what an idle window shows is
    the idle fleet's own growth, not the compaction of what came before (the periodic
    compactor does that up to 10 min late, which showed as 28-36 KiB of growth)."""
    async def go() -> int:
        async with EtcdStore.connect(endpoints) as store:
            revision = (await store.range("/", limit=1)).revision
            await store.compact(revision)
            return revision
    return asyncio.run(go())


def idle_window(cluster: EtcdCluster, fleet: Fleet, seconds: float) -> dict[str, Any]:
    """:func:`window` over ``seconds`` of idling after :func:`compact_now`, with the database
    in use sampled every minute (its least and largest value, and the series)."""
    compacted = compact_now(cluster.endpoints)
    time.sleep(2.0)  # the compaction's own commit
    series: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(60.0):
            with contextlib.suppress(OSError, KeyError):
                series.append(int(etcd_metrics(cluster)[IN_USE]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = window(cluster, fleet, seconds)
    finally:
        done.set()
        sampler.join()
    return {**out, "compacted_to_revision": compacted,
            "etcd_db_in_use_min_bytes": min([*series, out["etcd_db_in_use_bytes"]]),
            "etcd_db_in_use_max_bytes": max([*series, out["etcd_db_in_use_bytes"]]),
            "etcd_db_in_use_per_minute_bytes": series}


def sample_failovers(endpoints: Sequence[str], samples: int) -> dict[str, Any]:
    """``samples`` SIGKILL failovers of a group of its own, as ``vnfha bench failover``."""
    r = asyncio.run(failover.run_path("sigkill", tuple(endpoints), samples))
    return {"first_write_ms": r["first_write_ms"], "on_active_ms": r["on_active_ms"],
            "lost_acked": r["lost_acked"], "violations": sum(r["violations"].values()),
            "unexpected_demotions": len(r["unexpected_demotions"])}


# -- the run -------------------------------------------------------------------------------------


def projection(levels: list[dict[str, Any]], groups: int) -> dict[str, Any] | None:
    """etcd's cost at ``groups`` groups from the largest N measured, linearly per group."""
    if not levels:
        return None
    top = levels[-1]
    per_group = {"etcd_requests_per_s": top["etcd_requests_per_s"] / top["groups"],
                 "etcd_cpu_cores": top["etcd_cpu_cores"] / top["groups"],
                 "members_cpu_cores": top["members_cpu_cores"] / top["groups"]}
    return {"from_groups": top["groups"], "groups": groups,
            "per_group": {k: round(v, 5) for k, v in per_group.items()},
            "etcd_requests_per_s": round(per_group["etcd_requests_per_s"] * groups),
            "etcd_cpu_cores": round(per_group["etcd_cpu_cores"] * groups, 2),
            "members_cpu_cores": round(per_group["members_cpu_cores"] * groups, 2)}


def run(opts: Any) -> dict[str, Any]:
    housekeeping = housekeeping_args("periodic", "10m", QUOTA_BYTES)
    with EtcdCluster(3, heartbeat_ms=50, election_ms=500, log_level="warn",
                     extra_args=housekeeping) as cluster:
        alone = sample_failovers(cluster.endpoints, opts.samples)
        fleet = Fleet(cluster.endpoints, opts.per_process, opts.fleet_heartbeat_s,
                      opts.fleet_nice)
        levels: list[dict[str, Any]] = []
        idle: dict[str, Any] | None = None
        try:
            for n in opts.groups:
                start_s = fleet.grow(n)
                fleet.settle()
                quiet_s = wait_quiet(cluster)
                level = {"groups": n, "members": 2 * n, "start_s": round(start_s, 1),
                         "quiet_after_s": round(quiet_s, 1),
                         **window(cluster, fleet, opts.window_s)}
                level["failover"] = sample_failovers(cluster.endpoints, opts.samples)
                levels.append(level)
                print(json.dumps({"level": n, "etcd_requests_per_s": level[
                    "etcd_requests_per_s"], "machine_cpu_busy": level["machine_cpu_busy"],
                    "failover_p99_ms": level["failover"]["first_write_ms"]["p99"]}),
                    file=sys.stderr, flush=True)
                if level["machine_saturated"] or level["leases_lost"]:
                    break  # a larger fleet would measure this machine's CPU, not etcd
            if opts.idle_s > 0:
                wait_quiet(cluster)  # the last sample group's leases expire first
                idle = idle_window(cluster, fleet, opts.idle_s)
        finally:
            fleet.stop()
    return {"alone": alone, "levels": levels, "idle": idle}


def judge(result: dict[str, Any], asked: Sequence[int]) -> dict[str, Any]:
    levels = result["levels"]
    checks: dict[str, Any] = {}
    clean = [lv for lv in levels if not lv["leases_lost"] and not lv["role_changes"]
             and lv["etcd_revision_growth"] == 0]
    checks["no_lease_lost_no_role_change_no_write"] = {
        "levels": [lv["groups"] for lv in levels], "clean": [lv["groups"] for lv in clean],
        "met": len(clean) == len(levels) and bool(levels)}
    bounded = [lv["groups"] for lv in levels
               if lv["keepalives_per_s"] <= 1.1 * lv["members"] / KEEPALIVE_INTERVAL_S
               and lv["etcd_watchers"] <= lv["members"] + SAMPLE_MEMBERS
               and set(lv["etcd_requests_per_s_by_method"]) <= {"LeaseKeepAlive_msgs"}]
    checks["one_keepalive_per_interval_one_watch_per_member"] = {
        "bounded": bounded, "met": len(bounded) == len(levels)}
    if levels:
        top, alone = levels[-1], result["alone"]["first_write_ms"]["p99"]
        ratio = top["failover"]["first_write_ms"]["p99"] / alone
        checks["failover_p99_vs_alone"] = {
            "groups": top["groups"], "p99_ms": top["failover"]["first_write_ms"]["p99"],
            "alone_p99_ms": alone, "ratio": round(ratio, 2), "target": FAILOVER_RATIO,
            "met": ratio <= FAILOVER_RATIO and top["failover"]["lost_acked"] == 0
            and top["failover"]["violations"] == 0}
    if result["idle"] is not None:
        idle = result["idle"]
        checks["db_flat_while_idle"] = {
            "idle_s": idle["window_s"], "revision_growth": idle["etcd_revision_growth"],
            "in_use_growth_per_hour_bytes": idle["etcd_db_in_use_growth_per_hour_bytes"],
            "met": idle["etcd_revision_growth"] == 0
            and idle["etcd_db_in_use_growth_per_hour_bytes"] <= 0}
    reached = levels[-1]["groups"] if levels else 0
    checks["reached"] = {"asked": max(asked), "reached": reached,
                         "met": reached >= max(asked),
                         "limit": None if reached >= max(asked) else (
                             "this machine's CPU (busy "
                             f"{levels[-1]['machine_cpu_busy']:.0%})" if levels
                             and levels[-1]["machine_saturated"] else "see the levels")}
    return checks


def group_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(x) for x in text.split(",")}))
    except ValueError:
        raise ValueError(f"--groups {text!r}: comma-separated counts, e.g. 10,100") from None
    if not counts or counts[0] < 1:
        raise ValueError(f"--groups {text!r}: every count must be >= 1")
    return counts


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every target met)."""
    p = parser(__doc__, prog)
    p.add_argument("--groups", default=",".join(map(str, GROUPS)),
                   help="fleet sizes to measure, in groups (default: %(default)s)")
    p.add_argument("--per-process", type=positive_int, default=100,
                   help="members per worker process (default: %(default)s)")
    p.add_argument("--window-s", type=float, default=30.0,
                   help="seconds measured at each size (default: %(default)s)")
    p.add_argument("--samples", type=positive_int, default=10,
                   help="sample failovers at each size and alone (default: %(default)s)")
    p.add_argument("--fleet-heartbeat-s", type=float, default=0.2,
                   help="the fleet members' replication heartbeat (default: %(default)s)")
    p.add_argument("--fleet-nice", type=int, default=10,
                   help="the fleet workers' niceness, 0..19 (default: %(default)s)")
    p.add_argument("--idle-s", type=float, default=0.0,
                   help="then keep the largest fleet idle this long (default: %(default)s)")
    opts = p.parse_args(argv)
    try:
        opts.groups = group_counts(opts.groups)
    except ValueError as e:
        p.error(str(e))
    if not 0 <= opts.fleet_nice <= 19:
        p.error(f"--fleet-nice {opts.fleet_nice}: must be 0..19")
    if opts.window_s <= 0:
        p.error(f"--window-s {opts.window_s}: must be positive")
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(opts)
    finally:
        signal.signal(signal.SIGTERM, previous)
    checks = judge(result, opts.groups)
    result["projection_1000"] = projection(result["levels"], 1000)
    ok = all(c["met"] for c in checks.values())
    return report({"benchmark": "fleet", "etcd_members": 3, "lease_ttl_s": 2,
                   "fleet_heartbeat_s": opts.fleet_heartbeat_s, "fleet_nice": opts.fleet_nice,
                   "per_process": opts.per_process,
                   **result, "checks": checks, "all_met": ok}, ok)
