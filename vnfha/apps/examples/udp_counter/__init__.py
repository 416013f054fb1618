"""udp_counter: a per-session request counter over UDP as an active/standby pair
(``examples/udp_counter/README.md``).

- :mod:`.vnf`: the member (``python -m vnfha.apps.examples.udp_counter.vnf``, or
  ``python examples/udp_counter/vnf.py`` from a checkout); :func:`.vnf.run_member`.
- :mod:`.client`: the traffic and its lost-increment check
  (``python -m vnfha.apps.examples.udp_counter.client``); :func:`.client.run_client`.

Nothing is imported here, so that running either module with ``-m`` loads it only once.
"""
