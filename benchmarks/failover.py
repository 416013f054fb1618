"""The failover benchmark, run from a source checkout: see vnfha.bench.failover.

Same as `vnfha bench failover`; its options: `python benchmarks/failover.py --help`.
"""

import sys

from vnfha.bench.failover import main

sys.exit(main())
