"""The test launcher itself: members really die, freeze, come back, and leave nothing behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vnfha.errors import EtcdLaunchError
from vnfha.testing.etcd import EtcdCluster, etcd_version, find_etcd_binary

pytestmark = pytest.mark.etcd


def test_binary_and_version() -> None:
    binary = find_etcd_binary()
    assert os.access(binary, os.X_OK)
    major, minor = (int(x) for x in etcd_version(binary).split(".")[:2])
    assert (major, minor) >= (3, 4)


def test_named_binary_that_is_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EtcdLaunchError, match="not an executable file"):
        find_etcd_binary(str(tmp_path / "etcd"))


def test_kill_pause_restart_and_cleanup(own_etcd3: EtcdCluster) -> None:
    cluster = own_etcd3
    leader = cluster.leader_index()
    assert leader is not None
    pids = [m.pid for m in cluster.members]
    assert all(pids)

    cluster.members[leader].kill()
    assert not cluster.members[leader].is_running()
    assert not Path(f"/proc/{pids[leader]}").exists()
    start = time.monotonic()
    cluster.wait_healthy(10)
    new_leader = cluster.leader_index()
    assert new_leader is not None and new_leader != leader
    assert time.monotonic() - start < 10

    follower = next(i for i in range(3) if i not in (leader, new_leader))
    cluster.members[follower].pause()
    status = Path(f"/proc/{cluster.members[follower].pid}/status")
    deadline = time.monotonic() + 5  # signal delivery to another process is asynchronous
    while "(stopped)" not in status.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "(stopped)" in status.read_text()
    assert not cluster.members[follower].healthy()  # a frozen member does not answer
    cluster.members[follower].resume()

    cluster.members[leader].restart()
    assert cluster.members[leader].healthy()
    assert "ready to serve client requests" in cluster.members[leader].log_tail()


def test_stop_removes_processes_and_data() -> None:
    cluster = EtcdCluster(1).start()
    pid = cluster.members[0].pid
    data = cluster.members[0].data_dir
    assert data.exists()
    cluster.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert not data.exists()


def test_a_member_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(EtcdLaunchError) as info:
        EtcdCluster(1, extra_args=["--no-such-flag"]).start(timeout_s=10)
    assert "exited" in str(info.value)
    assert "no-such-flag" in info.value.log_tail
