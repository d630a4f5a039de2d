"""USB joysticks and radios in joystick mode: layouts, level switches, hotplug, the headless pilot,
calibration and listing, through SDL's virtual joystick (``sim.joystick.virtual``: a JSON file that
every heli-sim process mirrors into a real SDL device, so pygame's own joystick code is what reads
it).  The flight tests step on what the flight observed (events, the frames the controller flew
by), never on a wall-clock wait.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from heli.errors import ConfigError
from sim.config import ChannelMap, FlightConfig, JoystickMap, PortSpec, apply_overrides
from sim.joystick.sticks import ANGLE, RATE, RESCUE, JoystickSticks, channels_us
from sim.joystick.virtual import VIRTUAL_ENV
from sim.rc import to_pilot_input
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import StderrLines, running

ROOT = Path(__file__).resolve().parent.parent
RADIO = "EdgeTX RadioMaster TX16S Joystick"
TIMEOUT_S = 60.0


class VirtualJoystick:
    """The JSON file a virtual joystick follows: each ``set`` replaces it whole (tmp + rename)."""

    def __init__(self, path: Path, name: str = RADIO, axes: int = 8, buttons: int = 4):
        self.path = path
        self.state = {"attached": True, "name": name, "axes": [0.0] * axes, "buttons": [False] * buttons}
        self.set()

    def set(self, **changes) -> None:
        axes = dict(changes.pop("axes", {}))
        for index, value in axes.items():
            self.state["axes"][index] = value
        for index, value in dict(changes.pop("buttons", {})).items():
            self.state["buttons"][index] = value
        self.state.update(changes)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.state))
        os.replace(partial, self.path)


# --- layouts and switches (no SDL) ---------------------------------------------------------------


def test_the_auto_preset_reads_a_radio_a_gamepad_and_anything_else_by_its_name():
    mapping = JoystickMap()
    assert mapping.layout(RADIO).preset == "edgetx"
    assert mapping.layout("OpenTX FrSky Taranis Joystick").preset == "edgetx"
    assert mapping.layout("Xbox Wireless Controller").preset == "gamepad"
    assert mapping.layout("Sony Interactive Entertainment DualSense Wireless Controller").preset == "gamepad"
    assert mapping.layout("Logitech Extreme 3D Pro").preset == "generic"
    assert JoystickMap(preset="opentx").layout("Xbox Wireless Controller").preset == "opentx"


def test_a_gamepad_is_flown_mode_2_and_its_resting_triggers_move_nothing():
    """SDL's gamepad axes: left stick 0, 1; left trigger 2; right stick 3, 4; right trigger 5.  The
    triggers rest at -1 (a generic layout would read one as full collective)."""
    mapping = JoystickMap()
    sticks = JoystickSticks(mapping, mapping.layout("Xbox Wireless Controller"))
    at_rest = sticks.read([0.0, 0.0, -1.0, 0.0, 0.0, -1.0], [False] * 4)
    assert (at_rest.roll, at_rest.pitch, at_rest.collective, at_rest.yaw) == (0.0, 0.0, 0.0, 0.0)
    moved = sticks.read([0.5, -1.0, -1.0, 0.25, -0.5, -1.0], [False] * 4)  # left stick up and right, ...
    assert (moved.collective, moved.yaw, moved.roll, moved.pitch) == (1.0, 0.5, 0.25, 0.5)


def test_layouts_that_put_a_switch_on_an_axis_and_a_button_or_invert_a_stick_twice_are_refused():
    with pytest.raises(ConfigError, match="arm_axis = 6 and arm_button = 3"):
        JoystickMap(arm_axis=6, arm_button=3)
    with pytest.raises(ConfigError, match="names a stick twice"):
        JoystickMap(inverted=("roll", "roll"))


def test_a_radios_switches_on_axes_are_levels_not_toggles():
    """Arm on channel 5 (axis 4), flight mode on channel 6 (axis 5): the switch's position is the state."""
    mapping = JoystickMap(preset="edgetx")
    sticks = JoystickSticks(mapping, mapping.layout())
    read = lambda arm, mode: sticks.read([0.0, 0.0, -1.0, 0.0, arm, mode], [])  # noqa: E731
    assert (read(1.0, -1.0).armed, read(1.0, -1.0).mode) == (True, RATE)
    assert read(1.0, 0.0).mode == ANGLE and read(1.0, 1.0).mode == RESCUE
    assert not read(-1.0, 0.0).armed  # the switch flipped off disarms
    assert not read(-1.0, 0.0).armed  # and stays off: a level, read again, is the same level
    assert read(1.0, 0.0).armed


def test_switches_on_buttons_are_levels_for_a_radio_and_toggles_for_a_gamepad():
    radio = JoystickMap(preset="edgetx", arm_button=0, mode_button=1, rescue_button=2)
    layout = radio.layout()
    assert layout.arm_axis is None and layout.mode_axis is None  # a button given replaces the preset's axis
    sticks = JoystickSticks(radio, layout)
    assert sticks.read([0.0] * 8, [True, False, False]).armed
    assert not sticks.read([0.0] * 8, [False, False, False]).armed
    assert sticks.read([0.0] * 8, [True, True, False]).mode == RATE
    assert sticks.read([0.0] * 8, [True, True, True]).mode == RESCUE
    assert sticks.read([0.0] * 8, [True, False, False]).mode == ANGLE

    gamepad = JoystickMap(preset="generic")
    sticks = JoystickSticks(gamepad, gamepad.layout())
    presses = [[True, False], [False, False], [True, False], [False, False]]  # arm pressed twice
    assert [sticks.read([0.0] * 4, buttons).armed for buttons in presses] == [True, True, False, False]


def test_throttle_hold_is_channel_7_of_a_radio_and_a_button_of_a_gamepad():
    radio = JoystickMap(preset="edgetx")
    sticks = JoystickSticks(radio, radio.layout())
    axes = lambda hold: [0.0, 0.0, -1.0, 0.0, 1.0, 0.0, hold]  # noqa: E731  armed, angle, hold on axis 6
    assert sticks.read(axes(1.0), []).hold and sticks.read(axes(1.0), []).armed
    assert not sticks.read(axes(-1.0), []).hold
    row = channels_us(0.0, 0.0, 0.0, 0.0, True, ANGLE, ChannelMap().numbers(), hold=True)
    assert row[6] == 2000.0 and row[4] == 2000.0
    assert to_pilot_input(np.array([row]), True, ChannelMap()).packed[0, 4] == 0.0  # held: the motor stops

    gamepad = JoystickMap(preset="gamepad")
    sticks = JoystickSticks(gamepad, gamepad.layout("Xbox Wireless Controller"))
    presses = [[False, False, True, False], [False] * 4, [False, False, True, False]]  # X pressed twice
    assert [sticks.read([0.0] * 6, buttons).hold for buttons in presses] == [True, True, False]
    # a table that puts another switch on the preset's hold button or axis takes it: no hold there
    assert JoystickMap(preset="generic", rescue_button=2).layout().hold_button is None
    assert JoystickMap(preset="edgetx", mode_axis=6).layout().hold_axis is None


def test_a_layout_that_puts_a_stick_on_a_radios_switch_is_refused_when_loaded():
    with pytest.raises(ConfigError, match="mode are both on axis 5"):
        JoystickMap(yaw_axis=5)  # auto may pick edgetx for a radio: its mode switch is axis 5
    assert JoystickMap(preset="generic", yaw_axis=5).layout(RADIO).yaw_axis == 5


# --- the device: SDL's virtual joystick, in a process of its own ---------------------------------

_HOTPLUG_SCRIPT = """
import json, sys
from pathlib import Path
from sim.config import JoystickMap
from sim.joystick.device import JoystickDevice, start_pygame

pygame = start_pygame(events=True)
device = JoystickDevice(pygame, JoystickMap(), None)
state_path = Path(sys.argv[1])
out = {"opened": device.opened, "steps": []}
for line in sys.stdin:  # the test writes the file, then says which step it is
    if line.strip() == "end":
        break
    changes = device.poll()
    reading = device.read()
    out["steps"].append({"step": line.strip(), "changes": changes,
                         "reading": None if reading is None else [reading.collective, reading.armed, reading.mode]})
    print(json.dumps(out["steps"][-1]), flush=True)
device.close()
print(json.dumps(out), flush=True)
"""


def test_a_joystick_unplugged_and_plugged_back_is_followed_and_another_device_is_not_taken(tmp_path):
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    joystick.set(axes={2: -1.0, 4: 1.0})  # collective low, the arm switch on
    env = {**os.environ, VIRTUAL_ENV: str(joystick.path)}
    with running([sys.executable, "-P", "-c", _HOTPLUG_SCRIPT, str(joystick.path)], env=env, cwd=ROOT,
                 stdin=subprocess.PIPE) as proc:  # fmt: skip

        def step(name: str) -> dict:
            proc.stdin.write(f"{name}\n".encode())
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        plugged = step("plugged")
        joystick.set(attached=False)
        unplugged = step("unplugged")
        joystick.set(attached=True, name="Some Other Gamepad")
        other = step("another device")
        joystick.set(attached=False)
        step("it goes")
        joystick.set(attached=True, name=RADIO, axes={2: 0.5, 4: -1.0})
        back = step("back")
        proc.stdin.write(b"end\n")
        proc.stdin.flush()
        proc.wait(TIMEOUT_S)
    assert plugged["reading"] == pytest.approx([-1.0, True, ANGLE], abs=1e-4) and plugged["changes"] == []
    assert [kind for kind, _ in unplugged["changes"]] == ["joystick_lost"] and unplugged["reading"] is None
    assert other["changes"] == [] and other["reading"] is None  # not the pilot's joystick: not flown by
    assert [kind for kind, _ in back["changes"]] == ["joystick_back"]
    assert RADIO in back["changes"][0][1] and "preset edgetx" in back["changes"][0][1]
    assert back["reading"] == pytest.approx([0.5, False, ANGLE], abs=1e-4)  # read anew: the switch says disarmed


# --- the headless pilot: an emulated transmitter reads the joystick ------------------------------


def test_a_headless_flight_is_flown_by_a_joystick_that_arms_by_switch_and_survives_an_unplug(tmp_path, monkeypatch):
    """``--pilot joystick``: the emulated transmitter sends the joystick's sticks as CRSF down the
    virtual rc-in port.  The arm switch (axis 4) arms and, flipped off, disarms; unplugging the radio
    is a ``joystick_lost`` event and the failsafe; plugging it back is ``joystick_back`` and the end
    of the failsafe.  Each step waits for what the flight saw of the last one."""
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    joystick.set(axes={2: -1.0, 4: -1.0})  # collective low, disarmed, angle mode (axis 5 centred)
    monkeypatch.setenv(VIRTUAL_ENV, str(joystick.path))
    config = apply_overrides(FlightConfig(), heli="trex450", pilot="joystick", duration_s=30.0)
    config = replace(config, ports=(PortSpec(role="rc-in", protocol="crsf"), PortSpec(role="servo")))
    cmap = config.rc
    flown: list[tuple[str, float, float]] = []  # (step, arm us, collective us) as each step ended
    step = ["start"]

    def fly_by_steps(loop) -> None:
        frame = loop.io._flown[0]
        arm, collective = float(frame[cmap.arm - 1]), float(frame[cmap.collective - 1])
        kinds = [e.kind for e in loop.events]
        details = " ".join(e.detail for e in loop.events if e.kind == "transmitter")
        now = step[0]
        heard = loop.io.rc_port._last_t is not None  # a stick frame has come
        if now == "start" and "joystick" in kinds and heard:
            joystick.set(axes={2: 0.2, 4: 1.0})  # the arm switch on with the collective up: refused
        elif now == "refused" and "arm refused" in details and arm == 1000.0 and collective > 1500.0:
            joystick.set(axes={2: -1.0})  # the collective lowered: it arms
        elif now == "lowered" and arm == 2000.0:
            joystick.set(axes={2: 0.2})  # then a little up
        elif now == "armed" and arm == 2000.0 and collective == pytest.approx(1600.0, abs=1.0):
            joystick.set(axes={4: -1.0})  # the arm switch flipped off
        elif now == "disarmed" and arm == 1000.0:
            joystick.set(attached=False)  # the radio's USB cable pulled
        elif now == "unplugged" and "joystick_lost" in kinds and "failsafe_on" in kinds[kinds.index("joystick_lost") :]:
            joystick.set(attached=True)
        elif now == "replugged" and "joystick_back" in kinds and failsafe_kinds(kinds)[-1] == "failsafe_off":
            loop.request_stop("flown by the joystick")
            return
        else:
            return
        flown.append((now, arm, collective))
        step[0] = {"start": "refused", "refused": "lowered", "lowered": "armed", "armed": "disarmed",
                   "disarmed": "unplugged", "unplugged": "replugged"}[now]  # fmt: skip

    with flight_session(config, heli("trex450").config, before_tick=fly_by_steps) as loop:
        loop.run()
    summary = loop.summary()
    events = [(e["kind"], e["detail"]) for e in summary["events"]]
    assert summary["stop_reason"] == "flown by the joystick", "\n".join(f"{k}: {d}" for k, d in events)
    assert [s for s, *_ in flown] == ["start", "refused", "lowered", "armed", "disarmed", "unplugged"]
    assert flown[1][1] == 1000.0  # the arm switch on with the collective up: not armed
    assert flown[3][1:] == (2000.0, pytest.approx(1600.0, abs=1.0))  # armed by the switch, the stick's collective
    assert flown[4][1] == 1000.0  # disarmed by the same switch flipped off: a level, not a toggle
    kinds = [kind for kind, _ in events]
    lost = kinds.index("joystick_lost")
    assert kinds.index("joystick") < lost < kinds.index("failsafe_on", lost) < kinds.index("joystick_back")
    # (a busy machine may hold the transmitter up past the failsafe timeout elsewhere too: more pairs)
    assert failsafe_kinds(kinds)[-1] == "failsafe_off" and "io_error" not in kinds
    assert events[0][1].startswith(f"rc-in: joystick 0 '{RADIO}'") and "preset edgetx" in events[0][1]
    (rc,) = [p for p in summary["ports"] if p["role"] == "rc-in"]
    assert rc["protocol"] == "crsf" and rc["decode_errors"] == 0 and rc["frames_in"] > 0


def failsafe_kinds(kinds: list[str]) -> list[str]:
    return [kind for kind in kinds if kind.startswith("failsafe_")]


# --- the command line: ports, calibrate -----------------------------------------------------------


def test_ports_lists_the_joysticks_with_the_preset_each_gets(tmp_path):
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    env = {**os.environ, VIRTUAL_ENV: str(joystick.path)}
    text = subprocess.run([sys.executable, "-m", "sim", "ports"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert f"joystick:0  '{RADIO}' (8 axes, 4 buttons, 0 hats)" in text.stdout
    assert "preset: edgetx (fly with --pilot joystick:0)" in text.stdout
    listed = subprocess.run([sys.executable, "-m", "sim", "ports", "--joysticks", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    (only,) = json.loads(listed.stdout)
    assert (only["index"], only["name"], only["axes"], only["buttons"], only["preset"]) == (0, RADIO, 8, 4, "edgetx")


def test_calibrate_joystick_watches_the_sticks_and_writes_a_joystick_table_that_loads(tmp_path):
    """A radio that reaches -0.9..0.9 on roll and rests a little off centre: the table says so, and
    the pilot is told as each stick is done (the test moves on when told, then ends with Ctrl-C)."""
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    joystick.set(axes={0: -0.9, 1: -1.0, 2: -0.8, 3: -1.0, 4: -1.0})  # every stick at its low end
    env = {**os.environ, VIRTUAL_ENV: str(joystick.path)}
    out = tmp_path / "joystick.toml"
    command = [sys.executable, "-m", "sim", "calibrate", "--joystick", "--seconds", "300", "--output", str(out)]
    with running(command, cwd=ROOT, env=env) as proc:
        lines = StderrLines(proc)
        lines.wait_for("move every stick to both ends")
        joystick.set(axes={0: 0.9, 1: 1.0, 2: 0.9, 3: 1.0})  # ... then at its high end
        for stick in ("roll", "pitch", "collective", "yaw"):
            lines.wait_for(f"{stick}: full travel seen")
        joystick.set(axes={0: 0.04, 1: 0.0, 2: 0.9, 3: -0.02})  # let go: the springs centre them
        lines.wait_for("every stick calibrated")
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT_S)
    assert proc.returncode == 0, lines.seen
    table = tomllib.loads(out.read_text())["joystick"]
    assert table["preset"] == "edgetx"
    assert table["roll_range"] == pytest.approx([-0.9, 0.04, 0.9], abs=1e-3)
    assert table["yaw_range"] == pytest.approx([-1.0, -0.02, 1.0], abs=1e-3)
    assert table["collective_range"] == pytest.approx([-0.8, 0.05, 0.9], abs=1e-3)  # its middle: it does not centre
    JoystickMap(**{key: tuple(v) if isinstance(v, list) else v for key, v in table.items()})  # it loads back


# --- the view: its keyboard transmitter takes the joystick ---------------------------------------


def test_the_views_transmitter_flies_by_a_joystick_and_goes_failsafe_while_it_is_unplugged(tmp_path):
    """The windowed keyboard pilot with a radio plugged in: the view reads it through the same
    module (its arm switch arms), says when it goes and comes back, and sends nothing while it is
    gone, so the flight's failsafe holds until it is back."""
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    joystick.set(axes={2: -1.0, 4: 1.0})  # collective low, the arm switch on
    stats = tmp_path / "run.json"
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env[VIRTUAL_ENV] = str(joystick.path)
    command = [sys.executable, "-m", "sim", "-v", "fly", "--pilot", "keyboard", "--stats-json", str(stats),
               "--screenshot", str(tmp_path / "view.png")]  # fmt: skip
    with running(command, cwd=ROOT, env=env) as proc:
        lines = StderrLines(proc)
        lines.wait_for(f"joystick: joystick 0 '{RADIO}'")
        lines.wait_for("transmitter (joystick) armed, angle")
        joystick.set(attached=False)
        lines.wait_for("joystick_lost")
        lines.wait_for("failsafe_on")
        joystick.set(attached=True)
        lines.wait_for("joystick_back")
        lines.wait_for("failsafe_off")
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT_S)
    assert proc.returncode == 130
    summary = json.loads(stats.read_text())
    kinds = [e["kind"] for e in summary["events"]]
    lost, back = kinds.index("joystick_lost"), kinds.index("joystick_back")
    assert kinds.index("joystick") < lost < kinds.index("failsafe_on", lost) < back
    # the failsafe ended once it was back (the view draws at the lowest priority: on a busy machine
    # it may miss the timeout at other moments too, each a pair of its own)
    assert failsafe_kinds(kinds)[-1] == "failsafe_off"
    assert summary["vehicles"][0]["rotor_speed_rpm"] > 0  # from rest: armed by the radio's switch, it spun up


def test_a_joystick_takes_over_a_hovering_start_hovering_until_the_pilot_moves(tmp_path, monkeypatch):
    """``--pilot joystick --start hover`` with the radio's switches off and its collective low: the
    transmitter holds the hover (armed, angle, the hover collective) instead of dropping the helicopter,
    until the pilot moves; then the joystick's own sticks fly (here: the arm switch off)."""
    joystick = VirtualJoystick(tmp_path / "joystick.json")
    joystick.set(axes={2: -1.0, 4: -1.0})  # collective low, disarmed: as a radio lies on the desk
    monkeypatch.setenv(VIRTUAL_ENV, str(joystick.path))
    config = apply_overrides(FlightConfig(), heli="trex450", pilot="joystick", start="hover", duration_s=30.0)
    config = replace(config, ports=(PortSpec(role="rc-in", protocol="crsf"), PortSpec(role="servo")))
    cmap = config.rc
    seen: dict[str, tuple[float, float, float]] = {}  # what was flown: (arm us, collective us, altitude m)

    def watch(loop) -> None:
        frame = loop.io._flown[0]
        flown = (
            float(frame[cmap.arm - 1]),
            float(frame[cmap.collective - 1]),
            float(loop.flight.vehicles.altitude_m[0]),
        )
        heard = loop.io.rc_port._last_t is not None
        if "held" not in seen and heard and loop.flight_time_s > 1.5:  # held 1.5 s of flight by the takeover
            seen["held"] = flown
            joystick.set(axes={2: -0.9})  # the pilot moves the collective: the joystick flies from now
        elif "held" in seen and "moved" not in seen and flown[1] < 1100.0:
            seen["moved"] = flown
        elif "moved" in seen and any("the pilot moved" in e.detail for e in loop.events if e.kind == "transmitter"):
            loop.request_stop("the pilot moved")  # the transmitter's report comes a little after its frames

    with flight_session(config, heli("trex450").config, before_tick=watch) as loop:
        loop.run()
    summary = loop.summary()
    assert summary["stop_reason"] == "the pilot moved", summary["events"]
    arm, collective, altitude = seen["held"]
    hover_us = 1500.0 + 500.0 * loop.flight.trim.collective_deg / heli("trex450").config.controller.collective_max_deg
    assert arm == 2000.0 and collective == pytest.approx(hover_us, abs=1.0)  # armed, at the hover collective
    assert altitude == pytest.approx(5.0, abs=0.5) and not summary["vehicles"][0]["crashed"]  # still hovering
    assert seen["moved"][0] == 1000.0  # then the radio's own switch: disarmed
    details = " ".join(e["detail"] for e in summary["events"] if e["kind"] == "transmitter")
    assert "the pilot moved: the joystick flies" in details


def test_calibrate_joystick_keeps_the_layouts_inversions_names_axes_from_0_and_spares_a_flight_file(tmp_path):
    """A gamepad (generic: pitch and collective inverted) left alone for half a second, --reverse yaw:
    the table inverts pitch, collective and yaw (the flip is on top of the layout's), the sticks that
    did not move are named by their axis, and a flight file with more than [joystick] is not written."""
    joystick = VirtualJoystick(tmp_path / "joystick.json", name="Logitech Extreme 3D Pro")
    env = {**os.environ, VIRTUAL_ENV: str(joystick.path)}
    out = tmp_path / "pad.toml"
    command = [sys.executable, "-m", "sim", "calibrate", "--joystick", "--seconds", "0.5", "--reverse", "yaw"]
    result = subprocess.run([*command, "--output", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = tomllib.loads(out.read_text())["joystick"]
    assert table["preset"] == "generic" and table["inverted"] == ["pitch", "collective", "yaw"]
    assert "roll (axis 0) moved only 0 us" in result.stderr and "yaw (axis 3)" in result.stderr
    flight_file = tmp_path / "flight.toml"
    flight_file.write_text('[flight]\nheli = "trex450"\n\n[joystick]\nmode_axis = 6\n')
    refused = subprocess.run([*command, "--output", str(flight_file)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert refused.returncode == 2 and "holds [flight] as well" in refused.stderr, refused.stderr
    assert flight_file.read_text().startswith("[flight]")  # untouched


def test_a_bad_virtual_joystick_file_is_one_line_and_the_flight_does_not_start(tmp_path):
    bad = tmp_path / "joystick.json"
    bad.write_text('{"axes": [0.0, NaN]}')
    env = {**os.environ, VIRTUAL_ENV: str(bad)}
    result = subprocess.run([sys.executable, "-m", "sim", "fly", "--headless", "--pilot", "joystick", "--duration",
                             "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{VIRTUAL_ENV}={bad}: not JSON (NaN is not a number JSON allows)" in result.stderr
