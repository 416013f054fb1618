"""``python -m vnfha``: the same as the ``vnfha`` command."""

import sys

from vnfha.cli import main

sys.exit(main())
