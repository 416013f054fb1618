"""The etcd adapter against real etcd processes: endpoint failover when a member dies or
freezes, sessions riding through it or losing their lease by the deadline, auth and TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vnfha.errors import StoreAuthError, StoreUnavailable
from vnfha.store import EventType
from vnfha.store.etcd import EtcdOptions, EtcdStore
from vnfha.store.session import Session, SessionState
from vnfha.testing.etcd import EtcdCluster
from vnfha.testing.tls import make_test_pki
from vnfha.testing.waiting import until

pytestmark = pytest.mark.etcd


def member_index(cluster: EtcdCluster, endpoint: str) -> int:
    return [m.endpoint for m in cluster.members].index(endpoint)


async def test_client_fails_over_when_its_member_is_killed(own_etcd3: EtcdCluster) -> None:
    cluster = own_etcd3
    async with (
        EtcdStore.connect(cluster.endpoints, request_timeout_s=1.0) as store,
        Session(store, ttl_s=2, keepalive_interval_s=0.25, margin_s=0.2) as session,
    ):
        first = await store.put("/fo/a", b"1")
        victim = member_index(cluster, store.endpoint)
        events: list[tuple[EventType, str]] = []

        async def watch() -> None:
            async with store.watch("/fo/", prefix=True, start_revision=first.revision) as w:
                async for batch in w:
                    events.extend((e.type, e.kv.key) for e in batch.events)

        watcher = asyncio.create_task(watch())
        await until(lambda: len(events) == 1, 5, "first event")
        cluster.members[victim].kill()

        # reads retry on the next endpoint; a write may fail once with outcome_unknown, then works
        assert (await store.get("/fo/a")) is not None
        for attempt in range(3):
            try:
                await store.put("/fo/b", b"2")
                break
            except StoreUnavailable as e:
                assert attempt < 2, e
        assert store.endpoint != cluster.members[victim].endpoint
        await store.put("/fo/c", b"3")
        # the watch resumed on another member and lost nothing
        await until(lambda: len(events) == 3, 10, "watch resumed")
        assert [k for _, k in events] == ["/fo/a", "/fo/b", "/fo/c"]
        # the session never lost its lease
        await asyncio.sleep(1.0)
        assert session.state is SessionState.CONNECTED
        assert (await store.time_to_live(session.lease_id)).ttl_s > 0
        watcher.cancel()


async def test_session_moves_off_a_paused_member(own_etcd3: EtcdCluster) -> None:
    """SIGSTOP of the member the client talks to: TCP stays up, only the keepalive notices."""
    cluster = own_etcd3
    async with (
        EtcdStore.connect(cluster.endpoints, request_timeout_s=0.3) as store,
        Session(store, ttl_s=2, keepalive_interval_s=0.25, margin_s=0.2,
                request_timeout_s=0.3) as session,
    ):
        frozen = member_index(cluster, store.endpoint)
        states: list[SessionState] = []
        session.add_listener(lambda v: states.append(v.state))
        cluster.members[frozen].pause()
        try:
            await until(lambda: store.endpoint != cluster.members[frozen].endpoint, 5,
                             "client left the paused member")
            await until(lambda: session.state is SessionState.CONNECTED
                             and store.endpoint != cluster.members[frozen].endpoint, 5,
                             "session connected elsewhere")
            await asyncio.sleep(2.5)  # longer than the TTL: the lease must still be alive
            assert session.state is SessionState.CONNECTED
            assert (await store.time_to_live(session.lease_id)).ttl_s > 0
            assert SessionState.LOST not in states
        finally:
            cluster.members[frozen].resume()


async def test_session_is_lost_by_its_deadline_when_etcd_freezes(etcd1: EtcdCluster) -> None:
    """A single member paused: nowhere to go, so the session goes SUSPENDED, then LOST no later
    than its local deadline, measured on the monotonic clock."""
    cluster = etcd1
    async with (
        EtcdStore.connect(cluster.endpoints, request_timeout_s=0.3) as store,
        Session(store, ttl_s=2, keepalive_interval_s=0.25, margin_s=0.2,
                request_timeout_s=0.3) as session,
    ):
        seen: list[tuple[SessionState, float]] = []
        session.add_listener(lambda v: seen.append((v.state, time.monotonic())))
        paused_at = time.monotonic()
        cluster.members[0].pause()
        try:
            deadline = session.deadline
            view = await asyncio.wait_for(session.wait_lost(), 5)
            lost_at = time.monotonic()
        finally:
            cluster.members[0].resume()
        assert view.state is SessionState.LOST
        assert [s for s, _ in seen][:1] == [SessionState.SUSPENDED]
        # LOST no later than the deadline (plus scheduling slack), and never before it
        assert deadline - 0.01 <= lost_at <= deadline + 0.3, (lost_at - paused_at)
        assert lost_at - paused_at <= 2.0


# -- auth and TLS --------------------------------------------------------------------------------


@pytest.fixture
def auth_cluster() -> Iterator[EtcdCluster]:
    with EtcdCluster(1) as cluster:
        cluster.enable_auth("rootpw", users={"vfw": "s3cret"}, prefix_grants={"vfw": "/vnfha/vfw/"})
        yield cluster


async def test_auth_user_and_password(auth_cluster: EtcdCluster) -> None:
    endpoints = auth_cluster.endpoints
    async with EtcdStore(EtcdOptions(endpoints, username="vfw", password="s3cret")) as store:
        await store.put("/vnfha/vfw/a", b"ok")
        assert (await store.get("/vnfha/vfw/a")) is not None
        with pytest.raises(StoreAuthError):
            await store.put("/elsewhere", b"no")
        with pytest.raises(StoreAuthError):
            async with store.watch("/elsewhere") as w:
                await asyncio.wait_for(w.__anext__(), 5)
    async with EtcdStore(EtcdOptions(endpoints, username="vfw", password="wrong")) as store:
        with pytest.raises(StoreAuthError):
            await store.get("/vnfha/vfw/a")
    async with EtcdStore(EtcdOptions(endpoints)) as store:
        with pytest.raises(StoreAuthError):
            await store.get("/vnfha/vfw/a")


async def test_tls_with_client_certificates(tmp_path: Path) -> None:
    pki = make_test_pki(str(tmp_path), clients=("vfw-a",))
    with EtcdCluster(1, server_tls=pki.server, client_cert_auth=True) as cluster:
        client = pki.clients["vfw-a"]
        opts = EtcdOptions(cluster.endpoints, tls=True, ca_file=pki.ca_file,
                           cert_file=client.cert_file, key_file=client.key_file)
        async with EtcdStore(opts) as store:
            await store.put("/tls/a", b"secure")
            lease = await store.grant(2)
            assert await store.keepalive(lease.id) >= 2
            async with store.watch("/tls/a") as w:
                await store.put("/tls/a", b"again")
                batch = await asyncio.wait_for(w.__anext__(), 5)
            assert batch.events[0].kv.value == b"again"
        # without a client certificate the handshake fails
        no_cert = EtcdOptions(cluster.endpoints, tls=True, ca_file=pki.ca_file,
                              request_timeout_s=1.0)
        async with EtcdStore(no_cert) as store:
            with pytest.raises(StoreUnavailable):
                await store.get("/tls/a")
        # plaintext against a TLS port fails too
        async with EtcdStore(EtcdOptions(cluster.endpoints, request_timeout_s=1.0)) as store:
            with pytest.raises(StoreUnavailable):
                await store.get("/tls/a")
