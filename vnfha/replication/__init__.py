"""Checkpoint replication between a group's active and its standbys (``docs/checkpoints.md``).

- :mod:`~vnfha.replication.state` (pure): checkpoint data and its limits, the active's bounded
  log of one epoch, the standby's verdict on a batch of deltas, who acknowledged what.
- :mod:`~vnfha.replication.auth` (pure): the challenge-response with which a standby proves it
  knows the grant's secret, and the active proves it too (``docs/security.md``).
- :mod:`~vnfha.replication.lag` (pure): each standby's lag in entries and seconds.
- :mod:`~vnfha.replication.active`: the active's side (:class:`Primary`, one per epoch) and
  the member's gRPC endpoint; :mod:`~vnfha.replication.standby`: the standby's side
  (:class:`Replica`); :mod:`~vnfha.replication.progress`: the lag sampled into etcd/metrics.
- :mod:`~vnfha.replication.wire`: messages <-> values, the method bound by hand, credentials;
  ``v1/``: the generated messages. Only the runtime modules of this package import them.
"""
