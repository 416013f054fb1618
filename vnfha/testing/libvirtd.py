"""Private libvirt daemons for tests: one :class:`Libvirtd` is one QEMU host.

Each daemon is a *session* libvirtd (``qemu:///session``) whose whole state lives in one
directory of its own, ``/tmp/vnfha-libvirtd-<owner pid>-<label>-<random>``: configuration,
socket, domain definitions, QEMU pid files, logs (``$HOME`` and ``$XDG_*`` point there). Nothing
system-wide is read or written: not ``/etc/libvirt``, not ``/run/libvirt``, not a system
libvirtd if one runs, and no ``libvirt-qemu`` user is needed. As root, the daemon and its QEMUs
run as ``nobody`` (a session daemon cannot run as root: that is system mode); otherwise as the
caller. Clients connect with :attr:`Libvirtd.uri`
(``qemu:///session?socket=<dir>/run/libvirt/libvirt-sock``; root may connect to a socket owned
by ``nobody``). Several daemons are several independent hosts: the basis of the QEMU driver
rig, where ``host-a``, ``host-b`` and ``host-c`` are three daemons on one machine (honestly:
one kernel, one CPU pool, a shared directory standing in for shared storage).

Guarantees:

- :meth:`Libvirtd.start` returns once the socket accepts connections, or raises
  :class:`LibvirtdError` with the log's tail.
- :meth:`Libvirtd.stop` SIGKILLs every QEMU the daemon started and its ``virtlogd`` (by the
  pids in its pid files, each checked to belong to that directory by its command line or
  environment), then the daemon (by pid), then removes
  the directory; so does process exit (``atexit``) for daemons a test forgot.
- :func:`sweep` removes what a killed run left: the directories, daemons and QEMUs of owners
  whose pid is no longer alive. :meth:`Libvirtd.start` calls it.
- :meth:`Libvirtd.kill` SIGKILLs only the daemon (its QEMUs keep running, as after a real
  libvirtd crash) and :meth:`Libvirtd.restart` starts it again on the same directory, where it
  finds its running domains again.

**A reaper under each daemon.** QEMU daemonizes, so a QEMU that exits is reaped by whichever
process adopts it, and libvirt counts a domain as stopped (``destroy`` returns, the ``stopped``
event comes) only once its pid is gone. On a host with systemd as init that is at once; on a
machine whose init reaps lazily (this one's reaps about every 1.5 s) every stop would take that
long. So each daemon runs under a small Python reaper (``PR_SET_CHILD_SUBREAPER``) that adopts
the daemon's QEMUs and virtlogd and reaps them as they exit; it exits once it has no child left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Self

from vnfha.errors import VnfhaError

__all__ = ["Libvirtd", "LibvirtdError", "find_libvirtd", "sweep"]

_PREFIX = "vnfha-libvirtd-"
_NOBODY = 65534
_LOG_TAIL_BYTES = 4000
_PR_SET_CHILD_SUBREAPER = 36
_REAPER = f"""
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl({_PR_SET_CHILD_SUBREAPER}, 1, 0, 0, 0) != 0:
    sys.exit("vnfha reaper: prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
uid = int(sys.argv[1])
daemon = os.fork()
if daemon == 0:
    if uid >= 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.execv(sys.argv[2], sys.argv[2:])
code = 0
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    if pid == daemon:
        code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""
_live: weakref.WeakSet[Libvirtd] = weakref.WeakSet()


class LibvirtdError(VnfhaError):
    """A private libvirtd could not be started; the message carries its log's tail."""


def find_libvirtd() -> Path | None:
    """``/usr/sbin/libvirtd`` (Debian's ``libvirt-daemon``), or ``libvirtd`` on PATH; None if
    neither exists."""
    found = shutil.which("libvirtd") or shutil.which("libvirtd", path="/usr/sbin:/sbin")
    return Path(found) if found else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owned_by(pid: int, root: Path) -> bool:
    """Whether process ``pid`` belongs to the daemon in ``root`` (its command line or
    environment names the directory): a pid file may outlive its process and the pid be
    reused."""
    marker = str(root).encode()
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


def _kill_tree(root: Path) -> None:
    """SIGKILL the QEMUs and the daemon recorded in ``root``'s pid files, if they are its."""
    for pidfile in sorted((root / "run").rglob("*.pid")):  # QEMUs, libvirtd, virtlogd
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if _owned_by(pid, root):
                os.kill(pid, signal.SIGKILL)


def sweep(tmp: Path | None = None) -> list[Path]:
    """Remove the daemons, QEMUs and directories of owners that are gone; returns the
    directories removed."""
    removed = []
    for root in sorted((tmp or Path(tempfile.gettempdir())).glob(f"{_PREFIX}*")):
        owner = root.name[len(_PREFIX):].split("-", 1)[0]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        _kill_tree(root)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


class Libvirtd:
    """One private session libvirtd (see the module docstring), labelled ``label``."""

    def __init__(self, label: str, *, binary: Path | None = None,
                 start_timeout_s: float = 30.0) -> None:
        found = binary or find_libvirtd()
        if found is None:
            raise LibvirtdError("libvirtd not found: apt-get install libvirt-daemon "
                                "libvirt-daemon-driver-qemu qemu-system-x86")
        self.label = label
        self.binary = found
        self.start_timeout_s = start_timeout_s
        self.root = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{label}-"))
        self.root.chmod(0o755)
        self._as_nobody = os.geteuid() == 0
        self._proc: subprocess.Popen[bytes] | None = None
        """The reaper of the running daemon."""
        self._daemon_pid: int | None = None
        self._reapers: list[subprocess.Popen[bytes]] = []
        """Every reaper started, also those left with the QEMUs of a killed daemon."""
        _live.add(self)

    @property
    def uri(self) -> str:
        """The URI that reaches this daemon's QEMU driver."""
        return f"qemu:///session?socket={self.socket_path}"

    @property
    def socket_path(self) -> Path:
        """The daemon's read-write unix socket."""
        return self.root / "run" / "libvirt" / "libvirt-sock"

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs (None before :meth:`start` and after :meth:`kill`)."""
        return self._daemon_pid

    def shared_dir(self, name: str) -> Path:
        """A directory ``name`` in this daemon's tree that its QEMUs can read and write (for
        kernels and serial sockets)."""
        path = self.root / name
        path.mkdir(exist_ok=True)
        self._own(path)
        return path

    def _own(self, path: Path) -> None:
        if self._as_nobody:
            for p in (path, *path.rglob("*")):
                os.chown(p, _NOBODY, _NOBODY)

    def start(self) -> Self:
        """Start the daemon (see the module docstring); returns once it accepts connections."""
        sweep()
        for sub in ("run", "config", "cache", "data"):
            (self.root / sub).mkdir(exist_ok=True)
        self._own(self.root)
        self.socket_path.unlink(missing_ok=True)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root),
               "XDG_RUNTIME_DIR": str(self.root / "run"),
               "XDG_CONFIG_HOME": str(self.root / "config"),
               "XDG_CACHE_HOME": str(self.root / "cache"),
               "XDG_DATA_HOME": str(self.root / "data"), "LC_ALL": "C"}
        uid = _NOBODY if self._as_nobody else -1  # the reaper stays root: it only reaps
        with (self.root / "libvirtd.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _REAPER, str(uid), str(self.binary)], cwd=self.root,
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LibvirtdError(f"libvirtd {self.label!r} exited {self._proc.returncode} "
                                    f"at start: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.socket_path))
                self._reapers.append(self._proc)
                self._daemon_pid = int(
                    (self.root / "run/libvirt/libvirtd.pid").read_text().strip())
                return self
            time.sleep(0.05)
        self.kill()
        raise LibvirtdError(f"libvirtd {self.label!r} did not open {self.socket_path} within "
                            f"{self.start_timeout_s} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the daemon only (its QEMUs keep running, their reaper too); returns once it
        is gone. Idempotent."""
        proc, self._proc = self._proc, None
        pid, self._daemon_pid = self._daemon_pid, None
        if pid is not None and _owned_by(pid, self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10.0
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.005)  # until its reaper has reaped it
        elif proc is not None and proc.poll() is None:  # killed while starting
            proc.kill()
            proc.wait()

    def restart(self) -> Self:
        """:meth:`kill` if running, then :meth:`start` on the same directory."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Kill every QEMU of this daemon and the daemon, and remove the directory.
        Idempotent."""
        if not self.root.exists():
            return
        _kill_tree(self.root)
        self.kill()
        for reaper in self._reapers:  # they exit once their last child is reaped
            try:
                reaper.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()
        shutil.rmtree(self.root, ignore_errors=True)
        _live.discard(self)

    def log_tail(self) -> str:
        """The end of the daemon's log (its stderr)."""
        try:
            data = (self.root / "libvirtd.log").read_bytes()
        except OSError as e:
            return f"(no log: {e})"
        return data[-_LOG_TAIL_BYTES:].decode(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@atexit.register
def _stop_forgotten() -> None:
    for daemon in list(_live):
        daemon.stop()
