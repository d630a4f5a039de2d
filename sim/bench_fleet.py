"""``heli-sim bench fleet``: a fleet's physics on 1..cores worker processes, and the same sharding
with threads, side by side in one run: the seed's lesson measured on the simulator's own work.

Each figure is vehicle-steps per second at ``FLEET`` vehicles (the median of repeats of
``STEPS_PER_CALL`` steps per call), with the ratio to the same fleet stepped in this process.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from heli.dynamics import FlightModel, steps
from heli.initial import hover_state
from heli.state import ActuatorCommand, StateIndex
from heli.trim import solve_hover_trim
from sim.bench import Result
from sim.config import load_heli
from sim.shards import ShardedFleet, ThreadedFleet

__all__ = ["bench_fleet"]

FLEET = 8000
STEPS_PER_CALL = 10
HELI = "trex450"


def _rate(call, repeats: int) -> float:
    call()  # the first call settles memory (and a worker's imports are done by now)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return FLEET * STEPS_PER_CALL / statistics.median(times)


def bench_fleet(quick: bool = False) -> list[Result]:
    heli = load_heli(HELI)
    model = FlightModel.build(heli.params)
    state = hover_state(model, solve_hover_trim(model), FLEET, 20.0, spacing_m=10.0)
    packed = state.packed
    command = ActuatorCommand(np.concatenate([packed[:, StateIndex.SERVOS], packed[:, [StateIndex.THROTTLE]]], axis=1))
    repeats = 3 if quick else 9
    base = _rate(lambda: steps(model, state, command, 0.001, STEPS_PER_CALL), repeats)
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
    return rows
