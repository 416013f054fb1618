"""The udp_counter traffic client, run from a source checkout: see
vnfha.apps.examples.udp_counter.client.

Its code lives in the package so that ``vnfha demo`` can use it from an installed vnfha. Same
as ``python -m vnfha.apps.examples.udp_counter.client``; its options: ``--help``::

    python examples/udp_counter/client.py --port 5300 --rate 200 --sessions 8 --duration-s 30
"""

from vnfha.apps.examples.udp_counter.client import main

if __name__ == "__main__":
    main()
