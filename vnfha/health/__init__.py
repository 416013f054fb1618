"""Health checks, faults and the escalation ladder.

- :mod:`~vnfha.health.verdict` (pure): one check's hysteresis, N failures to fail and M
  successes to recover.
- :mod:`~vnfha.health.ladder` (pure): which recovery a fault gets (restart, fail over, NFVI
  repair, alarm), each rung bounded by ``max_count`` within ``probation_s``; the stored form of
  the ladder's counters.
- :mod:`~vnfha.health.counters`: the counters in the store, so they survive a restart.
- :mod:`~vnfha.health.checks`: built-in checks (process alive, TCP connect, grpc.health.v1).
- :mod:`~vnfha.health.monitor`: runs checks on their periods and turns verdicts and reported
  faults into one serialized stream of faults.
- :mod:`~vnfha.health.runner`: a fault in, a stored decision out, for the member to execute.
- :mod:`~vnfha.health.serving`: what the member answers on grpc.health.v1 (running and healthy,
  active or not).

``docs/ladder.md`` describes the behaviour and its defaults.
"""
