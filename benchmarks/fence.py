"""The fence benchmark, run from a source checkout: see vnfha.bench.fence.

Same as `vnfha bench fence`; its options: `python benchmarks/fence.py --help`.
"""

import sys

from vnfha.bench.fence import main

sys.exit(main())
