"""Poisoned-state protection end to end (issue 17): the N-way registry example
(``examples/nway/registry.py``) has a poison input, a value that crashes the active when it
provisions it. Three members on real etcd, each a process of its own: the poison is written
(acknowledged by every standby), the active crashes on it, the first successor crashes on it
in its probation, and then the group neither loops nor loses an acknowledged write from before
the rollback window:

- ``rollback``: the third member takes over with the window undone, is told what was rolled
  back, and serves every pre-window subscriber without the poison;
- ``hold``: nobody takes over; the group is paused with an alarm, ``vnfha status`` and the
  history say why, and the operator's ``unlock`` lets the next takeover happen.

At most two promotions into the poison happen (here: one, the first successor).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_examples import Example, Start, active_after, event, first_active, run_client, start

from vnfha.admin import group_history, group_status, unlock
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import EtcdCluster, free_port

__all__ = ["start"]  # the fixture, shared with test_examples

WINDOW_S = 1.5
"""The rollback window the members run with: short, so the test's pre-window writes are
outside it after a short wait."""


def run(etcd: EtcdCluster, what: Callable[[EtcdStore], Any]) -> Any:
    async def go() -> Any:
        async with EtcdStore.connect(etcd.endpoints) as store:
            return await what(store)
    return asyncio.run(go())


def send_once(port: str, line: str) -> str:
    """One command on a fresh connection, never resent (the nway client resends a command
    whose connection broke: a poison would then reach every new active)."""
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as sock:
        sock.sendall(line.encode() + b"\n")
        try:
            return sock.recv(4096).decode()
        except (ConnectionError, TimeoutError):
            return ""


def promoted_into_poison(members: list[Example], after_epoch: int) -> list[str]:
    """Members that became active after the poison was written and then crashed on it."""
    return [m.member for m in members
            if any(active_after(after_epoch)(e) for e in m.events)
            and any(e["event"] == "poisoned" for e in m.events)]


@pytest.mark.etcd
@pytest.mark.parametrize("policy", ["rollback", "hold"])
def test_a_poison_input_is_not_promoted_member_after_member(
        start: Start, etcd3: EtcdCluster, group: str, policy: str) -> None:
    port = str(free_port())
    args = ("--port", port, "--poison-policy", policy, "--poison-window-s", str(WINDOW_S))
    a = start("nway/registry.py", "a", *args, "--priority", "30")
    first = a.wait_for(event("active"), 15)
    standbys = [start("nway/registry.py", name, *args, "--priority", priority)
                for name, priority in (("b", "20"), ("c", "10"))]
    a.wait_for(event("in_sync", standbys=["b", "c"]), 10, "b and c in sync")
    loaded = run_client("nway/client.py", "--port", port, "load", "50", "--round", "1")
    assert loaded["returncode"] == 0 and loaded["loaded"] == 50
    time.sleep(WINDOW_S + 0.5)  # every acknowledged write so far is now before the window

    assert send_once(port, "SET bad x !panic") == ""  # checkpointed with Ack.ALL, then fatal
    a.wait_for(event("poisoned"), 10, "a crashing on the poison")
    second = first_active(standbys, first["epoch"], 10)
    took = second.wait_for(active_after(first["epoch"]), 1)
    assert took["subscribers"] == 51 and took["rolled_back"] == []
    second.wait_for(event("poisoned"), 10, f"{second.member} crashing on the poison")
    last = next(m for m in standbys if m is not second)

    if policy == "rollback":
        third = last.wait_for(active_after(took["epoch"]), 15, f"{last.member} active")
        assert third["rolled_back"] == ["subscribers/bad"], third
        assert third["subscribers"] == 50
        checked = run_client("nway/client.py", "--port", port, "check", "50", "--round", "1")
        assert checked["ok"] and checked["served_by"].startswith(f"{last.member} epoch"), checked
        assert send_once(port, "GET bad").strip() == "NOTFOUND bad"
        assert not any(e["event"] == "poisoned" for e in last.events)
        history = run(etcd3, lambda s: group_history(s, "/vnfha", group))
        assert "poisoned state suspected" in history[0].reason, history[0]
        status = run(etcd3, lambda s: group_status(s, "/vnfha", group))
        assert status.probation is not None and status.probation.rolled_back
        assert any("POISONED STATE SUSPECTED" in n and "rolled back" in n
                   for n in status.notes()), status.notes()
    else:
        alarm = last.wait_for(event("alarm"), 15, "the hold's alarm")
        assert "probation" in alarm["reason"] and f"vnfha unlock {group}" in alarm["reason"]
        time.sleep(2.0)  # long enough for any takeover to have happened
        assert not any(active_after(took["epoch"])(e) for e in last.events), last.events[-5:]
        status = run(etcd3, lambda s: group_status(s, "/vnfha", group))
        assert status.active is None and status.paused is not None
        assert "held by" in status.paused, status.paused
        history = run(etcd3, lambda s: group_history(s, "/vnfha", group))
        assert history[0].to_member == "" and history[0].reason.startswith("HELD"), history[0]
        assert history[0].from_member == second.member
        assert promoted_into_poison(standbys, first["epoch"]) == [second.member]
        # the operator releases the hold: the takeover happens (into the poison: releasing
        # without repairing the state is the operator's call)
        assert run(etcd3, lambda s: unlock(s, "/vnfha", group))
        last.wait_for(active_after(took["epoch"]), 15, f"{last.member} active after unlock")
        return
    assert promoted_into_poison(standbys, first["epoch"]) == [second.member]
