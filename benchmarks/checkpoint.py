"""The checkpoint benchmark, run from a source checkout: see vnfha.bench.checkpoint.

Same as `vnfha bench checkpoint`; its options: `python benchmarks/checkpoint.py --help`.
"""

import sys

from vnfha.bench.checkpoint import main

sys.exit(main())
