"""Client-visible outage through a service address that follows the active, with the pair on
two hosts of a lab (root; ``docs/lab.md``), over N trials of each fault path:

- ``sigkill``: SIGKILL of the active (its host's kernel refuses the standby's reconnect);
- ``sigstop``: SIGSTOP of the active; the standby suspects it, has the bridge fence it, and
  takes over;
- ``partition``: the active's host cut off from every other host (IPv4 and IPv6, both ways);
  the standby suspects it, has the bridge fence it, and takes over.

The stage is ``vnfha demo --hosts``'s (:mod:`vnfha.apps.demo_hosts`): one lab and one etcd for
every trial (host ``etcd``), and per trial a fresh group, a fresh NFVI bridge over the sim
driver (host ``nfvi``), members ``a`` and ``b`` of the udp_counter example on hosts ``host_a``
and ``host_b`` with the service address 198.51.100.100/24, and the example's client on host
``client`` sending to that address only. Each trial is one quiet run of the demo: the pair
in sync, the client's traffic for ``--before-s``, the fault, the takeover, the repair (the
faulted member relaunched, after healing a partition), ``--after-s`` more traffic. Between
trials the address is removed from both member hosts (a killed active's host keeps it until
its lifetime runs out, 4 s after the last renewal, or the member starts again).

Measured per trial, from the client's replies: the *outage*, the longest gap between replies
that overlaps the failover (from the fault to the new active serving); its resolution is the
client's retransmission interval (``--retry-ms``, over ``--sessions`` sessions retrying
independently). Also, from the fault: the bridge's fence (``fenced_ms``; SIGSTOP and
partition), the new active's ``on_active`` (``takeover_ms``: the service address is on its
host by then) and the client's first reply from the new epoch (``first_reply_ms``). The fault's
time is the signal's, or for a partition the moment its rules are in force. Each trial's
figures are listed under ``each``.

Checked in every trial (``every_trial_checked``): a takeover at a higher epoch; no reply from
the deposed active after its successor's first reply (each reply names the epoch of the active
that sent it); no reply from another address than the service address; no acknowledged
increment lost (each session's counts never go back). A trial whose active changed before the
fault (a false suspicion, on a machine too busy for the heartbeats) is not measured: it counts
as failed, with that problem, under ``problems``.

Targets (p99 of the outage): ``sigkill`` <= 60 ms; ``sigstop`` and ``partition`` <= 450 ms.

    vnfha bench hosts [--trials 20] [--paths sigkill,sigstop,partition]

Prints one JSON object; exit 0 when every path run met its target and every trial passed its
checks (``all_met``), 1 otherwise, 2 for bad options or without root.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Any

from vnfha.apps.bench._common import add_paths, parser, positive_int, report, summary
from vnfha.apps.demo import run_demo
from vnfha.apps.demo_hosts import SERVICE_ADDRESS, Stage, open_stage, run_on_host, unavailable
from vnfha.apps.demo_run import DemoOptions
from vnfha.errors import VnfhaError

TARGETS_P99_MS = {"sigkill": 60.0, "sigstop": 450.0, "partition": 450.0}
"""The client-visible outage's p99 target per fault path."""
PATHS = tuple(TARGETS_P99_MS)
EACH = ("trial", "ok", "outage_ms", "takeover_ms", "first_reply_ms", "fenced_ms", "epochs")
"""What the report lists of each trial (under ``each``)."""


def trial_options(path: str, n: int, args: Any) -> DemoOptions:
    """The demo's options for trial ``n`` of ``path``: its own group, the bench's traffic."""
    return DemoOptions(
        group=f"hosts-{path}-{n}", rate=args.rate, sessions=args.sessions,
        traffic_before_fault_s=args.before_s, traffic_after_fault_s=args.after_s,
        client_retry_s=args.retry_ms / 1000, outage_threshold_s=args.threshold_ms / 1000)


async def trial(stage: Stage, path: str, n: int, args: Any) -> dict[str, Any]:
    """One quiet demo run; its figures and checks (``error`` when a step failed)."""
    await asyncio.to_thread(stage.clear_service_address)
    out = io.StringIO()
    try:
        demo = await run_demo(out=out, kill=path, options=trial_options(path, n, args),
                              stage=stage)
    except VnfhaError as e:
        return {"trial": n, "ok": False, "error": str(e), "tail": out.getvalue()[-3000:]}
    client = demo.client
    outage = client["fault_outage_ms"]
    # the fence (a power-off by the bridge: fence_mode kill), as the bridge reported it
    fenced = next((e.t for e in demo.timeline if e.source == "bridge" and e.t >= demo.fault_at_s
                   and e.text.startswith("vm-stopped") and "powered off" in e.text), None)
    return {
        "trial": n, "ok": demo.ok, "problem": demo.problem,
        # no gap at the failover reached the threshold: the outage was below it
        "outage_ms": args.threshold_ms if outage is None else float(outage),
        "takeover_ms": demo.takeover_ms, "first_reply_ms": demo.first_reply_ms,
        "fenced_ms": None if fenced is None else round((fenced - demo.fault_at_s) * 1000, 1),
        "stale_replies": client["stale_replies"],
        "replies_from_elsewhere": client["replies_from_elsewhere"],
        "lost_increments": client["lost_increments"], "answered": client["answered"],
        "given_up": client["lost"], "epochs": [demo.epoch_before, demo.epoch_after],
    }


def figures(path: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """One path's summary against its target."""
    done = [r for r in results if "error" not in r]
    part: dict[str, Any] = {"trials": len(results), "failed_trials": len(results) - len(done),
                            "target_p99_ms": TARGETS_P99_MS[path]}
    if done:
        part["outage_ms"] = summary([r["outage_ms"] for r in done])
        part["takeover_ms"] = summary([r["takeover_ms"] for r in done])
        firsts = [r["first_reply_ms"] for r in done if r["first_reply_ms"] is not None]
        if firsts:
            part["first_reply_ms"] = summary(firsts)
        fenced = [r["fenced_ms"] for r in done if r["fenced_ms"] is not None]
        if fenced:
            part["fenced_ms"] = summary(fenced)
    for key in ("stale_replies", "replies_from_elsewhere", "lost_increments", "given_up",
                "answered"):
        part[key] = sum(r[key] for r in done)
    part["every_trial_checked"] = len(done) == len(results) and all(r["ok"] for r in done)
    part["problems"] = [{"trial": r["trial"], "problem": r.get("error") or r["problem"],
                         **({"tail": r["tail"]} if "tail" in r else {})}
                        for r in results if not r["ok"]]
    part["met"] = bool(part["every_trial_checked"] and done
                       and part["outage_ms"]["p99"] <= TARGETS_P99_MS[path])
    part["each"] = [{k: r[k] for k in EACH if k in r} for r in results]
    return part


async def run_trials(stage: Stage, paths: Sequence[str], args: Any) -> dict[str, Any]:
    """Every trial of every path, in turn, on ``stage`` (run on its ``nfvi`` host)."""
    results: dict[str, Any] = {}
    for path in paths:
        trials = [await trial(stage, path, n, args) for n in range(args.trials)]
        results[path] = figures(path, trials)
    return {
        "benchmark": "hosts", "trials": args.trials, "paths": list(paths),
        "setup": {"hosts": [f"{h.name} {h.ipv4}" for h in stage.lab.hosts],
                  "service_address": SERVICE_ADDRESS, "rate_per_s": args.rate,
                  "sessions": args.sessions, "retry_ms": args.retry_ms,
                  "threshold_ms": args.threshold_ms, "before_s": args.before_s,
                  "after_s": args.after_s},
        "targets_p99_ms": {p: TARGETS_P99_MS[p] for p in paths},
        "results": results,
        "all_met": all(r["met"] for r in results.values()),
    }


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the benchmark; the exit status (0: every path met its target and every trial its
    checks)."""
    p = parser(__doc__, prog)
    p.add_argument("--trials", type=positive_int, default=20,
                   help="faults injected per path, each in a fresh group (default: %(default)s)")
    add_paths(p, PATHS)
    p.add_argument("--rate", type=float, default=300.0,
                   help="client requests/s over all sessions (default: %(default)s)")
    p.add_argument("--sessions", type=positive_int, default=8,
                   help="client sessions, each one request at a time (default: %(default)s)")
    p.add_argument("--retry-ms", type=float, default=10.0,
                   help="the client retransmits an unanswered request this often: the "
                   "outage's resolution (default: %(default)s)")
    p.add_argument("--threshold-ms", type=float, default=5.0,
                   help="gaps between replies this long count as outages (default: "
                   "%(default)s)")
    p.add_argument("--before-s", type=float, default=1.0,
                   help="traffic before the fault (default: %(default)s)")
    p.add_argument("--after-s", type=float, default=1.5,
                   help="traffic after the fault (default: %(default)s)")
    args = p.parse_args(argv)
    paths: list[str] = args.paths
    for name in ("rate", "retry_ms", "threshold_ms", "before_s", "after_s"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be positive")
    reason = unavailable()
    if reason is not None:
        p.error(reason)
    with open_stage("vbench") as stage:
        out = run_on_host(stage.nfvi, lambda: run_trials(stage, paths, args))
    return report(out, out["all_met"])
