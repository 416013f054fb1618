"""The fence benchmark, run from a source checkout: see vnfha.apps.bench.fence.

Same as `vnfha bench fence`; its options: `python benchmarks/fence.py --help`.
"""

import sys

from vnfha.apps.bench.fence import main

sys.exit(main())
