"""``heli-sim bench gil``: the lesson in figures: threads overlap waits, not Python computation.

- The seed, in plain Python: factorising numbers in 4 threads against one after another (no
  speed-up: the GIL lets one thread compute at a time) and in a pool of processes (one per core:
  they do compute in parallel); 5 x 0.1 s waits (``select``) in threads against one after
  another (they overlap: the wait releases the GIL).
- In the simulator: the default flight's loop lateness with the CPU helper (the view's ``G`` and
  ``P`` keys) off, as a thread, and as a process; three alternating rounds, medians.
"""

from __future__ import annotations

import os
import select
import statistics
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from sim.bench.common import Result, median_time
from sim.config import FlightConfig, apply_overrides, load_heli
from sim.cpu_helper import factorize
from sim.runtime import gil_enabled
from sim.session import ViewOptions, flight_session

__all__ = ["NUMBERS", "bench_gil", "fly_with_helper", "in_threads"]

# primes near 10**14: about half a second of trial division each on this project's machine
NUMBERS = [100_000_000_000_031, 100_000_000_000_067, 100_000_000_000_097, 100_000_000_000_099]


def in_threads(work: Callable[[int], object], items: list) -> None:
    threads = [threading.Thread(target=work, args=(item,), name=f"bench-gil-{i}") for i, item in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait(_: object) -> None:
    select.select([], [], [], 0.1)


def _wait_in_series() -> None:
    for _ in range(5):
        _wait(None)


def fly_with_helper(mode: str, seconds: float, view: ViewOptions | None = None) -> tuple[float, float, int]:
    """Loop lateness p50, p99 (s) and missed deadlines of the default flight with the CPU helper in ``mode``."""
    config = apply_overrides(FlightConfig(), heli="xcell60", start="hover", pilot="hover", duration_s=seconds)
    with flight_session(config, load_heli("xcell60"), view=view) as loop:
        loop.cpu_helper.set_mode(mode)
        loop.run()
    (segment,) = loop.segments
    lateness = segment.lateness
    return lateness.sampled_quantile(0.5), lateness.sampled_quantile(0.99), segment.missed_deadlines


def bench_gil(quick: bool = False, flight_s: float | None = None) -> list[Result]:
    """The seed's two experiments, then the loop with the CPU helper off, in a thread, in a process.

    ``flight_s``: how long each of those flights is (default 2 s with ``quick``, else 4 s)."""
    results: list[Result] = []
    repeats = 1 if quick else 3
    numbers = NUMBERS[:2] if quick else NUMBERS
    times: dict[str, list[float]] = {"serial": [], "threads": [], "processes": []}
    workers = min(len(numbers), os.cpu_count() or 1)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(factorize, [15, 21] * workers))  # the workers are started before the clock runs
        for _ in range(1 if quick else 5):  # alternating: a noisy machine's slow spell hits all alike
            times["serial"].append(median_time(lambda: [factorize(n) for n in numbers], 1))
            times["threads"].append(median_time(lambda: in_threads(factorize, numbers), 1))
            times["processes"].append(median_time(lambda: list(pool.map(factorize, numbers)), 1))
    serial, threaded = statistics.median(times["serial"]), statistics.median(times["threads"])
    in_processes = statistics.median(times["processes"])
    results.append(Result("gil", f"factorize_{len(numbers)}_serial_s", round(serial, 3), "s"))
    results.append(Result("gil", f"factorize_{len(numbers)}_threads_s", round(threaded, 3), "s"))
    results.append(Result("gil", "factorize_threads_vs_serial", round(threaded / serial, 2), "ratio"))
    results.append(Result("gil", f"factorize_{len(numbers)}_processes_s", round(in_processes, 3), "s"))
    results.append(Result("gil", "factorize_processes_vs_serial", round(in_processes / serial, 2), "ratio"))
    results.append(Result("gil", "processes_used", workers, "-"))
    results.append(Result("gil", "gil_enabled", int(gil_enabled()), "bool"))  # 0 on free-threaded Python
    serial = median_time(_wait_in_series, repeats)
    threaded = median_time(lambda: in_threads(_wait, list(range(5))), repeats)
    results.append(Result("gil", "wait_5x100ms_serial_s", round(serial, 3), "s"))
    results.append(Result("gil", "wait_5x100ms_threads_s", round(threaded, 3), "s"))

    seconds = flight_s or (2.0 if quick else 4.0)
    rounds: dict[str, list[tuple[float, float, int]]] = {"off": [], "thread": [], "process": []}
    for _ in range(repeats):
        for mode in rounds:
            rounds[mode].append(fly_with_helper(mode, seconds))
    for mode, runs in rounds.items():
        p50 = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        missed = statistics.median(r[2] for r in runs)
        results.append(Result("gil", f"helper_{mode}_lateness_p50_us", round(p50 * 1e6, 1), "us"))
        results.append(Result("gil", f"helper_{mode}_lateness_p99_us", round(p99 * 1e6, 1), "us"))
        results.append(Result("gil", f"helper_{mode}_missed_per_s", round(missed / seconds, 1), "1/s"))
    return results
