"""What this interpreter can do in parallel: whether the GIL is on (free-threaded CPython 3.13+
can run without it, and then threads do compute in parallel)."""

from __future__ import annotations

import os
import platform
import sys
import time

__all__ = ["gil_enabled", "process_age_s", "python_line"]


def gil_enabled() -> bool:
    """True unless this is a free-threaded build running with the GIL disabled."""
    probe = getattr(sys, "_is_gil_enabled", None)  # CPython 3.13+
    return True if probe is None else bool(probe())


def process_age_s() -> float | None:
    """Seconds since this process started (the kernel's start time, to its clock tick of 10 ms), or
    None where the system does not say (not Linux)."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of the whole line: starttime, ticks since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def python_line() -> str:
    """ "Python 3.11.7 (GIL)" or "Python 3.13.1 (free-threaded: no GIL)", for the view and reports."""
    kind = "GIL" if gil_enabled() else "free-threaded: no GIL"
    return f"Python {platform.python_version()} ({kind})"
