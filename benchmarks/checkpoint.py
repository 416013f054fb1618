"""The checkpoint benchmark, run from a source checkout: see vnfha.apps.bench.checkpoint.

Same as `vnfha bench checkpoint`; its options: `python benchmarks/checkpoint.py --help`.
"""

import sys

from vnfha.apps.bench.checkpoint import main

sys.exit(main())
