"""A fleet's physics across worker processes (``sim.shards``): bit for bit the single process's,
a worker that dies is named at the next step, nothing is left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from heli.control import ControllerState, PilotInput, control
from heli.dynamics import FlightModel, steps
from heli.initial import hover_state
from heli.state import ActuatorCommand, StateIndex
from heli.trim import solve_hover_trim
from sim.config import FlightConfig, FlightSettings, load_heli
from sim.flight import Flight
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.session import flight_session
from sim.shards import FleetController, ShardedFleet, ThreadedFleet, WorkerDied, shard_ranges

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


def test_workers_run_the_controller_bit_for_bit_as_one_process(fleet_start):
    model, state, _command = fleet_start
    heli = load_heli(HELI)
    flight = Flight(heli, workers_flight(state.count, 2))  # its constants: the trim's hover collective
    constants, controllers = flight.constants, ControllerState.initial(state.count)
    pilot = PilotInput.centred(state.count, arm=1.0, collective=0.2)
    pilot.packed[::7, 0] = 0.3  # a few vehicles roll: rows must stay with their vehicles
    setup = FleetController(heli.controller, constants.hover_collective, controllers)
    alone_state, alone_command = control(constants, controllers, pilot, state, 0.002)
    alone = steps(model, state, alone_command, 0.001, 2)
    with ShardedFleet(heli, state, 2, controller=setup) as fleet:
        fleet.start_control(pilot, 0.002, state, controllers)
        sharded_state, sharded_command = fleet.finish_control()
        sharded = fleet.step(sharded_command, 0.001, 2)
    assert np.array_equal(sharded_state.packed, alone_state.packed)
    assert np.array_equal(sharded_command.packed, alone_command.packed)
    assert np.array_equal(sharded.packed, alone.packed)


@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_a_flight_with_workers_is_the_flight_in_one_process_tick_by_tick(threads):
    """Controller and physics in the workers (or threads), with what a live flight does between: a port
    reading the command mid-tick, a tick without physics steps, a ground station's new gains, a reset."""
    config = workers_flight(60, 2)
    heli = load_heli(HELI)
    alone, sharded = Flight(heli, config), Flight(heli, config)
    kind = "threads" if threads else "processes"
    assert f"physics and control in 2 worker {kind}" in sharded.start_workers(2, threads=threads)
    try:
        for tick in range(40):
            if tick == 15:
                faster = dataclasses.replace(heli.controller, roll_p_s=heli.controller.roll_p_s * 2.0)
                for flight in (alone, sharded):
                    flight.set_controller_params(faster)
            if tick == 30:
                alone.reset()
                sharded.reset()
            for flight in (alone, sharded):
                flight.run_controller(flight.pilot_frames(), True, 0.002)
            if tick % 3 == 0:  # a servo port reads the command before the physics steps
                assert np.array_equal(sharded.command.packed, alone.command.packed)
            if tick % 7 == 1:  # a tick without physics steps (the loop's first; an early one): nothing reads
                continue
            alone.advance(2)
            sharded.advance(2)
            assert np.array_equal(sharded.vehicles.packed, alone.vehicles.packed), tick
            assert np.array_equal(sharded.controller.packed, alone.controller.packed), tick
        assert sharded.shards is not None and not sharded.take_events()
    finally:
        sharded.stop_workers()


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
    # the largest real-time fleets: in steps of 25 (0 when not even the smallest keeps 500 Hz)
    realtime = [rows["realtime_500hz_fleet_in_process"], rows["realtime_500hz_fleet_processes_1"],
                rows["realtime_500hz_fleet_processes_2"], rows["realtime_500hz_fleet_threads_2"]]  # fmt: skip
    assert all(n >= 0 and n % 25 == 0 for n in realtime)


def test_the_realtime_fleet_search_lands_where_the_tick_crosses_the_period(monkeypatch):
    """On a made-up machine whose tick costs 0.5 ms plus 1 us per vehicle, 500 Hz holds up to 1,500."""
    from sim.bench import fleet as bench_fleet

    monkeypatch.setattr(
        bench_fleet, "tick_seconds", lambda fleet, workers, ticks, threads, kernel: 0.5e-3 + fleet * 1e-6
    )
    assert bench_fleet.largest_realtime_fleet(0, 10, refinements=8) == 1500
    monkeypatch.setattr(bench_fleet, "tick_seconds", lambda fleet, workers, ticks, threads, kernel: 3e-3)
    assert bench_fleet.largest_realtime_fleet(2, 10, refinements=8) == 0


def workers_flight(fleet: int, workers: int, duration_s: float = 0.2) -> FlightConfig:
    settings = FlightSettings(heli=HELI, fleet=fleet, start="hover", duration_s=duration_s, workers=workers)
    return FlightConfig(flight=settings, ports=())


def test_a_flight_with_workers_replays_bit_for_bit_in_one_process(tmp_path):
    config = workers_flight(60, 2)
    with flight_session(config, load_heli(HELI), log_path=str(tmp_path / "log")) as loop:
        loop.run()
    assert any(e.kind == "workers" and "2 worker processes" in e.detail for e in loop.events)
    replay = Replay(read_log(str(tmp_path / "log")))  # no workers: the replay steps in its own process
    replay.run()
    assert replay.difference is None and replay.done


def test_a_fleet_too_small_for_workers_is_stepped_in_the_loop_and_says_so():
    with flight_session(workers_flight(10, 2, 0.05), load_heli(HELI)) as loop:
        loop.run()
    (event,) = [e for e in loop.events if e.kind == "workers"]
    assert "stepped in this process" in event.detail and loop.flight.shards is None


def test_a_worker_dying_while_it_controls_hands_the_cycle_to_the_loop():
    config = workers_flight(60, 2)
    heli = load_heli(HELI)
    alone, sharded = Flight(heli, config), Flight(heli, config)
    sharded.start_workers(2)
    try:
        for flight in (alone, sharded):
            flight.run_controller(flight.pilot_frames(), True, 0.002)
        victim = sharded.shards._workers[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        events = sharded.advance(2)
        alone.advance(2)
    finally:
        sharded.stop_workers()
    assert [kind for kind, _ in events] == ["worker_died"] and "fleet worker 1" in events[0][1]
    assert sharded.shards is None and np.array_equal(sharded.vehicles.packed, alone.vehicles.packed)


def test_a_worker_dying_in_flight_is_reported_within_the_tick_and_the_fleet_flies_on():
    killed = []

    def kill_one(loop) -> None:
        shards = loop.flight.shards
        if not killed and shards is not None and loop.ticks >= 5:
            victim = shards._workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            killed.append(loop.ticks)

    with flight_session(workers_flight(60, 2, 0.3), load_heli(HELI), before_tick=kill_one) as loop:
        loop.run()
    died = [e for e in loop.events if e.kind == "worker_died"]
    assert killed and len(died) == 1 and "fleet worker 0 (vehicles 0-29" in died[0].detail
    assert loop.flight.shards is None and loop.stop_reason == "duration reached"
    assert not loop.flight.diverged_in_flight.any()
