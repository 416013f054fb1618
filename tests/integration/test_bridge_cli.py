"""``vnfha bridge serve`` as an operator runs it: launches the inventory, serves, stops cleanly
on SIGTERM with every simulated instance killed; clear refusals with exit code 2."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import FenceMode, InstanceState

PID_WRITER = ("import os, sys, time\n"
              "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
              "print('started', os.environ.get('ROLE'), flush=True)\n"
              "while True: time.sleep(0.05)")


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vnfha", "bridge", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_serving(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"serving on (\S+) \(driver sim, plaintext, (\d+) instances", line)
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {proc.communicate()[1]}")
    return match.group(1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def write_inventory(tmp_path: Path) -> tuple[Path, list[Path]]:
    pidfiles = [tmp_path / f"{m}.pid" for m in ("a", "b")]
    lines = ['hosts = ["h1", "h2", "h3"]']
    for member, host, pidfile in zip(("a", "b"), ("h1", "h2"), pidfiles, strict=True):
        argv = [sys.executable, "-c", PID_WRITER, str(pidfile)]
        lines += ["[[instances]]", f'name = "vm-{member}"', 'group = "vfw"',
                  f'member = "vfw-{member}"', f'host = "{host}"',
                  "argv = [" + ", ".join(f"'''{a}'''" for a in argv) + "]",
                  f'env = {{ ROLE = "{member}" }}']
    path = tmp_path / "sim.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, pidfiles


def read_pid(path: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def test_serve_launch_fence_and_stop_on_sigterm(tmp_path: Path) -> None:
    inventory, pidfiles = write_inventory(tmp_path)
    proc = start("--driver", "sim", "--listen", "127.0.0.1:0", "--instances", str(inventory),
                 "--log-dir", str(tmp_path / "logs"))
    try:
        address = wait_serving(proc)
        pids = [read_pid(p) for p in pidfiles]
        assert all(alive(p) for p in pids)

        async def use() -> None:
            async with BridgeClient(address, group="vfw", member="vfw-b", timeout_s=10) as c:
                view = await c.placement()
                assert [(m.member, m.host) for m in view.members] == [("vfw-a", "h1"),
                                                                      ("vfw-b", "h2")]
                fenced = await c.fence("vfw-a", 1, FenceMode.STOP, "cli test")
                assert fenced.state is InstanceState.PAUSED
        asyncio.run(use())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "vnfha bridge stopped" in out
    assert not any(alive(p) for p in pids)  # the paused one too
    assert "started a" in (tmp_path / "logs" / "vm-a.log").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--driver", "sim", "--instances", "/nonexistent/sim.toml"], "cannot read"),
    (["--driver", "sim", "--tls-cert", "x.crt"], "--tls-cert and --tls-key go together"),
    (["--driver", "sim", "--tls-ca", "ca.crt"], "mutual TLS also needs --tls-cert"),
    (["--driver", "libvirt", "--instances", "x.toml"], "only the sim driver launches"),
    (["--driver", "sim", "--libvirt-host", "h=test:///default"], "only for --driver libvirt"),
    (["--driver", "sim", "--libvirt-host", "nonsense"], "expected HOST=URI"),
    (["--driver", "xen"], "invalid choice: 'xen'"),
])
def test_bad_usage_exits_2_naming_the_value(args: list[str], message: str) -> None:
    proc = start(*args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, (out, err)
    assert message in err


def test_bad_inventory_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[instances]]\nname = "vm"\ngroup = "g"\nmember = "m"\nhost = "h"\n'
                    'argv = []\n')
    proc = start("--driver", "sim", "--listen", "127.0.0.1:0", "--instances", str(path))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "instances[0].argv" in err


def test_libvirt_that_cannot_be_imported_exits_2(tmp_path: Path) -> None:
    fake = tmp_path / "libvirt"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('libvirt is not installed here')\n")
    proc = start("--driver", "libvirt", "--listen", "127.0.0.1:0",
                 env={"PYTHONPATH": str(tmp_path)})
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "cannot load the libvirt driver" in err and "libvirt-python" in err


def test_a_taken_port_exits_2(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = start("--driver", "sim", "--listen", f"127.0.0.1:{port}")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert f"127.0.0.1:{port}" in err
