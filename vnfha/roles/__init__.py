"""Roles: who is active, as etcd and the pure policy decide, and the member's runtime for it.

Pure decisions (no I/O, no clock): :mod:`~vnfha.roles.policy` (ranking and the role decision
per redundancy model), :mod:`~vnfha.roles.keys` (the group's etcd keys, their records, what is
trusted, the snapshot), :mod:`~vnfha.roles.handover` (choosing a successor; the transactions on
the active key), :mod:`~vnfha.roles.suspicion` and :mod:`~vnfha.roles.expiry` (when a silent
active is suspected, when its lease provably ended).

The runtime: :mod:`~vnfha.roles.runtime` (the decide -> act loop and the side effects of each
role change, as tables), :mod:`~vnfha.roles.record` (this member's record),
:mod:`~vnfha.roles.watch` (the group's snapshot, watched), :mod:`~vnfha.roles.follow` and
:mod:`~vnfha.roles.monitor` (a standby following and watching its active),
:mod:`~vnfha.roles.resign` (the graceful exit), :mod:`~vnfha.roles.duties` (an active's
operator requests and maintenance moves). The member (:mod:`vnfha.member`) builds them.
"""
