"""The failover benchmark, run from a source checkout: see vnfha.apps.bench.failover.

Same as `vnfha bench failover`; its options: `python benchmarks/failover.py --help`.
"""

import sys

from vnfha.apps.bench.failover import main

sys.exit(main())
