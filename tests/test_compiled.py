"""The compiled kernels (``sim.compiled``) give the numpy kernels' results: the same physics step and
controller cycle to 1e-12 on states that take every branch (air, ground contact, crashes, wind,
vortex ring, every controller mode and failsafe), on both loops (one vehicle after the other, and
the vectorised columns); the same flight; a cache that the next process loads; a clear error
where numba is missing."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heli.control import ControllerConstants, ControllerState, PilotInput, control
from heli.dynamics import FlightModel, step, steps
from heli.initial import ground_state, hover_state
from heli.state import COMMAND_SIZE, ActuatorCommand, StateIndex, VehicleState
from heli.trim import quaternion_from_euler, solve_hover_trim
from sim.compiled import COLUMNS_FROM, available, compiled_kernels
from sim.config import ChannelMap, FlightConfig, FlightSettings, load_heli
from sim.flight import Flight
from sim.hover_kernel import NOT_YET, HoverState
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.pilots import make_pilot
from sim.rc import to_pilot_input
from sim.session import flight_session
from sim.shards import ShardedFleet

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not available(), reason="numba is not installed")

TOLERANCE = {"rtol": 1e-12, "atol": 1e-12}
SIZES = (1, COLUMNS_FROM - 1, COLUMNS_FROM + 52)  # the rows loop, and the columns loop


@pytest.fixture(scope="module", params=["xcell60", "trex450"])  # an engine and an electric drive
def airframe(request):
    heli = load_heli(request.param)
    model = FlightModel.build(heli.params)
    trim = solve_hover_trim(model)
    constants = ControllerConstants.build(heli.controller, model, math.radians(trim.collective_deg))
    return heli, model, trim, constants


def _mixed_fleet(model: FlightModel, trim, count: int, seed: int) -> tuple[VehicleState, ActuatorCommand]:
    """``count`` vehicles in every situation the physics branches on: hovering high, sinking fast
    into their own wake, on the skids, touching down hard, tilted into the ground with the rotor
    turning, upside down, already crashed; random rates, speeds and commands."""
    rng = np.random.default_rng(seed)
    packed = np.array(hover_state(model, trim, count, 20.0, spacing_m=4.0).packed)
    ground = ground_state(model, count).packed
    kind = np.arange(count) % 7
    packed[:, StateIndex.VELOCITY] += rng.normal(0.0, 3.0, (count, 3))
    packed[:, StateIndex.RATES] += rng.normal(0.0, 1.0, (count, 3))
    packed[kind == 1, 5] = 6.0  # sinking through the vortex ring
    packed[kind == 2] = ground[kind == 2]  # on the skids, rotor stopped
    packed[kind == 3, 2] = ground[kind == 3, 2] - 0.01  # about to touch, sinking fast: hard landing
    packed[kind == 3, 5] = 4.0
    tilted = quaternion_from_euler(math.radians(70.0), 0.0, 0.3)
    packed[kind == 4, 2] = -0.2  # rolled over near the ground, rotor turning: a rotor strike
    packed[kind == 4, 6:10] = tilted
    packed[kind == 5, 6:10] = quaternion_from_euler(math.pi, 0.1, 0.0)  # upside down
    packed[kind == 6, StateIndex.CRASH] = 2.0  # a wreck
    command = rng.uniform(-1.2, 1.2, (count, COMMAND_SIZE))
    command[:, 4] = rng.uniform(-0.1, 1.1, count)
    return VehicleState(packed), ActuatorCommand(command)


@pytest.mark.parametrize("count", SIZES)
def test_a_physics_step_is_the_numpy_kernels(airframe, count):
    _heli, model, trim, _constants = airframe
    kernels = compiled_kernels()
    for seed in range(3):
        state, command = _mixed_fleet(model, trim, count, seed)
        np.testing.assert_allclose(kernels.steps(model, state, command, 0.001).packed,
                                   step(model, state, command, 0.001).packed, **TOLERANCE)  # fmt: skip


@pytest.mark.parametrize("count", SIZES)
def test_consecutive_steps_and_a_wind_per_vehicle_are_the_numpy_kernels(airframe, count):
    _heli, model, trim, _constants = airframe
    kernels = compiled_kernels()
    state, command = _mixed_fleet(model, trim, count, 7)
    np.testing.assert_allclose(kernels.steps(model, state, command, 0.001, 3).packed,
                               steps(model, state, command, 0.001, 3).packed, **TOLERANCE)  # fmt: skip
    wind = np.random.default_rng(8).normal(0.0, 5.0, (count, 3))
    np.testing.assert_allclose(kernels.steps(model, state, command, 0.001, 1, wind).packed,
                               step(model, state, command, 0.001, wind).packed, **TOLERANCE)  # fmt: skip


def test_a_fleet_flies_the_same_path_step_after_step(airframe):
    """500 steps, each from the numpy kernel's previous state: the contact model, landings and
    crashes on the way, every step equal."""
    _heli, model, trim, _constants = airframe
    kernels = compiled_kernels()
    state, command = _mixed_fleet(model, trim, COLUMNS_FROM + 20, 11)
    crashed_before = state.crashed.sum()
    for _ in range(500):
        expected = step(model, state, command, 0.001)
        np.testing.assert_allclose(kernels.steps(model, state, command, 0.001).packed, expected.packed, **TOLERANCE)
        state = expected
    assert state.crashed.sum() > crashed_before  # the ground was met on the way


def _pilot(count: int, seed: int) -> PilotInput:
    """Sticks anywhere, every mode (rate, angle, rescue), armed or not, some inputs stale (failsafe)."""
    rng = np.random.default_rng(seed)
    packed = np.zeros((count, 7))
    packed[:, 0:4] = rng.uniform(-1.0, 1.0, (count, 4))
    packed[:, 4] = rng.integers(0, 2, count)
    packed[:, 5] = rng.integers(0, 3, count)
    packed[:, 6] = rng.random(count) > 0.2
    return PilotInput(packed)


def _controller_state(constants: ControllerConstants, trim, count: int, seed: int) -> ControllerState:
    """A controller part-way through every phase: spooling, governed, in failsafe (levelling,
    descending, landed), in rescue, settled on the ground."""
    rng = np.random.default_rng(seed)
    hover = ControllerState.in_hover(constants, count, 0.0, 0.0, math.radians(trim.tail_pitch_deg),
                                     math.radians(trim.collective_deg), trim.throttle)  # fmt: skip
    packed = np.array(hover.packed)
    packed[:, 0:7] += rng.normal(0.0, 0.05, (count, 7))
    packed[:, 9] = rng.integers(0, 3, count)  # governor off, spooling, governing
    packed[:, 11] = rng.uniform(0.0, 3.0, count)  # failsafe time: levelling, then descending
    packed[:, 12] = rng.integers(0, 2, count)
    packed[:, 13] = rng.uniform(0.0, 3.0, count)  # landed time
    packed[:, 15] = rng.uniform(0.0, 4.0, count)  # rescue time
    packed[:, 16] = rng.uniform(-0.1, 0.2, count)  # the last collective (the ground's test)
    packed[:, 18] = rng.uniform(0.0, 2.0, count)  # time on the ground
    return ControllerState(packed)


@pytest.mark.parametrize("count", SIZES)
def test_a_controller_cycle_is_the_numpy_controllers(airframe, count):
    _heli, model, trim, constants = airframe
    kernels = compiled_kernels()
    for seed in range(3):
        vehicles, _command = _mixed_fleet(model, trim, count, seed)
        state, pilot = _controller_state(constants, trim, count, seed), _pilot(count, seed)
        new, command = kernels.control(constants, state, pilot, vehicles, 0.002)
        expected_new, expected_command = control(constants, state, pilot, vehicles, 0.002)
        np.testing.assert_allclose(new.packed, expected_new.packed, **TOLERANCE)
        np.testing.assert_allclose(command.packed, expected_command.packed, **TOLERANCE)


def test_each_vehicle_its_own_gains(airframe):
    """A sweep's batch: stacked constants, a different rate gain and governor per vehicle."""
    heli, model, trim, _constants = airframe
    count = COLUMNS_FROM + 10
    gains = [dataclasses.replace(heli.controller, roll_p_s=0.02 + 0.001 * i, governor_p=1.0 + 0.1 * i)
             for i in range(count)]  # fmt: skip
    each = [ControllerConstants.build(params, model, 0.05) for params in gains]
    stacked = ControllerConstants.stacked(each)
    vehicles, _command = _mixed_fleet(model, trim, count, 3)
    state, pilot = _controller_state(stacked, trim, count, 3), _pilot(count, 3)
    new, command = compiled_kernels().control(stacked, state, pilot, vehicles, 0.002)
    expected_new, expected_command = control(stacked, state, pilot, vehicles, 0.002)
    np.testing.assert_allclose(new.packed, expected_new.packed, **TOLERANCE)
    np.testing.assert_allclose(command.packed, expected_command.packed, **TOLERANCE)


def _fly(kernel: str, fleet: int, ticks: int) -> Flight:
    settings = FlightSettings(heli="trex450", fleet=fleet, start="ground", kernel=kernel, pilot="hover")
    flight = Flight(load_heli("trex450"), FlightConfig(flight=settings, ports=()))
    fresh = np.ones(fleet, dtype=bool)
    for _ in range(ticks):  # the hover pilot spools up, lifts off and climbs
        flight.run_controller(flight.pilot_frames(), fresh, 0.002)
        flight.advance(2)
    return flight


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize("airborne", [False, True])
def test_the_hover_pilot_compiled_is_the_numpy_pilot(airframe, count, airborne):
    """The hover pilot's frames and its own state, compiled and on numpy (floats for one vehicle), for
    vehicles in every branch it takes: spooling up, just spooled, climbing, holding, descending
    (hover:SECONDS), touching down, landed; over a second of frames."""
    heli, model, trim, _constants = airframe
    vehicles, _command = _mixed_fleet(model, trim, count, seed=count + 7)
    rng = np.random.default_rng(count)
    pilots = [
        make_pilot("hover:3", heli, model, trim, ChannelMap(), vehicles, airborne=airborne, kernels=kernels)
        for kernels in (None, compiled_kernels())
    ]
    state = pilots[0].state.copy()
    kind = np.arange(count) % 4
    state[HoverState.TAKEOFF_TIME] = np.where(kind == 0, NOT_YET, rng.uniform(-20.0, 1.0, count))
    state[HoverState.GROUND_ALTITUDE] += np.where(kind == 1, -rng.uniform(0.0, 6.0, count), 0.0)
    state[HoverState.LANDED] = kind == 3
    state[HoverState.NORTH_INTEGRAL] = rng.normal(0.0, 3.0, count)
    for pilot in pilots:
        pilot.state = state.copy()
    for frame in range(100):
        t_s = 0.6 + 0.01 * frame
        numpy_frames, compiled_frames = (pilot.channels(t_s, vehicles) for pilot in pilots)
        np.testing.assert_allclose(compiled_frames, numpy_frames, **TOLERANCE)
        np.testing.assert_allclose(pilots[1].state, pilots[0].state, **TOLERANCE)
    assert len({tuple(row) for row in numpy_frames[:, :5].round(3)}) >= min(count, 3)  # not one frame for all


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize("hold", [0, 7])
def test_decoding_frames_compiled_is_the_numpy_decoding(count, hold):
    """Every stick on either side of its centre, beyond its ends, reversed or not; arm, hold and mode on
    and around their thresholds; fresh or stale: the same bits, compiled and on numpy."""
    rng = np.random.default_rng(count + hold)
    cmap = ChannelMap(throttle_hold=hold, reversed=("pitch", "collective"), roll_us=(990.0, 1510.0, 2012.0))
    frames = rng.choice([800.0, 1000.0, 1300.0, 1500.0, 1510.0, 1700.0, 1701.0, 2000.0, 2200.0], (count, 16))
    frames[::2] += rng.uniform(-300.0, 300.0, (len(frames[::2]), 16))
    fresh = rng.random(count) < 0.7
    compiled = to_pilot_input(frames, fresh, cmap, compiled_kernels()).packed
    np.testing.assert_array_equal(compiled, to_pilot_input(frames, fresh, cmap).packed)
    if count > 1:  # (one vehicle: decoded on floats, in this process, whatever the kernels)
        assert len(np.unique(compiled[:, 0])) > 2 and set(np.unique(compiled[:, 4])) == {0.0, 1.0}


def test_a_flight_on_the_compiled_kernels_is_the_numpy_flight():
    """9 s of a fleet taking off (ground contact, spool-up, lift-off, climb), free-running: every
    vehicle where the numpy flight has it (to 1e-9 m: rounding differences may grow, a little)."""
    compiled, numpy = _fly("compiled", COLUMNS_FROM + 12, 4500), _fly("numpy", COLUMNS_FROM + 12, 4500)
    assert compiled.vehicles.altitude_m.min() > 0.5  # all flying by now
    np.testing.assert_allclose(compiled.vehicles.packed, numpy.vehicles.packed, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(compiled.controller.packed, numpy.controller.packed, rtol=1e-9, atol=1e-9)


_FLY_ONE_VEHICLE = """
import numpy as np
from heli.dynamics import FlightModel
from heli.initial import hover_state
from heli.state import ActuatorCommand
from heli.trim import solve_hover_trim
from sim.compiled import compiled_kernels
from sim.config import load_heli
model = FlightModel.build(load_heli("xcell60").params)
vehicles = hover_state(model, solve_hover_trim(model), 1)
compiled_kernels().steps(model, vehicles, ActuatorCommand(np.zeros((1, 5))), 0.001)
"""


def test_prebuilding_after_a_flight_compiled_part_of_the_cache(tmp_path):
    """A flight of one helicopter compiles some loops (not the fleet's) into a fresh cache; then
    ``python -m sim.compiled`` (make test's first step) compiles the rest, loading the kernels the
    flight cached (their pickles name ``sim.compiled``'s numba type: the command must not run as a
    second copy of the module that lacks it)."""
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-P", "-c", _FLY_ONE_VEHICLE], cwd=ROOT, env=environment, capture_output=True,
                   timeout=300, check=True)  # fmt: skip
    prebuilt = subprocess.run([sys.executable, "-P", "-m", "sim.compiled"], cwd=ROOT, env=environment,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert prebuilt.returncode == 0, prebuilt.stderr[-2000:]
    assert prebuilt.stdout.startswith("compiled kernels: compiled in "), prebuilt.stdout


def test_the_next_process_loads_the_machine_code_from_the_cache():
    compiled_kernels().warm_up(*_xcell60())  # built here (or by make test) first
    result = subprocess.run([sys.executable, "-P", "-m", "sim.compiled"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    assert result.stdout.startswith("compiled kernels: loaded from the cache in "), result.stdout


def _xcell60() -> tuple[FlightModel, ControllerConstants]:
    heli = load_heli("xcell60")
    model = FlightModel.build(heli.params)
    return model, ControllerConstants.build(heli.controller, model, 0.05)


def test_without_numba_the_flight_says_how_to_get_it(tmp_path):
    """A machine without numba (an empty package that fails to import stands in for it)."""
    stub = tmp_path / "numba"
    stub.mkdir()
    (stub / "__init__.py").write_text("raise ImportError('No module named numba')\n")
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-P", "-m", "sim", "fly", "--headless", "--duration", "0.1", "--kernel", "compiled"]
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "numba" in lines[0] and "pip install 'heli-sim[fast]'" in lines[0], lines


def test_the_generated_loops_live_in_the_cache_folder_not_in_the_package():
    import sim.compiled

    folder = sim.compiled._cache_dir(__import__("numba").__version__)
    assert (folder / "physics_loops.py").exists() and (folder / "control_loops.py").exists()
    assert not list(Path(sim.compiled.__file__).parent.glob("*_loops.py"))


def test_worker_processes_step_on_the_compiled_kernels_bit_for_bit():
    """``fly --workers N --kernel compiled``: each worker loads the compiled kernels (from the cache)."""
    heli = load_heli("trex450")
    model = FlightModel.build(heli.params)
    state = hover_state(model, solve_hover_trim(model), 2 * COLUMNS_FROM + 24, 20.0, spacing_m=5.0)
    command = ActuatorCommand(np.concatenate([state.servo_position, state.throttle[:, None]], axis=1))
    alone = compiled_kernels().steps(model, state, command, 0.001, 20)
    with ShardedFleet(heli, state, 2, kernel="compiled") as fleet:
        fleet.step(command, 0.001, 10)
        sharded = fleet.step(command, 0.001, 10)
    assert np.array_equal(sharded.packed, alone.packed)
    assert not np.array_equal(alone.packed, state.packed)


def test_a_flight_log_of_the_compiled_kernels_replays_bit_for_bit(tmp_path):
    """The log says which kernels flew (the flight's settings), and the replay steps on them."""
    settings = FlightSettings(heli="trex450", fleet=COLUMNS_FROM + 2, start="hover", duration_s=0.2, kernel="compiled")
    with flight_session(
        FlightConfig(flight=settings, ports=()), load_heli("trex450"), log_path=str(tmp_path / "log")
    ) as loop:
        loop.run()
    replay = Replay(read_log(str(tmp_path / "log")))
    assert replay.flight.kernels is not None
    replay.run()
    assert replay.difference is None and replay.done


def test_the_cache_folder_is_named_after_the_kernels_this_process_compiles():
    """Taken from the functions in memory (the same in every process), not from their files: a kernel
    changed after the import would otherwise be cached under a hash that does not describe it."""
    import heli.rotor
    import sim.compiled

    script = "from sim.compiled import _kernel_source_hash as h; print(h('x'))"
    hashes = {subprocess.run([sys.executable, "-P", "-c", script], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True).stdout for _ in range(2)}  # fmt: skip
    assert len(hashes) == 1  # (string hashing differs from process to process: sets are sorted)
    sim.compiled._kernel_source_hash.cache_clear()
    before = sim.compiled._kernel_source_hash("x")
    original = heli.rotor.stall_limited.__code__
    try:
        heli.rotor.stall_limited.__code__ = heli.rotor.blade_element_thrust.__code__.replace(
            co_name="stall_limited", co_qualname="stall_limited"
        )
        sim.compiled._kernel_source_hash.cache_clear()
        assert sim.compiled._kernel_source_hash("x") != before
    finally:
        heli.rotor.stall_limited.__code__ = original
        sim.compiled._kernel_source_hash.cache_clear()
    assert sim.compiled._kernel_source_hash("x") == before


def test_stacked_constants_for_another_fleet_size_are_refused(airframe):
    heli, model, trim, _constants = airframe
    stacked = ControllerConstants.stacked([ControllerConstants.build(heli.controller, model, 0.05)] * 2)
    stacked = dataclasses.replace(stacked, vehicles=stacked.vehicles * 5)  # 10 vehicles' constants
    vehicles, _command = _mixed_fleet(model, trim, 60, 1)
    with pytest.raises(ValueError, match="10 vehicles"):
        compiled_kernels().control(stacked, _controller_state(stacked, trim, 60, 1), _pilot(60, 1), vehicles, 0.002)
