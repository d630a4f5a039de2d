"""A ground station commands and tunes the flight: pymavlink's ``mavutil`` over a socat pair, as
MAVProxy does it, against a real ``heli-sim fly``.  Parameters list, read and set (live, in the
log, replayed exactly); arm, disarm and flight mode as the transmitter's switches; requests
answered (REQUEST_MESSAGE, SET_MESSAGE_INTERVAL, missions, FTP), unsupported commands refused."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from heli.state import StateIndex
from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.ground_control import parse_param_set
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.protocols.mavlink_params import PARAM_IDS, ParamTable
from sim.session import flight_session
from tests.conftest import heli
from tests.test_port_errors import pty_pair
from tests.test_ports import needs_socat, socat_pair

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 20.0


def test_every_controller_parameter_has_a_short_unique_mavlink_id():
    from dataclasses import fields

    from heli.control import ControllerParams

    assert sorted(PARAM_IDS.values()) == sorted(f.name for f in fields(ControllerParams))
    assert all(len(param_id) <= 16 and param_id.isupper() for param_id in PARAM_IDS)
    table = ParamTable()
    rll_p = table.by_id["RLL_P"]
    assert (rll_p.low, rll_p.high, rll_p.unit) == (0.0, 1.0, "rad/(rad/s)")
    assert rll_p.refusal(0.5) is None and "expected >= 0 and <= 1" in rll_p.refusal(2.0)
    assert table.by_id["D_CUTOFF"].refusal(0.0) is not None  # > 0: a cutoff of 0 Hz is no filter


def test_a_param_set_event_reads_back_exactly():
    detail = "RLL_P = 0.020000000298023224 (roll_p_s, was 0.012) from tick 1571"
    assert parse_param_set(detail) == ("roll_p_s", 0.020000000298023224, 1571)
    assert parse_param_set("RLL_P = 0.02 refused: out of range") is None


def recv(gcs, kind: str, condition=lambda m: True):
    """The next ``kind`` message that meets ``condition`` (None after WAIT_S)."""
    while True:
        message = gcs.recv_match(type=kind, blocking=True, timeout=WAIT_S)
        if message is None or condition(message):
            return message


def command(gcs, number: int, *params: float):
    params = (list(params) + [0.0] * 7)[:7]
    gcs.mav.command_long_send(1, 1, number, 0, *params)
    return recv(gcs, "COMMAND_ACK", lambda m: m.command == number)


@needs_socat
def test_a_ground_station_lists_sets_arms_disarms_and_changes_mode(tmp_path):
    stats, log = tmp_path / "run.json", tmp_path / "flight.hslog"
    with socat_pair(tmp_path) as (ours, theirs, _socat):
        flight = subprocess.Popen([sys.executable, "-m", "sim", "fly", "--headless", "--quiet", "--no-ports",
                                   "--telemetry", ours, "--telemetry-protocol", "mavlink", "--start", "hover",
                                   "--stats-json", str(stats), "--log", str(log)],
                                  cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
        gcs = mavutil.mavlink_connection(theirs, baud=57600, source_system=255)
        try:
            assert gcs.wait_heartbeat(timeout=WAIT_S) is not None
            # the whole parameter list, once (no re-requests needed)
            gcs.mav.param_request_list_send(1, 1)
            values = {}
            while len(values) < len(PARAM_IDS):
                value = recv(gcs, "PARAM_VALUE")
                assert value is not None, f"{len(values)} of {len(PARAM_IDS)} parameters came"
                values[value.param_id] = value
            tuned_before = heli("xcell60").config.controller.roll_p_s  # the default helicopter's
            assert values["RLL_P"].param_count == len(PARAM_IDS)
            assert values["RLL_P"].param_value == pytest.approx(tuned_before, rel=1e-6)
            # a set: answered with the new value, applied live
            gcs.mav.param_set_send(1, 1, b"RLL_P", 0.02, mavlink2.MAV_PARAM_TYPE_REAL32)
            answer = recv(gcs, "PARAM_VALUE", lambda m: m.param_id == "RLL_P")
            assert answer.param_value == pytest.approx(0.02, rel=1e-6)
            # out of range: the value it has, and why
            gcs.mav.param_set_send(1, 1, b"RLL_P", 5.0, mavlink2.MAV_PARAM_TYPE_REAL32)
            assert recv(gcs, "PARAM_VALUE", lambda m: m.param_id == "RLL_P").param_value == pytest.approx(0.02)
            assert "RLL_P = 5" in recv(gcs, "STATUSTEXT").text
            # a flight mode, as the mode switch: ACRO is rate
            ack = command(gcs, mavlink2.MAV_CMD_DO_SET_MODE, mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 1)
            assert ack.result == mavlink2.MAV_RESULT_ACCEPTED
            assert recv(gcs, "HEARTBEAT", lambda m: m.custom_mode == 1) is not None
            # requests a ground station makes while connecting
            ack = command(gcs, mavlink2.MAV_CMD_REQUEST_MESSAGE, mavlink2.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
            assert ack.result == mavlink2.MAV_RESULT_ACCEPTED and recv(gcs, "AUTOPILOT_VERSION") is not None
            ack = command(gcs, mavlink2.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink2.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, 1e5)
            assert ack.result == mavlink2.MAV_RESULT_ACCEPTED
            quaternion = recv(gcs, "ATTITUDE_QUATERNION")
            assert quaternion is not None
            norm = quaternion.q1**2 + quaternion.q2**2 + quaternion.q3**2 + quaternion.q4**2
            assert norm == pytest.approx(1.0, abs=1e-5)
            gcs.mav.mission_request_list_send(1, 1)
            assert recv(gcs, "MISSION_COUNT").count == 0
            gcs.mav.file_transfer_protocol_send(0, 1, 1, [0, 0, 0, 3] + [0] * 247)  # FTP ListDirectory
            nak = recv(gcs, "FILE_TRANSFER_PROTOCOL")
            assert nak is not None and nak.payload[3] == 129 and nak.payload[5] == 3  # NAK of ListDirectory
            ack = command(gcs, mavlink2.MAV_CMD_NAV_TAKEOFF)
            assert ack.result == mavlink2.MAV_RESULT_UNSUPPORTED
            # disarm, as the arm switch: the governor lets go
            ack = command(gcs, mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, 0)
            assert ack.result == mavlink2.MAV_RESULT_ACCEPTED
            assert recv(gcs, "HEARTBEAT", lambda m: not m.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED) is not None
        finally:
            gcs.close()
            flight.send_signal(signal.SIGINT)
            _, stderr = flight.communicate(timeout=60)
    assert flight.returncode == 130, stderr
    events = json.loads(stats.read_text())["events"]
    commands = [e["detail"] for e in events if e["kind"] == "gcs_command"]
    assert commands == ["mode rate: accepted (vehicle 0, as the transmitter's switch)",
                        "disarm: accepted (vehicle 0, as the transmitter's switch)"]  # fmt: skip
    (tuned,) = [e["detail"] for e in events if e["kind"] == "param_set"]
    was = heli("xcell60").config.controller.roll_p_s
    assert tuned.startswith(f"RLL_P = 0.019999999552965164 (roll_p_s, was {was!r}) from tick ")
    # the log replays the flight exactly: the parameter set at its tick, the switches in the frames
    replay = Replay(read_log(str(log)))
    replay.run()
    assert replay.difference is None


def test_a_roll_gain_set_from_a_ground_station_changes_the_flight_at_once_and_setting_it_back_recovers():
    """A tuner's mistake, live: RLL_P from its tune to 1.0 (the top of its range) over MAVLink makes
    the hovering helicopter's roll oscillate at once; set back, it settles.  Judged on the roll rate
    in simulated-time windows, against the same flight before the set."""
    default = heli("xcell60").config.controller.roll_p_s
    config = apply_overrides(FlightConfig(), heli="xcell60", start="hover", duration_s=30.0)
    sender = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    rates: list[tuple[float, float]] = []  # (simulated s, roll rate rad/s)
    sets: list[float] = []  # when each set was applied (simulated s)
    sent: list[float] = []  # the values sent, in order
    with pty_pair() as (ground_station, path):
        config = replace(config, ports=(PortSpec(role="telemetry", url=path, protocol="mavlink"),))

        def send(value: float) -> None:
            sent.append(value)
            message = mavlink2.MAVLink_param_set_message(1, 1, b"RLL_P", value, mavlink2.MAV_PARAM_TYPE_REAL32)
            os.write(ground_station, message.pack(sender))

        def tune(loop) -> None:
            with contextlib.suppress(BlockingIOError):
                os.read(ground_station, 65536)  # the telemetry that came: a ground station reads it
            t = loop.flight.sim_time_s
            rates.append((t, float(loop.flight.vehicles.packed[0, StateIndex.RATES][0])))
            applied = [e for e in loop.events if e.kind == "param_set"]
            if len(applied) > len(sets):
                sets.append(t)
            elif not sent and t >= 1.0:
                send(1.0)
            elif len(sets) == 1 and len(sent) == 1 and t >= sets[0] + 0.5:
                send(default)
            elif len(sets) == 2 and t >= sets[1] + 2.0:
                loop.request_stop("tuned and back")

        with flight_session(config, heli("xcell60").config, before_tick=tune) as loop:
            loop.run()
    assert loop.summary()["stop_reason"] == "tuned and back"
    times, roll_rates = np.array(rates).T

    def spread(start: float, end: float) -> float:
        return float(roll_rates[(times >= start) & (times < end)].std())

    before, tuned_up = spread(0.5, 1.0), spread(sets[0] + 0.25, sets[0] + 0.5)
    settled = spread(sets[1] + 1.5, sets[1] + 2.0)
    assert tuned_up > 100 * before, (before, tuned_up)  # measured: 2e-4 rad/s, then 0.34 rad/s
    assert settled < tuned_up / 10, (tuned_up, settled)
    assert not loop.flight.vehicles.crashed[0]


def parsed(message) -> object:
    """``message`` as it arrives from a ground station (system 255): packed and parsed by pymavlink."""
    sender = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    receiver = mavlink2.MAVLink(None)
    (back,) = receiver.parse_buffer(message.pack(sender))
    return back


def test_rc_channels_override_flies_vehicle_0_only_where_the_flight_file_allows_it():
    from heli.control import ControllerParams
    from sim.config import ChannelMap
    from sim.ground_control import GroundControl
    from sim.protocols.mavlink import TelemetryEncoder
    from sim.protocols.mavlink_fc import GroundStationLink

    override = parsed(mavlink2.MAVLink_rc_channels_override_message(1, 1, 1500, 1500, 1800, 0, 2000, 65535, 0, 0))
    closed = GroundStationLink(ControllerParams(), TelemetryEncoder())  # the default: not allowed
    assert closed.on_message(override) is False  # read and counted, not flown
    link = GroundStationLink(ControllerParams(), TelemetryEncoder(), rc_override=True)
    now = [100.0]
    recorded = []
    control = GroundControl(link, ChannelMap(), lambda kind, detail: recorded.append(detail), 0.25, lambda: now[0])
    frames, fresh = np.full((2, 16), 1500.0), np.array([False, False])
    frames[0, 3] = 1400.0  # the pilot's yaw: released by the station's 0, left to the pilot
    assert control.apply(frames, fresh, None)[0] is frames  # nothing yet
    link.on_message(override)
    link.override = (now[0], link.override[1])  # read "now" on the test's clock
    flown, flown_fresh = control.apply(frames, fresh, None)
    assert list(flown[0, :6]) == [1500.0, 1500.0, 1800.0, 1400.0, 2000.0, 1500.0] and flown_fresh.tolist() == [
        True,
        False,
    ]
    assert list(flown[1]) == list(frames[1]) and frames[0, 2] == 1500.0  # vehicle 1, and the pilot's array, untouched
    now[0] += 0.3  # no override for longer than the failsafe timeout: released
    released, released_fresh = control.apply(frames, fresh, None)
    assert released is frames and not released_fresh[0]
    assert recorded == ["RC_CHANNELS_OVERRIDE flies vehicle 0", "RC_CHANNELS_OVERRIDE released vehicle 0"]


def link_and_replies(**options):
    from heli.control import ControllerParams
    from sim.protocols.mavlink import TelemetryEncoder
    from sim.protocols.mavlink_fc import GroundStationLink

    return GroundStationLink(ControllerParams(), TelemetryEncoder(), **options)


def test_commands_with_fields_no_sender_should_send_are_denied_and_the_rest_still_answered():
    link = link_and_replies()
    nan = float("nan")
    for bad in (
        mavlink2.MAVLink_command_long_message(1, 1, mavlink2.MAV_CMD_REQUEST_MESSAGE, 0, nan, 0, 0, 0, 0, 0, 0),
        mavlink2.MAVLink_command_long_message(1, 1, mavlink2.MAV_CMD_DO_SET_MODE, 0, 1, float("inf"), 0, 0, 0, 0, 0),
        mavlink2.MAVLink_command_int_message(
            1, 1, 0, mavlink2.MAV_CMD_SET_MESSAGE_INTERVAL, 0, 0, 30, nan, 0, 0, 0, 0, 0
        ),
    ):
        assert link.on_message(parsed(bad)) is True  # answered, not raised
    link.on_message(parsed(mavlink2.MAVLink_param_request_read_message(1, 1, b"RLL_P", -1)))
    replies = link.take_outgoing()
    acks = [m.result for m in replies if m.get_type() == "COMMAND_ACK"]
    assert acks == [mavlink2.MAV_RESULT_DENIED] * 3 and link.rejected == 3
    assert [m.param_id for m in replies if m.get_type() == "PARAM_VALUE"] in ([b"RLL_P"], ["RLL_P"])


def test_message_intervals_the_flight_cannot_keep_or_messages_it_never_sends_are_refused():
    link = link_and_replies(max_rate_hz=50.0, has_battery=False)

    def interval(message_id: int, interval_us: float) -> int:
        link.on_message(parsed(mavlink2.MAVLink_command_long_message(
            1, 1, mavlink2.MAV_CMD_SET_MESSAGE_INTERVAL, 0, message_id, interval_us, 0, 0, 0, 0, 0)))  # fmt: skip
        return next(m.result for m in link.take_outgoing() if m.get_type() == "COMMAND_ACK")

    attitude = mavlink2.MAVLINK_MSG_ID_ATTITUDE
    assert interval(attitude, 1000) == mavlink2.MAV_RESULT_DENIED  # 1 kHz: the flight samples at 50 Hz
    assert interval(attitude, 20000) == mavlink2.MAV_RESULT_ACCEPTED
    assert interval(mavlink2.MAVLINK_MSG_ID_BATTERY_STATUS, 1e6) == mavlink2.MAV_RESULT_UNSUPPORTED  # an engine
    elsewhere = mavlink2.MAVLink_param_request_read_message(1, 99, b"RLL_P", -1)  # another component of system 1
    assert link.on_message(parsed(elsewhere)) is False


def test_an_override_that_sets_no_channel_is_no_pilot_input():
    from sim.config import ChannelMap
    from sim.ground_control import GroundControl

    link = link_and_replies(rc_override=True)
    control = GroundControl(link, ChannelMap(), lambda kind, detail: None, 0.25, lambda: 0.0)
    link.override = (0.0, (65535,) * 8 + (0,) * 10)  # "leave" and "release" every channel
    frames, fresh = np.full((1, 16), 1500.0), np.array([False])
    assert control.apply(frames, fresh, None)[1].tolist() == [False]


def test_a_log_with_a_parameter_set_the_flight_could_not_have_made_is_refused_in_one_line():
    from types import SimpleNamespace

    from sim.errors import LogError
    from sim.log.replay import param_sets_of

    def log_with(detail: str) -> object:
        return SimpleNamespace(path="flight.hslog", events=[{"t_s": 1.0, "kind": "param_set", "detail": detail}])

    good = "RLL_P = 0.02 (roll_p_s, was 0.01) from tick 100"
    assert param_sets_of(log_with(good)) == [(100, "roll_p_s", 0.02)]
    for bad in ("RLL_P = nan (roll_p_s, was 0.01) from tick 100", "RLL_P = 1e308 (roll_p_s, was 0.01) from tick 1",
                "X = 1.0 (blade_count, was 2) from tick 1"):  # fmt: skip
        with pytest.raises(LogError, match=r"^flight.hslog: a param_set event the flight could not have made: "):
            param_sets_of(log_with(bad))


def test_the_summary_shows_twenty_events_of_a_kind_and_counts_the_rest():
    from sim.report import format_summary

    events = [{"t_s": i * 0.01, "kind": "param_set", "detail": f"RLL_P = {i}"} for i in range(1000)]
    summary = {"duration_s": 10.0, "heli": "xcell60", "fleet": 1, "loop_hz": 500, "physics_dt_s": 0.001,
               "stop_reason": "duration reached", "segments": [], "vehicles": [], "events": events}  # fmt: skip
    text = format_summary(summary)
    assert text.count("param_set") == 21 and "... and 980 more param_set events" in text
