"""A flight that goes wrong numerically never "succeeds": a vehicle whose state runs away (or goes
non-finite, or makes the physics raise) or whose command goes non-finite is marked ``diverged`` (an
event, its summary row, the status line, exit status 3), it is no longer integrated (it keeps its
last sane state), no NaN reaches a port, the rest of the fleet flies on, and the replay finds the
same."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heli.control import ControllerState
from heli.state import ActuatorCommand, StateIndex, VehicleState
from sim.cli.fly import _status_line
from sim.config import FlightConfig, apply_overrides, configs_dir
from sim.flight import STATE_MAGNITUDE_LIMIT, Flight
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import ManualClock
from sim.outcome import flight_failures
from sim.report import format_summary
from sim.session import flight_session
from tests.conftest import heli

ROOT = Path(__file__).resolve().parent.parent
# A command in range that a model can fail to take: every swash servo at full negative throw, full
# tail and full throttle.  On a trex450 whose blades have a constant drag coefficient (as every
# helicopter had before the drag polar) the roll rate and the flapping grow without bound (doubling
# every ~75 ms) until the state runs away, 0.6 s after it is applied; the drag polar's rise with
# the blade angle holds the shipped one.  The other vehicles of the fleet are not touched by it.
RUNAWAY = (-1.0, -1.0, -1.0, 1.0, 1.0)
CONTROLLER = f'''
from heli.control import control
from heli.state import ActuatorCommand

calls = 0


def fly(constants, state, pilot, vehicles, dt_s):
    """The built-in controller, but vehicle 1 gets {RUNAWAY} after 0.2 s."""
    global calls
    calls += 1
    state, command = control(constants, state, pilot, vehicles, dt_s)
    if calls > 100:
        packed = command.packed.copy()
        packed[1] = {RUNAWAY}
        command = ActuatorCommand(packed)
    return state, command
'''


@pytest.fixture
def runaway(tmp_path, monkeypatch):
    """The controller above as ``runaway:fly``, importable here and by children (PYTHONPATH)."""
    (tmp_path / "runaway.py").write_text(CONTROLLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("runaway", None)


@pytest.fixture(scope="module")
def weak_heli(tmp_path_factory) -> str:
    """The trex450 with a constant blade drag coefficient: a model the runaway command breaks."""
    text = (configs_dir() / "trex450.toml").read_text()
    text = re.sub(r"(?m)^(profile_drag_quadratic_per_rad2|stall_drag_per_rad2) = [0-9.]+", r"\1 = 0.0", text)
    path = tmp_path_factory.mktemp("weak") / "weak450.toml"
    path.write_text(text)
    return str(path)


def _flight(fleet: int = 3, **settings) -> Flight:
    config = apply_overrides(FlightConfig(ports=()), start="hover", fleet=fleet, **settings)
    return Flight(heli(settings.get("heli", "xcell60")).config, config)


def _ticks(flight: Flight, count: int, steps: int = 2) -> list[tuple[str, str]]:
    """``count`` ticks of the loop's work: the controller, then ``steps`` physics steps."""
    events = []
    for _ in range(count):
        flight.run_controller(flight.pilot_frames(), True, steps * flight.physics_dt_s)
        events += flight.advance(steps)
    return events


def test_a_vehicle_whose_state_goes_non_finite_is_held_and_the_fleet_flies_on():
    reference, flight = _flight(), _flight()
    _ticks(reference, 100)
    _ticks(flight, 100)
    packed = flight.command.packed.copy()
    packed[1, 0] = math.nan  # a NaN reaches the physics of vehicle 1 (no controller makes one: see below)
    flight.command = ActuatorCommand(packed)
    before = flight.vehicles.packed[1].copy()

    events = flight.advance(2)
    reference.advance(2)
    (kind, detail), *_ = events
    assert kind == "diverged" and detail.startswith("vehicle 1: state went non-finite")
    assert "= nan" in detail and "at 0.201 s" in detail  # the first step broke it
    assert list(flight.diverged) == [False, True, False]
    assert np.array_equal(flight.vehicles.packed[1], before)  # its last sane state
    assert np.array_equal(flight.vehicles.packed[[0, 2]], reference.vehicles.packed[[0, 2]])

    later = _ticks(flight, 500)
    _ticks(reference, 500)
    assert "diverged" not in [kind for kind, _ in later]  # one event per vehicle
    assert np.array_equal(flight.vehicles.packed[1], before)  # no longer integrated
    assert np.array_equal(flight.vehicles.packed[[0, 2]], reference.vehicles.packed[[0, 2]])  # they fly on
    assert np.isfinite(flight.command.packed).all()
    rows = flight.vehicle_summary()
    assert [v["diverged"] for v in rows] == [False, True, False]
    assert flight_failures({"vehicles": rows}) == ["vehicle 1 diverged"]


def test_a_non_finite_command_never_leaves_the_controller():
    flight = _flight()
    _ticks(flight, 100)
    held = flight.command.packed[1].copy()
    state = flight.controller.packed.copy()
    state[1, 0] = math.nan  # a broken integrator: the built-in controller's answer for vehicle 1 is NaN
    flight.controller = ControllerState(state)
    before = flight.vehicles.packed[1].copy()

    flight.run_controller(flight.pilot_frames(), True, 0.002)
    assert np.isfinite(flight.command.packed).all()  # what the servo ports get
    assert np.array_equal(flight.command.packed[1], held)  # the last finite command is held
    (kind, detail), *_ = flight.advance(2)
    assert kind == "diverged" and detail.startswith("vehicle 1: command went non-finite (cmd_servo_0 = nan")
    assert list(flight.diverged) == [False, True, False]
    _ticks(flight, 50)
    assert np.array_equal(flight.vehicles.packed[1], before)


def test_the_physics_raising_on_one_vehicle_stops_only_that_one():
    reference, flight = _flight(), _flight()
    packed = flight.vehicles.packed.copy()
    packed[1, StateIndex.ROTOR_SPEED] = math.inf  # the kernel divides by a flap time constant of 0.0
    flight.vehicles = VehicleState(packed)
    events = _ticks(flight, 200)
    _ticks(reference, 200)
    diverged = [detail for kind, detail in events if kind == "diverged"]
    assert len(diverged) == 1 and diverged[0].startswith(
        "vehicle 1: the physics raised ZeroDivisionError('float division by zero') (dynamics.py:"
    )
    assert list(flight.diverged) == [False, True, False]
    assert np.array_equal(flight.vehicles.packed[[0, 2]], reference.vehicles.packed[[0, 2]])


def test_the_last_sane_state_does_not_depend_on_how_the_steps_were_split(weak_heli):
    whole, parts = (_flight(1, heli=weak_heli, start_altitude_m=500.0) for _ in range(2))
    for flight in (whole, parts):
        flight.command = ActuatorCommand(np.array([RUNAWAY]))
    events = whole.advance(1500)  # one long catch-up (the loop), or in parts (a replay may split it)
    events_in_parts = [event for _ in range(1500) for event in parts.advance(1)]
    assert whole.diverged.all() and parts.diverged.all()
    assert events == events_in_parts and len(events) == 1
    assert np.array_equal(whole.vehicles.packed, parts.vehicles.packed)
    state = whole.vehicles.packed
    assert np.isfinite(state).all() and np.abs(state[:, 3:]).max() <= STATE_MAGNITUDE_LIMIT


def _fly_here(weak_heli: str, fleet: int, controller: str = "", log_path: Path | None = None):
    config = apply_overrides(FlightConfig(ports=()), heli=weak_heli, start="hover", start_altitude_m=300.0,
                             fleet=fleet, duration_s=2.0, controller=controller)  # fmt: skip
    with flight_session(config, heli(weak_heli).config, clock=ManualClock(),
                        log_path=None if log_path is None else str(log_path)) as loop:  # fmt: skip
        loop.run()
    return loop


def test_a_command_the_physics_cannot_take_diverges_that_vehicle_and_the_fleet_flies_on(runaway, weak_heli):
    import runaway as module

    built_in = _fly_here(weak_heli, 3).flight
    log_path = runaway / "flight.hslog"
    loop = _fly_here(weak_heli, 3, "runaway:fly", log_path)
    flight = loop.flight
    assert list(flight.diverged) == [False, True, False]
    assert not flight.taken_over.any()  # its commands were finite: the controller did not fail
    assert np.array_equal(flight.vehicles.packed[[0, 2]], built_in.vehicles.packed[[0, 2]])
    summary = loop.summary()
    (detail,) = [e["detail"] for e in summary["events"] if e["kind"] == "diverged"]
    assert detail.startswith("vehicle 1: state went non-finite or beyond 10000 (")
    assert flight_failures(summary) == ["vehicle 1 diverged"]

    module.calls = 0  # as in a new process
    replay = Replay(read_log(str(log_path)), controller="runaway:fly")
    replay.run()
    assert replay.difference is None and list(replay.flight.diverged) == [False, True, False]


def test_a_diverging_flight_exits_3_with_the_vehicle_named_and_replays(runaway, weak_heli):
    stats, log = runaway / "stats.json", runaway / "flight.hslog"
    flight_file = runaway / "high.toml"
    flight_file.write_text(f'[flight]\nheli = "{weak_heli}"\nstart = "hover"\nstart_altitude_m = 300.0\n')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(runaway)}
    command = [sys.executable, "-m", "sim", "fly", "--headless", "--config", str(flight_file), "--duration", "3",
               "--fleet", "3", "--controller", "runaway:fly", "--stats-json", str(stats),
               "--log", str(log)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    for noise in ("Traceback", "RuntimeWarning", "is NaN"):
        assert noise not in result.stderr
    assert result.stderr.splitlines()[-1] == "heli-sim fly: the flight failed: vehicle 1 diverged"
    assert "failures: vehicle 1 diverged" in result.stdout
    summary = json.loads(stats.read_text())
    assert [v["diverged"] for v in summary["vehicles"]] == [False, True, False]
    assert [e["detail"].split(":")[0] for e in summary["events"] if e["kind"] == "diverged"] == ["vehicle 1"]
    runaway_row = summary["vehicles"][1]  # its last sane state, not a runaway one
    assert all(abs(x) < 1e3 for x in runaway_row["final_position_m"] + runaway_row["final_velocity_m_s"])
    assert all(port.get("io_errors", 0) == 0 for port in summary["ports"])  # nothing unpackable reached a port

    command = [sys.executable, "-m", "sim", "replay", str(log), "--headless", "--controller", "runaway:fly"]
    replay = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "identical to the log" in replay.stdout


def test_the_table_and_the_status_line_show_diverged_vehicles(capsys):
    config = apply_overrides(FlightConfig(ports=()), start="hover", fleet=2, duration_s=0.2)
    with flight_session(config, heli("xcell60").config, clock=ManualClock()) as loop:
        loop.run()
    packed = loop.flight.command.packed.copy()
    packed[1, 0] = math.nan
    loop.flight.command = ActuatorCommand(packed)
    loop.flight.advance(1)
    _status_line(loop)
    assert "DIVERGED: 1" in capsys.readouterr().err

    summary = loop.summary()
    summary["ports"] = [{"name": "servo1", "role": "servo", "protocol": "maestro", "state": "failed"}]
    summary["failures"] = flight_failures(summary)
    table = format_summary(summary).splitlines()
    vehicle_rows = [line for line in table if line.startswith(("0 ", "1 "))]
    assert "diverged" not in vehicle_rows[0] and "ok" in vehicle_rows[0]
    assert "diverged" in vehicle_rows[1]
    assert any(line.startswith("servo1") and "failed" in line for line in table)
    assert table[-1] == "failures: port servo1 failed; vehicle 1 diverged"
