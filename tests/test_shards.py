"""A fleet's physics across worker processes (``sim.shards``): bit for bit the single process's,
a worker that dies is named at the next step, nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from heli.dynamics import FlightModel, steps
from heli.initial import hover_state
from heli.state import ActuatorCommand, StateIndex
from heli.trim import solve_hover_trim
from sim.config import load_heli
from sim.shards import ShardedFleet, ThreadedFleet, WorkerDied, shard_ranges

HELI = "trex450"


@pytest.fixture(scope="module")
def fleet_start():
    model = FlightModel.build(load_heli(HELI).params)
    state = hover_state(model, solve_hover_trim(model), 200, 20.0, spacing_m=5.0)
    packed = state.packed
    command = ActuatorCommand(np.concatenate([packed[:, StateIndex.SERVOS], packed[:, [StateIndex.THROTTLE]]], axis=1))
    return model, state, command


def test_shards_cover_the_fleet_in_near_equal_ranges():
    assert shard_ranges(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_ranges(2, 4) == [(0, 1), (1, 2)]  # no empty shard


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_sharded_fleet_steps_bit_for_bit_as_one_process(fleet_start, workers):
    model, state, command = fleet_start
    alone = steps(model, state, command, 0.001, 20)
    with ShardedFleet(load_heli(HELI), state, workers) as fleet:
        first = fleet.step(command, 0.001, 10)
        sharded = fleet.step(command, 0.001, 10)
    assert np.array_equal(sharded.packed, alone.packed)
    assert not np.array_equal(first.packed, sharded.packed)  # it did move on


def test_threads_shard_the_same_way_and_give_the_same_bits(fleet_start):
    model, state, command = fleet_start
    with ThreadedFleet(model, state, 2) as fleet:
        threaded = fleet.step(command, 0.001, 20)
    assert np.array_equal(threaded.packed, steps(model, state, command, 0.001, 20).packed)


def test_a_worker_that_dies_is_named_at_the_next_step(fleet_start):
    _model, state, command = fleet_start
    with ShardedFleet(load_heli(HELI), state, 2) as fleet:
        fleet.step(command, 0.001, 1)
        victim = fleet._workers[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        with pytest.raises(WorkerDied, match=r"fleet worker 1 \(vehicles 100-199, pid \d+\).*exit status -9"):
            fleet.step(command, 0.001, 1)


def test_bench_fleet_reports_processes_and_threads_side_by_side(tmp_path):
    """The figures exist and are consistent; how fast they are is the benchmark's business, not a test's."""
    out = tmp_path / "fleet.json"
    result = subprocess.run([sys.executable, "-m", "sim", "bench", "fleet", "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    base = rows["in_process_vehicle_steps_per_s"]
    assert base > 0 and rows["processes_1_vehicle_steps_per_s"] > 0 and rows["threads_2_vehicle_steps_per_s"] > 0
    assert rows["processes_2_speedup"] == pytest.approx(rows["processes_2_vehicle_steps_per_s"] / base, abs=0.01)
