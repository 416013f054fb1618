"""The committed protobuf modules are exactly what the pinned generator makes from proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_wire_messages_live_in_a_private_package() -> None:
    from vnfha._etcdwire import etcd_pb2  # noqa: PLC0415 - the import is what is tested

    assert etcd_pb2.DESCRIPTOR.package == "vnfha.etcdwire.v1"
    # the field-number traps of etcd's protocol
    assert etcd_pb2.WatchResponse.DESCRIPTOR.fields_by_name["events"].number == 11
    assert etcd_pb2.Compare.DESCRIPTOR.fields_by_name["range_end"].number == 64
