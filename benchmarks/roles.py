"""The roles benchmark, run from a source checkout: see vnfha.bench.roles.

Same as `vnfha bench roles`; its options: `python benchmarks/roles.py --help`.
"""

import sys

from vnfha.bench.roles import main

sys.exit(main())
