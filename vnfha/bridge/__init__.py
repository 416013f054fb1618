"""The NFVI bridge: the program the infrastructure runs (``vnfha bridge serve``) and that a
VNF's members call through :mod:`vnfha.nfvi`.

Modules (docs/nfvi-bridge.md tells the whole story):

- ``epochs``, ``watchdogs``, ``placement``, ``tickets``, ``maintenance``, ``address_book``:
  PURE decision logic (no I/O, no time).
- ``core``: the bridge's runtime, executing those decisions on a driver; ``routing``: which
  group hears which infrastructure event, and the WatchEvents streams; ``addresses``: the
  Network service (moving a service address, fenced by the epoch); ``_fanout``: bounded
  per-subscriber queues (the core's and the drivers' event streams).
- ``state``: the bridge's state file (``--state-file``): a PURE snapshot <-> JSON half and the
  atomic, durable writes.
- ``server``: the gRPC endpoint (the four member services, Operations for operators, and
  grpc.health.v1); ``serve``: the program, minus its argument parsing.
- ``drivers``: the :class:`~vnfha.bridge.drivers.driver.Driver` protocol and the hypervisor
  drivers (simulator, libvirt).

Import rules (``tests/unit/test_nfvi_layers.py`` checks them): the bridge uses the shared
message code of :mod:`vnfha.nfvi` (``model``, ``wire``), never the member's side of it
(``client``, ``agent``); :mod:`vnfha.nfvi` never imports this package. Only the bridge imports
the drivers; outside this package only the programs built on the SDK (``vnfha.apps``: the demo
and the fence benchmark run a bridge over the simulator in their own process) do, and
``vnfha bridge serve`` goes through ``serve``.

Loggers keep the names they had before the bridge had its own package (``vnfha.nfvi.bridge``,
``vnfha.nfvi.server``, ``vnfha.nfvi.sim``, ``vnfha.nfvi.libvirt``), so logging configurations
written for them still apply.
"""
