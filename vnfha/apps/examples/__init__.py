"""Example VNFs as importable code, shipped in the package so that ``vnfha demo`` runs them
without a source checkout. Each is written against the public API only (``import vnfha``), the
way a VNF would be; ``examples/`` in a checkout has their READMEs and scripts that run them.

- :mod:`vnfha.apps.examples.udp_counter`: a stateful UDP function as a 2N pair, and a traffic
  client that checks no acknowledged increment is lost across a failover.
"""
