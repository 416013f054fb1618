"""``vnfha bridge serve`` as an operator runs it: launches the inventory, serves, stops cleanly
on SIGTERM with every simulated instance killed; clear refusals with exit code 2. And
``vnfha bridge maintenance`` against it: the announcement reaches the group on the host (exit 0),
refusals exit 1 (refused) or 2 (bad input), an unreachable bridge 3; under mutual TLS only an
operator's certificate is accepted. With libvirt, a host that cannot be reached is served as
down, and none reachable exits 1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from vnfha.nfvi.client import BridgeClient
from vnfha.nfvi.model import BridgeEvent, EventKind, FenceMode, InstanceState
from vnfha.nfvi.wire import channel_credentials
from vnfha.testing.etcd import TlsFiles
from vnfha.testing.tls import TestPki, make_test_pki

PID_WRITER = ("import os, sys, time\n"
              "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
              "print('started', os.environ.get('ROLE'), flush=True)\n"
              "while True: time.sleep(0.05)")


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vnfha", "bridge", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_serving(proc: subprocess.Popen[str], security: str = "plaintext") -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(rf"serving on (\S+) \(driver sim, {security}, (\d+) instances", line)
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: "
                             f"{proc.communicate(timeout=30)[1]}")
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
    (["--driver", "sim", "--operator-cn", "ops"], "it needs mutual TLS"),
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


def test_libvirt_serves_with_the_hosts_it_can_reach_and_exits_1_with_none(
        tmp_path: Path) -> None:
    if os.environ.get("VNFHA_REQUIRE_LIBVIRT") != "1":  # CI: a missing binding fails the test
        pytest.importorskip("libvirt")
    from vnfha.bridge.drivers.libvirt_driver import DomainSpec, write_test_hosts  # noqa: PLC0415

    uris = write_test_hosts(tmp_path, {"good": [DomainSpec("vm-a", "vfw", "vfw-a")]})
    gone = [f"test://{tmp_path}/missing-{n}.xml" for n in (1, 2)]
    proc = start("--driver", "libvirt", "--listen", "127.0.0.1:0",
                 "--libvirt-host", f"good={uris['good']}", "--libvirt-host", f"gone={gone[0]}")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving on (\S+) \(driver libvirt,", line)
        assert match, f"unexpected first line {line!r}"

        async def hosts() -> dict[str, bool]:
            async with BridgeClient(match.group(1), group="vfw", member="vfw-a",
                                    timeout_s=10) as c:
                deadline = time.monotonic() + 20
                while True:
                    up = {h.host: h.up for h in (await c.placement()).hosts}
                    if not up["gone"] or time.monotonic() > deadline:
                        return up
                    await asyncio.sleep(0.02)
        assert asyncio.run(hosts()) == {"good": True, "gone": False}
    finally:
        stop(proc)
    assert proc.returncode == 0

    proc = start("--driver", "libvirt", "--listen", "127.0.0.1:0",
                 *(f"--libvirt-host=gone-{n}={uri}" for n, uri in enumerate(gone)))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "no libvirt host could be opened" in err
    for n, uri in enumerate(gone):
        assert f"host 'gone-{n}': cannot open {uri!r}" in err


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


# -- vnfha bridge maintenance ---------------------------------------------------------------------


def maintenance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vnfha", "bridge", "maintenance", *args],
                          check=False, capture_output=True, text=True, timeout=60)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


async def announced_to(watcher: BridgeClient, operator: BridgeClient, probe_host: str,
                       announce: Callable[[], subprocess.CompletedProcess[str]],
                       ) -> tuple[BridgeEvent, subprocess.CompletedProcess[str]]:
    """Open ``watcher``'s event stream, make sure it is open (announce a maintenance of
    ``probe_host`` through ``operator`` until one arrives), then run ``announce`` (the CLI) and
    return the first event for another host, with the CLI's outcome."""
    events = watcher.watch_events(timeout_s=60)
    try:
        first = asyncio.ensure_future(anext(events))
        deadline = time.monotonic() + 30
        while not first.done():
            assert time.monotonic() < deadline, "the watch never opened"
            await operator.plan_maintenance(probe_host, 3600, "probe")
            await asyncio.wait({first}, timeout=0.2)
        assert first.result().host == probe_host
        done = await asyncio.to_thread(announce)
        async for event in events:
            if event.host != probe_host:
                return event, done
        raise AssertionError(f"the stream ended; CLI: {done}")
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def test_maintenance_announces_refuses_and_reports_unreachable(tmp_path: Path) -> None:
    inventory, _ = write_inventory(tmp_path)
    proc = start("--driver", "sim", "--listen", "127.0.0.1:0", "--instances", str(inventory))
    try:
        address = wait_serving(proc)

        async def announce() -> tuple[BridgeEvent, subprocess.CompletedProcess[str]]:
            async with BridgeClient(address, group="vfw", member="vfw-b", timeout_s=10) as c, \
                    BridgeClient.operator(address, timeout_s=10) as ops:
                return await announced_to(c, ops, "h2", lambda: maintenance(
                    "--bridge", address, "--host", "h1", "--in-s", "600",
                    "--reason", "kernel upgrade", "--json"))

        before = time.time()
        event, done = asyncio.run(announce())
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["host"] == "h1" and out["in_s"] == 600
        assert out["instances"] == [{"group": "vfw", "member": "vfw-a", "instance": "vm-a"}]
        assert before + 600 <= out["deadline_unix_s"] <= time.time() + 600
        assert event.kind is EventKind.MAINTENANCE_PLANNED
        assert (event.host, event.members) == ("h1", ("vfw-a",))
        assert event.deadline_unix_s == out["deadline_unix_s"]
        assert event.sequence == out["sequence"] and "kernel upgrade" in event.detail

        text = maintenance("--bridge", address, "--host", "h3", "--in-s", "60")
        assert text.returncode == 0, text.stderr
        assert "maintenance of h3 announced: down in 60 s" in text.stdout
        assert "0 instance(s) notified" in text.stdout

        refused = maintenance("--bridge", address, "--host", "nope", "--in-s", "60")
        assert refused.returncode == 1, refused.stderr
        assert "NOT_FOUND" in refused.stderr and "'nope'" in refused.stderr
        assert refused.stderr.startswith("vnfha bridge: error:")
        for bad in ("0", "nan", str(8 * 24 * 3600)):
            invalid = maintenance("--bridge", address, "--host", "h1", "--in-s", bad)
            assert invalid.returncode == 2, (bad, invalid.stderr)
            assert "INVALID_ARGUMENT" in invalid.stderr and "deadline_in_s" in invalid.stderr
        assert proc.poll() is None  # still serving
    finally:
        stop(proc)
    gone = maintenance("--bridge", address, "--host", "h1", "--in-s", "60", "--timeout-s", "1")
    assert gone.returncode == 3, gone.stderr
    assert f"bridge unreachable at {address}" in gone.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "h1", "--in-s", "60"], "--bridge"),
    (["--bridge", "127.0.0.1:1", "--host", "h1", "--in-s", "soon"], "invalid float value"),
    (["--bridge", "127.0.0.1:1", "--host", "h1", "--in-s", "60", "--cert-file", "x.crt"],
     "--cert-file and --key-file go together"),
    (["--bridge", "127.0.0.1:1", "--host", "h1", "--in-s", "60", "--ca-file", "/nonexistent"],
     "cannot read /nonexistent"),
])
def test_maintenance_bad_usage_exits_2(args: list[str], message: str) -> None:
    done = maintenance(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")), members=["vfw-a", "vfw-b"],
                         clients=["ops"])


def test_maintenance_under_mutual_tls_takes_only_an_operator(tmp_path: Path,
                                                             pki: TestPki) -> None:
    inventory, _ = write_inventory(tmp_path)
    proc = start("--driver", "sim", "--listen", "127.0.0.1:0", "--instances", str(inventory),
                 "--tls-cert", pki.server.cert_file, "--tls-key", pki.server.key_file,
                 "--tls-ca", pki.ca_file, "--operator-cn", "ops", "--operator-cn", "ops-2")
    try:
        port = wait_serving(proc, "mutual TLS").rsplit(":", 1)[1]
        target = f"localhost:{port}"

        def as_cert(files: TlsFiles, *extra: str) -> subprocess.CompletedProcess[str]:
            return maintenance("--bridge", target, "--host", "h2", "--in-s", "60",
                               "--ca-file", pki.ca_file, "--cert-file", files.cert_file,
                               "--key-file", files.key_file, *extra)

        def creds(files: TlsFiles) -> grpc.ChannelCredentials:
            return channel_credentials(ca_file=pki.ca_file, cert_file=files.cert_file,
                                       key_file=files.key_file)

        async def announce() -> tuple[BridgeEvent, subprocess.CompletedProcess[str]]:
            async with BridgeClient(target, group="vfw", member="vfw-a", timeout_s=10,
                                    credentials=creds(pki.members["vfw-a"])) as c, \
                    BridgeClient.operator(target, timeout_s=10,
                                          credentials=creds(pki.clients["ops"])) as ops:
                return await announced_to(c, ops, "h1",
                                          lambda: as_cert(pki.clients["ops"], "--json"))

        event, done = asyncio.run(announce())
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["instances"] == [
            {"group": "vfw", "member": "vfw-b", "instance": "vm-b"}]
        assert (event.kind, event.host, event.members) == (
            EventKind.MAINTENANCE_PLANNED, "h2", ("vfw-b",))
        assert "announced by ops" in event.detail

        member = as_cert(pki.members["vfw-b"])
        assert member.returncode == 1, member.stderr
        assert "PERMISSION_DENIED" in member.stderr and "'vfw-b'" in member.stderr
        no_cert = maintenance("--bridge", target, "--host", "h2", "--in-s", "60",
                              "--ca-file", pki.ca_file, "--timeout-s", "1")
        assert no_cert.returncode == 3, no_cert.stderr  # no client certificate: no handshake
    finally:
        stop(proc)
