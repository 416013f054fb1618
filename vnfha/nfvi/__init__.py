"""The NFVI side of vnfha: the bridge's driver interface, server, drivers and the SDK client.

Modules (docs/nfvi-bridge.md tells the whole story):

- ``driver``: the :class:`~vnfha.nfvi.driver.Driver` protocol every hypervisor driver implements.
- ``sim`` and ``libvirt_driver``: the drivers (local processes as VMs; libvirt domains).
- ``epochs``, ``watchdogs``, ``placement``, ``tickets``: PURE decision logic (no I/O, no time).
- ``core``: the bridge's runtime, executing those decisions on a driver.
- ``server``: the gRPC endpoint (the four member services, Operations for operators, and
  grpc.health.v1); ``serve``: the program.
- ``client``: :class:`~vnfha.nfvi.client.BridgeClient` and the null
  :class:`~vnfha.nfvi.client.NoBridge`, behind :class:`~vnfha.nfvi.client.NfviPort`.
- ``model``: the API's frozen values; ``wire``: messages <-> values, validation, binding.
- ``inventory``: the sim's hosts-and-instances TOML file.
"""
