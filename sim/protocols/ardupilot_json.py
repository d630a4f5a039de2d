"""ArduPilot SITL's JSON physics interface: its servo frames in, the vehicle's sensors out.

ArduPilot's software-in-the-loop build, started with ``--model JSON:HOST``, hands its physics to
an external program (ArduPilot's ``libraries/SITL/examples/JSON/readme.md`` describes it).  Per
physics step it sends one UDP datagram to port 9002 of HOST:

    uint16 magic (18458 with 16 channels, 29569 with 32), uint16 frame_rate (Hz),
    uint32 frame_count, uint16 pwm[16 or 32]          (little-endian)

and waits (lock-step) for one line of JSON back to the sender's address: ``timestamp`` (s, it
advances its clock by the change), ``imu.gyro`` (body rad/s), ``imu.accel_body`` (body specific
force, m/s^2: what an accelerometer reads, gravity's reaction included), ``position`` and
``velocity`` (NED, m and m/s) and ``quaternion`` ([w, x, y, z], body to NED); optionally
``velocity_wind`` (NED m/s), ``rng_1`` (m), ``battery`` ({voltage, current}) and ``rc``
({rc_1 .. rc_12}, us).  It parses vectors only when written compactly, and only the newest
complete line: every reply starts with a newline.  A repeated ``frame_count`` is a re-send (it
heard no reply), a lower one a restart.

Nothing here does I/O: ``decode_servo_frame`` and ``sensor_line`` are the two halves of one
exchange; the caller owns the socket.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from heli.dynamics import rotation_matrix
from heli.errors import HeliSimError

__all__ = [
    "JSON_PORT",
    "MAGIC_16",
    "MAGIC_32",
    "Floats",
    "FrameError",
    "Sensors",
    "ServoFrame",
    "decode_servo_frame",
    "encode_servo_frame",
    "sensor_line",
    "specific_force_body",
]

# values as the simulator hands them over: a numpy array (a slice of a state row) or a sequence of floats
Floats = Sequence[float] | np.ndarray

JSON_PORT = 9002
MAGIC_16 = 18458
MAGIC_32 = 29569
_HEADER = struct.Struct("<HHI")
_CHANNELS = {MAGIC_16: 16, MAGIC_32: 32}


class FrameError(HeliSimError, ValueError):
    """A datagram that is not one of ArduPilot's servo frames (counted and skipped by the caller)."""


@dataclass(frozen=True)
class ServoFrame:
    """One of ArduPilot's servo frames: its physics rate, its number and the PWM outputs (us)."""

    frame_rate_hz: int
    frame_count: int
    pwm_us: tuple[int, ...]

    @property
    def step_s(self) -> float:
        """The physics step this frame asks for (1 / frame_rate)."""
        return 1.0 / self.frame_rate_hz


def decode_servo_frame(data: bytes) -> ServoFrame:
    """A ``ServoFrame`` from one datagram; ``FrameError`` saying what is wrong otherwise."""
    if len(data) < _HEADER.size:
        raise FrameError(f"servo frame of {len(data)} bytes: expected at least {_HEADER.size}")
    magic, rate, count = _HEADER.unpack_from(data)
    channels = _CHANNELS.get(magic)
    if channels is None:
        raise FrameError(f"servo frame magic {magic}: expected {MAGIC_16} (16 channels) or {MAGIC_32} (32)")
    size = _HEADER.size + 2 * channels
    if len(data) != size:
        raise FrameError(f"servo frame of {len(data)} bytes with magic {magic}: expected {size}")
    if rate == 0:
        raise FrameError("servo frame with a frame rate of 0 Hz: expected the physics rate")
    pwm = struct.unpack_from(f"<{channels}H", data, _HEADER.size)
    return ServoFrame(rate, count, pwm)


def encode_servo_frame(frame: ServoFrame) -> bytes:
    """The datagram ArduPilot would send for ``frame`` (for tests and emulators)."""
    magic = MAGIC_16 if len(frame.pwm_us) == 16 else MAGIC_32
    return _HEADER.pack(magic, frame.frame_rate_hz, frame.frame_count) + struct.pack(
        f"<{len(frame.pwm_us)}H", *frame.pwm_us
    )


@dataclass(frozen=True)
class Sensors:
    """What one reply tells ArduPilot about one vehicle at ``time_s`` (SI units, NED, body FRD)."""

    time_s: float
    gyro_rad_s: Floats
    specific_force_body_m_s2: Floats
    position_ned_m: Floats
    velocity_ned_m_s: Floats
    quaternion: Floats  # w, x, y, z: body to NED
    wind_ned_m_s: Floats | None = None
    rangefinder_m: float | None = None
    battery_v_a: tuple[float, float] | None = None
    rc_us: Floats | None = None  # channels 1..12


def specific_force_body(accel_ned_m_s2: Floats, quaternion: Floats, gravity_m_s2: float) -> np.ndarray:
    """What a body-fixed accelerometer reads: ``R^T (a - g)``, ``g`` pointing down (so at rest, -g on z)."""
    rotation = np.array(rotation_matrix(*(float(q) for q in quaternion))).reshape(3, 3)
    return rotation.T @ (np.asarray(accel_ned_m_s2, dtype=np.float64) - np.array([0.0, 0.0, gravity_m_s2]))


def _vector(values: Floats, digits: int = 6) -> list[float]:
    out = [round(float(v), digits) for v in values]
    if not all(math.isfinite(v) for v in out):  # JSON has no NaN: ArduPilot would read garbage into its EKF
        raise ValueError(f"a non-finite sensor value {out}")
    return out


def sensor_line(sensors: Sensors) -> bytes:
    """The reply line: compact JSON, led by a newline (ArduPilot parses the newest whole line);
    ``ValueError`` if a value is not finite."""
    reply: dict = {
        "timestamp": _vector([sensors.time_s], digits=9)[0],
        "imu": {"gyro": _vector(sensors.gyro_rad_s), "accel_body": _vector(sensors.specific_force_body_m_s2)},
        "position": _vector(sensors.position_ned_m),
        "velocity": _vector(sensors.velocity_ned_m_s),
        "quaternion": _vector(sensors.quaternion),
    }
    if sensors.wind_ned_m_s is not None:
        reply["velocity_wind"] = _vector(sensors.wind_ned_m_s)
    if sensors.rangefinder_m is not None:
        reply["rng_1"] = round(float(sensors.rangefinder_m), 4)
    if sensors.battery_v_a is not None:
        reply["battery"] = {"voltage": round(sensors.battery_v_a[0], 3), "current": round(sensors.battery_v_a[1], 3)}
    if sensors.rc_us is not None:
        reply["rc"] = {f"rc_{i + 1}": round(float(us)) for i, us in enumerate(sensors.rc_us[:12])}
    return b"\n" + json.dumps(reply, separators=(",", ":")).encode() + b"\n"
