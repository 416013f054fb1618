"""The hosts benchmark, run from a source checkout: see vnfha.apps.bench.hosts.

Same as `vnfha bench hosts` (root); its options: `python benchmarks/hosts.py --help`.
"""

import sys

from vnfha.apps.bench.hosts import main

sys.exit(main())
