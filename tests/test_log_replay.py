"""Replay and code, NaNs and long ticks (issue 11, sections 2, 4 and 5): a log never makes a replay
import code (a user's controller is imported only when the user names it again), the comparison is
bit for bit (a NaN equals the same NaN), and a tick of many physics steps stays interruptible."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim.config import FlightConfig, apply_overrides
from sim.log.format import TICK_DTYPE, NpyAppender
from sim.log.reader import read_log
from sim.log.replay import Replay, bitwise_difference
from sim.loop import ManualClock
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import SIGNAL_ALLOWANCE_S, StderrLines, running

ROOT = Path(__file__).resolve().parent.parent
HELI_SIM = Path(sys.executable).parent / "heli-sim"  # the installed command
RUN_TIMEOUT_S = 120

TRUSTED = '''
from heli.control import control
from heli.state import ActuatorCommand


def engine_off(constants, state, pilot, vehicles, dt_s):
    """The built-in controller with the throttle cut."""
    state, command = control(constants, state, pilot, vehicles, dt_s)
    packed = command.packed.copy()
    packed[:, 4] = 0.0
    return state, ActuatorCommand(packed)
'''

PLANTED = """
import pathlib

pathlib.Path({marker!r}).write_text("imported from the log folder")


def engine_off(*args):
    raise SystemExit("the planted controller ran")
"""


def fly_logged(path: Path, **settings) -> None:
    config = apply_overrides(FlightConfig(ports=()), start="hover", duration_s=0.2, **settings)
    with flight_session(config, heli("xcell60").config, clock=ManualClock(), log_path=str(path)) as loop:
        loop.run()


@pytest.fixture
def trusted_controller(tmp_path, monkeypatch):
    """``ctrl_under_test:engine_off`` in a folder of its own, importable here and by children on PYTHONPATH."""
    folder = tmp_path / "trusted"
    folder.mkdir()
    (folder / "ctrl_under_test.py").write_text(TRUSTED)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("ctrl_under_test", None)


def plant(log: Path, marker: Path) -> None:
    """A module of the controller's name in the log's folder: running it leaves ``marker``."""
    (log / "ctrl_under_test.py").write_text(PLANTED.format(marker=str(marker)))


# --- no code runs because a log names it


def test_a_controller_module_in_the_log_folder_is_never_imported(tmp_path, trusted_controller):
    log = tmp_path / "flight.hslog"
    fly_logged(log, controller="ctrl_under_test:engine_off")
    marker = tmp_path / "planted-controller-ran"
    plant(log, marker)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # from the log's own folder, where both the installed command (its controller loader looks in the
    # working directory) and python -m (the working directory first on sys.path) would find it
    for command in ([str(HELI_SIM)], [sys.executable, "-m", "sim"]):
        result = subprocess.run([*command, "replay", "--headless", str(log)], cwd=log, env=env, capture_output=True,
                                text=True, timeout=RUN_TIMEOUT_S)  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.splitlines() == [
            f"heli-sim replay: error: {log}/header.json: flight.flight.controller = 'ctrl_under_test:engine_off': "
            "this flight was flown with a controller of your own, and a replay imports no code by itself: name it "
            "again with --controller ctrl_under_test:engine_off"
        ]
        assert not marker.exists(), "the controller module in the log's folder was imported"


def test_a_controller_named_again_replays_the_flight(tmp_path, trusted_controller):
    log = tmp_path / "flight.hslog"
    fly_logged(log, controller="ctrl_under_test:engine_off")
    marker = tmp_path / "planted-controller-ran"
    plant(log, marker)
    env = dict(os.environ, PYTHONPATH=str(trusted_controller))
    result = subprocess.run([str(HELI_SIM), "replay", "--headless", str(log), "--controller",
                             "ctrl_under_test:engine_off"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "identical to the log" in result.stdout and not marker.exists()
    replay = Replay(read_log(str(log)), controller="ctrl_under_test:engine_off")  # in process, the same
    replay.run()
    assert replay.difference is None and replay.done


def test_a_log_of_the_built_in_controller_needs_no_option(tmp_path):
    log = tmp_path / "flight.hslog"
    fly_logged(log)
    replay = Replay(read_log(str(log)))
    replay.run()
    assert replay.difference is None and replay.done


# --- bit for bit


def _nan(payload: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | payload))[0]


def test_the_comparison_is_bit_for_bit():
    logged = np.array([[1.0, _nan(0), 3.0], [4.0, 5.0, -0.0]])
    assert bitwise_difference(logged.copy(), logged) is None  # the same NaN: equal, though nan != nan
    assert not np.array_equal(logged, logged)  # what a float comparison says
    other_nan = logged.copy()
    other_nan[0, 1] = _nan(1)  # another NaN
    assert bitwise_difference(other_nan, logged) == (0, 1)
    number = logged.copy()
    number[0, 1] = 2.0
    assert bitwise_difference(number, logged) == (0, 1)
    zero = logged.copy()
    zero[1, 2] = 0.0  # -0.0 in the log
    assert bitwise_difference(zero, logged) == (1, 2)
    later = logged.copy()
    later[1, 0] = math.nextafter(4.0, 5.0)
    assert bitwise_difference(later, logged) == (1, 0)


def test_a_nan_in_the_log_where_the_replay_has_a_number_is_a_difference(tmp_path):
    path = tmp_path / "flight.hslog"
    fly_logged(path)
    log = read_log(str(path))
    log.ticks["rotor_rad_s"][40] = np.nan
    replay = Replay(log)
    replay.run()
    difference = replay.difference
    assert difference is not None and (difference.tick, difference.column) == (40, "rotor_rad_s")
    assert math.isnan(difference.logged) and math.isfinite(difference.replayed)


# --- a tick of many steps: checked against the settings, and interruptible


def long_ticks_log(path: Path, steps: int) -> None:
    """A valid log whose every tick takes ``steps`` physics steps (the catch-up cap raised to allow it)."""
    fly_logged(path)
    header = json.loads((path / "header.json").read_text())
    dt = header["physics_dt_s"]
    header["flight"]["flight"]["catchup_limit_s"] = steps * dt
    (path / "header.json").write_text(json.dumps(header))
    rows = np.load(path / "ticks.npy")
    rows["steps"] = steps
    rows["sim_time_s"] = np.cumsum(rows["steps"].astype(np.int64)) * dt
    (path / "ticks.npy").unlink()
    appender = NpyAppender(str(path / "ticks.npy"), TICK_DTYPE)
    appender.append(rows)
    appender.close()


def test_a_long_tick_is_stepped_in_parts_that_see_a_stop(tmp_path):
    path = tmp_path / "flight.hslog"
    long_ticks_log(path, 50_000)
    replay = Replay(read_log(str(path)))
    looks = []

    def stop_at_the_third_look() -> bool:
        looks.append(replay.flight.steps)
        return len(looks) == 3

    assert replay.step(stop_at_the_third_look) is False
    assert looks == [1000, 2000, 3000] and replay.interrupted and replay.index == 0


@pytest.mark.realtime
def test_sigint_ends_a_replay_inside_a_long_tick(tmp_path):
    path = tmp_path / "flight.hslog"
    # the references, under the same load: a replay of the same short flight from its "replaying"
    # line to its exit (the start-up work of replay, the summary and the exit), and how long one
    # part of a long tick (1000 steps) takes here
    short = tmp_path / "short.hslog"
    fly_logged(short)
    with running([str(HELI_SIM), "replay", "--headless", str(short)], cwd=ROOT) as proc:
        StderrLines(proc).wait_for("heli-sim: replaying")
        started = time.monotonic()
        proc.communicate(timeout=RUN_TIMEOUT_S)
        whole_replay_s = time.monotonic() - started
    assert proc.returncode == 0
    long_ticks_log(path, 50_000)  # ~5,000,000 physics steps in all: minutes of work
    reference = Replay(read_log(str(path)))
    started = time.monotonic()
    reference.flight.advance(1000)
    part_s = time.monotonic() - started
    stats = tmp_path / "replay.json"
    with running([str(HELI_SIM), "replay", "--headless", str(path), "--stats-json", str(stats)], cwd=ROOT) as proc:
        StderrLines(proc).wait_for("heli-sim: replaying")  # printed just before the first (long) tick
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=RUN_TIMEOUT_S)
        stopped_in = time.monotonic() - sent
    assert proc.returncode == 130
    # a part, the summary and the exit, as long as the short replay took at most: not the minutes left
    assert stopped_in < whole_replay_s + 3 * part_s + SIGNAL_ALLOWANCE_S, (stopped_in, whole_replay_s, part_s)
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "replay stopped" and summary["replay"]["ticks"] < summary["replay"]["ticks_in_log"]
    assert "ended: replay stopped" in out.decode()
    result = summary["replay"]
    assert result["complete"] is False  # (interrupted, too, unless the signal came before the first tick began)
    assert f"replay: stopped after {result['ticks']} of {result['ticks_in_log']} ticks" in out.decode()


def test_the_checks_accept_what_the_writer_writes(tmp_path):
    """Resets, pauses, a catch-up and three vehicles: a log as the writer writes it reads and replays."""
    path = tmp_path / "flight.hslog"

    def hook(loop) -> None:
        commands = {30: "pause", 50: "pause", 70: "reset"}
        if loop.ticks in commands:
            loop.command(commands[loop.ticks])
        if loop.ticks == 90:
            loop.clock.advance(0.3)  # a stall: 300 steps in one tick

    config = apply_overrides(FlightConfig(ports=()), start="hover", duration_s=0.4, fleet=3)
    with flight_session(config, heli("trex450").config, clock=ManualClock(), before_tick=hook,
                        log_path=str(path)) as loop:  # fmt: skip
        loop.run()
    copy = tmp_path / "copy.hslog"
    shutil.copytree(path, copy)
    log = read_log(str(copy))
    assert log.status["status"] == "complete" and log.incomplete is None and log.ticks["steps"].max() >= 300
    replay = Replay(log)
    replay.run()
    assert replay.difference is None
