"""TLS and mutual TLS on the bridge: with mTLS a caller must present a certificate whose CN is
the member it claims to be, in the group it acts on."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.errors import BridgeRequestError, BridgeUnavailable
from vnfha.nfvi import wire
from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import FenceMode, InstanceState, WatchdogAction
from vnfha.testing.tls import TestPki, make_test_pki

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]
CALL_S = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")),
                         members=["vfw-a", "vfw-b", "dns-a"], clients=["intruder"])


@pytest.fixture
async def sim() -> AsyncIterator[SimDriver]:
    driver = SimDriver()
    try:
        await driver.launch("vm-a", group="vfw", member="vfw-a", host="h1", argv=SLEEPER)
        await driver.launch("vm-b", group="vfw", member="vfw-b", host="h2", argv=SLEEPER)
        await driver.launch("vm-d", group="dns", member="dns-a", host="h3", argv=SLEEPER)
        yield driver
    finally:
        await driver.close()


def server_creds(pki: TestPki, *, mutual: bool) -> grpc.ServerCredentials:
    return wire.server_credentials(cert_file=pki.server.cert_file, key_file=pki.server.key_file,
                                   ca_file=pki.ca_file, require_client_cert=mutual)


def client(bridge: BridgeServer, pki: TestPki, member: str, *, cert_of: str | None,
           group: str = "vfw", timeout_s: float = CALL_S) -> BridgeClient:
    files = (pki.members.get(cert_of) or pki.clients.get(cert_of)) if cert_of else None
    creds = wire.channel_credentials(
        ca_file=pki.ca_file, cert_file=files.cert_file if files else None,
        key_file=files.key_file if files else None)
    target = f"localhost:{bridge.port}"
    return BridgeClient(target, group=group, member=member, timeout_s=timeout_s,
                        credentials=creds)


async def test_mutual_tls_checks_the_caller_against_its_certificate_and_group(
        pki: TestPki, sim: SimDriver) -> None:
    async with BridgeServer(sim, server_credentials=server_creds(pki, mutual=True),
                            require_client_cert=True) as bridge:
        async with client(bridge, pki, "vfw-b", cert_of="vfw-b") as standby:
            fenced = await standby.fence("vfw-a", 1, FenceMode.STOP, "silent")
            assert fenced.state is InstanceState.PAUSED
        cases = [
            ("vfw-b", "vfw-a", "vfw"),      # a member's certificate claiming another member
            ("dns-a", "dns-a", "vfw"),      # a member of another group
            ("intruder", "intruder", "vfw"),  # a valid certificate, no member of the group
            ("vfw-a", "vfw-a", "nope"),     # an unknown group: refused, not NOT_FOUND
        ]
        for cert_of, member, group in cases:
            async with client(bridge, pki, member, cert_of=cert_of, group=group) as c:
                with pytest.raises(BridgeRequestError) as e:
                    await c.arm_watchdog(10.0, WatchdogAction.NONE, 1)
                assert e.value.code == "PERMISSION_DENIED", (cert_of, member, group)
                assert repr(cert_of) in str(e.value)
        async with client(bridge, pki, "vfw-a", cert_of=None, timeout_s=1.0) as anonymous:
            with pytest.raises(BridgeUnavailable):
                await anonymous.placement()
        async with client(bridge, pki, "dns-a", cert_of="dns-a", group="dns") as dns:
            assert [m.member for m in (await dns.placement()).members] == ["dns-a"]


async def test_server_only_tls_serves_callers_without_certificates(
        pki: TestPki, sim: SimDriver) -> None:
    async with BridgeServer(sim, server_credentials=server_creds(pki, mutual=False)) as bridge:
        async with client(bridge, pki, "vfw-a", cert_of=None) as c:
            assert (await c.arm_watchdog(10.0, WatchdogAction.NONE, 1)).armed
        plain = BridgeClient(bridge.address, group="vfw", member="vfw-a", timeout_s=1.0)
        async with plain:
            with pytest.raises(BridgeUnavailable):
                await plain.placement()


def test_mutual_tls_needs_credentials_and_a_ca(pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="require_client_cert needs server_credentials"):
        BridgeServer(SimDriver(), require_client_cert=True)
    with pytest.raises(ValueError, match="needs a CA file"):
        wire.server_credentials(cert_file=pki.server.cert_file, key_file=pki.server.key_file,
                                ca_file=None, require_client_cert=True)
