"""The NFVI side of vnfha: the bridge's driver interface, server, drivers and the SDK client.

Modules (docs/nfvi-bridge.md tells the whole story):

- ``driver``: the :class:`~vnfha.nfvi.driver.Driver` protocol every hypervisor driver implements.
- ``sim`` and ``libvirt_driver``: the drivers (local processes as VMs; libvirt domains);
  ``libvirt_domains`` (PURE: libvirt's codes and the domain XML) and ``libvirt_conn`` (a
  host's connection: loss detection, HOST_DOWN, reconnects) are the libvirt driver's parts.
- ``epochs``, ``watchdogs``, ``placement``, ``tickets``, ``maintenance``: PURE decision logic
  (no I/O, no time).
- ``core``: the bridge's runtime, executing those decisions on a driver; ``routing``: which
  group hears which infrastructure event, and the WatchEvents streams.
- ``state``: the bridge's state file (``--state-file``): a PURE snapshot <-> JSON half and the
  atomic, durable writes.
- ``server``: the gRPC endpoint (the four member services, Operations for operators, and
  grpc.health.v1); ``serve``: the program.
- ``client``: :class:`~vnfha.nfvi.client.BridgeClient` and the null
  :class:`~vnfha.nfvi.client.NoBridge`, behind :class:`~vnfha.nfvi.client.NfviPort`.
- ``model``: the API's frozen values; ``wire``: messages <-> values, validation, binding.
- ``inventory``: the sim's hosts-and-instances TOML file.
"""
