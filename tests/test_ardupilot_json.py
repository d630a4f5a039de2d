"""ArduPilot SITL's JSON physics interface: servo frames decoded, sensor lines as ArduPilot parses
them, and (where an ``arducopter-heli`` SITL binary is on PATH or named by ``HELI_SIM_ARDUPILOT``)
the real firmware kept in lock-step by our replies."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess

import numpy as np
import pytest

from sim.protocols.ardupilot_json import (
    JSON_PORT,
    MAGIC_16,
    FrameError,
    Sensors,
    ServoFrame,
    decode_servo_frame,
    encode_servo_frame,
    sensor_line,
    specific_force_body,
)

GRAVITY = 9.80665


@pytest.mark.parametrize("channels", [16, 32])
def test_a_servo_frame_decodes_as_it_was_sent(channels):
    frame = ServoFrame(1200, 123456, tuple(1000 + 10 * i for i in range(channels)))
    data = encode_servo_frame(frame)
    assert len(data) == 8 + 2 * channels
    assert decode_servo_frame(data) == frame
    assert frame.step_s == pytest.approx(1.0 / 1200.0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x1a\x48", "2 bytes: expected at least 8"),
        (b"\x00\x00" + bytes(38), "magic 0: expected 18458"),
        (MAGIC_16.to_bytes(2, "little") + bytes(36), "38 bytes with magic 18458: expected 40"),
        (MAGIC_16.to_bytes(2, "little") + bytes(38), "frame rate of 0 Hz"),
    ],
    ids=["short", "magic", "length", "rate"],
)
def test_a_datagram_that_is_not_a_servo_frame_says_why(data, fragment):
    with pytest.raises(FrameError, match=fragment):
        decode_servo_frame(data)


def test_the_accelerometer_reads_the_reaction_to_gravity_in_body_axes():
    level = (1.0, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(specific_force_body((0, 0, 0), level, GRAVITY), [0, 0, -GRAVITY], atol=1e-12)
    half = math.sqrt(0.5)
    rolled_right = (half, half, 0.0, 0.0)  # 90 deg right wing down: body y points down
    np.testing.assert_allclose(specific_force_body((0, 0, 0), rolled_right, GRAVITY), [0, -GRAVITY, 0], atol=1e-12)
    falling = specific_force_body((0, 0, GRAVITY), level, GRAVITY)  # free fall reads nothing
    np.testing.assert_allclose(falling, [0, 0, 0], atol=1e-12)


def test_a_sensor_line_is_compact_json_led_by_a_newline():
    sensors = Sensors(1.5, (0.1, -0.2, 0.3), (0.0, 0.0, -GRAVITY), (1.0, 2.0, -3.0), (0.5, 0.0, 0.0),
                      (1.0, 0.0, 0.0, 0.0), wind_ned_m_s=(3.0, 0.0, 0.0), rangefinder_m=3.2,
                      battery_v_a=(44.4, 12.5), rc_us=[1500.0] * 16)  # fmt: skip
    line = sensor_line(sensors)
    assert line.startswith(b"\n") and line.endswith(b"\n") and b" " not in line
    reply = json.loads(line)
    assert reply["timestamp"] == 1.5 and reply["imu"]["gyro"] == [0.1, -0.2, 0.3]
    assert reply["quaternion"] == [1.0, 0.0, 0.0, 0.0] and reply["velocity_wind"] == [3.0, 0.0, 0.0]
    assert reply["rng_1"] == 3.2 and reply["battery"] == {"voltage": 44.4, "current": 12.5}
    assert sorted(reply["rc"]) == sorted(f"rc_{i}" for i in range(1, 13))  # ArduPilot reads 12


def sitl_binary() -> str | None:
    named = os.environ.get("HELI_SIM_ARDUPILOT")
    return named if named and os.access(named, os.X_OK) else shutil.which("arducopter-heli")


@pytest.mark.skipif(sitl_binary() is None, reason="no arducopter-heli SITL binary (PATH or HELI_SIM_ARDUPILOT)")
def test_real_ardupilot_firmware_steps_in_lock_step_with_our_replies(tmp_path):
    """Each reply releases exactly one new frame (frame_count + 1): ArduPilot's clock follows ours."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", JSON_PORT))
    receiver.settimeout(10.0)
    firmware = subprocess.Popen(
        [sitl_binary(), "--model", "JSON:127.0.0.1", "--speedup", "1", "-I0", "--serial0", "tcp:0", "-w"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        counts, time_s = [], 0.0
        for _ in range(600):
            data, sender = receiver.recvfrom(1024)
            frame = decode_servo_frame(data)
            counts.append(frame.frame_count)
            time_s += frame.step_s
            sensors = Sensors(time_s, (0, 0, 0), (0, 0, -GRAVITY), (0, 0, 0), (0, 0, 0), (1, 0, 0, 0))
            receiver.sendto(sensor_line(sensors), sender)
        assert frame.frame_rate_hz > 0
        assert np.all(np.diff(counts) == 1)  # one new frame per reply, none lost, none repeated
    finally:
        os.killpg(firmware.pid, signal.SIGTERM)
        output = firmware.communicate(timeout=10)[0].decode(errors="replace")
        receiver.close()
    assert "JSON received:" in output
    for field in ("timestamp", "gyro", "accel_body", "position", "velocity", "quaternion"):
        assert field in output.split("JSON received:", 1)[1], field
