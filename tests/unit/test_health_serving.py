"""What a member answers on grpc.health.v1: the pure mapping, and that only changes are set."""

from __future__ import annotations

import itertools

import pytest

from vnfha.grpc_health import ServingStatus
from vnfha.health.serving import ACTIVE_SERVICE, REPLICATION_SERVICE, MemberServing, statuses
from vnfha.model import Role

S, N = ServingStatus.SERVING, ServingStatus.NOT_SERVING


@pytest.mark.parametrize(("running", "role", "healthy", "whole", "active"), [
    (True, Role.ACTIVE, True, S, S),
    (True, Role.ACTIVE, False, N, S),     # a sick active is still the active
    (True, Role.STANDBY, True, S, N),
    (True, Role.STANDBY, False, N, N),
    (True, Role.QUIESCED, True, S, N),
    (True, Role.SPARE, True, S, N),
    (False, Role.ACTIVE, True, N, N),     # not joined yet, or stopping
    (False, Role.STANDBY, True, N, N),
])
def test_statuses(running: bool, role: Role, healthy: bool, whole: ServingStatus,
                  active: ServingStatus) -> None:
    got = statuses(running=running, role=role, healthy=healthy)
    assert got == {"": whole, ACTIVE_SERVICE: active, REPLICATION_SERVICE: active}


def test_statuses_is_total() -> None:
    for running, role, healthy in itertools.product((True, False), Role, (True, False)):
        got = statuses(running=running, role=role, healthy=healthy)
        assert set(got) == {"", ACTIVE_SERVICE, REPLICATION_SERVICE}
        assert all(v in (S, N) for v in got.values())


def test_member_serving_starts_not_serving_and_follows_updates() -> None:
    m = MemberServing()
    assert m.service.status("") == N and m.service.status(ACTIVE_SERVICE) == N
    m.update(running=True)
    assert m.service.status("") == S and m.service.status(ACTIVE_SERVICE) == N
    m.update(role=Role.ACTIVE)
    assert m.service.status(ACTIVE_SERVICE) == S and m.service.status(REPLICATION_SERVICE) == S
    m.update(healthy=False)
    assert m.service.status("") == N and m.service.status(ACTIVE_SERVICE) == S
    m.update(healthy=True, role=Role.QUIESCED)
    assert m.service.status("") == S and m.service.status(ACTIVE_SERVICE) == N
    m.close()
    assert {m.service.status(s) for s in ("", ACTIVE_SERVICE, REPLICATION_SERVICE)} == {N}


def test_setting_the_same_state_wakes_nobody() -> None:
    m = MemberServing()
    m.update(running=True, role=Role.ACTIVE)
    version = m.service.version
    m.update(running=True, role=Role.ACTIVE, healthy=True)
    assert m.service.version == version
    m.update(role=Role.STANDBY)
    assert m.service.version > version
