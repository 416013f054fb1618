"""The store benchmark, run from a source checkout: see vnfha.bench.store.

Same as `vnfha bench store`; its options: `python benchmarks/store.py --help`.
"""

import sys

from vnfha.bench.store import main

sys.exit(main())
