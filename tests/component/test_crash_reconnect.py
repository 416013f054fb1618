"""A standby finds a SIGKILLed active's process gone at once, even while the dying process's
listening socket lingers (the kernel tears a killed process down after the signal: a connection
made in that moment is accepted into the backlog, then reset rather than refused)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from vnfha.replication.standby import QUICK_RETRIES, QUICK_RETRY_S, reconnect_delay
from vnfha.testing.replication import ReplicationRig, until

STEP_S = 0.2
"""The standby's usual retry step in this test: long, so that waiting it out shows."""


async def test_a_lingering_listener_of_a_dying_active_does_not_delay_the_refusal() -> None:
    async with ReplicationRig.start(group="vfw", member="a") as rig:
        b = rig.replica("b", retry_s=STEP_S)
        gone: list[float] = []
        b.on_gone = lambda epoch, why: gone.append(time.monotonic())
        rig.follow(b)
        await until(lambda: b.connected, what="b streams from a")
        host, port = rig.address.rsplit(":", 1)
        # gRPC servers listen with SO_REUSEPORT: a second listener on the port stands for the
        # dying process's socket, which accepts into its backlog and never answers
        lingering = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lingering.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            lingering.bind((host, int(port)))
            lingering.listen(16)
            killed = time.monotonic()
            await rig.server.stop(0)  # the stream breaks; b reconnects into the backlog
            await asyncio.sleep(0.03)
        finally:
            lingering.close()  # the process is gone: its backlog is reset
        await until(lambda: bool(gone), 5, what="b finds the active's process gone")
        assert gone[0] - killed < STEP_S, gone[0] - killed  # not a whole step later


@pytest.mark.parametrize(("was_streaming", "quick_left", "expected"), [
    (True, 0, (0.0, QUICK_RETRIES)),  # a delivering stream broke: at once, then quickly
    (True, 3, (0.0, QUICK_RETRIES)),
    (False, QUICK_RETRIES, (QUICK_RETRY_S, QUICK_RETRIES - 1)),
    (False, 1, (QUICK_RETRY_S, 0)),
    (False, 0, (STEP_S, 0)),  # no stream for a while: the usual step
])
def test_reconnect_delay(was_streaming: bool, quick_left: int,
                         expected: tuple[float, int]) -> None:
    assert reconnect_delay(was_streaming, quick_left, STEP_S) == expected


def test_quick_retries_end_within_a_step() -> None:
    """They cover the moment a killed process takes to go, not a frozen one: a few tens of
    milliseconds, less than the step they shorten (two heartbeats, 100 ms by default)."""
    assert QUICK_RETRIES * QUICK_RETRY_S <= 0.1
