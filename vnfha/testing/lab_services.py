"""Services spread over the hosts of a :class:`~vnfha.testing.lab.HostLab`: an etcd cluster
with one member per host (:class:`LabEtcd`) and the NFVI bridge on one host
(:func:`start_bridge`).

Each etcd member is an :class:`~vnfha.testing.etcd.EtcdMember` whose process runs in its host's
namespace and listens on that host's IPv4 address only (client, peer and metrics ports, the
same on every host: each host has its own port space), so a partition of the host cuts its
member off from its peers and its clients exactly as it would on a real network.

Guarantees:

- :meth:`LabEtcd.start` returns only when every member answers ``/health`` (asked from inside
  its host) and the cluster has a leader, or raises :class:`vnfha.errors.EtcdLaunchError` with
  the members' log tails (the members are then killed).
- ``kill``/``pause``/``resume``/``restart`` of a member act on its own pid, as in
  :mod:`vnfha.testing.etcd`; :meth:`LabEtcd.stop` kills every member and removes its data.
- :func:`start_bridge` returns once ``vnfha bridge serve`` prints that it serves, with the
  endpoint it serves on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vnfha.errors import EtcdLaunchError
from vnfha.testing.etcd import EtcdCluster, EtcdMember, find_etcdctl_binary
from vnfha.testing.lab_host import LabHost, LabProcess

__all__ = ["LabBridge", "LabEtcd", "LabEtcdMember", "start_bridge"]

CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381
BRIDGE_PORT = 50070
_HTTP_TIMEOUT_S = 0.5


class LabEtcdMember(EtcdMember):
    """An etcd member that runs in lab host ``lab_host``, on its IPv4 address and the lab's
    ports, and is probed from inside it."""

    def __init__(self, lab_host: LabHost, *, binary: str, data_dir: Path, log_path: Path,
                 args: Sequence[str]) -> None:
        super().__init__(name=lab_host.name, binary=binary, data_dir=data_dir,
                         log_path=log_path, host=lab_host.ipv4, client_port=CLIENT_PORT,
                         peer_port=PEER_PORT, metrics_port=METRICS_PORT, args=args, tls=None)
        self.lab_host = lab_host

    def command(self) -> list[str]:
        """etcd's command line under the host's ``ip netns exec`` (which keeps the pid)."""
        return [*self.lab_host.prefix, *super().command()]

    def healthy(self) -> bool:
        """True when ``/health`` on the metrics port, asked from the host, says so."""
        return '"health":"true"' in self.http_get("/health").replace(" ", "")

    def is_leader(self) -> bool:
        """True when this member's metrics, read from the host, say it leads."""
        return re.search(r"^etcd_server_is_leader 1\b", self.http_get("/metrics"), re.M) \
            is not None

    def http_get(self, path: str) -> str:
        """The body of ``GET path`` on the metrics port, or ``""`` if it does not answer in
        time (or the member is paused)."""
        if self.paused:
            return ""
        request = f"GET {path} HTTP/1.0\r\nHost: {self.host}\r\n\r\n".encode()
        chunks = []
        try:
            with self.lab_host.connect(self.host, self.metrics_port, _HTTP_TIMEOUT_S) as sock:
                sock.sendall(request)
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return ""
        return b"".join(chunks).partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


class LabEtcd(EtcdCluster):
    """An :class:`~vnfha.testing.etcd.EtcdCluster` with one member on each of ``hosts`` (1 or
    3 as a rule; any number works), data under ``data_root``: the same ``start``, ``stop``,
    ``wait_healthy``, ``leader_index``, ``logs`` and ``members`` (each a
    :class:`LabEtcdMember`), fast timing by default (heartbeat 10 ms, election 100 ms).
    ``members[i]`` runs on ``hosts[i]``."""

    def __init__(self, hosts: Sequence[LabHost], *, data_root: Path, heartbeat_ms: int = 10,
                 election_ms: int = 100, binary: str | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        if not hosts or len({h.name for h in hosts}) != len(hosts):
            raise ValueError(f"hosts={[h.name for h in hosts]}: one or more distinct hosts")
        size = len(hosts)
        super().__init__(size, binary=binary, data_root=data_root, heartbeat_ms=heartbeat_ms,
                         election_ms=election_ms, names=[h.name for h in hosts],
                         client_ports=[CLIENT_PORT] * size, peer_ports=[PEER_PORT] * size,
                         extra_args=extra_args)
        self.hosts = tuple(hosts)

    def _build_members(self) -> list[EtcdMember]:
        """One member per host, on the host's address and the lab's fixed ports (the hook
        :meth:`EtcdCluster.start` builds its members with)."""
        assert self._data_root is not None
        cluster = ",".join(f"{h.name}=http://{h.ipv4}:{PEER_PORT}" for h in self.hosts)
        token = f"{self.hosts[0].netns}-{id(self):x}"  # one per cluster: peers must agree
        members: list[EtcdMember] = []
        for host in self.hosts:
            data_dir = self._data_root / f"{host.name}.data"
            flags = {
                "name": host.name, "data-dir": str(data_dir),
                "listen-client-urls": f"http://{host.ipv4}:{CLIENT_PORT}",
                "advertise-client-urls": f"http://{host.ipv4}:{CLIENT_PORT}",
                "listen-peer-urls": f"http://{host.ipv4}:{PEER_PORT}",
                "initial-advertise-peer-urls": f"http://{host.ipv4}:{PEER_PORT}",
                "listen-metrics-urls": f"http://{host.ipv4}:{METRICS_PORT}",
                "initial-cluster": cluster, "initial-cluster-state": "new",
                "initial-cluster-token": token,
                "heartbeat-interval": str(self.heartbeat_ms),
                "election-timeout": str(self.election_ms),
                "logger": "zap", "log-outputs": "stderr", "log-level": self.log_level,
            }
            args = [word for flag, value in flags.items() for word in (f"--{flag}", value)]
            members.append(LabEtcdMember(host, binary=self.binary, data_dir=data_dir,
                                         log_path=self._data_root / f"{host.name}.log",
                                         args=[*args, *self.extra_args]))
        return members

    def member(self, host: LabHost | str) -> LabEtcdMember:
        """The member on ``host`` (KeyError if it has none)."""
        name = host if isinstance(host, str) else host.name
        for member in self.members:
            if member.name == name and isinstance(member, LabEtcdMember):
                return member
        raise KeyError(f"no etcd member on host {name!r}")

    def etcdctl(self, *args: str, user: str | None = None, check: bool = True,
                host: LabHost | None = None, endpoints: Sequence[str] | None = None) -> str:
        """Run ``etcdctl`` (API v3, as ``user`` = "name:password" if given) in ``host`` (default:
        the first member's) against ``endpoints`` (default: every member); its stdout.
        :class:`~vnfha.errors.EtcdLaunchError` if it fails and ``check``."""
        urls = ",".join(f"http://{e}" for e in (endpoints or self.endpoints))
        argv = ["env", "ETCDCTL_API=3", find_etcdctl_binary(), "--endpoints", urls,
                *(("--user", user) if user is not None else ()), *args]
        done = (host or self.hosts[0]).run(argv, check=False)
        if check and done.returncode != 0:
            raise EtcdLaunchError(f"etcdctl {' '.join(args)} failed ({done.returncode}): "
                                  f"{done.stderr.strip() or done.stdout.strip()}")
        return done.stdout


@dataclass(frozen=True, slots=True)
class LabBridge:
    """A ``vnfha bridge serve`` in a lab host: members reach it at ``endpoint``."""

    host: LabHost
    endpoint: str
    process: LabProcess


def start_bridge(host: LabHost, *args: str, port: int = BRIDGE_PORT,
                 timeout_s: float = 30.0) -> LabBridge:
    """Start ``vnfha bridge serve --driver sim`` (plus ``args``) on ``host``'s IPv4 address
    and return once it serves; :class:`~vnfha.testing.lab_host.LabError` with its output if it
    exits or does not serve within ``timeout_s``."""
    driver = () if "--driver" in args else ("--driver", "sim")
    process = host.python("-m", "vnfha", "bridge", "serve", *driver, "--listen",
                          f"{host.ipv4}:{port}", *args, name="bridge")
    try:
        served = process.wait_output(r"serving on (\S+)", timeout_s)
    except BaseException:
        process.kill()
        raise
    return LabBridge(host=host, endpoint=served.group(1), process=process)

