"""MAVLink v2 telemetry through pymavlink: what a ground station (QGroundControl, MAVProxy) sees.

The simulator is one system (id 1, component 1) of type ``MAV_TYPE_HELICOPTER``.  ``TelemetryEncoder``
turns a ``TelemetrySample`` into the messages due at their rates (``RATES_HZ``): HEARTBEAT and
SYS_STATUS at 1 Hz, ATTITUDE at 25 Hz, LOCAL_POSITION_NED at 10 Hz, VFR_HUD at 4 Hz and
RC_CHANNELS at 5 Hz.  ``MavlinkDecoder`` parses a byte stream back into pymavlink messages (the
ground-station emulator and the tests use it).  Framing, sequence numbers and CRC_EXTRA are
pymavlink's; nothing here hand-packs a MAVLink frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymavlink.dialects.v20 import common as mavlink2

__all__ = ["RATES_HZ", "MavlinkDecoder", "TelemetryEncoder", "TelemetrySample"]

SYSTEM_ID = 1
COMPONENT_ID = 1
RATES_HZ = {
    "HEARTBEAT": 1.0,
    "SYS_STATUS": 1.0,
    "ATTITUDE": 25.0,
    "LOCAL_POSITION_NED": 10.0,
    "VFR_HUD": 4.0,
    "RC_CHANNELS": 5.0,
}


@dataclass(frozen=True)
class TelemetrySample:
    """What one vehicle's telemetry says at ``time_s`` (seconds since the flight started)."""

    time_s: float
    position_ned_m: tuple[float, float, float]
    velocity_ned_m_s: tuple[float, float, float]
    attitude_rad: tuple[float, float, float]  # roll, pitch, yaw
    body_rates_rad_s: tuple[float, float, float]
    throttle: float  # 0..1
    armed: bool
    channels_us: tuple[float, ...]
    battery_voltage_v: float = 0.0  # 0: unknown (a nitro engine)


class _Sink:
    """The file pymavlink writes packed messages into."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class TelemetryEncoder:
    """Packs the messages that are due, each at its rate; keeps pymavlink's sequence counter."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._mav = mavlink2.MAVLink(self._sink, srcSystem=SYSTEM_ID, srcComponent=COMPONENT_ID)
        self._next_due = dict.fromkeys(RATES_HZ, 0.0)

    def due(self, time_s: float) -> list[str]:
        """Names of the messages due at ``time_s`` (and schedules their next time)."""
        names = []
        for name, rate in RATES_HZ.items():
            if time_s >= self._next_due[name]:
                self._next_due[name] = max(self._next_due[name] + 1.0 / rate, time_s)
                names.append(name)
        return names

    def encode(self, sample: TelemetrySample, names: list[str]) -> bytes:
        """The packed bytes of ``names`` for ``sample``, in order."""
        mav, t = self._mav, sample.time_s
        boot_ms = int(t * 1000.0) & 0xFFFFFFFF
        self._sink.data.clear()
        for name in names:
            if name == "HEARTBEAT":
                base = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
                if sample.armed:
                    base |= mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
                mav.heartbeat_send(
                    mavlink2.MAV_TYPE_HELICOPTER, mavlink2.MAV_AUTOPILOT_GENERIC, base, 0, mavlink2.MAV_STATE_ACTIVE
                )
            elif name == "SYS_STATUS":
                volts_mv = int(sample.battery_voltage_v * 1000.0) if sample.battery_voltage_v else 0xFFFF
                mav.sys_status_send(0, 0, 0, 0, min(volts_mv, 0xFFFF), -1, -1, 0, 0, 0, 0, 0, 0)
            elif name == "ATTITUDE":
                mav.attitude_send(boot_ms, *sample.attitude_rad, *sample.body_rates_rad_s)
            elif name == "LOCAL_POSITION_NED":
                mav.local_position_ned_send(boot_ms, *sample.position_ned_m, *sample.velocity_ned_m_s)
            elif name == "VFR_HUD":
                vn, ve, vd = sample.velocity_ned_m_s
                heading = round(math.degrees(sample.attitude_rad[2])) % 360
                ground = math.hypot(vn, ve)
                mav.vfr_hud_send(ground, ground, heading, round(sample.throttle * 100), -sample.position_ned_m[2], -vd)
            elif name == "RC_CHANNELS":
                channels = [round(c) for c in sample.channels_us[:18]]
                channels += [0xFFFF] * (18 - len(channels))  # UINT16_MAX: channel not used
                mav.rc_channels_send(boot_ms, len(sample.channels_us[:18]), *channels, 255)
        return bytes(self._sink.data)


class MavlinkDecoder:
    """Parses MAVLink bytes into pymavlink messages; counts what it could not parse."""

    def __init__(self) -> None:
        self._mav = mavlink2.MAVLink(None)
        self._mav.robust_parsing = True  # bad bytes are skipped, never raised
        self.frames = 0

    def feed(self, data: bytes) -> list:
        messages = [m for m in (self._mav.parse_buffer(data) or []) if m.get_type() != "BAD_DATA"]
        self.frames += len(messages)
        return messages

    @property
    def decode_errors(self) -> int:
        return self._mav.total_receive_errors
