"""``python -m sim``: the same as the ``heli-sim`` command."""

import sys

from sim.cli import main

sys.exit(main())
