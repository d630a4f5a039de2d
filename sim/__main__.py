"""``python -m sim``: the same as the ``heli-sim`` command.

``python -m`` puts the working directory first on this process's ``sys.path`` (``python -P -m sim``
does not): a ``json.py`` or ``numpy.py`` where the user stands would be imported instead of the
real one.  It is taken off here, before anything else is imported; what Python itself imported
to get here (``runpy`` and what it needs) came from there already, which is why the installed
``heli-sim`` command is the one to use.  heli-sim's own child processes always run in safe-path mode.
"""

import os
import sys

if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
    _ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _ROOT not in sys.path:  # a checkout run where it stands, not installed: after the standard library
        sys.path.append(_ROOT)

from sim.entry import main  # after the working directory is off sys.path

sys.exit(main())
