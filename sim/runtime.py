"""What this interpreter can do in parallel: whether the GIL is on (free-threaded CPython 3.13+
can run without it, and then threads do compute in parallel)."""

from __future__ import annotations

import platform
import sys

__all__ = ["gil_enabled", "python_line"]


def gil_enabled() -> bool:
    """True unless this is a free-threaded build running with the GIL disabled."""
    probe = getattr(sys, "_is_gil_enabled", None)  # CPython 3.13+
    return True if probe is None else bool(probe())


def python_line() -> str:
    """ "Python 3.11.7 (GIL)" or "Python 3.13.1 (free-threaded: no GIL)", for the view and reports."""
    kind = "GIL" if gil_enabled() else "free-threaded: no GIL"
    return f"Python {platform.python_version()} ({kind})"
