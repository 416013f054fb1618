"""The udp_counter member, run from a source checkout: see vnfha.apps.examples.udp_counter.vnf.

Its code lives in the package so that ``vnfha demo`` can run it from an installed vnfha. Same
as ``python -m vnfha.apps.examples.udp_counter.vnf``; its options: ``--help``::

    python examples/udp_counter/vnf.py --member a --etcd 127.0.0.1:2379 --port 5300
"""

from vnfha.apps.examples.udp_counter.vnf import main

if __name__ == "__main__":
    main()
