"""The roles benchmark, run from a source checkout: see vnfha.apps.bench.roles.

Same as `vnfha bench roles`; its options: `python benchmarks/roles.py --help`.
"""

import sys

from vnfha.apps.bench.roles import main

sys.exit(main())
