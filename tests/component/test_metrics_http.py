"""MemberMetrics.serve: a real HTTP exporter on 127.0.0.1:0, scraped with urllib, then closed."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from vnfha import ConfigError
from vnfha.metrics import SPECS, MemberMetrics, ReasonKind, Rung
from vnfha.model import Role

TIMEOUT_S = 10.0


def scrape(port: int, accept: str | None = None) -> tuple[str, str]:
    """(content type, body) of one scrape."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return response.headers["Content-Type"], response.read().decode()


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(TIMEOUT_S)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def metrics() -> Iterator[MemberMetrics]:
    m = MemberMetrics("vfw", "vfw-a")
    try:
        yield m
    finally:
        m.close()


def test_serve_on_any_port_scrape_and_close(metrics: MemberMetrics) -> None:
    port = metrics.serve(0)
    assert port > 0 and metrics.port == port
    metrics.role_changed(Role.SPARE, Role.ACTIVE, 42, ReasonKind.ELECTED)
    metrics.escalated(Rung.ALARM)
    content_type, body = scrape(port)
    assert content_type.startswith("text/plain")
    assert 'vnfha_role{group="vfw",member="vfw-a",role="active"} 1.0' in body
    assert 'vnfha_epoch{group="vfw",member="vfw-a"} 42.0' in body
    assert 'vnfha_escalations_total{group="vfw",member="vfw-a",rung="alarm"} 1.0' in body
    for spec in SPECS:
        assert f"# TYPE {spec.name} {spec.kind}" in body
    metrics.close()
    assert metrics.port is None
    assert refused(port)
    assert f"vnfha-metrics-{port}" not in {t.name for t in threading.enumerate()}
    metrics.close()  # idempotent
    metrics.escalated(Rung.ALARM)  # recording still works after close


def test_every_scrape_sees_the_latest_values(metrics: MemberMetrics) -> None:
    port = metrics.serve(0)
    for epoch in (5, 6, 7):
        metrics.role_changed(Role.STANDBY, Role.STANDBY, epoch, ReasonKind.ASSIGNED)
        assert f'vnfha_epoch{{group="vfw",member="vfw-a"}} {epoch}.0' in scrape(port)[1]


def test_openmetrics_is_negotiated(metrics: MemberMetrics) -> None:
    port = metrics.serve(0)
    content_type, body = scrape(port, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


def test_serving_twice_is_refused_and_serving_again_after_close_works(
        metrics: MemberMetrics) -> None:
    port = metrics.serve(0)
    with pytest.raises(ConfigError, match=f"already serving on port {port}"):
        metrics.serve(0)
    metrics.close()
    again = metrics.serve(0)
    assert "vnfha_role" in scrape(again)[1]


def test_a_taken_port_raises_and_leaves_nothing_running() -> None:
    first, second = MemberMetrics("vfw", "vfw-a"), MemberMetrics("vfw", "vfw-b")
    try:
        port = first.serve(0)
        with pytest.raises(OSError):
            second.serve(port)
        assert second.port is None
        assert 'member="vfw-a"' in scrape(port)[1]
    finally:
        first.close()
        second.close()


def test_two_members_serve_their_own_registries() -> None:
    a, b = MemberMetrics("vfw", "vfw-a"), MemberMetrics("vfw", "vfw-b")
    try:
        body_a, body_b = scrape(a.serve(0))[1], scrape(b.serve(0))[1]
    finally:
        a.close()
        b.close()
    assert 'member="vfw-a"' in body_a and 'member="vfw-b"' not in body_a
    assert 'member="vfw-b"' in body_b and 'member="vfw-a"' not in body_b


@pytest.mark.parametrize("port", [-1, 65536])
def test_out_of_range_ports_are_refused(metrics: MemberMetrics, port: int) -> None:
    with pytest.raises(ConfigError, match=f"metrics_port={port}"):
        metrics.serve(port)
