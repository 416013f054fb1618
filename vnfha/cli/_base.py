"""What every ``vnfha`` subcommand shares: exit codes, the error that carries one, argument
types, and reaching a group's etcd from the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from vnfha.errors import (
    ConfigError,
    StoreAuthError,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from vnfha.store.base import Store


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """A user-facing failure: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be 1..65535")
    return port


def positive_ms_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {value}: must be > 0")
    return value



# -- talking to a group's etcd -------------------------------------------------------------------


def add_etcd_flags(p: argparse.ArgumentParser) -> None:
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


def store_from_args(args: argparse.Namespace) -> Store:
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


def run_against_etcd(args: argparse.Namespace,
                      action: Callable[[Store], Awaitable[int]]) -> int:
    """Run ``action(store)``, mapping etcd and input failures to exit codes."""
    store = store_from_args(args)

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


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (the first is the header) as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
