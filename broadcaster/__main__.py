"""`python -m broadcaster`: the same command line as the `broadcaster` script."""

import sys

from broadcaster.cli import main

sys.exit(main())
