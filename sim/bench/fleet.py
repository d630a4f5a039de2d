"""``heli-sim bench fleet``: a fleet's physics on 1..cores worker processes, and the same sharding
with threads, side by side in one run: the seed's lesson measured on the simulator's own work.

Two kinds of figure:

- throughput: vehicle-steps per second at ``FLEET`` vehicles (the median of repeats of
  ``STEPS_PER_CALL`` steps per call), with the ratio to the same fleet stepped in this process;
- real time: the largest fleet whose loop tick (the pilot's frames, a controller cycle and the
  physics steps of one 500 Hz period, as ``fly`` runs them: ``Flight``) fits the period nine
  ticks in ten, in this process and with 1..cores workers running controller and physics.
  Each worker pays the numpy kernels' fixed cost per call whatever its share, so at these
  fleet sizes the gain is smaller than the throughput figure's.  Where numba is installed, the
  real-time figures again on the compiled kernels (``sim.compiled``).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from heli.dynamics import FlightModel, steps
from heli.initial import hover_state
from heli.state import ActuatorCommand, StateIndex, VehicleState
from heli.trim import solve_hover_trim
from sim.bench.common import Result
from sim.compiled import available as compiled_available
from sim.config import FlightConfig, FlightSettings, load_heli
from sim.flight import Flight
from sim.shards import ShardedFleet, ThreadedFleet

__all__ = ["bench_fleet", "compare_sharding", "largest_realtime_fleet", "tick_seconds"]

FLEET = 8000
STEPS_PER_CALL = 10
HELI = "trex450"
LOOP_HZ = 500.0
ON_TIME_SHARE = 0.9  # "keeps 500 Hz": this share of ticks fit in the period
_ROUND_TO = 25  # the largest fleet, to this many vehicles
_MAX_FLEET = 200_000


def _rate(call, repeats: int) -> float:
    call()  # the first call settles memory (and a worker's imports are done by now)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return FLEET * STEPS_PER_CALL / statistics.median(times)


def tick_seconds(fleet: int, workers: int, ticks: int, threads: bool = False, kernel: str = "numpy") -> float:
    """The ``ON_TIME_SHARE`` quantile of one loop tick's cost (s) for ``fleet`` vehicles in hover:
    the pilot's frames, a controller cycle and the period's physics steps, as the loop runs them,
    in this process (``workers`` 0) or with that many worker processes (``threads``: threads), on
    the flight's ``kernel`` (numpy or compiled)."""
    settings = FlightSettings(heli=HELI, fleet=fleet, start="hover", loop_hz=LOOP_HZ, kernel=kernel)
    flight = Flight(load_heli(HELI), FlightConfig(flight=settings, ports=()))
    steps_per_tick = round(1.0 / (LOOP_HZ * settings.physics_dt_s))
    fresh = np.ones(fleet, dtype=bool)
    try:
        if workers:
            flight.start_workers(workers, threads=threads)
        times = []
        for tick in range(ticks + 5):  # the first ticks settle memory
            started = time.perf_counter()
            flight.run_controller(flight.pilot_frames(), fresh, 1.0 / LOOP_HZ)
            flight.advance(steps_per_tick)
            if tick >= 5:
                times.append(time.perf_counter() - started)
    finally:
        flight.stop_workers()
    return float(np.quantile(times, ON_TIME_SHARE))


def largest_realtime_fleet(
    workers: int, ticks: int, refinements: int, threads: bool = False, kernel: str = "numpy"
) -> int:
    """The largest fleet (to ``_ROUND_TO``) whose tick fits a 500 Hz period nine times in ten: the
    fleet doubles until a tick no longer fits, then the bracket is halved ``refinements`` times.
    0 if even the smallest does not fit."""
    period = 1.0 / LOOP_HZ
    fits, fails = 0, (workers or 1) * _ROUND_TO  # from a slice of numpy size each (more than 24 vehicles)
    while fails <= _MAX_FLEET and tick_seconds(fails, workers, ticks, threads, kernel) <= period:
        fits, fails = fails, fails * 2
    for _ in range(refinements):
        middle = (fits + fails) // 2 // _ROUND_TO * _ROUND_TO
        if middle <= fits or fails - fits <= _ROUND_TO:
            break
        if tick_seconds(middle, workers, ticks, threads, kernel) <= period:
            fits = middle
        else:
            fails = middle
    return fits


def _hovering_fleet() -> tuple[FlightModel, VehicleState, ActuatorCommand]:
    model = FlightModel.build(load_heli(HELI).params)
    state = hover_state(model, solve_hover_trim(model), FLEET, 20.0, spacing_m=10.0)
    packed = state.packed
    command = ActuatorCommand(np.concatenate([packed[:, StateIndex.SERVOS], packed[:, [StateIndex.THROTTLE]]], axis=1))
    # column-major, as the kernel keeps a fleet it steps on (and the workers keep theirs)
    return model, VehicleState(np.asfortranarray(packed)), command


class _InProcess:
    """The fleet stepped on in this process, from where its last call left it (as the others are)."""

    def __init__(self, model: FlightModel, state: VehicleState):
        self.model, self.state = model, state

    def step(self, command: ActuatorCommand, dt_s: float, count: int) -> VehicleState:
        self.state = steps(self.model, self.state, command, dt_s, count)
        return self.state


def compare_sharding(workers: int, rounds: int) -> dict[str, float]:
    """``FLEET`` vehicles stepped in this process, in ``workers`` threads and in ``workers`` processes,
    in turn within each of ``rounds`` rounds: vehicle-steps/s of each (medians), and the speed-ups
    over this process as the medians of the ratios within each round (a CPU whose clock changes
    between rounds moves both sides of a round alike)."""
    model, state, command = _hovering_fleet()
    times: dict[str, list[float]] = {"in_process": [], "threads": [], "processes": []}
    alone = _InProcess(model, state)
    with ThreadedFleet(model, state, workers) as threaded, ShardedFleet(load_heli(HELI), state, workers) as sharded:
        calls = {
            "in_process": lambda: alone.step(command, 0.001, STEPS_PER_CALL),
            "threads": lambda: threaded.step(command, 0.001, STEPS_PER_CALL),
            "processes": lambda: sharded.step(command, 0.001, STEPS_PER_CALL),
        }
        for call in calls.values():
            call()  # settles memory
        for _ in range(rounds):
            for kind, call in calls.items():
                started = time.perf_counter()
                call()
                times[kind].append(time.perf_counter() - started)
    figures = {f"{kind}_vehicle_steps_per_s": FLEET * STEPS_PER_CALL / statistics.median(t)
               for kind, t in times.items()}  # fmt: skip
    for kind in ("threads", "processes"):
        ratios = (base / t for base, t in zip(times["in_process"], times[kind], strict=True))
        figures[f"{kind}_speedup"] = statistics.median(ratios)
    return figures


def bench_fleet(quick: bool = False) -> list[Result]:
    heli = load_heli(HELI)
    model, state, command = _hovering_fleet()
    repeats = 3 if quick else 9
    alone = _InProcess(model, state)
    base = _rate(lambda: alone.step(command, 0.001, STEPS_PER_CALL), repeats)
    rows = [Result("fleet", "in_process_vehicle_steps_per_s", round(base), "1/s")]
    for workers in range(1, max(2, os.cpu_count() or 1) + 1):
        with ShardedFleet(heli, state, workers) as fleet:
            rate = _rate(lambda fleet=fleet: fleet.step(command, 0.001, STEPS_PER_CALL), repeats)
        rows += [
            Result("fleet", f"processes_{workers}_vehicle_steps_per_s", round(rate), "1/s"),
            Result("fleet", f"processes_{workers}_speedup", round(rate / base, 2), "x"),
        ]
        if workers > 1:
            with ThreadedFleet(model, state, workers) as fleet:
                rate = _rate(lambda fleet=fleet: fleet.step(command, 0.001, STEPS_PER_CALL), repeats)
            rows += [
                Result("fleet", f"threads_{workers}_vehicle_steps_per_s", round(rate), "1/s"),
                Result("fleet", f"threads_{workers}_speedup", round(rate / base, 2), "x"),
            ]
    ticks, refinements = (20, 2) if quick else (60, 5)
    largest = largest_realtime_fleet(0, ticks, refinements)
    rows.append(Result("fleet", "realtime_500hz_fleet_in_process", largest, "vehicles"))
    for workers in range(1, max(2, os.cpu_count() or 1) + 1):
        largest = largest_realtime_fleet(workers, ticks, refinements)
        rows.append(Result("fleet", f"realtime_500hz_fleet_processes_{workers}", largest, "vehicles"))
        if workers > 1:
            largest = largest_realtime_fleet(workers, ticks, refinements, threads=True)
            rows.append(Result("fleet", f"realtime_500hz_fleet_threads_{workers}", largest, "vehicles"))
    if compiled_available():  # the same, on the compiled kernels (sim.compiled)
        largest = largest_realtime_fleet(0, ticks, refinements, kernel="compiled")
        rows.append(Result("fleet", "realtime_500hz_fleet_in_process_compiled", largest, "vehicles"))
        for workers in range(1, max(2, os.cpu_count() or 1) + 1):
            largest = largest_realtime_fleet(workers, ticks, refinements, kernel="compiled")
            rows.append(Result("fleet", f"realtime_500hz_fleet_processes_{workers}_compiled", largest, "vehicles"))
    return rows
