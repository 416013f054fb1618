"""A tiny real guest for QEMU, built at test time from Debian packages and cached.

:func:`build_guest` returns a :class:`Guest`: a Debian kernel (``vmlinuz`` from the
``linux-image-<version>-amd64`` package that ``linux-image-amd64`` depends on, fetched with
``apt-get download`` and read with ``dpkg-deb --fsys-tarfile``) and an initramfs made here in
Python (a ``newc`` cpio, gzip'd) holding busybox (``busybox-static``), the modules a real
hardware watchdog and a panic notifier need (``watchdog.ko``, ``i6300esb.ko``, ``pvpanic.ko``,
``pvpanic-mmio.ko``) and :data:`INIT`. Nothing is downloaded but the package; the generic
``amd64`` kernel is used because the ``cloud-amd64`` one lacks ``i6300esb``.

The guest's init, on its first serial port (``ttyS0``, also the kernel console):

- loads the modules (``i6300esb`` with ``heartbeat=3``: a 3 s timeout), waits for
  ``/dev/watchdog`` to appear (devtmpfs creates it after the module loads), starts the kicker,
  a subshell that holds ``/dev/watchdog`` open and writes ``k`` to it every second (QEMU
  resets the machine about 3 s after the last kick), and prints :data:`READY`. Not busybox's
  ``watchdog`` applet: it writes the magic ``V`` and reopens the device as it starts, and in 4
  of 6 runs here its SIGKILL then left the watchdog stopped (no reset ever came);
- answers ``ping`` with ``pong``, ``stop-kick`` with ``kicking stopped`` (the kicker is
  SIGKILLed, so the watchdog is never closed with the magic character and stays armed; ``no
  kicker`` if it was not running, so a test fails at once rather than waiting for a reset
  that cannot come), and
  ``panic`` by crashing the kernel (``echo c > /proc/sysrq-trigger``; with ``<panic
  model='isa'/>`` pvpanic tells QEMU, which tells libvirt).

:func:`domain_xml` writes a ``<domain type='qemu'>`` (TCG: never KVM, whose guests hang on the
machines this was written on) booting that kernel directly, with the serial port on a unix
socket, ``<watchdog model='i6300esb' action='reset'/>``, ``<panic model='isa'/>`` and
``on_crash`` destroy, plus vnfha's metadata element. :func:`serial_command` talks to the port.

Guarantees:

- The cache (``VNFHA_GUEST_CACHE``, else ``~/.cache/vnfha/guest``) holds one directory per
  kernel package and init version; a complete one is reused without calling apt at all, and
  one is published by an atomic rename, so concurrent or killed builds never leave a half
  guest that a later run would use.
- Failures raise :class:`GuestBuildError` naming the step, the command and its output.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from vnfha.errors import VnfhaError

__all__ = [
    "INIT",
    "READY",
    "Guest",
    "GuestBuildError",
    "build_guest",
    "domain_xml",
    "newc_archive",
    "serial_command",
]

READY = "vnfha-guest: ready"
"""What the init prints on ttyS0 once the watchdog is being kicked and commands are read."""

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
stty -F /dev/ttyS0 -echo
insmod /lib/vnfha/watchdog.ko
insmod /lib/vnfha/i6300esb.ko heartbeat=3
insmod /lib/vnfha/pvpanic.ko
insmod /lib/vnfha/pvpanic-mmio.ko
tries=0
while [ ! -c /dev/watchdog ] && [ $tries -lt 100 ]; do usleep 50000; tries=$((tries + 1)); done
(exec 3>/dev/watchdog; while :; do echo k >&3; sleep 1 3>&-; done) &
kicker=$!
echo "{READY}" > /dev/ttyS0
while read -r command; do
  case "$command" in
    ping) echo pong ;;
    stop-kick) if kill -9 $kicker; then echo "kicking stopped"; else echo "no kicker"; fi ;;
    panic) echo c > /proc/sysrq-trigger ;;
  esac
done < /dev/ttyS0 > /dev/ttyS0 2>&1
"""
"""The guest's ``/init`` (busybox sh): see the module docstring."""

_META_PACKAGE = "linux-image-amd64"
_MODULES = {"watchdog.ko", "i6300esb.ko", "pvpanic.ko", "pvpanic-mmio.ko"}
_BUSYBOX = Path("/bin/busybox")
_ENV_CACHE = "VNFHA_GUEST_CACHE"


class GuestBuildError(VnfhaError):
    """Building the guest failed; ``step`` names what was being done."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"building the QEMU test guest: {step}: {message}")


@dataclass(frozen=True, slots=True)
class Guest:
    """A built guest: ``kernel`` and ``initrd`` files, and the kernel package they came from."""

    kernel: Path
    initrd: Path
    package: str

    def copy_to(self, directory: Path) -> Guest:
        """The same guest copied into ``directory`` (for a QEMU that runs as another user and
        cannot read the cache); the copies are world-readable."""
        directory.mkdir(parents=True, exist_ok=True)
        kernel, initrd = directory / "vmlinuz", directory / "initrd.gz"
        for source, target in ((self.kernel, kernel), (self.initrd, initrd)):
            shutil.copyfile(source, target)
            target.chmod(0o644)
        return Guest(kernel, initrd, self.package)


def _cache_root() -> Path:
    configured = os.environ.get(_ENV_CACHE)
    return Path(configured) if configured else Path.home() / ".cache" / "vnfha" / "guest"


def _run(step: str, argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GuestBuildError(step, f"{' '.join(argv)}: {e}") from e
    if done.returncode != 0:
        raise GuestBuildError(step, f"{' '.join(argv)} exited {done.returncode}: "
                              f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


def kernel_package() -> str:
    """The versioned kernel package ``linux-image-amd64`` depends on (``apt-cache depends``)."""
    out = _run("finding the kernel package", ["apt-cache", "depends", _META_PACKAGE])
    for line in out.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-"):
            return name
    raise GuestBuildError("finding the kernel package", f"no linux-image dependency of "
                          f"{_META_PACKAGE} in: {out.strip()}")


def newc_archive(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of ``files`` (path -> (mode, content)); a mode with ``S_IFDIR``
    set makes a directory. Directories must precede their entries. Pure."""
    out = io.BytesIO()

    def entry(ino: int, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, (mode, data)) in enumerate(sorted(files.items()), start=1):
        entry(ino, name, mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return out.getvalue()


def _extract_kernel(deb: Path, into: Path) -> dict[str, bytes]:
    """``vmlinuz`` written to ``into``; the wanted modules returned by file name."""
    modules: dict[str, bytes] = {}
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                wanted = base.startswith("vmlinuz-") or (
                    base in _MODULES and "/kernel/drivers/" in member.name)
                if not (member.isfile() and wanted):
                    continue
                handle = archive.extractfile(member)
                assert handle is not None
                data = handle.read()
                if base.startswith("vmlinuz-"):
                    (into / "vmlinuz").write_bytes(data)
                else:
                    modules[base] = data
    if proc.returncode != 0 or not (into / "vmlinuz").exists() or set(modules) != _MODULES:
        raise GuestBuildError("unpacking the kernel", f"{deb.name}: dpkg-deb exited "
                              f"{proc.returncode}; found modules {sorted(modules)} of "
                              f"{sorted(_MODULES)}")
    return modules


def _initrd(modules: dict[str, bytes]) -> bytes:
    if not _BUSYBOX.exists():
        raise GuestBuildError("making the initramfs", f"{_BUSYBOX} is missing: "
                              "apt-get install busybox-static")
    dir_mode, exe, plain = 0o040755, 0o100755, 0o100644
    files: dict[str, tuple[int, bytes]] = {
        d: (dir_mode, b"") for d in ("bin", "dev", "proc", "sys", "lib", "lib/vnfha")}
    files["bin/busybox"] = (exe, _BUSYBOX.read_bytes())
    files["init"] = (exe, INIT.encode())
    files |= {f"lib/vnfha/{name}": (plain, data) for name, data in modules.items()}
    return gzip.compress(newc_archive(files), compresslevel=6)


def build_guest(cache: Path | None = None) -> Guest:
    """The cached guest, built first if needed (see the module docstring)."""
    root = cache or _cache_root()
    version = hashlib.sha256(INIT.encode() + _BUSYBOX.read_bytes()).hexdigest()[:12]
    for done in sorted(root.glob(f"linux-image-*-{version}")):
        if (done / "vmlinuz").exists() and (done / "initrd.gz").exists():
            return Guest(done / "vmlinuz", done / "initrd.gz", done.name[:-len(version) - 1])
    package = kernel_package()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        _run("downloading the kernel", ["apt-get", "download", "-q", package], cwd=work)
        (deb,) = work.glob("*.deb")
        staged = work / "guest"
        staged.mkdir()
        modules = _extract_kernel(deb, staged)
        (staged / "initrd.gz").write_bytes(_initrd(modules))
        final = root / f"{package}-{version}"
        try:
            staged.rename(final)
        except OSError:
            if not (final / "initrd.gz").exists():  # not another build's result: a real error
                raise
        return Guest(final / "vmlinuz", final / "initrd.gz", package)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def domain_xml(name: str, guest: Guest | None, *, serial: Path, group: str | None = None,
               member: str | None = None, memory_mib: int = 128,
               watchdog_action: str = "reset") -> str:
    """A TCG ``<domain type='qemu'>`` booting ``guest`` (see the module docstring), its serial
    port on a unix socket at ``serial`` (QEMU listens), vnfha's metadata when ``group`` and
    ``member`` are given. ``guest`` None boots nothing: the firmware finds no bootable device
    and idles, a real QEMU domain for lifecycle tests at almost no CPU."""
    boot = "" if guest is None else (
        f"<kernel>{escape(str(guest.kernel))}</kernel>"
        f"<initrd>{escape(str(guest.initrd))}</initrd>"
        "<cmdline>console=ttyS0 quiet panic=0</cmdline>")
    metadata = "" if group is None or member is None else (
        f"<metadata><vnfha:instance xmlns:vnfha='urn:vnfha:nfvi:1' group={quoteattr(group)}"
        f" member={quoteattr(member)}/></metadata>")
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>{metadata}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>{boot}
  </os>
  <features><acpi/></features>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='unix'><source mode='bind' path={quoteattr(str(serial))}/>
      <target port='0'/></serial>
    <watchdog model='i6300esb' action={quoteattr(watchdog_action)}/>
    <panic model='isa'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def serial_command(path: Path, command: str, expect: str, timeout_s: float, *,
                   resend_s: float | None = None) -> str:
    """Connect to a guest's serial socket, send ``command`` (one line) and read until
    ``expect`` arrives; returns everything read. With ``resend_s``, the command is sent again
    every ``resend_s`` until then (for ``ping`` while the guest boots: input that arrives
    before the init reads the port is lost). ``TimeoutError`` (with the tail of what was read)
    if it does not come within ``timeout_s``. Retries the connection until the deadline: QEMU
    creates the socket as it starts."""
    deadline = time.monotonic() + timeout_s
    seen = b""
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(max(0.05, deadline - time.monotonic()))
                conn.connect(str(path))
                sent_at = time.monotonic()
                conn.sendall(command.encode() + b"\n")
                while expect.encode() not in seen:
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    if resend_s is not None and now - sent_at >= resend_s:
                        conn.sendall(command.encode() + b"\n")
                        sent_at = now
                    wait = deadline - now if resend_s is None else min(resend_s, deadline - now)
                    conn.settimeout(max(0.05, wait))
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    seen += chunk
                if expect.encode() in seen:
                    return seen.decode(errors="replace")
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no {expect!r} from {path} within {timeout_s} s; read: "
                               f"{seen.decode(errors='replace')[-500:]!r}")
        time.sleep(0.05)
