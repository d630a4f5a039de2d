"""A user's controller that misbehaves never breaks the flight: whatever it does (raises anything,
SystemExit and KeyboardInterrupt included, returns None, the wrong shape or type, NaN or inf for one
vehicle, runs slower than its tick), one line names it and what it did, the built-in controller
flies the vehicles it failed in failsafe (level, descend, land), a ``controller_failed`` event and
the summary say so, and ``fly`` ends with status 3.  A controller that fails its dry run is bad
input (one line, status 2).  A real Ctrl-C still stops the flight.  Failures replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heli.control import CONTROL_STATE_SIZE, FLIGHT_MODES
from sim.config import FlightConfig, apply_overrides
from sim.log.format import TICK_FLAGS
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import ManualClock
from sim.outcome import flight_failures
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import StderrLines, running

ROOT = Path(__file__).resolve().parent.parent
MODULE = "misbehaving"

CONTROLLERS = '''
"""Controllers that fly well for GOOD_CALLS calls (the dry run included), then misbehave."""

import os
import signal
import sys
import time

import numpy as np

from heli.control import ControllerState, control
from heli.state import ActuatorCommand

GOOD_CALLS = 100  # the dry run and 0.2 s of flight at 500 Hz
calls = 0


def _later(misbehave):
    def controller(constants, state, pilot, vehicles, dt_s):
        global calls
        calls += 1
        answer = control(constants, state, pilot, vehicles, dt_s)
        return misbehave(answer, vehicles) if calls > GOOD_CALLS else answer

    return controller


def _raise(error):
    def misbehave(answer, vehicles):
        raise error

    return misbehave


def _one_row(value):
    def misbehave(answer, vehicles):
        packed = answer[1].packed.copy()
        packed[1, 0] = value  # vehicle 1's first servo
        return answer[0], ActuatorCommand(packed)

    return misbehave


def _one_state_row(value):
    def misbehave(answer, vehicles):
        packed = answer[0].packed.copy()
        packed[1, 0] = value  # vehicle 1's roll integrator
        return ControllerState(packed), answer[1]

    return misbehave


def _sleep(answer, vehicles):
    time.sleep(0.005)  # 5 ms, in a 2 ms tick
    return answer


raises = _later(_raise(RuntimeError("the gains exploded")))
exits = _later(lambda answer, vehicles: sys.exit(0))
interrupts = _later(_raise(KeyboardInterrupt()))
returns_none = _later(lambda answer, vehicles: None)
wrong_shape = _later(lambda answer, vehicles: (answer[0], ActuatorCommand(np.zeros((vehicles.count + 1, 5)))))
wrong_type = _later(lambda answer, vehicles: (answer[0], answer[1].packed))
nan_for_one = _later(_one_row(float("nan")))
inf_for_one = _later(_one_row(float("inf")))
nan_state_for_one = _later(_one_state_row(float("nan")))
too_slow = _later(_sleep)
sleeps_forever = _later(lambda answer, vehicles: time.sleep(1e9))


def _list_inside(answer, vehicles):
    object.__setattr__(answer[1], "packed", answer[1].packed.tolist())  # past the frozen dataclass
    return answer


class Unmeasurable(tuple):
    def __len__(self):
        raise RuntimeError("no length")


list_inside = _later(_list_inside)
tuple_raising = _later(lambda answer, vehicles: Unmeasurable(answer))


def _spin_catching_everything(answer, vehicles):
    while True:  # an endless loop that swallows whatever is raised in it but the last resort
        try:
            while True:
                pass
        except Exception:
            pass


spins_forever = _later(_spin_catching_everything)


def after_the_dry_run(constants, state, pilot, vehicles, dt_s):
    global calls
    calls += 1
    if calls > 1:
        raise RuntimeError("in flight")
    return control(constants, state, pilot, vehicles, dt_s)


def first_raises(constants, state, pilot, vehicles, dt_s):
    raise RuntimeError("not ready")


def first_exits(constants, state, pilot, vehicles, dt_s):
    sys.exit(0)


def first_interrupts(constants, state, pilot, vehicles, dt_s):
    raise KeyboardInterrupt


def first_sleeps_forever(constants, state, pilot, vehicles, dt_s):
    time.sleep(1e9)


def slow_once(constants, state, pilot, vehicles, dt_s):
    global calls
    calls += 1
    if calls == GOOD_CALLS:
        time.sleep(0.2)  # one stall of 100 ticks
    return control(constants, state, pilot, vehicles, dt_s)


def signals_itself(constants, state, pilot, vehicles, dt_s):
    global calls
    calls += 1
    if calls == GOOD_CALLS:
        os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT, delivered while this call runs
        time.sleep(5.0)  # (ends at once: the signal interrupts it)
    return control(constants, state, pilot, vehicles, dt_s)


def never_returns(constants, state, pilot, vehicles, dt_s):
    global calls
    calls += 1
    if calls > GOOD_CALLS:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # it even turns off the hung-call timer
        sys.stderr.write("never returns\\n")
        sys.stderr.flush()
    while calls > GOOD_CALLS:  # an endless loop, in flight: only a signal gets the loop back
        pass
    return control(constants, state, pilot, vehicles, dt_s)


def most_of_a_tick(constants, state, pilot, vehicles, dt_s):
    time.sleep(0.001)  # half of each tick in here: a Ctrl-C mostly lands in this call
    return control(constants, state, pilot, vehicles, dt_s)
'''


@pytest.fixture
def controllers(tmp_path, monkeypatch):
    """The module above, importable here (in-process flights) and by children (PYTHONPATH)."""
    (tmp_path / f"{MODULE}.py").write_text(CONTROLLERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(MODULE, None)


def _fly_command(folder: Path, name: str, fleet: int, duration_s: float = 1.0) -> list[str]:
    stats = str(folder / "stats.json")
    return [sys.executable, "-m", "sim", "fly", "--headless", "--duration", str(duration_s), "--start", "hover",
            "--fleet", str(fleet), "--controller", f"{MODULE}:{name}", "--stats-json", stats]  # fmt: skip


def _env(folder: Path) -> dict:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder)}


def _fly(folder: Path, name: str, fleet: int) -> subprocess.CompletedProcess:
    return subprocess.run(_fly_command(folder, name, fleet), cwd=ROOT, env=_env(folder), capture_output=True,
                          text=True, timeout=120)  # fmt: skip


EVERY = object()  # every vehicle taken over


@pytest.mark.parametrize(
    ("name", "fleet", "did", "taken_over"),
    [
        ("raises", 2, "raised RuntimeError('the gains exploded') (misbehaving.py:", EVERY),
        ("exits", 2, "raised SystemExit(0)", EVERY),
        ("interrupts", 2, "raised KeyboardInterrupt()", EVERY),
        ("returns_none", 2, "returned NoneType, expected (ControllerState, ActuatorCommand)", EVERY),
        (
            "wrong_shape",
            2,
            f"returned a state of shape (2, {CONTROL_STATE_SIZE}) and a command of shape (3, 5), expected",
            EVERY,
        ),
        ("wrong_type", 2, "returned tuple (ControllerState, ndarray), expected", EVERY),
        ("nan_for_one", 3, "returned a non-finite command (nan)", [False, True, False]),
        pytest.param("too_slow", 1, "was slower than its tick: 50 calls in a row", EVERY, marks=pytest.mark.realtime),
        ("sleeps_forever", 1, "did not return within 1 s: interrupted", EVERY),
        ("list_inside", 2, "returned a command holding list, not an array of float64, expected", EVERY),
        ("tuple_raising", 2, "returned Unmeasurable, expected", EVERY),
        ("spins_forever", 1, "did not return within 1 s: interrupted", EVERY),
    ],
)
def test_a_controller_that_fails_in_flight_is_taken_over_in_one_line(controllers, name, fleet, did, taken_over):
    result = _fly(controllers, name, fleet)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "servo position is NaN" not in result.stderr
    lines = [line for line in result.stderr.splitlines()
             if not line.startswith(("heli-sim: flying", "heli-sim fly: the flight failed: "))]  # fmt: skip
    assert len(lines) == 1, result.stderr  # the one line, as it happens
    assert lines[0].startswith(f"heli-sim: controller {MODULE}:{name} {did}"), lines[0]
    assert "the built-in controller took over" in lines[0] and "failsafe" in lines[0]
    assert result.stderr.splitlines()[-1].startswith("heli-sim fly: the flight failed: controller failed:")
    assert "flown" in result.stdout  # the summary table

    summary = json.loads((controllers / "stats.json").read_text())
    failed = [e for e in summary["events"] if e["kind"] == "controller_failed"]
    assert len(failed) == 1 and f"{MODULE}:{name} {did}" in failed[0]["detail"]
    expected = [True] * fleet if taken_over is EVERY else taken_over
    assert [v["controller_failed"] for v in summary["vehicles"]] == expected
    assert not any(v["crashed"] or v["diverged"] for v in summary["vehicles"])
    assert summary["failures"] == [f"controller failed: {failed[0]['detail']}"]
    servos = [port for port in summary["ports"] if port["role"] == "servo"]
    assert len(servos) == fleet and all(port.get("io_errors", 0) == 0 for port in servos)  # no NaN reached them


@pytest.mark.parametrize(
    ("name", "did"),
    [
        ("first_raises", "raised RuntimeError('not ready') (misbehaving.py:"),
        ("first_exits", "raised SystemExit(0) (misbehaving.py:"),
        ("first_interrupts", "raised KeyboardInterrupt() (misbehaving.py:"),
        ("first_sleeps_forever", "did not return within 1 s"),
    ],
)
def test_a_controller_that_fails_its_dry_run_is_bad_input_in_one_line(controllers, name, did):
    result = _fly(controllers, name, 1)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(
        f"heli-sim fly: error: flight.controller = '{MODULE}:{name}': its first call, on the starting state, {did}"
    )
    assert not (controllers / "stats.json").exists()  # nothing flew


def _fly_here(seconds: float, fleet: int, controller: str = "", log_path: Path | None = None):
    config = apply_overrides(
        FlightConfig(ports=()), start="hover", duration_s=seconds, fleet=fleet, controller=controller
    )
    with flight_session(config, heli("xcell60").config, clock=ManualClock(),
                        log_path=None if log_path is None else str(log_path)) as loop:  # fmt: skip
        loop.run()
    return loop


@pytest.mark.parametrize("name", ["nan_for_one", "inf_for_one", "nan_state_for_one"])
def test_the_vehicle_a_controller_fails_lands_and_the_others_fly_on(controllers, name):
    built_in = _fly_here(12.0, 3).flight
    loop = _fly_here(12.0, 3, f"{MODULE}:{name}")
    flight = loop.flight
    # vehicles 0 and 2: still the user's controller's (the built-in's answer), exactly as without the failure
    assert np.array_equal(flight.vehicles.packed[[0, 2]], built_in.vehicles.packed[[0, 2]])
    assert list(flight.taken_over) == [False, True, False]
    # vehicle 1: levelled, descended and landed by the failsafe, motor cut, nothing broken
    assert FLIGHT_MODES[int(flight.controller.flight_mode[1])] == "failsafe: landed"
    assert flight.command.throttle[1] == 0.0
    assert flight.vehicles.altitude_m[1] < 0.5 < 4.5 < flight.vehicles.altitude_m[0]
    assert flight.max_altitude_m[1] < 5.5  # it never climbed away
    assert not flight.vehicles.crashed.any()
    summary = loop.summary()
    assert [e["kind"] for e in summary["events"]].count("controller_failed") == 1


def test_a_failure_in_a_tick_without_physics_steps_is_still_reported(controllers):
    # the first tick steps no physics (the world is at the wall clock's time): a flight stopped
    # after it still records the failure, and so fails
    config = apply_overrides(FlightConfig(ports=()), start="hover", controller=f"{MODULE}:after_the_dry_run")
    with flight_session(config, heli("xcell60").config, clock=ManualClock(),
                        before_tick=lambda loop: loop.request_stop("one tick")) as loop:  # fmt: skip
        loop.run()
    assert loop.ticks == 1 and loop.flight.steps == 0
    summary = loop.summary()
    assert [e["kind"] for e in summary["events"]] == ["controller_failed"]
    assert flight_failures(summary)


def test_a_failure_replays_by_itself(controllers):
    import misbehaving

    log_path = controllers / "flight.hslog"
    _fly_here(1.0, 2, f"{MODULE}:raises", log_path)
    misbehaving.calls = 0  # as in a new process
    replay = Replay(read_log(str(log_path)), controller=f"{MODULE}:raises")
    replay.run()
    assert replay.difference is None
    assert replay.flight.taken_over.all()


@pytest.mark.realtime
def test_a_controller_too_slow_for_its_tick_is_taken_over_and_the_replay_applies_the_judgement(controllers):
    import misbehaving

    log_path = controllers / "flight.hslog"
    loop = _fly_here(1.0, 1, f"{MODULE}:too_slow", log_path)
    assert loop.flight.taken_over.all()
    detail = next(e.detail for e in loop.events if e.kind == "controller_failed")
    assert "was slower than its tick" in detail
    log = read_log(str(log_path))
    slow = (log.ticks["flags"] & TICK_FLAGS["controller_too_slow"]) != 0
    assert slow.sum() == 1  # the tick it was judged

    misbehaving.calls = 0
    replay = Replay(log, controller=f"{MODULE}:too_slow")
    replay.run()
    assert replay.difference is None and replay.flight.taken_over.all()

    misbehaving.calls = 0  # without the recorded judgement, the replay would keep the user's controller
    replay = Replay(log, controller=f"{MODULE}:too_slow")
    replay.flags = replay.flags & np.uint8(0xFF ^ TICK_FLAGS["controller_too_slow"])
    replay.run()
    assert replay.difference is not None and not replay.flight.taken_over.any()


@pytest.mark.realtime
def test_one_slow_call_is_not_a_slow_controller(controllers):
    loop = _fly_here(1.0, 1, f"{MODULE}:slow_once")
    assert not loop.flight.taken_over.any()
    assert "controller_failed" not in [e.kind for e in loop.events]


def test_where_python_handles_ctrl_c_a_keyboard_interrupt_in_the_controller_stops_the_flight(controllers):
    # in any program that leaves SIGINT to Python, a Ctrl-C is a KeyboardInterrupt wherever it
    # lands: in the controller too, and it is not taken for the controller's failure.  (Python's
    # handler is put in place here: a test run started in the background inherits SIGINT ignored.)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _fly_here(1.0, 1, f"{MODULE}:signals_itself")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_the_users_controller_runs_still_stops_the_flight(controllers):
    command = _fly_command(controllers, "most_of_a_tick", 1, duration_s=60.0)  # the signal ends it
    with running(command, cwd=ROOT, env=_env(controllers)) as proc:
        StderrLines(proc).wait_for("heli-sim: flying", timeout_s=60)
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err.decode()
    summary = json.loads((controllers / "stats.json").read_text())
    assert summary["stop_reason"] == "SIGINT"
    assert "controller_failed" not in [e["kind"] for e in summary["events"]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_controller_that_never_returns_cannot_hold_a_stop(controllers, sig):
    """The loop is stuck in the controller: the stop request is raised there after
    ESCALATE_AFTER_S, and the flight still ends in order with its summary."""
    command = _fly_command(controllers, "never_returns", 1, duration_s=60.0)
    with running(command, cwd=ROOT, env=_env(controllers)) as proc:
        lines = StderrLines(proc)
        lines.wait_for("never returns", timeout_s=60)  # the loop is in there for good
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err.decode()
    assert "flown" in out.decode()  # the summary table
    summary = json.loads((controllers / "stats.json").read_text())
    kinds = [e["kind"] for e in summary["events"]]
    assert "stop_forced" in kinds and "controller_failed" not in kinds
