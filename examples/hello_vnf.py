"""The smallest VNF with vnfha: it "serves" (prints a line a second) only while ACTIVE.

    python examples/hello_vnf.py --group vfw --member vfw-a [--etcd 127.0.0.1:2379]

Every other setting comes from ``vnfha.toml`` in the current directory if there is one, and from
``VNFHA_*`` environment variables (see docs/configuration.md). Ctrl-C stops it cleanly: an
active hands over to its standby first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

import vnfha


class HelloVnf(vnfha.Component):
    """Serves while active; every callback just says what happened."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_active(self, a: vnfha.Assignment) -> None:
        print(f"[{self.name}] ACTIVE at epoch {a.epoch} (was {a.previous_role}): {a.reason}")

    async def on_standby(self, a: vnfha.Assignment) -> None:
        print(f"[{self.name}] {a.role.upper()} following {a.active} (epoch {a.epoch})")

    async def on_quiesce(self) -> None:
        print(f"[{self.name}] quiescing: handing over")


def load_config() -> vnfha.Config:
    """Command-line names and endpoints, then vnfha.toml (if present) and VNFHA_* variables."""
    p = argparse.ArgumentParser(description="a minimal vnfha member")
    p.add_argument("--group", required=True)
    p.add_argument("--member", required=True)
    p.add_argument("--etcd", default=None, help="comma-separated endpoints")
    args = p.parse_args()
    os.environ["VNFHA_GROUP"] = args.group
    os.environ["VNFHA_MEMBER"] = args.member
    if args.etcd:
        os.environ["VNFHA_ETCD_ENDPOINTS"] = args.etcd
    return vnfha.load_config("vnfha.toml" if os.path.exists("vnfha.toml") else None)


async def main(config: vnfha.Config) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with vnfha.Member(config, HelloVnf(config.member)) as member:
        n = 0
        while not stop.is_set():
            if member.is_active():  # check before every action: a deposed active must not act
                n += 1
                print(f"[{config.member}] serving request {n} (epoch {member.epoch})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    print(f"[{config.member}] stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(load_config()))
