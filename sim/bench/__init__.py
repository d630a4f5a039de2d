"""Benchmarks and the lesson's experiments (``heli-sim bench``, ``heli-sim tour``): measured figures,
medians of repeats taken in the same run.

Each benchmark is a module here with one function returning ``Result`` rows (``common``):
``step`` (what a vehicle step costs, against this machine's limits: ``limits``), ``io`` (the seed's
experiment: blocking against threaded I/O), ``protocols``, ``view``, ``gil`` (threads against
processes, the lesson), ``msp``, ``fleet`` (a fleet across processes), ``startup`` and ``soak``;
``tour`` walks the lesson through some of them.  ``BENCHMARKS`` names them for the command line and
imports each only when it runs.  The figures are measured, never asserted: the README keeps a table
of them, with ``machine_info``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sim.bench.common import Result, machine_info

__all__ = ["BENCHMARKS", "ON_REQUEST", "Result", "machine_info"]


def _on_demand(name: str, summary: str) -> Callable[..., list[Result]]:
    """``bench_<name>`` of ``sim.bench.<name>``, imported when it is called (pygame, numba: only then)."""

    def run(*args: object, **options: object) -> list[Result]:
        module = importlib.import_module(f"sim.bench.{name}")
        benchmark: Callable[..., list[Result]] = getattr(module, f"bench_{name}")
        return benchmark(*args, **options)

    run.__name__ = run.__qualname__ = f"bench_{name}"
    run.__doc__ = summary
    return run


BENCHMARKS: dict[str, Callable[..., list[Result]]] = {
    name: _on_demand(name, summary)
    for name, summary in (
        ("step", "Physics and controller cost for one vehicle and in batches, numpy and compiled, against the limits."),
        ("io", "The seed's experiment: N slow links flown with blocking and threaded I/O."),
        ("protocols", "Encode and decode rates of each RC protocol, and recovery from garbage."),
        ("view", "Frames per second of the view at 1280x720, and loop lateness with the view on vs off."),
        ("gil", "The seed's experiments (threads vs serial) and the loop with the CPU helper off/thread/process."),
        ("msp", "MSP identification and reply times over a pty, in each I/O mode."),
        ("fleet", "A fleet of 8,000 stepped by 1..cores worker processes, and by threads, against one process."),
        (
            "startup",
            "From the command to the first tick of the default headless flight, against importing numpy and pyserial.",
        ),
        ("soak", "The seed demo for a long time (10 min; --quick 30 s) with faults and toggles: losses, memory."),
    )
}
ON_REQUEST = ("soak",)  # long: run only when named
