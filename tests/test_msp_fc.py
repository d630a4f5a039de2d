"""heli-sim answers MSP like a flight controller: identification and state replies.

Each reply the simulator sends (``MspCodec.respond``) is checked two ways: parsed back with
``sim.protocols.msp``'s own parsers (a round trip), and, for the identification, MSP_ALTITUDE,
MSP_ANALOG, MSP_RAW_IMU and MSP_STATUS_EX replies, by a parse written here with ``struct`` from
the layouts of Betaflight's ``src/main/msp/msp.c`` (``mspCommonProcessOutCommand`` and
``mspProcessOutCommand``), so a packer and its parser cannot share a mistake.  Last, yamspy (a
third-party MSP client) connects to a flying simulator over a pty pair, identifies it, sends
sticks and polls state, and its parsed values must be what was sent.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.loop import FlightLoop
from sim.ports.bridge import PtyBridge
from sim.ports.codecs import FlightSnapshot, make_codec
from sim.protocols import msp
from sim.session import flight_session
from tests.conftest import heli
from tests.test_vports import BridgeThread

SNAPSHOT = FlightSnapshot(
    attitude_rad=(0.0, 0.0, 0.5), altitude_m=12.34, climb_m_s=-0.56, armed=True, mode="angle",
    channels_us=(1500.0, 1400.0, 1600.0, 1500.0, 2000.0, 1500.0), battery_voltage_v=22.2,
    body_rates_rad_s=(math.radians(10.0), math.radians(-20.0), math.radians(30.0)),
    servo_positions=(0.5, -0.5, 1.5, 0.0), throttle=0.75, craft_name="trex450",
)  # fmt: skip
ROUND_TRIP = settings(max_examples=200, deadline=None, derandomize=True)
STATE_COMMANDS = (101, 150, 102, 103, 104, 105, 108, 109, 110)  # STATUS(_EX), RAW_IMU .. ANALOG
IDENTIFICATION_COMMANDS = (1, 2, 3, 4, 5)
BUILD_DATE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d{4}$")
BUILD_TIME = re.compile(r"^[0-2]\d:[0-5]\d:[0-5]\d$")


def ask(command: int, snapshot: FlightSnapshot | None = SNAPSHOT, version: int = 1) -> msp.MspMessage:
    """The one reply the simulator's MSP codec sends to an empty request for ``command``."""
    (reply,) = make_codec("msp", "host").respond(msp.MspMessage(version, "<", command, b""), snapshot)
    assert reply.command == command and reply.version == version
    return reply


def payload(command: int, snapshot: FlightSnapshot | None = SNAPSHOT) -> bytes:
    reply = ask(command, snapshot)
    assert reply.direction == ">", f"command {command}: error reply"
    return reply.payload


def pstring(data: bytes, at: int) -> tuple[str, int]:
    """A u8-length-prefixed string at ``at`` and the offset after it."""
    size = data[at]
    return data[at + 1 : at + 1 + size].decode("ascii"), at + 1 + size


def version_numbers() -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in sim.__version__.split(".")[:3])
    return major, minor, patch


# ---------------------------------------------------------------- identification, parsed by hand


def test_api_version_is_protocol_0_api_1_46():
    data = payload(msp.MSP_API_VERSION)
    assert struct.unpack("<BBB", data) == (0, 1, 46)
    assert msp.parse_api_version(data) == msp.MspApiVersion(0, 1, 46)


def test_fc_variant_is_heli_and_the_version_heli_sims():
    assert payload(msp.MSP_FC_VARIANT) == b"HELI"
    assert msp.parse_fc_variant(b"HELI") == "HELI"
    data = payload(msp.MSP_FC_VERSION)
    assert struct.unpack("<BBB", data) == version_numbers()
    assert msp.parse_fc_version(data) == version_numbers()


def test_board_info_has_every_field_of_betaflight_4_5s_layout():
    data = payload(msp.MSP_BOARD_INFO)
    board_id, revision, board_type, capabilities = struct.unpack_from("<4sHBB", data)
    target, at = pstring(data, 8)
    board, at = pstring(data, at)
    manufacturer, at = pstring(data, at)
    signature = data[at : at + 32]
    mcu, config_state, gyro_hz, problems, spi, i2c = struct.unpack_from("<BBHIBB", data, at + 32)
    assert len(data) == at + 32 + 10  # nothing after the I2C device count
    assert (board_id, revision, board_type, capabilities) == (b"HSIM", 0, 0, 0)
    assert (target, board, manufacturer) == ("HELI-SIM", "HELI-SIM", "")
    assert signature == bytes(32)
    assert (mcu, config_state, gyro_hz, problems, spi, i2c) == (0, 1, 0, 0, 0, 0)
    parsed = msp.parse_board_info(data)
    assert (parsed.board_id, parsed.target_name, parsed.board_name, parsed.mcu_type) == ("HSIM", target, board, 0)
    assert msp.board_info_payload(parsed) == data


def test_build_info_is_date_time_and_revision():
    data = payload(msp.MSP_BUILD_INFO)
    assert len(data) == 11 + 8 + 7
    date, time_of_day, revision = (part.decode("ascii") for part in struct.unpack("<11s8s7s", data))
    assert BUILD_DATE.match(date) and BUILD_TIME.match(time_of_day), (date, time_of_day)
    assert revision == "0000000"
    assert msp.parse_build_info(data) == msp.MspBuildInfo(date, time_of_day, revision)


def test_name_is_the_craft_name_and_empty_before_the_first_snapshot():
    assert payload(msp.MSP_NAME) == b"trex450"
    assert payload(msp.MSP_NAME, None) == b""
    long_name = replace(SNAPSHOT, craft_name="Align T-Rex 450 Pro V2 (modified)")
    assert payload(msp.MSP_NAME, long_name) == b"Align T-Rex 450 "  # Betaflight's 16 characters
    assert payload(msp.MSP_NAME, replace(SNAPSHOT, craft_name="Höhe")) == b"H?he"  # ASCII only
    assert msp.parse_name(b"trex450") == "trex450"


@pytest.mark.parametrize("command", IDENTIFICATION_COMMANDS)
@pytest.mark.parametrize("version", [1, 2])
def test_identification_needs_no_snapshot_and_answers_in_the_requests_version(command, version):
    assert ask(command, None, version).payload == ask(command, SNAPSHOT, version).payload
    assert ask(command, None, version).direction == ">"


# ---------------------------------------------------------------- state, parsed by hand


def test_altitude_is_cm_and_cm_per_s():
    data = payload(msp.MSP_ALTITUDE)
    assert struct.unpack("<ih", data) == (1234, -56)
    assert msp.parse_altitude(data) == msp.MspAltitude(12.34, -0.56)


def test_analog_is_betaflights_nine_bytes():
    data = payload(msp.MSP_ANALOG)
    legacy_dv, mah, rssi, centi_amps, centi_volts = struct.unpack("<BHHhH", data)
    assert (legacy_dv, mah, rssi, centi_amps, centi_volts) == (222, 0, 0, 0, 2220)
    assert msp.parse_analog(data) == msp.MspAnalog(22.2, 0, 0, 0.0, 22.2)
    nitro = payload(msp.MSP_ANALOG, replace(SNAPSHOT, battery_voltage_v=0.0))
    assert nitro == bytes(9)


def test_raw_imu_gyro_in_deg_s_and_acc_in_512ths_of_g_in_betaflights_axes():
    data = payload(msp.MSP_RAW_IMU)
    values = struct.unpack("<9h", data)
    assert values[0:3] == (0, 0, 512)  # level: +1 g on z (up)
    assert values[3:6] == (10, 20, -30)  # p; q and r change sign (y left, z up)
    assert values[6:9] == (0, 0, 0)  # no magnetometer
    parsed = msp.parse_raw_imu(data)
    assert parsed == msp.MspRawImu((0.0, 0.0, 1.0), (10, 20, -30), (0, 0, 0))


@pytest.mark.parametrize(
    ("roll_deg", "pitch_deg", "expected"),
    [
        (90.0, 0.0, (0, 512, 0)),  # right wing down: "up" is to the left, +y
        (-90.0, 0.0, (0, -512, 0)),
        (0.0, 30.0, (256, 0, 443)),  # nose up 30 deg: up has a forward part, sin 30 = 1/2
        (180.0, 0.0, (0, 0, -512)),  # inverted
    ],
)
def test_raw_imu_accelerometer_reads_gravitys_reaction_for_the_attitude(roll_deg, pitch_deg, expected):
    attitude = (math.radians(roll_deg), math.radians(pitch_deg), 1.0)
    data = payload(msp.MSP_RAW_IMU, replace(SNAPSHOT, attitude_rad=attitude))
    assert struct.unpack_from("<3h", data) == expected


def test_status_ex_is_betaflights_layout_at_api_1_46():
    data = payload(msp.MSP_STATUS_EX)
    cycle, i2c, sensors, modes, profile, load, profiles, rate_profile, extra = struct.unpack_from("<HHHIBHBBB", data)
    assert (cycle, i2c, sensors, modes, profile) == (2000, 0, 0x21, 1, 0)  # acc + gyro; armed: the ARM box
    assert (load, profiles, rate_profile, extra) == (0, 1, 0, 0)
    arming_count, arming_flags, config_state, cpu_temp = struct.unpack_from("<BIBH", data, 16)
    assert (arming_count, arming_flags, config_state, cpu_temp) == (0, 0, 0, 0)
    assert len(data) == 16 + 8
    assert data[:11] == payload(msp.MSP_STATUS)  # MSP_STATUS's classic 11 bytes come first
    disarmed = msp.parse_status_ex(payload(msp.MSP_STATUS_EX, replace(SNAPSHOT, armed=False)))
    assert disarmed.flight_mode_flags == 0
    assert msp.parse_status_ex(data) == msp.MspStatusEx(2000, 0, 0x21, 1, 0)


def test_servo_and_motor_outputs_in_us():
    servos = struct.unpack("<8H", payload(msp.MSP_SERVO))
    assert servos == (1750, 1250, 2000, 1500, 1500, 1500, 1500, 1500)  # full throw clamped; unused centred
    assert msp.parse_servo(payload(msp.MSP_SERVO)) == servos
    motors = struct.unpack("<8H", payload(msp.MSP_MOTOR))
    assert motors == (1750, 0, 0, 0, 0, 0, 0, 0)  # the drive; no motor on the others
    assert msp.parse_motor(payload(msp.MSP_MOTOR)) == motors


def test_status_attitude_and_rc_are_kept():
    assert msp.parse_status(payload(msp.MSP_STATUS)) == msp.MspStatus(2000, 0, 0x21, 1, 0)
    attitude = msp.parse_attitude(payload(msp.MSP_ATTITUDE, replace(SNAPSHOT, attitude_rad=(0.1, 0.2, -0.5))))
    assert attitude == msp.MspAttitude(5.7, -11.5, 331.0)  # pitch nose down positive; heading 0..359
    assert msp.parse_raw_rc(payload(msp.MSP_RC)).channels_us == SNAPSHOT.channels_us
    assert payload(msp.MSP_SET_RAW_RC) == b""


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("command", STATE_COMMANDS)
def test_state_replies_are_error_replies_before_the_first_snapshot(command):
    reply = ask(command, None)
    assert (reply.direction, reply.payload) == ("!", b"")


@pytest.mark.parametrize(("version", "command"), [(1, 160), (1, 240), (1, 0), (1, 254), (2, 0x3000), (2, 0x1001)])
def test_unknown_commands_get_the_error_reply(version, command):
    reply = ask(command, SNAPSHOT, version)
    assert (reply.direction, reply.payload) == ("!", b"")


def test_a_value_that_cannot_be_sent_gets_the_error_reply_not_an_exception():
    broken = replace(SNAPSHOT, attitude_rad=(math.nan, 0.0, 0.0), altitude_m=math.inf, battery_voltage_v=math.nan)
    for command in (msp.MSP_ATTITUDE, msp.MSP_RAW_IMU, msp.MSP_ALTITUDE, msp.MSP_ANALOG):
        assert ask(command, broken).direction == "!"
    assert ask(msp.MSP_RC, broken).direction == ">"  # the rest still answers


def test_the_far_end_and_replies_are_not_answered():
    device = make_codec("msp", "device")
    assert device.respond(msp.MspMessage(1, "<", msp.MSP_API_VERSION, b""), SNAPSHOT) == []
    host = make_codec("msp", "host")
    assert host.respond(msp.MspMessage(1, ">", msp.MSP_API_VERSION, b""), SNAPSHOT) == []


def test_packers_reject_what_does_not_fit():
    with pytest.raises(ValueError, match="4 characters"):
        msp.fc_variant_payload("HELIX")
    with pytest.raises(ValueError, match="not ASCII"):
        msp.board_info_payload(msp.MspBoardInfo("HÉLI"))
    with pytest.raises(ValueError, match="32 bytes"):
        msp.board_info_payload(msp.MspBoardInfo("HSIM", signature=b"short"))
    with pytest.raises(ValueError, match="11 characters"):
        msp.build_info_payload("Mar 4 2024", "12:33:47", "abcdef0")
    with pytest.raises(ValueError, match="longer than 16"):
        msp.name_payload("x" * 17)
    with pytest.raises(ValueError, match="cannot pack"):
        msp.api_version_payload(0, 1, 256)
    with pytest.raises(ValueError, match="15 more"):
        msp.status_ex_payload(msp.MspStatusEx(0, 0, 0, 0, 0, more_flight_mode_flags=bytes(16)))
    with pytest.raises(ValueError, match="not finite"):
        msp.altitude_payload(math.nan, 0.0)
    with pytest.raises(ValueError, match="expected 3"):
        msp.raw_imu_payload((0.0, 0.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="expected 8"):
        msp.servo_payload([1500.0] * 7)


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (msp.parse_api_version, b"\x00\x01"),
        (msp.parse_fc_variant, b"HEL"),
        (msp.parse_fc_version, b"\x00\x01"),
        (msp.parse_board_info, b"HSIM\x00\x00"),
        (msp.parse_board_info, b"HSIM\x00\x00\x00\x00\x05HEL"),  # a target name cut short
        (msp.parse_build_info, bytes(25)),
        (msp.parse_status_ex, bytes(23)),
        (msp.parse_altitude, bytes(5)),
        (msp.parse_raw_imu, bytes(17)),
        (msp.parse_analog, bytes(8)),
        (msp.parse_servo, bytes(15)),
        (msp.parse_motor, bytes(3)),
    ],
)
def test_parsers_reject_short_payloads(parse, data):
    with pytest.raises(msp.PayloadError):
        parse(data)


def test_parse_board_info_takes_the_legacy_layout_and_every_longer_prefix():
    legacy = msp.parse_board_info(b"OBSD\x02\x00\x00")
    assert legacy == msp.MspBoardInfo("OBSD", hardware_revision=2)
    with_target = msp.parse_board_info(b"OBSD\x02\x00\x00\x01\x04F405")
    assert (with_target.capabilities, with_target.target_name, with_target.board_name) == (1, "F405", "")


# ---------------------------------------------------------------- round trips

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@ROUND_TRIP
@given(st.floats(-2e7, 2e7), st.floats(-300.0, 300.0))
def test_altitude_round_trips_to_its_resolution(altitude_m, climb_m_s):
    parsed = msp.parse_altitude(msp.altitude_payload(altitude_m, climb_m_s))
    assert parsed.altitude_m == pytest.approx(altitude_m, abs=0.005 + 1e-9)
    assert parsed.climb_m_s == pytest.approx(climb_m_s, abs=0.005 + 1e-9)


@ROUND_TRIP
@given(finite, finite)
def test_altitude_saturates_any_finite_value(altitude_m, climb_m_s):
    altitude_cm, climb_cm_s = struct.unpack("<ih", msp.altitude_payload(altitude_m, climb_m_s))
    assert altitude_cm == max(-(2**31), min(2**31 - 1, round(altitude_m * 100.0)))
    assert climb_cm_s == max(-0x8000, min(0x7FFF, round(climb_m_s * 100.0)))


@ROUND_TRIP
@given(st.lists(st.floats(-60.0, 60.0), min_size=3, max_size=3), st.lists(st.floats(-3e3, 3e3), min_size=3, max_size=3))
def test_raw_imu_round_trips_to_its_resolution(acc_g, gyro_deg_s):
    parsed = msp.parse_raw_imu(msp.raw_imu_payload(acc_g, gyro_deg_s, (1, -2, 3)))
    for got, sent in zip(parsed.acc_g, acc_g, strict=True):
        assert got == pytest.approx(sent, abs=0.5 / msp.ACC_LSB_PER_G + 1e-12)
    for got, sent in zip(parsed.gyro_deg_s, gyro_deg_s, strict=True):
        assert abs(got - sent) <= 0.5
    assert parsed.mag == (1, -2, 3)


@ROUND_TRIP
@given(st.floats(0.0, 25.5), st.integers(0, 0xFFFF), st.integers(0, 1023), st.floats(-327.68, 327.67))
def test_analog_round_trips_to_its_resolution(voltage_v, mah, rssi, current_a):
    parsed = msp.parse_analog(msp.analog_payload(voltage_v, mah, rssi, current_a))
    assert parsed.voltage_v == pytest.approx(voltage_v, abs=0.005 + 1e-9)
    assert parsed.legacy_voltage_v == pytest.approx(voltage_v, abs=0.05 + 1e-9)
    assert (parsed.mah_drawn, parsed.rssi) == (mah, rssi)
    assert parsed.current_a == pytest.approx(current_a, abs=0.005 + 1e-9)


def test_analog_saturates_like_betaflights_constrain():
    parsed = msp.parse_analog(msp.analog_payload(700.0, 1e6, 5000, -1e4))
    assert (parsed.legacy_voltage_v, parsed.voltage_v, parsed.mah_drawn, parsed.rssi) == (25.5, 655.35, 65535, 1023)
    assert parsed.current_a == -327.68


text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


@ROUND_TRIP
@given(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=4, max_size=4),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    text,
    text,
    text,
    st.binary(min_size=32, max_size=32),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
)
def test_board_info_round_trips(board_id, revision, board_type, caps, target, board, maker, signature, rate, problems):
    info = msp.MspBoardInfo(
        board_id, revision, board_type, caps, target, board, maker, signature, 7, 1, rate, problems, 2, 3
    )
    assert msp.parse_board_info(msp.board_info_payload(info)) == info


@ROUND_TRIP
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFF),
    st.binary(max_size=15),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.binary(max_size=10),
)
def test_status_ex_round_trips(cycle, modes, profile, more_modes, arming, cpu_temp, extension):
    status = msp.MspStatusEx(cycle, 1, 0x21, modes, profile, 37, 4, 2, more_modes, 26, arming, 1, cpu_temp, extension)
    assert msp.parse_status_ex(msp.status_ex_payload(status)) == status


@ROUND_TRIP
@given(st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8))
def test_servo_and_motor_round_trip(values):
    assert msp.parse_servo(msp.servo_payload(values)) == tuple(values)
    assert msp.parse_motor(msp.motor_payload(values)) == tuple(values)


@ROUND_TRIP
@given(st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=16), text, text, st.binary(max_size=8))
def test_texts_round_trip(name, date, revision, options):
    assert msp.parse_name(msp.name_payload(name)) == name
    date, revision = date.ljust(11)[:11], revision.ljust(7, "0")[:7]
    payload = msp.build_info_payload(date, "12:33:47", revision, options)
    assert msp.parse_build_info(payload) == msp.MspBuildInfo(date, "12:33:47", revision, options)


# ---------------------------------------------------------------- yamspy against a flying simulator

STICKS = [1500, 1450, 1550, 1500, 2000, 1500, 1500, 1500]  # roll, pitch, collective, yaw, arm, mode, aux
YAMSPY_TIMEOUT_S = 20.0  # the client's whole session; it normally takes well under 2 s

# yamspy's blocking reads loop until a '$' comes (a silent port would hang it): it runs in a child
# process, which the test kills if it overstays
YAMSPY_CLIENT = r"""
import json, sys, time
from yamspy import MSPy

sticks = json.loads(sys.argv[2])
with MSPy(device=sys.argv[1], logfilename=None, loglevel="WARNING") as board:
    if board == 1:
        sys.exit("yamspy could not open " + sys.argv[1])
    identification = dict(board.CONFIG)  # connect() asked API version, variant, version, board, build, name, status
    polls = 0
    for polls in range(1, 200):
        board.fast_msp_rc_cmd(sticks)  # MSP_SET_RAW_RC, then reads the 6-byte empty ack
        for name in ("MSP_ATTITUDE", "MSP_RC", "MSP_ALTITUDE", "MSP_ANALOG", "MSP_RAW_IMU", "MSP_STATUS_EX"):
            if board.send_RAW_msg(MSPy.MSPCodes[name], data=[]):
                board.process_recv_data(board.receive_msg())
        if board.RC["channels"][: len(sticks)] == sticks:
            break
        time.sleep(0.02)
    result = {"config": identification, "status": dict(board.CONFIG), "polls": polls,
              "rc": board.RC["channels"][: board.RC["active_channels"]],
              "sensors": board.SENSOR_DATA, "analog": board.ANALOG}
print("RESULT " + json.dumps(result, default=str))
"""


def fly_with_yamspy(script: str, *args: str, start_at_s: float = 0.0, on_tick=None) -> tuple[FlightLoop, dict]:
    """A hovering trex450 whose rc-in speaks MSP on a pty pair, and yamspy running ``script`` on its
    other end from ``start_at_s`` of flight until it exits (killed after YAMSPY_TIMEOUT_S); the
    loop and the client's RESULT.  ``on_tick(loop)`` runs every tick while it runs."""
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=YAMSPY_TIMEOUT_S + 5.0)
    with PtyBridge(1) as bridge, BridgeThread(bridge):
        pair = bridge.paths[0]
        config = replace(config, ports=(PortSpec(role="rc-in", url=pair.a, protocol="msp"),))
        client: list[subprocess.Popen] = []

        def run_client(loop) -> None:
            if client and on_tick is not None:
                on_tick(loop)
            if not client and loop.flight_time_s >= start_at_s:
                command = [sys.executable, "-P", "-c", script, pair.b, *args]
                client.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            elif client and client[0].poll() is not None:
                loop.request_stop("yamspy done")
            elif client and loop.flight_time_s >= YAMSPY_TIMEOUT_S:
                client[0].kill()
                loop.request_stop("yamspy hung")

        try:
            with flight_session(config, heli("trex450").config, before_tick=run_client) as loop:
                loop.run()
        finally:
            if client and client[0].poll() is None:
                client[0].kill()
            out, err = client[0].communicate(timeout=10) if client else (b"", b"")
    assert loop.summary()["stop_reason"] == "yamspy done", err.decode(errors="replace")[-2000:]
    (line,) = [line for line in out.decode().splitlines() if line.startswith("RESULT ")]
    return loop, json.loads(line.removeprefix("RESULT "))


def test_yamspy_identifies_the_simulator_sends_sticks_and_reads_its_state():
    pytest.importorskip("yamspy", reason="yamspy (the third-party MSP client this test drives) is not installed")
    flown: list[tuple[float, float, float, float]] = []  # attitude (deg) and altitude (m) while yamspy polls

    def record(loop) -> None:
        euler = loop.flight.vehicles.euler_deg()[0]
        flown.append((*euler.tolist(), float(loop.flight.vehicles.altitude_m[0])))

    # from 0.2 s: the flight's first snapshots are out
    _loop, result = fly_with_yamspy(YAMSPY_CLIENT, json.dumps(STICKS), start_at_s=0.2, on_tick=record)

    identification = result["config"]
    assert identification["apiVersion"] == "1.46.0" and identification["mspProtocolVersion"] == 0
    assert identification["flightControllerIdentifier"] == "HELI"
    assert identification["flightControllerVersion"] == ".".join(str(n) for n in version_numbers())
    assert (identification["boardIdentifier"], identification["boardVersion"]) == ("HSIM", 0)
    assert (identification["targetName"], identification["boardName"], identification["mcuTypeId"]) == (
        "HELI-SIM",
        "HELI-SIM",
        0,
    )
    date, time_of_day = identification["buildInfo"][:11], identification["buildInfo"][12:]
    assert BUILD_DATE.match(date) and BUILD_TIME.match(time_of_day), identification["buildInfo"]
    assert identification["name"] == "trex450"
    assert (identification["cycleTime"], identification["activeSensors"], identification["numProfiles"]) == (
        2000,
        0x21,
        1,
    )

    assert result["rc"][: len(STICKS)] == STICKS  # MSP_RC: the sticks yamspy sent came back
    roll, pitch, yaw = result["sensors"]["kinematics"]

    # what yamspy read is what the helicopter was doing at some tick while it polled (the flight
    # flies on while yamspy exits: on a busy machine for a second), within MSP's resolution: roll
    # and pitch 0.1 deg, Betaflight's pitch positive nose down; yaw a whole-degree heading
    def matches(sample: tuple[float, float, float, float]) -> bool:
        r, p, y, altitude = sample
        heading_error = (yaw - y % 360.0 + 180.0) % 360.0 - 180.0
        return (
            abs(roll - r) <= 0.3
            and abs(pitch + p) <= 0.3
            and abs(heading_error) <= 1.0
            and (abs(result["sensors"]["altitude"] - altitude) <= 0.1)
        )

    assert any(matches(sample) for sample in flown), (roll, pitch, yaw, flown[-1])
    assert result["analog"]["voltage"] == pytest.approx(heli("trex450").config.params.drive.battery_voltage_v)
    assert result["sensors"]["accelerometer"][2] > 0.9 * msp.ACC_LSB_PER_G  # hovering about level: ~+1 g on z
    assert result["status"]["armingDisableCount"] == 0 and result["status"]["armingDisableFlags"] == 0


# yamspy flying the helicopter: MSP_SET_RAW_RC at 100 Hz, MSP_ATTITUDE and MSP_RC polled at 50 Hz
YAMSPY_PILOT = r"""
import json, sys, time
from yamspy import MSPy

sticks, seconds = json.loads(sys.argv[2]), float(sys.argv[3])
with MSPy(device=sys.argv[1], logfilename=None, loglevel="WARNING") as board:
    if board == 1:
        sys.exit("yamspy could not open " + sys.argv[1])
    start = last = time.monotonic()
    sends = polls = 0
    longest_gap = 0.0
    while (now := time.monotonic()) < start + seconds:
        board.fast_msp_rc_cmd(sticks)
        sends += 1
        longest_gap, last = max(longest_gap, now - last), now
        if sends % 2 == 0:
            for name in ("MSP_ATTITUDE", "MSP_RC"):
                if board.send_RAW_msg(MSPy.MSPCodes[name], data=[]):
                    board.process_recv_data(board.receive_msg())
                    polls += 1
        time.sleep(max(0.0, start + sends * 0.01 - time.monotonic()))
print("RESULT " + json.dumps({"sends": sends, "polls": polls, "longest_gap_s": longest_gap,
                              "rc": board.RC["channels"][: len(sticks)]}))
"""


def test_yamspy_flies_at_100_hz_and_polls_at_50_hz_without_a_failsafe():
    pytest.importorskip("yamspy", reason="yamspy (the third-party MSP client this test drives) is not installed")
    loop, result = fly_with_yamspy(YAMSPY_PILOT, json.dumps(STICKS), "3")
    summary = loop.summary()
    assert result["rc"] == STICKS and result["sends"] >= 150 and result["polls"] >= result["sends"] - 2
    (rc,) = summary["ports"]
    assert rc["stick_frames"] >= result["sends"] - 2 and rc["decode_errors"] == 0
    # the replies never held the sticks up: once flying, no failsafe, unless yamspy itself paused
    # for the failsafe timeout (a busy machine can hold a process up that long)
    failsafes = [e for e in summary["events"] if e["kind"] == "failsafe_on" and "since the start" not in e["detail"]]
    if result["longest_gap_s"] < 0.8 * loop.flight.config.flight.failsafe_timeout_s:
        assert failsafes == [], (failsafes, result)


def test_the_msp_benchmark_identifies_and_times_every_reply():
    from sim.bench.msp import _one_flight

    figures, _failsafes = _one_flight("threaded", 1.0)
    # six identification requests answered, then a reply for every poll (not how fast: a benchmark)
    assert figures["identified_s"] > 0 and figures["lost"] == 0 and len(figures["replies_s"]) >= 40
    assert all(reply > 0 for reply in figures["replies_s"])
