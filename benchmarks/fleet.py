"""The fleet benchmark, run from a source checkout: see vnfha.apps.bench.fleet.

Same as `vnfha bench fleet`; its options: `python benchmarks/fleet.py --help`.
"""

import sys

from vnfha.apps.bench.fleet import main

sys.exit(main())
