"""The ``vnfha`` command (also ``python -m vnfha``).

Exit codes, for every subcommand, with a one-line ``vnfha <cmd>: error: ...`` on stderr that
names the offending value:

- 0 success;
- 1 the request was understood and failed: unknown group or member, a switchover refused or not
  completed, the local etcd died;
- 2 bad usage or input: a bad flag, a bad group or member name, a taken port, no etcd binary,
  a bridge state file (``--state-file``) that is corrupt, of another version, or unusable,
  a config file that is refused (``check-config``: its timers cannot meet a budget, say);
- 3 etcd (or, for ``bridge maintenance`` and ``bridge tickets``, the bridge) could not be
  reached, or refused the credentials.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from vnfha.cli._base import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from vnfha.cli.apps import add_bench, add_demo, cmd_bench
from vnfha.cli.bridge_cmd import add_bridge
from vnfha.cli.config_cmd import add_check_config
from vnfha.cli.etcd_cmd import add_etcd
from vnfha.cli.group import add_history, add_ladder, add_lock, add_status, add_switchover

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]

# -- entry point ---------------------------------------------------------------------------------

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    add_etcd,
    add_status,
    add_switchover,
    add_lock,
    add_history,
    add_ladder,
    add_bridge,
    add_check_config,
    add_demo,
    add_bench,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from vnfha import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="vnfha", description="High availability for VNFs: roles on etcd, checkpoints, "
        "health escalation, NFVI bridge.",
    )
    parser.add_argument("--version", action="version", version=f"vnfha {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # its options (--help too) are the demo's own parser's
        from vnfha.apps.demo import main as demo_main  # noqa: PLC0415 - imports the examples' code

        return demo_main(argv[1:])
    if argv[:1] == ["bench"]:  # the rest (--help too) is the benchmark's own parser's
        args = argparse.Namespace(command="bench", func=cmd_bench, bench_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as e:
        print(f"vnfha {args.command}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
