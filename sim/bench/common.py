"""What every benchmark shares: a measured figure (a row of ``bench --json``), the machine it was
measured on, and the two timings the others are judged against (the median of repeats; a bare
loop's lateness).  No benchmark imports another: each imports this."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from sim.loop import MonotonicClock
from sim.runtime import gil_enabled
from sim.stats import LogHistogram

__all__ = ["Result", "bare_loop_lateness", "machine_info", "median_time"]


@dataclass(frozen=True)
class Result:
    """One measured figure (a row of ``bench --json``)."""

    bench: str
    metric: str
    value: float
    unit: str
    protocol: str | None = None  # for the per-protocol figures of ``bench protocols``

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def machine_info() -> dict:
    """CPU, core count, Python and numpy versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gil": gil_enabled(),
        "platform": platform.platform(),
    }


def median_time(run: Callable[[], object], repeats: int) -> float:
    """The median of ``repeats`` timings of ``run()`` (s)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_loop_lateness(duration_s: float, loop_hz: float = 500.0) -> LogHistogram:
    """Lateness of a loop that does nothing but sleep to absolute deadlines (the baseline)."""
    clock = MonotonicClock()
    lateness = LogHistogram()
    start = clock.now()
    for k in range(round(duration_s * loop_hz)):
        deadline = start + k / loop_hz
        clock.sleep_until(deadline)
        lateness.add(max(0.0, clock.now() - deadline))
    return lateness
