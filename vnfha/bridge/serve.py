"""Running a bridge as a program: what ``vnfha bridge serve`` does, minus the argument parsing.

:func:`serve` builds the driver, launches the simulator's inventory, serves until ``stop`` is
set, and then cleans up. Guarantees:

- Nothing is served before every inventory instance runs; the address is reported (``on_ready``)
  only once the server accepts calls.
- On the way out, whatever happened, the server stops and the driver is closed: the simulator
  kills every process it launched.
- ``--driver libvirt`` imports :mod:`vnfha.bridge.drivers.libvirt_driver` only when asked for,
  so the bridge runs without libvirt-python installed; when it is missing, :class:`ConfigError`
  says so.
- Option mistakes are :class:`ConfigError` naming the option; nothing is started for them.
- What else :func:`serve` raises for its caller to report: :class:`OSError` (cannot listen),
  :class:`~vnfha.bridge.state.StateFileError` and
  :class:`~vnfha.bridge.drivers.driver.DriverError` (the hypervisor failed). The last two are
  re-exported here, so that the program's caller (``vnfha bridge serve`` in :mod:`vnfha.cli`)
  imports this module alone, never a driver.
- With ``state_file`` the bridge keeps its epochs, tickets and pending maintenances there across
  restarts (:mod:`vnfha.bridge.state`). Before the driver is even built, the file is claimed,
  read and written back (:meth:`~vnfha.bridge.state.StateStore.open`). A file that cannot be
  used (unreadable, corrupt, another version, or not writable) is
  :class:`~vnfha.bridge.state.StateFileError` naming the path, and nothing has been launched: a
  supervisor that restarts a bridge refused for its state file never starts and kills the
  inventory's instances over and over, and the bridge never starts empty in the file's place
  (it would accept a deposed active's stale epoch). A missing file is a first start. A file
  another bridge is using (:meth:`~vnfha.bridge.state.StateStore.claim`) is refused the same
  way, naming its pid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import grpc

from vnfha.bridge.core import BridgeLimits
from vnfha.bridge.drivers.driver import Driver, DriverError
from vnfha.bridge.drivers.inventory import launch_inventory, load_inventory
from vnfha.bridge.drivers.sim import SimDriver
from vnfha.bridge.server import BridgeServer
from vnfha.bridge.state import StateFileError, StateStore
from vnfha.clock import Clock, SystemClock
from vnfha.errors import ConfigError
from vnfha.nfvi import wire

__all__ = ["DRIVERS", "DriverError", "ServeOptions", "StateFileError", "make_driver",
           "make_server", "serve"]

DRIVERS = ("sim", "libvirt")
"""The drivers ``--driver`` accepts."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What to serve. TLS: ``tls_cert`` and ``tls_key`` turn on TLS; adding ``tls_ca`` makes it
    mutual (clients must present a certificate signed by it, whose CN is their member).
    ``operators``: under mutual TLS, the certificate CNs that may call the Operations service
    (announce a maintenance); they need ``tls_ca``. ``state_file``: keep the bridge's state
    there across restarts (None: in memory only)."""

    driver: str
    listen: str
    instances_file: str | None = None
    log_dir: str | None = None
    libvirt_hosts: Mapping[str, str] = field(default_factory=dict)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    operators: frozenset[str] = frozenset()
    limits: BridgeLimits = field(default_factory=BridgeLimits)
    state_file: str | None = None

    def __post_init__(self) -> None:
        if self.driver not in DRIVERS:
            raise ConfigError("--driver", self.driver, f"must be one of {', '.join(DRIVERS)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert" if self.tls_cert is None else "--tls-key", None,
                              "--tls-cert and --tls-key go together")
        if self.tls_ca is not None and self.tls_cert is None:
            raise ConfigError("--tls-ca", self.tls_ca, "mutual TLS also needs --tls-cert and "
                              "--tls-key")
        if self.operators and self.tls_ca is None:
            raise ConfigError("--operator-cn", sorted(self.operators), "names client "
                              "certificates: it needs mutual TLS (--tls-ca, --tls-cert, "
                              "--tls-key); without TLS anyone may announce a maintenance")
        if self.driver != "sim" and (self.instances_file or self.log_dir):
            flag = "--instances" if self.instances_file else "--log-dir"
            raise ConfigError(flag, self.instances_file or self.log_dir,
                              "only the sim driver launches instances")
        if self.driver != "libvirt" and self.libvirt_hosts:
            raise ConfigError("--libvirt-host", dict(self.libvirt_hosts),
                              "only for --driver libvirt")

    @property
    def mutual_tls(self) -> bool:
        """Whether clients must present certificates."""
        return self.tls_ca is not None

    def credentials(self) -> grpc.ServerCredentials | None:
        """The server credentials these options ask for, or None (plaintext)."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        try:
            return wire.server_credentials(cert_file=self.tls_cert, key_file=self.tls_key,
                                           ca_file=self.tls_ca,
                                           require_client_cert=self.mutual_tls)
        except OSError as e:
            raise ConfigError("--tls-cert/--tls-key/--tls-ca", e.filename,
                              f"cannot read: {e.strerror}") from e


async def make_driver(options: ServeOptions) -> Driver:
    """The driver the options name (libvirt imported only now)."""
    if options.driver == "sim":
        return SimDriver(clock=SystemClock(), log_dir=options.log_dir)
    try:
        from vnfha.bridge.drivers.libvirt_driver import LibvirtDriver  # noqa: PLC0415 - optional
    except ImportError as e:
        raise ConfigError("--driver", "libvirt", f"cannot load the libvirt driver ({e}); "
                          "install libvirt-python") from e
    hosts = dict(options.libvirt_hosts) or {"localhost": "qemu:///system"}
    driver: Driver = await LibvirtDriver.open(hosts, clock=SystemClock())
    return driver


def make_server(driver: Driver, options: ServeOptions, *, clock: Clock,
                wall_clock: Callable[[], float] = time.time,
                state: StateStore | None = None) -> BridgeServer:
    """The server ``options`` describe, over ``driver`` (not started); its core keeps its state
    in ``state`` if given, and reads ``wall_clock`` (tests pass fakes for both clocks)."""
    server = BridgeServer(driver, listen=options.listen, clock=clock,
                          server_credentials=options.credentials(),
                          require_client_cert=options.mutual_tls, operators=options.operators,
                          limits=options.limits, state=state, wall_clock=wall_clock)
    return server


async def serve(options: ServeOptions, *, stop: asyncio.Event,
                on_ready: Callable[[BridgeServer, int], None]) -> None:
    """Serve until ``stop`` is set; ``on_ready(server, instances launched)`` once serving."""
    inventory = load_inventory(options.instances_file) if options.instances_file else None
    options.credentials()  # unreadable files: refused before anything starts
    state = None if options.state_file is None else StateStore(options.state_file)
    if state is not None:
        # one bridge per file; claimed here on the loop (it does not block), so that the
        # finally below releases it even if we are cancelled while open() runs in its thread
        state.claim()
    try:
        if state is not None:
            # read and written back (writable?) before the driver launches anything; the core
            # reads it again, and writes it once more with its interrupted repairs FAILED
            await asyncio.to_thread(state.open)
        driver = await make_driver(options)
        try:
            if inventory is not None and isinstance(driver, SimDriver):
                await launch_inventory(driver, inventory)
            async with make_server(driver, options, clock=SystemClock(), state=state) as bridge:
                on_ready(bridge, len(inventory.instances) if inventory else 0)
                await stop.wait()
        finally:
            await driver.close()
    finally:
        if state is not None:
            state.release()
