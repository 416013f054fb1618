"""The gRPC transport vnfha runs on, chosen before grpc is first imported (importing this module
does it; ``vnfha/__init__.py`` imports it first).

grpc reads ``GRPC_EXPERIMENTS`` once, when its core starts. Since grpcio 1.6x its client and
listener run on the EventEngine by default, which costs an asyncio program a thread hop per
read and write: measured on this machine (issue 14, ``vnfha bench checkpoint``), a bare
grpc.aio ping-pong between two processes ran at 6,000-6,500 round trips/s with it and 8,400-
12,200/s without, and one writer's ``Ack.ONE`` at 3,350-3,600 writes/s (p50 0.23-0.24 ms)
against 4,900-5,200/s (p50 0.16 ms). So vnfha asks for the older, polling client and listener
(``-event_engine_client,-event_engine_listener``) unless:

- ``GRPC_EXPERIMENTS`` is already set (the operator's choice is kept as it is);
- ``VNFHA_GRPC_EVENT_ENGINE=1`` asks for grpc's default;
- grpc was imported before vnfha (too late: it has read the variable; nothing is changed).

The variable is inherited by the processes vnfha starts (member processes, benchmarks). A grpc
that no longer knows these experiments logs that and runs its default.
"""

from __future__ import annotations

import os
import sys

__all__ = ["LEGACY_TRANSPORT", "applied"]

LEGACY_TRANSPORT = "-event_engine_client,-event_engine_listener"


def _apply() -> bool:
    if "grpc" in sys.modules or "GRPC_EXPERIMENTS" in os.environ:
        return False
    if os.environ.get("VNFHA_GRPC_EVENT_ENGINE", "").strip().lower() in ("1", "true", "yes"):
        return False
    os.environ["GRPC_EXPERIMENTS"] = LEGACY_TRANSPORT
    return True


applied = _apply()
"""True when this import chose the transport (False: left to the operator or to grpc)."""
