"""The client side without a bridge (no sockets): NoBridge, the null port, and the client's
argument checks; and the sim inventory file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnfha.bridge.drivers.inventory import load_inventory, parse_inventory
from vnfha.errors import ConfigError, NfviError
from vnfha.nfvi.client import BridgeClient, NfviPort, NoBridge
from vnfha.nfvi.model import (
    FenceMode,
    PlacementPolicy,
    RepairAction,
    RepairOwner,
    RepairState,
    WatchdogAction,
)


async def test_no_bridge_does_nothing_and_never_claims_a_fence() -> None:
    port: NfviPort = NoBridge(group="g", member="a")
    assert not port.configured
    assert not (await port.arm_watchdog(1.0, WatchdogAction.RESET, 3)).armed
    assert not (await port.kick(3)).armed
    assert not (await port.disarm(3)).armed
    with pytest.raises(NfviError, match="cannot fence 'b': no NFVI bridge"):
        await port.fence("b", 3, FenceMode.KILL, "silent")
    assert (await port.placement()).members == ()
    assert (await port.check_policy(PlacementPolicy.AFFINITY)).satisfied
    ticket = await port.escalate("k", "db lost", RepairAction.REBOOT, 3)
    assert ticket.owner is RepairOwner.VNF and ticket.state is RepairState.RECORDED
    assert [t async for t in port.watch_repair(ticket.ticket_id, timeout_s=1)] == []
    assert [e async for e in port.watch_events()] == []


async def test_client_needs_a_positive_timeout_and_to_be_opened() -> None:
    with pytest.raises(ValueError, match="timeout_s=0"):
        BridgeClient("127.0.0.1:1", group="g", member="a", timeout_s=0)
    client = BridgeClient("127.0.0.1:1", group="g", member="a", timeout_s=1)
    assert client.configured
    with pytest.raises(NfviError, match="not open"):
        await client.placement()


GOOD = """
hosts = ["h1", "h2"]

[[instances]]
name = "vm-a"
group = "vfw"
member = "vfw-a"
host = "h1"
argv = ["python", "-c", "pass"]
env = { X = "1" }
cwd = "sub"
"""


def test_inventory_loads(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(GOOD)
    inv = load_inventory(path)
    assert inv.hosts == ("h1", "h2")
    (spec,) = inv.instances
    assert (spec.name, spec.group, spec.member, spec.host) == ("vm-a", "vfw", "vfw-a", "h1")
    assert spec.argv == ("python", "-c", "pass") and spec.env == {"X": "1"}
    assert spec.cwd == str(tmp_path / "sub")


ENTRY = {"name": "vm", "group": "g", "member": "m", "host": "h", "argv": ["x"]}


@pytest.mark.parametrize(("data", "field"), [
    ({"instances": [{**ENTRY, "colour": "red"}]}, "instances[0].colour"),
    ({"instances": [{**ENTRY, "group": ""}]}, "instances[0].group"),
    ({"instances": [{**ENTRY, "argv": []}]}, "instances[0].argv"),
    ({"instances": [{**ENTRY, "argv": "python"}]}, "instances[0].argv"),
    ({"instances": [{**ENTRY, "env": {"X": 1}}]}, "instances[0].env"),
    ({"instances": [ENTRY, ENTRY]}, "instances[1].name"),
    ({"instances": [ENTRY, {**ENTRY, "name": "vm2"}]}, "instances[1].member"),
    ({"hosts": "h1"}, "hosts"),
    ({"hots": []}, "hots"),
])
def test_inventory_refusals_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_inventory(data, base=Path("."))
    assert e.value.field == field


def test_unreadable_inventory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_inventory(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[instances]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_inventory(bad)
