"""The store benchmark, run from a source checkout: see vnfha.apps.bench.store.

Same as `vnfha bench store`; its options: `python benchmarks/store.py --help`.
"""

import sys

from vnfha.apps.bench.store import main

sys.exit(main())
