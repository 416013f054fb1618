"""Programs built on the SDK, shipped with it: the library core (everything else under
``vnfha``) never imports them; only the ``vnfha`` command (:mod:`vnfha.cli`) does, when it is
asked to run one (``vnfha demo``, ``vnfha bench``).

- :mod:`vnfha.apps.demo` (``vnfha demo``): a failover on this machine, from nothing, in about
  five seconds; its pure part is :mod:`vnfha.apps.demo_timeline`; ``vnfha demo --hosts``
  (:mod:`vnfha.apps.demo_hosts`, root) runs it across lab hosts through a service address.
- :mod:`vnfha.apps.examples`: the example VNFs the demo runs, as importable code, so that
  ``vnfha demo`` works from an installed package (``examples/`` in a source checkout holds
  their READMEs and thin entry points).
- :mod:`vnfha.apps.bench` (``vnfha bench NAME``): the benchmarks.

They use only what the library offers (its public API, ``vnfha.testing``, the bridge and its
simulator driver); they are a place to read how the parts fit together, not a dependency.
Each imports its own heavy parts (etcd launcher, bridge, subprocesses) when it is run.
"""
