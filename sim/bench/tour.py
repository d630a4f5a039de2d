"""``heli-sim tour``: the lesson, step by step, measured on this machine.

Each step has a caption (what to look for), a measurement taken live, and a verdict that
compares the measurement with the lesson. Threads overlap blocking system calls but do not run
Python code in parallel (the GIL), so threads are for blocking I/O and processes are for
parallel computation. On a free-threaded interpreter with the GIL off, the CPU step says what
really happens there. Steps are plain functions of ``quick``, so any one can be run again on
its own.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from sim.bench.fleet import FLEET, compare_sharding
from sim.bench.gil import NUMBERS, fly_with_helper, in_threads
from sim.bench.io import fly_with_ports
from sim.config import PortSpec
from sim.cpu_helper import factorize
from sim.runtime import gil_enabled, python_line
from sim.session import ViewOptions

__all__ = ["STEPS", "Outcome", "Step"]


@dataclass
class Outcome:
    """What a step measured (``figures``: name -> value, with units in the names) and its verdict."""

    figures: dict[str, float]
    verdict: str
    as_the_lesson_says: bool
    lines: list[str] = field(default_factory=list)  # the measurement, for people


# what a step's flight is shown in: None (text only), or the ``ViewOptions`` for a label such as
# "blocking, 3 links"
Show = Callable[[str], ViewOptions] | None


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    caption: str
    run: Callable[[bool, Show], Outcome]


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _cpu(quick: bool, show: Show = None) -> Outcome:
    numbers = NUMBERS[:2]
    workers = min(len(numbers), os.cpu_count() or 1)
    rounds = 3 if quick else 5
    times: dict[str, list[float]] = {"serial": [], "threads": [], "processes": []}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(factorize, [15] * workers))  # the workers start before the clock does
        for _ in range(rounds):
            times["serial"].append(_timed(lambda: [factorize(n) for n in numbers]))
            times["threads"].append(_timed(lambda: in_threads(factorize, numbers)))
            times["processes"].append(_timed(lambda: list(pool.map(factorize, numbers))))
    serial, threads, processes = (statistics.median(times[k]) for k in ("serial", "threads", "processes"))

    def ratio(kind: str) -> float:
        """The median of the ratios within each round: a CPU whose clock changes between rounds
        (turbo, a neighbour on the host) moves both sides of a round alike."""
        return statistics.median(t / s for t, s in zip(times[kind], times["serial"], strict=True))

    threads_ratio, processes_ratio = ratio("threads"), ratio("processes")
    figures = {"serial_s": serial, "threads_s": threads, "processes_s": processes,
               "threads_vs_serial": threads_ratio, "processes_vs_serial": processes_ratio,
               "cores": float(os.cpu_count() or 1), "gil": float(gil_enabled())}  # fmt: skip
    lines = [
        f"{len(numbers)} numbers factorised one after another: {serial:.2f} s",
        f"in {len(numbers)} threads:   {threads:.2f} s ({threads_ratio:.2f}x the time of the same round's serial run)",
        f"in {workers} processes: {processes:.2f} s ({processes_ratio:.2f}x the time of the same round's serial run)",
        f"(times: medians of {rounds} rounds; ratios: the median of each round's own ratio, steadier, as this "
        "machine's speed moves between rounds)",
    ]
    if gil_enabled():
        threads_ok = threads_ratio > CPU_THREADS_AT_LEAST  # no real speed-up: one thread computes at a time
        processes_ok = workers < 2 or processes_ratio < CPU_PROCESSES_AT_MOST
        if threads_ok:
            threads_said = (f"threads took {threads_ratio:.2f}x the time of one after another, no real speed-up: "
                            "the GIL lets one thread run Python at a time")  # fmt: skip
        else:
            threads_said = (f"threads took only {threads_ratio:.2f}x the time of one after another, faster than "
                            "the GIL lets Python threads compute (the machine's speed moved: retry)")  # fmt: skip
        if workers < 2:
            processes_said = "this machine has one core, so processes could not be faster either"
        elif processes_ok:
            processes_said = (f"processes took {processes_ratio:.2f}x the time, {1 / processes_ratio:.1f}x faster: "
                              "each has its own interpreter and GIL")  # fmt: skip
        else:
            processes_said = (f"processes took {processes_ratio:.2f}x the time, less gain than two cores give: "
                              "something else was using the other core (run it again)")  # fmt: skip
        verdict = f"{threads_said}; {processes_said}"
        ok = threads_ok and processes_ok
    else:  # free-threaded: threads may compute in parallel; the tour says what it measured
        ok = True
        if threads_ratio < CPU_PROCESSES_AT_MOST:
            threads_said = (f"{python_line()}: threads took {threads_ratio:.2f}x the time of one after another, "
                            "because without the GIL they compute in parallel")  # fmt: skip
        else:
            threads_said = (f"{python_line()}: threads took {threads_ratio:.2f}x the time of one after another, "
                            "no real speed-up even without the GIL here")  # fmt: skip
        verdict = f"{threads_said}; processes took {processes_ratio:.2f}x, at the cost of their own memory"
    return Outcome(figures, verdict, ok, lines)


def _devices(quick: bool, show: Show = None) -> Outcome:
    latency_ms = 100.0
    counts = (1, 3) if quick else (1, 3, 5)
    figures: dict[str, float] = {}
    modes = ("blocking", "threaded", "asyncio")
    header = " ".join(f"{mode + ' period':>16}" for mode in modes)
    lines = [f"{'links':>6} {header}   theory (blocking: N x {latency_ms:g} ms)"]
    for n in counts:
        links = tuple(PortSpec(role="link", name=f"link{i}", latency_ms=latency_ms) for i in range(n))
        periods = {}
        for mode in modes:
            duration = max(1.2, 4 * n * latency_ms / 1e3) if mode == "blocking" else 1.0
            view = show(f"{mode}, {n} slow link{'s' if n > 1 else ''}") if show else None
            (segment,) = fly_with_ports(links, mode, duration, fleet=1, view=view).segments
            median = segment.period.quantile(0.5)
            periods[mode] = math.nan if median is None else median * 1e3  # no period measured: not as said
            figures[f"{mode}_period_ms_n{n}"] = periods[mode]
        cells = " ".join(f"{periods[mode]:>13.{1 if mode == 'blocking' else 2}f} ms" for mode in modes)
        lines.append(f"{n:>6} {cells}   {n * latency_ms:g} ms")
    blocking_grows = all(figures[f"blocking_period_ms_n{n}"] >= DEVICES_BLOCKING_SHARE * n * latency_ms for n in counts)
    concurrent = [figures[f"{mode}_period_ms_n{n}"] for n in counts for mode in modes[1:]]
    concurrent_flat = all(period <= DEVICES_PERIOD_AT_MOST_MS for period in concurrent)
    most = counts[-1]
    if blocking_grows:
        blocking_said = (f"served inline, every slow device adds its whole round trip to every tick ({most} links: "
                         f"{figures[f'blocking_period_ms_n{most}']:.0f} ms a tick)")  # fmt: skip
    else:
        blocking_said = "served inline, the ticks grew less than the devices' round trips add up to (unexpected)"
    slowest = max(concurrent)
    if any(math.isnan(period) for period in concurrent):
        concurrent_said = "served by threads or asyncio, no tick period was measured (run it again)"
    elif concurrent_flat:
        concurrent_said = (f"served by threads (one per device) or by one asyncio event loop, the waits overlap "
                           f"and the loop keeps its 2 ms period (median at most {slowest:.2f} ms)")  # fmt: skip
    else:
        concurrent_said = (f"served by threads or asyncio, a median tick still took {slowest:.1f} ms: the machine "
                           "was too busy to keep the 2 ms period (run it again)")  # fmt: skip
    return Outcome(figures, f"{blocking_said}; {concurrent_said}", blocking_grows and concurrent_flat, lines)


def _helper(quick: bool, show: Show = None) -> Outcome:
    seconds = 1.5 if quick else 3.0
    figures: dict[str, float] = {}
    lines = [f"{'CPU helper':>10} {'lateness p50':>13} {'p99':>10} {'missed/s':>9}"]
    for mode in ("off", "thread", "process"):
        view = show(f"CPU helper: {mode}") if show else None
        p50, p99, missed = fly_with_helper(mode, seconds, view=view)
        figures[f"{mode}_p50_us"], figures[f"{mode}_p99_us"] = p50 * 1e6, p99 * 1e6
        figures[f"{mode}_missed_per_s"] = missed / seconds
        lines.append(f"{mode:>10} {p50 * 1e6:>10.0f} us {p99 * 1e6:>7.0f} us {missed / seconds:>9.1f}")
    off_p99, thread_p99, process_p99 = (figures[f"{mode}_p99_us"] / 1e3 for mode in ("off", "thread", "process"))
    thread_hurts = thread_p99 > HELPER_HURTS * off_p99
    process_spares = process_p99 <= HELPER_SPARED * off_p99
    if gil_enabled():
        thread_said = (
            f"a computing thread holds the GIL for a switch interval at a time, so the loop waits for it even in "
            f"threaded mode (p99 lateness {thread_p99:.1f} ms, {off_p99:.2f} ms without a helper)" if thread_hurts
            else f"the computing thread hardly delayed the loop this time (p99 {thread_p99:.2f} ms, {off_p99:.2f} ms "
            "without a helper; unexpected)"
        )  # fmt: skip
        if process_spares:
            process_said = f"the same work in a process left the loop as it was without one (p99 {process_p99:.2f} ms)"
        else:
            process_said = (f"the process delayed the loop too (p99 {process_p99:.2f} ms against {off_p99:.2f} ms "
                            "without a helper): the machine was busy")  # fmt: skip
        verdict = f"{thread_said}; {process_said}"
        ok = thread_hurts and process_spares
    else:
        verdict = f"{python_line()}: the helper thread computes beside the loop instead of taking turns with it"
        ok = True
    return Outcome(figures, verdict, ok, lines)


# each step's rule (tests/test_tour.py applies the same constants to the figures the tour reports):
# cpu: threads no real speed-up, processes a clear one on 2+ cores
CPU_THREADS_AT_LEAST = 0.85  # threads' time over serial: above this, no real speed-up
CPU_PROCESSES_AT_MOST = 0.8  # processes' time over serial: below this, a real one
# devices: blocking adds every round trip (at least 90 % of them); threaded and asyncio keep the 2 ms period
DEVICES_BLOCKING_SHARE = 0.9
DEVICES_PERIOD_AT_MOST_MS = 2.5
# helper: a computing thread at least triples the loop's p99 lateness; a process keeps it within twice
# the p99 without a helper
HELPER_HURTS = 3.0
HELPER_SPARED = 2.0
# fleet: threads no faster, processes clearly faster on 2+ cores
FLEET_THREADS_AT_MOST = 1.15
FLEET_PROCESSES_AT_LEAST = 1.25


def _fleet(quick: bool, show: Show = None) -> Outcome:
    workers = min(2, os.cpu_count() or 1)
    figures = compare_sharding(max(2, workers), rounds=3 if quick else 7)
    figures["cores"] = float(os.cpu_count() or 1)
    figures["gil"] = float(gil_enabled())
    threads, processes = figures["threads_speedup"], figures["processes_speedup"]
    alone = figures["in_process_vehicle_steps_per_s"]
    lines = [
        f"{FLEET:,} helicopters, {alone / 1e6:.2f} M vehicle-steps/s in this process",
        f"in 2 threads:   {figures['threads_vehicle_steps_per_s'] / 1e6:.2f} M/s ({threads:.2f}x the same round's)",
        f"in 2 processes: {figures['processes_vehicle_steps_per_s'] / 1e6:.2f} M/s ({processes:.2f}x the same round's)",
    ]
    threads_ok = threads <= FLEET_THREADS_AT_MOST
    processes_ok = workers < 2 or processes >= FLEET_PROCESSES_AT_LEAST
    if not gil_enabled():
        return Outcome(figures, f"{python_line()}: the threads ran {threads:.2f}x and the processes {processes:.2f}x "
                       "the speed of one, without the GIL", True, lines)  # fmt: skip
    if threads_ok:
        threads_said = (f"the threads ran {threads:.2f}x the speed of one: numpy lets go of the GIL inside each "
                        "operation, but the Python between operations needs it, so they mostly take turns")  # fmt: skip
    else:
        threads_said = f"the threads ran {threads:.2f}x the speed of one, more than the GIL usually leaves"
    if workers < 2:
        processes_said = "this machine has one core, so processes could not be faster either"
    elif processes_ok:
        processes_said = (f"the processes ran {processes:.2f}x: each steps its own share of the fleet, with its own "
                          "interpreter, in shared memory (fly --workers)")  # fmt: skip
    else:
        processes_said = f"the processes ran only {processes:.2f}x: something else was using the cores"
    return Outcome(figures, f"{threads_said}; {processes_said}", threads_ok and processes_ok, lines)


STEPS: list[Step] = [
    Step("cpu", "CPU-bound work: one after another, in threads, in processes",
         "Factorising numbers is pure Python computation. Watch whether threads make it faster, and "
         "whether processes do.", _cpu),
    Step("devices", "Slow serial devices: served inline, by threads, by an event loop",
         "One helicopter flies with N devices that each answer 100 ms after a request, like the seed's slow "
         "system call. Served inline (blocking), the loop waits for each in turn. Served by threads, or by one "
         "asyncio event loop in one thread, the waits overlap.", _devices),
    Step("helper", "A CPU-bound helper: in a thread, in a process",
         "The loop flies in threaded mode while a helper factorises numbers: first in a thread of the "
         "simulator (the view's G key), then in a process of its own (P). Watch the loop's lateness.", _helper),
    Step("fleet", "The simulator's own work: a fleet in threads, in processes",
         "Stepping thousands of helicopters is computation on numpy arrays. The fleet is split in two, "
         "stepped by two threads, then by two worker processes on shared memory (fly --workers).", _fleet),
]  # fmt: skip
