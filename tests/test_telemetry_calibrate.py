"""MAVLink telemetry seen by a real pymavlink client, and stick calibration from a transmitter."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pymavlink import mavutil

from sim.config import FlightConfig
from sim.dataclass_io import build
from sim.protocols.mavlink import MavlinkDecoder, TelemetryEncoder, TelemetrySample
from tests.helpers import StderrLines
from tests.test_ports import needs_socat, socat_pair

ROOT = Path(__file__).resolve().parent.parent


def test_encoder_sends_each_message_at_its_rate():
    encoder = TelemetryEncoder()
    sample = TelemetrySample(0.0, (0.0, 0.0, -5.0), (0.0, 0.0, 0.0), (0.1, 0.0, 0.0), (0.0, 0.0, 0.0), 0.5, True,
                             (1500.0,) * 16, 11.1)  # fmt: skip
    decoder = MavlinkDecoder()
    counts: dict[str, int] = {}
    for tick in range(500):  # 10 s at 50 Hz
        t = tick * 0.02
        stamped = TelemetrySample(t, *[getattr(sample, f) for f in list(sample.__dataclass_fields__)[1:]])
        for message in decoder.feed(encoder.encode(stamped, encoder.due(t))):
            counts[message.get_type()] = counts.get(message.get_type(), 0) + 1
    assert counts == {"HEARTBEAT": 10, "SYS_STATUS": 10, "SYSTEM_TIME": 10, "ATTITUDE": 250,
                      "LOCAL_POSITION_NED": 100, "GLOBAL_POSITION_INT": 50, "GPS_RAW_INT": 50, "VFR_HUD": 40,
                      "RC_CHANNELS": 50, "HOME_POSITION": 2, "BATTERY_STATUS": 10}  # fmt: skip
    assert decoder.decode_errors == 0


@needs_socat
def test_a_pymavlink_client_sees_the_helicopter(tmp_path):
    stats = tmp_path / "run.json"
    with socat_pair(tmp_path) as (sim_end, gcs_end, _socat):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "fly", "--headless", "--rc", "none", "--start", "hover", "--servo",
             "virtual", "--telemetry", sim_end, "--telemetry-protocol", "mavlink", "--stats-json", str(stats)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        client = None
        try:
            StderrLines(proc).wait_for("heli-sim: flying")
            client = mavutil.mavlink_connection(gcs_end, baud=57600)
            heartbeat = client.recv_match(type="HEARTBEAT", blocking=True, timeout=10)
            assert heartbeat is not None and heartbeat.type == mavutil.mavlink.MAV_TYPE_HELICOPTER
            assert heartbeat.base_mode & mavutil.mavlink.MAV_MODE_FLAG_SAFETY_ARMED
            attitudes = [client.recv_match(type="ATTITUDE", blocking=True, timeout=5) for _ in range(25)]
            position = client.recv_match(type="LOCAL_POSITION_NED", blocking=True, timeout=5)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
        finally:
            if client is not None:
                client.close()
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    summary = json.loads(stats.read_text())
    final = summary["vehicles"][0]["final_attitude_deg"]
    last = attitudes[-1]
    assert math.degrees(last.roll) == pytest.approx(final[0], abs=1.0)  # the hover lean, live
    assert math.degrees(last.pitch) == pytest.approx(final[1], abs=1.0)
    assert abs(math.degrees(last.roll)) > 2.0  # really the simulated helicopter's lean, not zeros
    assert position.z == pytest.approx(-5.0, abs=0.5)  # NED: 5 m up
    telemetry = next(p for p in summary["ports"] if p["role"] == "telemetry")
    assert telemetry["protocol"] == "mavlink" and telemetry["frames_out"] > 0


def test_calibrate_measures_a_transmitters_sticks(tmp_path):
    script = tmp_path / "sweep.toml"
    script.write_text(  # each extreme held for a while, as a pilot does, then the sticks let go
        "[[at]]\nt = 0.0\nroll = 990\npitch = 2010\nyaw = 990\ncollective = 1010\n"
        "[[at]]\nt = 0.4\nroll = 990\npitch = 2010\nyaw = 990\ncollective = 1010\n"
        "[[at]]\nt = 0.5\nroll = 2010\npitch = 990\nyaw = 2010\ncollective = 1990\n"
        "[[at]]\nt = 0.9\nroll = 2010\npitch = 990\nyaw = 2010\ncollective = 1990\n"
        "[[at]]\nt = 1.0\nroll = 1510\npitch = 1490\nyaw = 1520\n"
    )
    out = tmp_path / "rc.toml"
    result = subprocess.run(
        [sys.executable, "-m", "sim", "calibrate", "--rc", "virtual", "--pilot", f"script:{script}", "--seconds",
         "3.5", "--output", str(out), "--reverse", "yaw"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = tomllib.loads(out.read_text())
    config = build(FlightConfig, table, source=str(out))  # what calibrate writes is a valid flight file
    rc = config.rc
    assert rc.roll_us == pytest.approx((990.0, 1510.0, 2010.0), abs=1.0)
    assert rc.pitch_us == pytest.approx((990.0, 1490.0, 2010.0), abs=1.0)
    assert rc.yaw_us == pytest.approx((990.0, 1520.0, 2010.0), abs=1.0)
    assert rc.collective_us == pytest.approx((1010.0, 1500.0, 1990.0), abs=1.0)
    assert rc.reversed == ("yaw",)


def test_calibration_normalises_the_sticks():
    from sim.config import ChannelMap
    from sim.rc import to_pilot_input

    cmap = ChannelMap(roll_us=(990.0, 1510.0, 2010.0), reversed=("yaw",))
    frames = [[990.0, 1500.0, 1500.0, 2000.0, 1000.0, 1500.0], [2010.0, 1500.0, 1500.0, 1000.0, 1000.0, 1500.0]]
    packed = to_pilot_input(frames, True, cmap).packed
    assert packed[0, 0] == pytest.approx(-1.0) and packed[1, 0] == pytest.approx(1.0)
    assert packed[0, 2] == pytest.approx(-1.0) and packed[1, 2] == pytest.approx(1.0)  # yaw reversed
