"""The bridge's hypervisor drivers, behind one interface.

- ``driver``: the :class:`~vnfha.bridge.drivers.driver.Driver` protocol every hypervisor
  driver implements, its errors and its values (the instance states and event kinds are the
  API's, from :mod:`vnfha.nfvi.model`).
- ``sim``: local processes as VMs (tests, examples, the demo); ``inventory``: the sim's
  hosts-and-instances TOML file (``--instances``).
- ``libvirt_driver``: libvirt domains; ``libvirt_domains`` (PURE: libvirt's codes and the
  domain XML) and ``libvirt_conn`` (a host's connection: loss detection, HOST_DOWN,
  reconnects) are its parts, and ``_libvirt`` the optional binding they alone import.

Import rule (``tests/unit/test_nfvi_layers.py`` checks it): only the bridge
(:mod:`vnfha.bridge`) imports these modules, and the programs built on the SDK
(``vnfha.apps``) that run a bridge in their own process. Everything generic (watchdogs,
epochs, tickets, placement) stays out of the drivers, in the bridge.
"""
