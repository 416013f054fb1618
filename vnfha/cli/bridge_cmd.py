"""``vnfha bridge serve``, and the operator's commands ``vnfha bridge maintenance`` and
``vnfha bridge tickets`` (one connection and one mapping of refusals to exit codes for both)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from vnfha.cli._base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    print_table,
)
from vnfha.errors import ConfigError

if TYPE_CHECKING:
    from vnfha.nfvi.client import BridgeClient

T = TypeVar("T")

# -- vnfha bridge serve --------------------------------------------------------------------------


def host_uri(text: str) -> tuple[str, str]:
    host, sep, uri = text.partition("=")
    if not sep or not host or not uri:
        raise argparse.ArgumentTypeError(f"invalid --libvirt-host {text!r}: expected HOST=URI")
    return host, uri


def add_bridge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bridge", help="run the NFVI bridge, announce a maintenance to it, or "
                       "list its repair tickets",
                       description="The NFVI bridge: watchdog, placement, fencing and repairs "
                       "for vnfha members, over a hypervisor driver, and planned maintenance "
                       "announced by operators, who may also list the repair tickets "
                       "(docs/nfvi-bridge.md).")
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
    s.add_argument("--libvirt-host", action="append", type=host_uri, default=[],
                   metavar="HOST=URI", help="libvirt: a host and its connection URI "
                   "(repeatable; default: localhost=qemu:///system)")
    s.add_argument("--tls-cert", help="serve TLS with this certificate (with --tls-key)")
    s.add_argument("--tls-key", help="the certificate's key")
    s.add_argument("--tls-ca", help="mutual TLS: clients need a certificate signed by this CA, "
                   "whose CN is the member they call as")
    s.add_argument("--operator-cn", action="append", default=[], metavar="NAME",
                   help="mutual TLS: a client certificate CN that may announce maintenance "
                   "and list tickets (vnfha bridge maintenance, tickets); repeatable. Without "
                   "mutual TLS anyone may")
    s.add_argument("--state-file", metavar="PATH",
                   help="keep the highest epochs, repair tickets and pending maintenances in "
                   "this file across restarts (created if missing; a file that cannot be read "
                   "stops the bridge from starting). Default: in memory only")
    s.add_argument("--log-level", default="warning",
                   choices=("debug", "info", "warning", "error"),
                   help="the bridge's log level on stderr (default: %(default)s)")
    s.set_defaults(func=cmd_bridge_serve)
    add_bridge_maintenance(actions)
    add_bridge_tickets(actions)


def cmd_bridge_serve(args: argparse.Namespace) -> int:
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


# -- what the operator's commands share ---------------------------------------------------------


def add_operator_command(actions: argparse._SubParsersAction[argparse.ArgumentParser],
                         name: str, *, summary: str, description: str) -> argparse.ArgumentParser:
    """The parser of an operator's command, with the flags that reach the bridge: address, TLS
    files, deadline, and --json."""
    p = actions.add_parser(name, help=summary, description=f"{description} Under mutual TLS "
                           "the certificate's CN must be one of the bridge's --operator-cn names.")
    p.add_argument("--bridge", required=True, metavar="HOST:PORT", help="the bridge's address")
    p.add_argument("--ca-file", help="TLS: the CA to verify the bridge against")
    p.add_argument("--cert-file", help="mutual TLS: the operator's certificate (with --key-file)")
    p.add_argument("--key-file", help="its key")
    p.add_argument("--timeout-s", type=float, default=5.0,
                   help="deadline for the call, retries included (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    return p


def as_operator(args: argparse.Namespace,
                call: Callable[[BridgeClient], Awaitable[T]]) -> T:
    """``call`` on an operator's client of ``args.bridge`` (see :func:`add_operator_command`).
    Exit codes: bad flags and INVALID_ARGUMENT 2, any other refusal 1, unreachable 3."""
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

    async def run() -> T:
        async with BridgeClient.operator(args.bridge, timeout_s=args.timeout_s,
                                         credentials=credentials) as ops:
            return await call(ops)

    try:
        return asyncio.run(run())
    except BridgeUnavailable as e:
        raise CliError(f"bridge unreachable at {args.bridge}: {e}", EXIT_UNREACHABLE) from None
    except BridgeRequestError as e:
        code = EXIT_USAGE if e.code == "INVALID_ARGUMENT" else EXIT_FAILED
        raise CliError(f"the bridge refused ({e.code}): {e}", code) from None


# -- vnfha bridge maintenance --------------------------------------------------------------------


def add_bridge_maintenance(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = add_operator_command(
        actions, "maintenance", summary="announce a planned maintenance of a host",
        description="Tell a running bridge that --host goes down in --in-s seconds: every group "
        "with an instance there receives MAINTENANCE_PLANNED, and an active on that host "
        "switches over at once. Nothing is stopped. Prints the instances notified.")
    m.add_argument("--host", required=True, metavar="NAME", help="the host, as the driver "
                   "names it")
    m.add_argument("--in-s", required=True, type=float, metavar="SECONDS",
                   help="the host goes down this many seconds from now (> 0, at most 7 days)")
    m.add_argument("--reason", default="", help="why, for the members' logs")
    m.set_defaults(func=cmd_bridge_maintenance)


def cmd_bridge_maintenance(args: argparse.Namespace) -> int:
    import datetime  # noqa: PLC0415

    plan = as_operator(args, lambda ops: ops.plan_maintenance(args.host, args.in_s,
                                                              args.reason))
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


# -- vnfha bridge tickets ------------------------------------------------------------------------

TICKET_COLUMNS = ("TICKET", "GROUP", "MEMBER", "INSTANCE", "HOST", "ACTION", "OWNER", "STATE",
                  "EPOCH", "DETAIL")


def add_bridge_tickets(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = add_operator_command(
        actions, "tickets", summary="list the repair tickets, open and recent",
        description="List the repair tickets a running bridge remembers, newest first: who "
        "owns each repair, where it stands, what happened last.")
    t.add_argument("--group", metavar="GROUP", help="only this group's tickets")
    t.add_argument("--open", action="store_true",
                   help="only the open tickets (queued or in progress)")
    t.add_argument("--limit", type=int, metavar="N",
                   help="at most N tickets, the newest (default: the bridge's, 100)")
    t.set_defaults(func=cmd_bridge_tickets)


def cmd_bridge_tickets(args: argparse.Namespace) -> int:
    from vnfha.nfvi.wire import MAX_TICKET_LIMIT  # noqa: PLC0415

    if args.limit is not None and not 1 <= args.limit <= MAX_TICKET_LIMIT:
        raise CliError(f"--limit {args.limit}: must be 1..{MAX_TICKET_LIMIT}")
    listing = as_operator(args, lambda ops: ops.list_tickets(
        group=args.group or None, open_only=args.open, limit=args.limit))
    if args.json:
        tickets = [{**dataclasses.asdict(t), "open": not t.state.terminal}
                   for t in listing.tickets]
        print(json.dumps({"matched": listing.matched, "tickets": tickets}))
        return EXIT_OK
    which = "open repair ticket" if args.open else "repair ticket"
    of = f" of group {args.group}" if args.group else ""
    if not listing.matched:
        print(f"no {which}s{of}")
        return EXIT_OK
    print_table([TICKET_COLUMNS, *[
        (t.ticket_id, t.group, t.member, t.instance, t.host, t.action, t.owner_name, t.state,
         str(t.epoch), t.detail) for t in listing.tickets]])
    shown = "" if listing.complete else f"the newest {len(listing.tickets)} of "
    print(f"{shown}{listing.matched} {which}(s){of}, newest first")
    return EXIT_OK
