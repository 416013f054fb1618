"""``vnfha demo`` and ``vnfha bench``."""

from __future__ import annotations

import argparse
import sys

from vnfha.cli._base import EXIT_OK, CliError

# -- vnfha demo ----------------------------------------------------------------------------------


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="see a failover: etcd, a sim bridge and an example pair",
                       description="Start a local etcd, an NFVI bridge (sim driver) and the "
                       "udp_counter example pair; fault the active and print the failover "
                       "timeline and the client's outage. Everything is stopped at the end.",
                       add_help=False)
    p.add_argument("demo_args", nargs=argparse.REMAINDER,
                   help="passed to the demo (--kill sigkill|sigstop|switchover, --json, --help)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from vnfha.apps.demo import main as demo_main  # noqa: PLC0415 - imports the examples' code

    return demo_main(args.demo_args)


# -- vnfha bench ---------------------------------------------------------------------------------


def add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="run a benchmark against DESIGN.md's targets (JSON)",
                       description="Run one benchmark (vnfha bench --help lists them).",
                       add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="NAME [OPTIONS]",
                   help="the benchmark, then its own options (vnfha bench NAME --help)")
    p.set_defaults(func=cmd_bench)


def bench_listing() -> str:
    from vnfha.apps.bench import BENCHMARKS  # noqa: PLC0415

    width = max(len(name) for name in BENCHMARKS)
    lines = [f"  {name.ljust(width)}  {what}" for name, what in BENCHMARKS.items()]
    return ("usage: vnfha bench NAME [OPTIONS]\n\n"
            "Run one benchmark on this machine. It prints one JSON object with its figures\n"
            "against DESIGN.md's targets and exits 0 when every target is met and every check\n"
            "passed, 1 otherwise.\n\nbenchmarks:\n" + "\n".join(lines) + "\n\n"
            "vnfha bench NAME --help says what NAME measures, its targets and options.")


def cmd_bench(args: argparse.Namespace) -> int:
    from vnfha.apps.bench import BENCHMARKS, load  # noqa: PLC0415

    name, *rest = args.bench_args or [""]
    if name in ("-h", "--help"):
        print(bench_listing())
        return EXIT_OK
    if not name:
        print(bench_listing() + "\n", file=sys.stderr)
        raise CliError(f"name a benchmark: one of {', '.join(BENCHMARKS)}")
    if name not in BENCHMARKS:
        raise CliError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return load(name)(rest, prog=f"vnfha bench {name}")
