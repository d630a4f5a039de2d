"""RC channels to controller input (``sim.rc``) and the scripted pilot (``sim.pilots.ScriptPilot``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heli.errors import ConfigError
from sim.config import ChannelMap, FlightConfig, apply_overrides, load_heli
from sim.flight import Flight
from sim.pilots import ScriptPilot
from sim.rc import CHANNEL_COUNT, neutral_channels, to_pilot_input

# PilotInput.packed columns, from its docstring
ROLL, PITCH, YAW, COLLECTIVE, ARM, MODE, VALID = range(7)
RATE, ANGLE, RESCUE = 0.0, 1.0, 2.0

DEFAULT_MAP = ChannelMap()
REORDERED_MAP = ChannelMap(roll=6, pitch=5, collective=4, yaw=3, arm=2, mode=1)


def frames(count: int = 1, channel_map: ChannelMap = DEFAULT_MAP, **us: float) -> np.ndarray:
    """(count, 16) frames: everything at 1500 us, then the named functions set."""
    out = np.full((count, CHANNEL_COUNT), 1500.0)
    for name, value in us.items():
        out[:, getattr(channel_map, name) - 1] = value
    return out


def decode(channel_map: ChannelMap = DEFAULT_MAP, fresh=True, **us: float) -> np.ndarray:
    """The single row of ``to_pilot_input`` for one frame."""
    return to_pilot_input(frames(1, channel_map, **us), fresh, channel_map).packed[0]


# --- sim.rc ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel_map", [DEFAULT_MAP, REORDERED_MAP], ids=["default", "reordered"])
def test_neutral_channels(channel_map):
    out = neutral_channels(3, channel_map)
    assert out.shape == (3, CHANNEL_COUNT)
    for name, us in [("roll", 1500), ("pitch", 1500), ("yaw", 1500), ("collective", 1000), ("arm", 1000)]:
        assert np.all(out[:, getattr(channel_map, name) - 1] == us), name
    assert np.all(out[:, channel_map.mode - 1] == 1500)


@pytest.mark.parametrize("channel_map", [DEFAULT_MAP, REORDERED_MAP], ids=["default", "reordered"])
def test_neutral_channels_decode_to_disarmed_angle_mode(channel_map):
    packed = to_pilot_input(neutral_channels(2, channel_map), True, channel_map).packed
    np.testing.assert_array_equal(packed, np.tile([0.0, 0.0, 0.0, -1.0, 0.0, ANGLE, 1.0], (2, 1)))


@pytest.mark.parametrize(
    ("us", "stick"),
    [
        (1000, -1.0),
        (1250, -0.5),
        (1500, 0.0),
        (1600, 0.2),
        (1750, 0.5),
        (2000, 1.0),
        (900, -1.0),
        (800, -1.0),
        (2100, 1.0),
        (2200, 1.0),
    ],
)
@pytest.mark.parametrize(
    ("function", "column"), [("roll", ROLL), ("pitch", PITCH), ("yaw", YAW), ("collective", COLLECTIVE)]
)
def test_sticks_scale_and_clip(us, stick, function, column):
    packed = decode(**{function: us})
    assert packed[column] == pytest.approx(stick, abs=1e-12)


def test_each_stick_lands_in_its_own_column():
    packed = decode(roll=2000, pitch=1000, yaw=1750, collective=1250)
    np.testing.assert_allclose(packed[[ROLL, PITCH, YAW, COLLECTIVE]], [1.0, -1.0, 0.5, -0.5])


@pytest.mark.parametrize(
    ("us", "armed"),
    [(1000, 0.0), (1500, 0.0), (1699, 0.0), (1700, 0.0), (1700.5, 1.0), (1701, 1.0), (2000, 1.0)],
)
def test_arm_threshold(us, armed):
    assert decode(arm=us)[ARM] == armed


@pytest.mark.parametrize(("arm", "hold", "armed"), [(2000, 1000, 1.0), (2000, 1700, 1.0), (2000, 1701, 0.0),
                                                    (1000, 2000, 0.0), (1000, 1000, 0.0)])  # fmt: skip
def test_throttle_hold_on_channel_7_stops_the_motor_whatever_the_arm_switch_says(arm, hold, armed):
    row = frames(1, arm=arm)
    row[0, 6] = hold
    assert to_pilot_input(row, True, DEFAULT_MAP).packed[0, ARM] == armed


def test_the_throttle_hold_channel_is_7_unless_the_map_gives_7_to_something_else():
    assert DEFAULT_MAP.hold_channel == 7
    assert ChannelMap(arm=7, mode=8).hold_channel == 0  # a map from before channel 7 meant anything: no switch
    assert ChannelMap(throttle_hold=9).hold_channel == 9
    assert replace(ChannelMap(), mode=7).hold_channel == 0  # the default gives way when edited, too
    with pytest.raises(ConfigError, match=r"rc\.throttle_hold = 5: channel 5 is rc\.arm's"):
        ChannelMap(throttle_hold=5)
    without = ChannelMap(throttle_hold=0)
    row = frames(1, arm=2000)
    row[0, 6] = 2000  # channel 7 means nothing here
    assert to_pilot_input(row, True, without).packed[0, ARM] == 1.0


@pytest.mark.parametrize(
    ("us", "mode"),
    [
        (1000, RATE),
        (1299, RATE),
        (1299.9, RATE),
        (1300, ANGLE),
        (1500, ANGLE),
        (1700, ANGLE),
        (1700.1, RESCUE),
        (1701, RESCUE),
        (2000, RESCUE),
    ],
)
def test_mode_thresholds(us, mode):
    assert decode(mode=us)[MODE] == mode


def test_fresh_flag_scalar_and_per_vehicle():
    three = frames(3)
    assert np.all(to_pilot_input(three, True, DEFAULT_MAP).packed[:, VALID] == 1.0)
    assert np.all(to_pilot_input(three, False, DEFAULT_MAP).packed[:, VALID] == 0.0)
    per_vehicle = to_pilot_input(three, np.array([True, False, True]), DEFAULT_MAP).packed[:, VALID]
    np.testing.assert_array_equal(per_vehicle, [1.0, 0.0, 1.0])


def test_each_vehicle_decodes_its_own_row():
    batch = frames(3)
    batch[:, DEFAULT_MAP.roll - 1] = [1000, 1500, 2000]
    batch[:, DEFAULT_MAP.arm - 1] = [2000, 1000, 2000]
    batch[:, DEFAULT_MAP.mode - 1] = [1000, 1500, 2000]
    packed = to_pilot_input(batch, True, DEFAULT_MAP).packed
    np.testing.assert_array_equal(packed[:, ROLL], [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(packed[:, ARM], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(packed[:, MODE], [RATE, ANGLE, RESCUE])


def test_custom_channel_map_reads_the_reordered_channels():
    values = {"roll": 1750.0, "pitch": 1250.0, "collective": 2000.0, "yaw": 1000.0, "arm": 2000.0, "mode": 1900.0}
    expected = decode(DEFAULT_MAP, **values)
    reordered = frames(1, REORDERED_MAP, **values)
    # the same frame read with the default map would be something else entirely
    assert not np.array_equal(to_pilot_input(reordered, True, DEFAULT_MAP).packed[0], expected)
    np.testing.assert_array_equal(to_pilot_input(reordered, True, REORDERED_MAP).packed[0], expected)
    np.testing.assert_allclose(expected, [0.5, -0.5, -1.0, 1.0, 1.0, RESCUE, 1.0])


def test_channel_map_on_high_channels():
    cmap = ChannelMap(roll=11, pitch=12, collective=13, yaw=14, arm=15, mode=16)
    packed = to_pilot_input(frames(1, cmap, roll=2000, collective=1000, arm=2000, mode=1000), True, cmap).packed[0]
    np.testing.assert_array_equal(packed, [1.0, 0.0, 0.0, -1.0, 1.0, RATE, 1.0])


@pytest.mark.parametrize("channel", [17, 18])
def test_a_channel_map_the_config_accepts_works_with_the_frames(channel):
    try:
        cmap = ChannelMap(arm=channel)
    except ConfigError:
        return  # rejected at the boundary: fine
    neutral = neutral_channels(1, cmap)
    assert to_pilot_input(neutral, True, cmap).packed[0, ARM] == 0.0


# --- ScriptPilot -------------------------------------------------------------------------------

INITIAL = {
    "roll": 1500.0, "pitch": 1500.0, "collective": 1000.0, "yaw": 1500.0, "arm": 1000.0, "mode": 1500.0,
    "throttle_hold": 1000.0,
}  # fmt: skip

SCRIPT = """
[[at]]
t = 1.0
arm = 2000
collective = 1500

[[at]]
t = 2.0
pitch = 2000
mode = 1000

[[at]]
t = 4.0
pitch = 1000
roll = 1200
collective = 1700
arm = 1000
"""


def write_script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.toml"
    path.write_text(text)
    return path


def script_pilot(tmp_path: Path, text: str, channel_map: ChannelMap = DEFAULT_MAP, count: int = 1) -> ScriptPilot:
    return ScriptPilot(write_script(tmp_path, text), channel_map, count)


@pytest.fixture
def pilot(tmp_path) -> ScriptPilot:
    return script_pilot(tmp_path, SCRIPT)


@pytest.mark.parametrize("t", [0.0, 0.5, 0.999999])
def test_script_before_the_first_entry(pilot, t):
    assert pilot.values_at(t) == INITIAL


def test_script_at_the_entries(pilot):
    assert pilot.values_at(1.0) == {**INITIAL, "arm": 2000.0, "collective": 1500.0}
    assert pilot.values_at(2.0) == {**INITIAL, "arm": 2000.0, "collective": 1500.0, "pitch": 2000.0, "mode": 1000.0}
    last = {"roll": 1200.0, "pitch": 1000.0, "collective": 1700.0, "yaw": 1500.0, "arm": 1000.0, "mode": 1000.0,
            "throttle_hold": 1000.0}  # fmt: skip
    assert pilot.values_at(4.0) == last


def test_script_sticks_interpolate_between_entries(pilot):
    halfway_up = pilot.values_at(1.5)
    assert halfway_up["pitch"] == pytest.approx(1750.0)  # 1500 at t=1 (carried) to 2000 at t=2
    assert halfway_up["collective"] == pytest.approx(1500.0)  # 1500 at both ends
    quarter = pilot.values_at(2.5)  # a quarter of the way from t=2 to t=4
    assert quarter["pitch"] == pytest.approx(1750.0)
    assert quarter["roll"] == pytest.approx(1425.0)
    assert quarter["collective"] == pytest.approx(1550.0)
    assert quarter["yaw"] == pytest.approx(1500.0)


def test_script_arm_and_mode_hold_until_the_next_entry(pilot):
    assert pilot.values_at(1.999)["mode"] == 1500.0  # not interpolated towards 1000
    assert pilot.values_at(2.0)["mode"] == 1000.0
    assert pilot.values_at(3.999)["arm"] == 2000.0  # not interpolated towards 1000
    assert pilot.values_at(4.0)["arm"] == 1000.0


def test_script_throttle_hold_holds_until_the_next_entry(tmp_path):
    pilot = script_pilot(tmp_path, "[[at]]\nt = 0\narm = 2000\n[[at]]\nt = 1\nthrottle_hold = 2000\n"
                                   "[[at]]\nt = 3\nthrottle_hold = 1000\n")  # fmt: skip
    assert pilot.values_at(0.999)["throttle_hold"] == 1000.0  # not interpolated towards 2000
    assert pilot.values_at(2.999)["throttle_hold"] == 2000.0
    held = to_pilot_input(pilot.channels(2.0, None), True, DEFAULT_MAP).packed[0, ARM]
    released = to_pilot_input(pilot.channels(3.0, None), True, DEFAULT_MAP).packed[0, ARM]
    assert (held, released) == (0.0, 1.0)


def test_a_script_that_holds_the_throttle_needs_a_throttle_hold_channel(tmp_path):
    text = "[[at]]\nt = 0\narm = 2000\nthrottle_hold = 2000\n"
    with pytest.raises(ConfigError, match="no throttle-hold channel"):
        script_pilot(tmp_path, text, ChannelMap(arm=7, mode=8))  # the map gave channel 7 away
    script_pilot(tmp_path, text, ChannelMap(arm=7, mode=8, throttle_hold=9))  # fine: it names one


def test_script_omitted_channels_keep_their_last_value(pilot):
    # entry 1 names neither arm nor collective; entry 2 names neither mode nor yaw
    assert pilot.values_at(2.0)["arm"] == 2000.0
    assert pilot.values_at(100.0)["mode"] == 1000.0
    assert pilot.values_at(100.0)["yaw"] == 1500.0


def test_script_holds_after_the_last_entry(pilot):
    assert pilot.values_at(4.0) == pilot.values_at(1e6)


def test_script_single_entry_at_zero(tmp_path):
    pilot = script_pilot(tmp_path, "[[at]]\nt = 0\nroll = 1000\nmode = 2000\n")
    expected = {**INITIAL, "roll": 1000.0, "mode": 2000.0}
    assert pilot.values_at(0.0) == expected
    assert pilot.values_at(3.0) == expected


def test_script_accepts_the_limits(tmp_path):
    pilot = script_pilot(tmp_path, "[[at]]\nt = 0\nroll = 800\npitch = 2200\n")
    assert (pilot.values_at(0.0)["roll"], pilot.values_at(0.0)["pitch"]) == (800.0, 2200.0)


@pytest.mark.parametrize("channel_map", [DEFAULT_MAP, REORDERED_MAP], ids=["default", "reordered"])
def test_script_channels_follow_the_channel_map(tmp_path, channel_map):
    pilot = script_pilot(tmp_path, SCRIPT, channel_map, count=3)
    out = pilot.channels(2.5, None)
    assert out.shape == (3, CHANNEL_COUNT)
    for name, value in pilot.values_at(2.5).items():
        np.testing.assert_allclose(out[:, channel_map.channel_of(name) - 1], value, err_msg=name)


def test_script_channels_decode_as_expected(pilot):
    packed = to_pilot_input(pilot.channels(2.0, None), True, DEFAULT_MAP).packed[0]
    # pitch full forward, collective centre, armed, rate mode
    np.testing.assert_allclose(packed, [0.0, 1.0, 0.0, 0.0, 1.0, RATE, 1.0])


def test_script_channels_before_the_first_entry_are_neutral(pilot):
    out = pilot.channels(0.0, None)
    np.testing.assert_array_equal(out, neutral_channels(1, DEFAULT_MAP))


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[[at]]\nt = 0\nptich = 1500\n", ("at[0].ptich", "unknown key", "pitch")),
        ("[[at]]\nt = 0\n[[at]]\nt = 1\n[[at]]\nt = 1\nthrottle = 1500\n", ("at[2].throttle", "unknown key")),
        ("[[at]]\nt = 1\n[[at]]\nt = 2\n[[at]]\nt = 1.5\n", ("at[2].t", "1.5", "order")),
        ("[[at]]\nt = 0\n[[at]]\nt = 1\n[[at]]\nt = 2\npitch = 2300\n", ("at[2].pitch", "2300", "800", "2200")),
        ("[[at]]\nt = 0\nroll = 799\n", ("at[0].roll", "799", "800", "2200")),
        ("[[at]]\nt = 0\narm = true\n", ("at[0].arm", "True")),
        ("[[at]]\nt = 0\nmode = '1500'\n", ("at[0].mode", "'1500'")),
        ("[[at]]\nt = -1\n", ("at[0].t", "-1", "from 0")),
        ("[[at]]\nroll = 1500\n", ("at[0].t",)),
        ("[[at]]\nt = 'soon'\n", ("at[0].t", "'soon'")),
        ("at = 3\n", ("at", "list")),
        ("at = []\n", ("at", "list")),
        ("[at]\nt = 1\n", ("at", "list")),
        ("at = [1, 2]\n", ("at[0]", "table")),
        ("speed = 2\n[[at]]\nt = 0\n", ("speed", "unknown")),
        ("[[at]]\nt = 0\n[extra]\nx = 1\n", ("extra", "unknown")),
        ("", ("at", "list")),
    ],
    ids=[
        "unknown-key",
        "unknown-key-third",
        "out-of-order",
        "above-range",
        "below-range",
        "bool-value",
        "string-value",
        "negative-t",
        "missing-t",
        "string-t",
        "not-a-list",
        "empty-list",
        "single-table",
        "entries-not-tables",
        "extra-top-level-key",
        "extra-top-level-table",
        "empty-file",
    ],
)
def test_script_errors(tmp_path, text, fragments):
    path = write_script(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        ScriptPilot(path, DEFAULT_MAP, 1)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in (str(path), *fragments):
        assert fragment in message, f"{fragment!r} missing from error: {message}"


def test_script_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        ScriptPilot(tmp_path / "absent.toml", DEFAULT_MAP, 1)


def test_script_rejects_nan_time(tmp_path):
    path = write_script(tmp_path, "[[at]]\nt = 1\nroll = 1000\n[[at]]\nt = nan\nroll = 2000\n[[at]]\nt = 0.5\n")
    with pytest.raises(ConfigError, match=r"at\[1\]\.t"):
        ScriptPilot(path, DEFAULT_MAP, 1)


def _hover_flight(channel_map: ChannelMap, seconds: float) -> Flight:
    config = replace(apply_overrides(FlightConfig(ports=()), heli="trex450", pilot="hover"), rc=channel_map)
    flight = Flight(load_heli("trex450"), config)
    for _ in range(int(seconds / 0.002)):
        flight.run_controller(flight.pilot_frames(), True, 0.002)
        flight.advance(2)
    return flight


def test_the_hover_pilot_flies_a_calibrated_reversed_radio_as_the_standard_one():
    """The in-process pilot's radio is set up as the flight's [rc] says: with every stick reversed
    and other calibrations its pulses differ, and the helicopter flies the same hover (before, it
    never left the ground reversed, and climbed a metre too high on a shifted collective)."""
    odd = ChannelMap(
        reversed=("roll", "pitch", "collective", "yaw"), collective_us=(1100.0, 1450.0, 1900.0),
        roll_us=(990.0, 1510.0, 2020.0), pitch_us=(1050.0, 1500.0, 1950.0), yaw_us=(1000.0, 1480.0, 2000.0),
    )  # fmt: skip
    standard, calibrated = _hover_flight(DEFAULT_MAP, 12.0), _hover_flight(odd, 12.0)
    assert standard.vehicles.altitude_m[0] > 4.0  # up, climbing the last of its 5 m
    np.testing.assert_allclose(calibrated.vehicles.position_ned_m, standard.vehicles.position_ned_m, atol=1e-6)
    assert calibrated.frames_us[0, odd.collective - 1] != standard.frames_us[0, odd.collective - 1]


def test_the_hover_pilot_with_a_hold_time_lands_softly_and_disarms():
    """``hover:SECONDS``: take off, hold, then down at 0.5 m/s easing off over the last metre."""
    config = apply_overrides(FlightConfig(ports=()), heli="trex450", pilot="hover:3", duration_s=40.0)
    flight = Flight(load_heli("trex450"), config)
    touchdowns, highest = [], 0.0
    for _ in range(int(40.0 / 0.002)):
        flight.run_controller(flight.pilot_frames(), True, 0.002)
        touchdowns += [detail for kind, detail in flight.advance(2) if kind == "touchdown"]
        highest = max(highest, float(flight.vehicles.altitude_m[0]))
    assert highest > 4.5  # it flew
    assert len(touchdowns) == 1 and float(touchdowns[0].split("sinking ")[1].split(" m/s")[0]) < 0.3
    assert flight.frames_us[0, config.rc.arm - 1] < 1700 and not flight.vehicles.crashed[0]  # disarmed, whole


@settings(max_examples=300, deadline=None)
@given(
    frame=st.lists(st.floats(500.0, 2500.0) | st.sampled_from([1000.0, 1300.0, 1500.0, 1700.0, 2000.0]),
                   min_size=16, max_size=16),
    fresh=st.booleans(),
    reversed_=st.sets(st.sampled_from(["roll", "pitch", "yaw", "collective"])),
)  # fmt: skip
def test_one_vehicle_decodes_bit_for_bit_as_in_a_batch(frame, fresh, reversed_):
    """A single vehicle's frame is decoded on Python floats (fast); the batch on arrays: the same bits."""
    cmap = ChannelMap(reversed=tuple(sorted(reversed_)))
    one = to_pilot_input(np.array([frame]), fresh, cmap).packed
    two = to_pilot_input(np.array([frame, frame]), fresh, cmap).packed
    assert np.array_equal(one[0], two[0]) and np.array_equal(two[0], two[1])


def test_one_radio_flies_a_whole_fleet_and_its_dropout_is_one_event_not_one_per_vehicle(tmp_path):
    """A CRSF rc-in has no vehicle index: its sticks fly all twelve helicopters, and when it goes
    silent (an rc_silence fault) the failsafe of the twelve is one event each way."""
    from sim.config import FaultSpec, PortSpec
    from sim.session import flight_session

    script = tmp_path / "sticks.toml"
    script.write_text("[[at]]\nt = 0.0\narm = 2000\ncollective = 1730\n")
    config = apply_overrides(FlightConfig(), fleet=12, start="hover", pilot=f"script:{script}", duration_s=20.0)
    config = replace(config, ports=(PortSpec(role="rc-in", protocol="crsf"),),
                     faults=(FaultSpec(kind="rc_silence", start_s=0.5, duration_s=0.6),))  # fmt: skip

    def until_back(loop) -> None:
        if any(e.kind == "failsafe_off" for e in loop.events):
            loop.request_stop("the radio is back")

    with flight_session(config, load_heli("xcell60")) as loop:
        loop.before_tick = until_back
        loop.run()
    failsafe = [(e.kind, e.detail) for e in loop.events if e.kind.startswith("failsafe")]
    assert ("failsafe_on", "vehicles 0..11 (12): pilot input stale") in failsafe, failsafe
    assert ("failsafe_off", "vehicles 0..11 (12): pilot input back") in failsafe, failsafe
    assert not any(detail.startswith("vehicle ") for _, detail in failsafe), failsafe
