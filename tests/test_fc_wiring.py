"""Firmware in the loop, piece by piece: the output wiring (pulses to servo throws, the ESC
governor), the sensors (specific force, noise, rangefinder, battery) and the firmware's radio
channels (the derived motor interlock)."""

from __future__ import annotations

import math
import socket
from dataclasses import replace

import numpy as np
import pytest

from heli.control import ControllerConstants
from heli.dynamics import FlightModel, rotation_matrix, step
from heli.errors import ConfigError
from heli.initial import ground_state, hover_state
from heli.mixer import unmix
from heli.state import ActuatorCommand, StateIndex, VehicleState
from heli.trim import solve_hover_trim
from sim.config import ChannelMap, FlightConfig, load_heli
from sim.dataclass_io import build
from sim.fc.ardupilot import decode
from sim.fc.config import FcConfig, FcOutputs, FcSensors
from sim.fc.link import FirmwareFrame, LockstepLink
from sim.fc.outputs import OutputMapper
from sim.fc.radio import FirmwareRadio
from sim.fc.sensors import SensorModel
from sim.protocols.ardupilot_json import Sensors, ServoFrame, encode_servo_frame, sensor_line
from sim.rc import neutral_channels

GRAVITY = 9.80665


def mapper(heli: str = "xcell60", **outputs: object) -> tuple[OutputMapper, FlightModel]:
    config = load_heli(heli)
    model = FlightModel.build(config.params)
    trim = solve_hover_trim(model)
    constants = ControllerConstants.build(config.controller, model, math.radians(trim.collective_deg))
    return OutputMapper(replace(FcOutputs(), **outputs), constants, 1), model


def frame(**pulses: float) -> np.ndarray:
    """A 16-output frame, all centred, motor off, with the given outputs (out1=...) set."""
    row = np.full((1, 16), 1500.0)
    row[0, 7] = 1000.0
    for name, value in pulses.items():
        row[0, int(name.removeprefix("out")) - 1] = value
    return row


def test_centred_pulses_centre_the_servos_and_the_ends_give_full_throw():
    outputs, model = mapper(tail_us=(1100.0, 1500.0, 1900.0))
    at_rest = ground_state(model, 1)
    assert outputs.command(frame(), True, at_rest, 0.001).packed[0, :4] == pytest.approx([0, 0, 0, 0])
    ends = outputs.command(frame(out3=2000, out2=1000, out1=1750, out4=1900), True, at_rest, 0.001).packed[0]
    assert ends[:4] == pytest.approx([1.0, -1.0, 0.5, 1.0])  # rear, right, left, tail
    reversed_ = mapper(reversed=("tail",))[0].command(frame(out4=2000), True, at_rest, 0.001).packed[0, 3]
    assert reversed_ == pytest.approx(-1.0)


def test_arducopter_h3_120_outputs_fly_the_helicopter_s_own_swashplate():
    """ArduPilot's H3_120 puts SERVO1 at -60 deg (left), SERVO2 at +60 (right), SERVO3 at 180 (rear): a
    collective raises all three alike, a right roll raises the left and lowers the right (0.866 each)."""
    outputs, model = mapper()
    at_rest = ground_state(model, 1)
    up = outputs.command(frame(out1=1600, out2=1600, out3=1600), True, at_rest, 0.001).packed[0]
    collective, lateral, longitudinal = unmix(model.swash, *up[:3])
    assert math.degrees(collective) == pytest.approx(0.2 * 13.0) and lateral == pytest.approx(0.0, abs=1e-12)
    right = outputs.command(frame(out1=1586.6, out2=1413.4, out3=1500), True, at_rest, 0.001).packed[0]
    collective, lateral, longitudinal = unmix(model.swash, *right[:3])
    assert lateral > 0.0 and collective == pytest.approx(0.0, abs=1e-4) and longitudinal == pytest.approx(0, abs=1e-4)
    aft = outputs.command(frame(out1=1550, out2=1550, out3=1400), True, at_rest, 0.001).packed[0]
    collective, lateral, longitudinal = unmix(model.swash, *aft[:3])
    assert longitudinal > 0.0 and lateral == pytest.approx(0.0, abs=1e-12)  # rear down: the disc tilts aft


def test_an_output_without_pulses_leaves_its_servo_where_it_is():
    outputs, model = mapper()
    vehicles = ground_state(model, 1)
    held = outputs.command(frame(out1=0, out2=0, out3=0, out4=0), True, vehicles, 0.001).packed[0, :4]
    assert held == pytest.approx(vehicles.servo_position[0])


def test_the_esc_governor_spins_the_rotor_up_to_the_headspeed_its_setpoint_asks_for():
    outputs, model = mapper("trex450")
    vehicles, dt = ground_state(model, 1), 0.001
    headspeed = outputs.constants.headspeed
    pulse = 1000.0 + 1000.0 * FcOutputs().governor_setpoint
    for _ in range(int(12.0 / dt)):
        command = outputs.command(frame(out8=pulse), True, vehicles, dt)
        vehicles = step(model, vehicles, command, dt)
    assert vehicles.rotor_speed_rad_s[0] == pytest.approx(headspeed, rel=0.02)
    off = outputs.command(frame(out8=1000.0), True, vehicles, dt)
    assert off.throttle[0] == 0.0


def test_a_firmware_that_stopped_sending_holds_its_servos_and_stops_the_motor():
    outputs, model = mapper("trex450")
    vehicles = ground_state(model, 1)
    driven = outputs.command(frame(out1=1700, out8=1700), True, vehicles, 0.001)
    stale = outputs.command(frame(out1=1200, out8=1700), False, vehicles, 0.001)
    assert stale.packed[0, :4] == pytest.approx(driven.packed[0, :4]) and stale.throttle[0] == 0.0


def sensor_model(heli: str = "trex450", **settings: object) -> tuple[SensorModel, FlightModel]:
    model = FlightModel.build(load_heli(heli).params)
    return SensorModel(replace(FcSensors(), **settings), model, seed=7), model


def test_the_accelerometer_reads_specific_force_from_the_step_just_taken():
    sensors, model = sensor_model()
    vehicles = hover_state(model, solve_hover_trim(model), 1, 5.0)
    before = np.array(vehicles.packed[0, StateIndex.VELOCITY])
    command = ActuatorCommand(np.zeros((1, 5)))  # the motor off, zero pitch: it starts to fall
    after = step(model, vehicles, command, 0.001)
    reading = sensors.read(after, before, 0.001, 0.001, np.zeros(3), None)
    accel = (after.packed[0, StateIndex.VELOCITY] - before) / 0.001
    rotation = np.array(rotation_matrix(*after.packed[0, StateIndex.ATTITUDE])).reshape(3, 3)
    expected = rotation.T @ (accel - np.array([0.0, 0.0, model.gravity]))
    assert np.asarray(reading.specific_force_body_m_s2) == pytest.approx(expected)
    assert np.asarray(reading.gyro_rad_s) == pytest.approx(after.packed[0, StateIndex.RATES])
    again = sensors.read(after, before, 0.0, 0.002, np.zeros(3), None)  # no step since: the last step's again
    assert np.asarray(again.specific_force_body_m_s2) == pytest.approx(expected)
    fresh, _ = sensor_model()
    at_rest = fresh.read(ground_state(model, 1), np.zeros(3), 0.0, 0.0, None, None)
    assert np.asarray(at_rest.specific_force_body_m_s2) == pytest.approx([0.0, 0.0, -model.gravity])


def test_sensor_noise_and_bias_are_seeded_and_of_the_size_asked():
    noisy = {"gyro_noise_rad_s": 0.02, "accel_noise_m_s2": 0.3, "gyro_bias_rad_s": (0.01, 0.0, -0.01)}
    first, model = sensor_model(**noisy)
    second, _ = sensor_model(**noisy)
    vehicles = ground_state(model, 1)
    a = np.array([first.read(vehicles, np.zeros(3), 0.0, 0.0, None, None).gyro_rad_s for _ in range(2000)])
    b = np.array([second.read(vehicles, np.zeros(3), 0.0, 0.0, None, None).gyro_rad_s for _ in range(2000)])
    assert np.array_equal(a, b)  # the same seed reads the same noise
    assert a.mean(axis=0) == pytest.approx([0.01, 0.0, -0.01], abs=0.002)
    assert a.std(axis=0) == pytest.approx([0.02] * 3, rel=0.1)


def test_the_rangefinder_reads_along_the_body_down_axis():
    sensors, model = sensor_model(rangefinder=True, rangefinder_max_m=10.0)
    vehicles = hover_state(model, solve_hover_trim(model), 1, 3.0)
    level = vehicles.packed.copy()
    level[0, StateIndex.ATTITUDE] = (1.0, 0.0, 0.0, 0.0)
    height = float(VehicleState(level.copy()).altitude_m[0])
    read = sensors.read(VehicleState(level.copy()), np.zeros(3), 0.0, 0.0, None, None)
    assert read.rangefinder_m == pytest.approx(height)
    rolled = level.copy()
    rolled[0, StateIndex.ATTITUDE] = (math.cos(math.radians(15)), math.sin(math.radians(15)), 0.0, 0.0)
    assert sensors.read(VehicleState(rolled), np.zeros(3), 0.0, 0.0, None, None).rangefinder_m == pytest.approx(
        height / math.cos(math.radians(30))
    )
    high = level.copy()
    high[0, 2] = -50.0
    assert sensors.read(VehicleState(high), np.zeros(3), 0.0, 0.0, None, None).rangefinder_m == 10.0


def test_the_battery_is_read_on_electric_helicopters_only():
    electric, model = sensor_model("trex450")
    assert electric.read(ground_state(model, 1), np.zeros(3), 0.0, 0.0, None, None).battery_v_a is not None
    engine, model = sensor_model("xcell60")
    assert engine.read(ground_state(model, 1), np.zeros(3), 0.0, 0.0, None, None).battery_v_a is None


def test_the_interlock_comes_on_after_the_arm_switch_and_goes_off_in_throttle_hold():
    cmap = ChannelMap()
    radio = FirmwareRadio(FcConfig(protocol="ardupilot-json", interlock_delay_s=1.0, arm_after_s=4.0), cmap, 1)
    frames = neutral_channels(1, cmap)
    assert radio.channels(frames, 0.0)[0, 7] == 1000.0
    frames[0, cmap.arm - 1] = 2000.0
    assert radio.channels(frames, 3.9)[0, 4] == 1000.0  # the firmware is still starting: it could not arm
    assert radio.channels(frames, 5.0)[0, 4] == 2000.0  # then the arm switch passes through on channel 5
    assert radio.channels(frames, 5.9)[0, 7] == 1000.0  # the firmware arms first ...
    assert radio.channels(frames, 6.0)[0, 7] == 2000.0  # ... then the motor may run
    frames[0, cmap.hold_channel - 1] = 2000.0
    assert radio.channels(frames, 6.5)[0, 7] == 1000.0  # throttle hold: interlock off
    frames[0, cmap.hold_channel - 1] = 1000.0
    frames[0, cmap.arm - 1] = 1000.0
    assert radio.channels(frames, 7.0)[0, 7] == 1000.0
    frames[0, cmap.arm - 1] = 2000.0
    assert radio.channels(frames, 7.5)[0, 7] == 1000.0  # armed again: the delay starts again
    stick = neutral_channels(1, cmap)
    stick[0, cmap.collective - 1] = 1730.0
    assert radio.channels(stick, 0.0)[0, 2] == 1730.0  # the collective on the firmware's channel 3


def test_the_frame_counter_wrapping_round_is_the_next_frame_and_going_back_a_restart():
    link = LockstepLink("127.0.0.1", 0, decode=lambda data: FirmwareFrame(0, 1.0 / 1200, ()))
    kinds = [link._classify(FirmwareFrame(count, 1.0 / 1200, ())) for count in (2**32 - 2, 2**32 - 1, 0, 2, 2, 1)]
    assert kinds == ["frame", "frame", "frame", "frame", "repeat", "restart"]
    assert (link.stats.lost, link.stats.repeated, link.stats.restarts) == (1, 1, 1)


def test_a_frame_asking_for_an_impossible_step_is_malformed():
    link = LockstepLink("127.0.0.1", 0, decode=decode)
    link.open()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as firmware:
            for rate in (10, 1200):
                firmware.sendto(encode_servo_frame(ServoFrame(rate, 1, (1500,) * 16)), ("127.0.0.1", link.port))
            kind, frame = link.receive(5.0)
    finally:
        link.close()
    assert kind == "frame" and frame.step_s == pytest.approx(1 / 1200)
    assert link.stats.malformed == 1 and "a frame of 10 Hz" in link.stats.last_error


def test_a_non_finite_sensor_value_is_never_written():
    good = Sensors(1.0, (0, 0, 0), (0, 0, -9.8), (0, 0, 0), (0, 0, 0), (1, 0, 0, 0))
    assert sensor_line(good).startswith(b"\n")
    with pytest.raises(ValueError, match="non-finite"):
        sensor_line(replace(good, gyro_rad_s=(math.nan, 0.0, 0.0)))


@pytest.mark.parametrize(
    ("fc", "says"),
    [({"rc_udp_port": 9002}, "is the port heli-sim listens on"),
     ({"outputs": {"reversed": ["tail", "tail"]}}, "names an output twice"),
     ({"timeout_s": 0.5}, "from 1.2 to 60 s: ArduPilot re-sends")],
)  # fmt: skip
def test_an_fc_table_that_cannot_work_is_refused_in_one_line(fc, says):
    with pytest.raises(ConfigError, match=says):
        build(FlightConfig, {"fc": {"protocol": "ardupilot-json", **fc}}, source="test")
