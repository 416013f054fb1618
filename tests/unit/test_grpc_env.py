"""The gRPC transport vnfha chooses on import (``vnfha/_grpc_env.py``): only when nobody chose
one and grpc has not started yet. Each case is a fresh interpreter, as the choice is made once,
when vnfha is first imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LEGACY = "-event_engine_client,-event_engine_listener"


def transport(code: str, **env: str) -> str:
    """``GRPC_EXPERIMENTS`` as a fresh interpreter running ``code`` ends with (``-``: unset)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("GRPC_EXPERIMENTS", "VNFHA_GRPC_EVENT_ENGINE")}
    out = subprocess.run([sys.executable, "-c", f"{code}; import os; "
                          "print(os.environ.get('GRPC_EXPERIMENTS', '-'))"],
                         capture_output=True, text=True, env={**base, **env}, check=True,
                         timeout=60)
    return out.stdout.strip()


@pytest.mark.parametrize(("code", "env", "expected"), [
    ("import vnfha, grpc", {}, LEGACY),  # nobody chose: the polling transport
    ("import vnfha", {"GRPC_EXPERIMENTS": "event_engine_client"}, "event_engine_client"),
    ("import vnfha", {"VNFHA_GRPC_EVENT_ENGINE": "1"}, "-"),  # grpc's default asked for
    ("import grpc, vnfha", {}, "-"),  # too late: grpc has read the variable already
], ids=["chosen", "operator-kept", "opted-out", "grpc-first"])
def test_the_transport_is_chosen_only_when_nobody_did(code: str, env: dict[str, str],
                                                      expected: str) -> None:
    assert transport(code, **env) == expected
