"""hello_vnf.py for a blocking program: no asyncio in sight, through ``vnfha.blocking``.

    python examples/blocking_vnf.py --group vfw --member vfw-a [--etcd 127.0.0.1:2379]

It "serves" (prints a line a second) only while ACTIVE, and checkpoints how many requests it
has served, so a standby that takes over carries on counting. Callbacks are plain functions;
vnfha runs each in a thread of its own, so they may block (and may call the member). The
command line and settings are hello_vnf.py's (imported from it, next to this file). Ctrl-C or
SIGTERM stops it cleanly: an active hands over first.
"""

from __future__ import annotations

import logging
import signal
import threading

from hello_vnf import load_config  # the same command line (run from examples/, as a script)

import vnfha
import vnfha.blocking


class BlockingHello(vnfha.blocking.Component):
    """Serves while active; every callback says what happened."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.member: vnfha.blocking.Member | None = None

    def on_active(self, a: vnfha.Assignment) -> None:
        assert self.member is not None
        served = int(self.member.checkpoint.get("hello", "served") or b"0")
        print(f"[{self.name}] ACTIVE at epoch {a.epoch} (was {a.previous_role}), "
              f"{served} requests served before: {a.reason}")

    def on_standby(self, a: vnfha.Assignment) -> None:
        print(f"[{self.name}] {a.role.upper()} following {a.active} (epoch {a.epoch})")

    def on_quiesce(self) -> None:
        print(f"[{self.name}] quiescing: handing over")


def main(config: vnfha.Config) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    hello = BlockingHello(config.member)
    member = vnfha.blocking.Member(config, hello)
    hello.member = member  # before starting: callbacks may come as soon as it has started
    with member:
        while not stop.wait(1.0):
            if not member.is_active():  # check before every action: a deposed active must not act
                continue
            served = int(member.checkpoint.get("hello", "served") or b"0") + 1
            # protect it on the standby when there is one in sync; alone, keep it locally
            ack = vnfha.Ack.ONE if member.checkpoint.in_sync else vnfha.Ack.NONE
            try:
                member.checkpoint.put("hello", "served", str(served).encode(), ack=ack)
            except vnfha.CheckpointError as e:  # no standby acknowledged it in time
                print(f"[{config.member}] request {served} not protected: {e}")
            except vnfha.NotActive:
                continue  # deposed meanwhile: that request is not ours to answer
            print(f"[{config.member}] serving request {served} (epoch {member.epoch})")
    print(f"[{config.member}] stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main(load_config())
