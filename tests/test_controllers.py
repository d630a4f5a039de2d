"""Your own flight controller (``[flight] controller = "module:function"``): it flies instead of
the built-in one, the flight logs and replays with it, and a controller that cannot be used is
named in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.config import FlightConfig, apply_overrides
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import ManualClock
from sim.session import flight_session
from tests.conftest import heli

ROOT = Path(__file__).resolve().parent.parent

CONTROLLERS = '''
from heli.control import control
from heli.state import ActuatorCommand

calls = 0


def engine_off(constants, state, pilot, vehicles, dt_s):
    """The built-in controller, with the throttle cut: the rotor must slow down."""
    global calls
    calls += 1
    state, command = control(constants, state, pilot, vehicles, dt_s)
    packed = command.packed.copy()
    packed[:, 4] = 0.0
    return state, ActuatorCommand(packed)


def wrong(constants, state, pilot, vehicles, dt_s):
    return "no command"


def wrong_state(constants, state, pilot, vehicles, dt_s):
    return "no state", control(constants, state, pilot, vehicles, dt_s)[1]
'''


@pytest.fixture
def my_controllers(tmp_path, monkeypatch):
    (tmp_path / "my_controllers.py").write_text(CONTROLLERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_controllers", None)


def fly(seconds: float, log_path: Path | None = None, **settings):
    config = apply_overrides(FlightConfig(ports=()), start="hover", duration_s=seconds, **settings)
    with flight_session(config, heli("xcell60").config, clock=ManualClock(),
                        log_path=None if log_path is None else str(log_path)) as loop:  # fmt: skip
        loop.run()
    return loop


def test_your_controller_flies_instead_of_the_built_in_one_and_replays(my_controllers):
    import my_controllers as module

    built_in = fly(1.5).flight.vehicles
    log_path = my_controllers / "flight.hslog"
    loop = fly(1.5, log_path, controller="my_controllers:engine_off")
    assert module.calls == 1 + loop.ticks  # a dry run before the flight, then once a tick (500 Hz)
    ours = loop.flight.vehicles
    assert ours.rotor_speed_rad_s[0] < 0.9 * built_in.rotor_speed_rad_s[0]  # no power: the rotor slows
    replay = Replay(read_log(str(log_path)), controller="my_controllers:engine_off")  # named again: replay imports
    replay.run()  # no code by itself
    assert replay.difference is None


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("my_controllers:wrong", ["must return (ControllerState, ActuatorCommand)", "str"]),
        ("my_controllers:wrong_state", ["must return (ControllerState, ActuatorCommand)", "tuple"]),
        ("my_controllers:missing", ["has no function 'missing'"]),
        ("not_a_module_here:f", ["cannot import 'not_a_module_here'", "PYTHONPATH"]),
        ("no-colon", ["expected MODULE:FUNCTION"]),
        ("broken_syntax:f", ["'broken_syntax' does not compile", "broken_syntax.py:1"]),
        (
            "raises_on_import:f",
            ["importing 'raises_on_import' raised RuntimeError('no gains')", "raises_on_import.py:1"],
        ),
        ("exits_on_import:f", ["importing 'exits_on_import' raised SystemExit(3)"]),
    ],
)
def test_a_controller_that_cannot_fly_is_one_line(my_controllers, name, fragments):
    (my_controllers / "broken_syntax.py").write_text("def f(:\n")
    (my_controllers / "raises_on_import.py").write_text("raise RuntimeError('no gains')\n")
    (my_controllers / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(my_controllers)}
    result = subprocess.run([sys.executable, "-m", "sim", "fly", "--headless", "--duration", "0.5", "--controller",
                             name], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    named = (
        f"heli-sim fly: error: flight.controller = '{name}'",
        f"heli-sim fly: error: argument --controller: '{name}'",
    )
    assert lines[0].startswith(named)  # a malformed name is refused by the option's schema, the rest on import
    for fragment in fragments:
        assert fragment in lines[0]


def test_the_installed_command_finds_a_controller_in_the_working_directory(my_controllers):
    command = Path(sys.executable).parent / "heli-sim"  # unlike python -m, it does not put "." on sys.path
    result = subprocess.run([str(command), "fly", "--headless", "--quiet", "--duration", "0.3", "--controller",
                             "my_controllers:engine_off"], cwd=my_controllers, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr
