"""``metrics_host``: a member's metrics endpoint binds loopback unless told otherwise, and with
``0.0.0.0`` a scraper reaches it on the host's other addresses (issue 16, item 7)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from vnfha import Config, Member
from vnfha.metrics import MemberMetrics
from vnfha.store.memory import MemoryStore


def outside_addresses() -> list[str]:
    """This host's IPv4 addresses that are not loopback."""
    if shutil.which("ip") is None:
        return []
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                         check=False).stdout
    return [a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])
            if not a["local"].startswith("127.")]


def scrape(address: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=2) as reply:
        return reply.read().decode()


async def test_metrics_reach_a_scraper_on_another_address_only_when_bound_there(
        store: MemoryStore) -> None:
    addresses = outside_addresses()
    if not addresses:
        pytest.skip("this host has no IPv4 address besides loopback")
    outside = addresses[0]
    everywhere = Member(Config(group="vfw", member="a", metrics_port=0,
                               metrics_host="0.0.0.0"), store=store)
    loopback = Member(Config(group="vfw", member="b", metrics_port=0), store=store)
    async with everywhere, loopback:
        for m in (everywhere, loopback):
            assert isinstance(m.metrics, MemberMetrics) and m.metrics.port
        text = await asyncio.to_thread(scrape, outside, everywhere.metrics.port)
        assert 'vnfha_role{group="vfw",member="a"' in text
        assert 'member="b"' in await asyncio.to_thread(scrape, "127.0.0.1",
                                                       loopback.metrics.port)
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            await asyncio.to_thread(scrape, outside, loopback.metrics.port)
