"""MAVLink v2 telemetry through pymavlink: what a ground station (QGroundControl, MAVProxy) sees.

The simulator is one system (id 1, component 1) of type ``MAV_TYPE_HELICOPTER``.  ``TelemetryEncoder``
turns a ``TelemetrySample`` into the messages due at their rates (``RATES_HZ``): HEARTBEAT,
SYS_STATUS and SYSTEM_TIME at 1 Hz, ATTITUDE at 25 Hz, LOCAL_POSITION_NED at 10 Hz,
GLOBAL_POSITION_INT and GPS_RAW_INT at 5 Hz (from the home position, ``sim.protocols.geo``), VFR_HUD at
4 Hz, RC_CHANNELS at 5 Hz and HOME_POSITION every 5 s.  ``MavlinkDecoder`` parses a byte stream
back into pymavlink messages (the ground-station emulator and the tests use it).  Framing,
sequence numbers and CRC_EXTRA are pymavlink's; nothing here hand-packs a MAVLink frame.

The HEARTBEAT says what a ground station shows: the flight mode as ``custom_mode`` in ArduCopter's
numbering (``CUSTOM_MODES``: the numbers MAVProxy and other ground stations name for a
helicopter), ``base_mode`` flags (custom mode, manual input, stabilize in the self-levelling
modes, armed), and the system status: standby disarmed, active armed, critical in failsafe,
emergency once crashed.  SYS_STATUS reports the sensors a flybarless controller has, present,
enabled and healthy (the RC receiver unhealthy in failsafe), and the battery's voltage for an
electric helicopter (none for an engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink2

from sim.protocols.geo import ned_to_geodetic

__all__ = ["COMPONENT_ID", "CUSTOM_MODES", "RATES_HZ", "SYSTEM_ID", "MavlinkDecoder", "TelemetryEncoder",
           "TelemetrySample"]  # fmt: skip

SYSTEM_ID = 1
COMPONENT_ID = 1
RATES_HZ = {
    "HEARTBEAT": 1.0,
    "SYS_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
    "ATTITUDE": 25.0,
    "LOCAL_POSITION_NED": 10.0,
    "GLOBAL_POSITION_INT": 5.0,
    "GPS_RAW_INT": 5.0,
    "VFR_HUD": 4.0,
    "RC_CHANNELS": 5.0,
    "HOME_POSITION": 0.2,
    "BATTERY_STATUS": 1.0,  # an electric helicopter's
    "ATTITUDE_QUATERNION": 0.0,  # on request (SET_MESSAGE_INTERVAL)
    "SERVO_OUTPUT_RAW": 0.0,  # on request
}
# heli-sim's flight modes as ArduCopter's custom_mode numbers (the names ground stations show for
# a helicopter): rate is ACRO, angle STABILIZE; rescue (level and hold) is closest to BRAKE; the
# failsafe levels (STABILIZE), then descends and lands (LAND)
CUSTOM_MODES = {"rate": 1, "angle": 0, "rescue": 17, "failsafe: level": 0, "failsafe: descend": 9,
                "failsafe: landed": 9}  # fmt: skip
_SELF_LEVELLING = {"angle", "rescue", "failsafe: level", "failsafe: descend", "failsafe: landed"}
_SENSORS = (  # what a flybarless controller with a GPS and a receiver has
    mavlink2.MAV_SYS_STATUS_SENSOR_3D_GYRO
    | mavlink2.MAV_SYS_STATUS_SENSOR_3D_ACCEL
    | mavlink2.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
    | mavlink2.MAV_SYS_STATUS_SENSOR_GPS
    | mavlink2.MAV_SYS_STATUS_SENSOR_RC_RECEIVER
    | mavlink2.MAV_SYS_STATUS_SENSOR_MOTOR_OUTPUTS
    | mavlink2.MAV_SYS_STATUS_AHRS
)
_UNUSED_U16 = 0xFFFF


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
    battery_current_a: float = 0.0  # drawn now (the motor model's)
    battery_consumed_mah: float = 0.0  # since the flight started
    flight_mode: str = "angle"  # a name of heli.control.FLIGHT_MODES
    crashed: bool = False
    home: tuple[float, float, float] = (0.0, 0.0, 0.0)  # latitude deg, longitude deg, altitude m (MSL)
    unix_time_s: float = 0.0  # the wall clock when the sample was taken (SYSTEM_TIME)
    quaternion: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z: body -> NED
    servo_us: tuple[float, ...] = ()  # the controller's outputs as servo pulses: swash 0-2, tail, throttle

    @property
    def failsafe(self) -> bool:
        return self.flight_mode.startswith("failsafe")


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
        self.rates_hz = dict(RATES_HZ)  # a ground station may change them (SET_MESSAGE_INTERVAL)
        self._next_due = dict.fromkeys(RATES_HZ, 0.0)
        self._once: set[str] = set()  # asked for once (REQUEST_MESSAGE): with the next sample

    def set_rate(self, name: str, rate_hz: float | None) -> None:
        """Send ``name`` at ``rate_hz`` from now (0: never; None: its default rate)."""
        self.rates_hz[name] = RATES_HZ[name] if rate_hz is None else rate_hz
        self._next_due[name] = 0.0

    def send_once(self, name: str) -> None:
        """Send ``name`` with the next sample, whatever its rate."""
        self._once.add(name)

    def due(self, time_s: float) -> list[str]:
        """Names of the messages due at ``time_s`` (and schedules their next time)."""
        names = []
        for name, rate in self.rates_hz.items():
            if name in self._once:
                names.append(name)
            elif rate > 0 and time_s >= self._next_due[name]:
                self._next_due[name] = max(self._next_due[name] + 1.0 / rate, time_s)
                names.append(name)
        self._once.clear()
        return names

    def pack(self, message: Any) -> bytes:
        """A pymavlink message object (a reply) packed as this system, with the next sequence number."""
        return message.pack(self._mav)

    def encode(self, sample: TelemetrySample, names: list[str]) -> bytes:
        """The packed bytes of ``names`` for ``sample``, in order."""
        mav, t = self._mav, sample.time_s
        boot_ms = int(t * 1000.0) & 0xFFFFFFFF
        self._sink.data.clear()
        for name in names:
            if name == "HEARTBEAT":
                mav.heartbeat_send(
                    mavlink2.MAV_TYPE_HELICOPTER,
                    mavlink2.MAV_AUTOPILOT_GENERIC,
                    _base_mode(sample),
                    CUSTOM_MODES.get(sample.flight_mode, 0),
                    _system_status(sample),
                )
            elif name == "SYS_STATUS":
                self._sys_status(sample)
            elif name == "SYSTEM_TIME":
                mav.system_time_send(int(sample.unix_time_s * 1e6), boot_ms)
            elif name in ("GLOBAL_POSITION_INT", "GPS_RAW_INT"):
                self._position(name, sample, boot_ms)
            elif name == "ATTITUDE_QUATERNION":
                mav.attitude_quaternion_send(boot_ms, *sample.quaternion, *sample.body_rates_rad_s)
            elif name == "SERVO_OUTPUT_RAW":
                pulses = [min(max(round(us), 0), _UNUSED_U16) for us in sample.servo_us[:8]]
                mav.servo_output_raw_send(boot_ms * 1000 & 0xFFFFFFFF, 0, *(pulses + [0] * (8 - len(pulses))))
            elif name == "BATTERY_STATUS":
                if sample.battery_voltage_v:
                    self._battery_status(sample)
            elif name == "HOME_POSITION":
                lat, lon, alt = sample.home
                mav.home_position_send(
                    round(lat * 1e7), round(lon * 1e7), round(alt * 1e3), 0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0],
                    0.0, 0.0, 0.0,
                )  # fmt: skip
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

    def _sys_status(self, sample: TelemetrySample) -> None:
        healthy = _SENSORS & ~(mavlink2.MAV_SYS_STATUS_SENSOR_RC_RECEIVER if sample.failsafe else 0)
        # no geofence: healthy, as flight controllers without one report it (a ground station that
        # sees the bit unhealthy reports a fence breach)
        healthy |= mavlink2.MAV_SYS_STATUS_GEOFENCE
        volts = sample.battery_voltage_v
        volts_mv = min(round(volts * 1000.0), _UNUSED_U16) if volts else _UNUSED_U16
        current_ca = min(round(sample.battery_current_a * 100.0), 32767) if volts else -1
        present = _SENSORS | (mavlink2.MAV_SYS_STATUS_SENSOR_BATTERY if volts else 0)
        healthy |= present & mavlink2.MAV_SYS_STATUS_SENSOR_BATTERY
        # remaining charge -1: unknown (no capacity is modelled)
        self._mav.sys_status_send(present, present, healthy, 0, volts_mv, current_ca, -1, 0, 0, 0, 0, 0, 0)

    def _battery_status(self, sample: TelemetrySample) -> None:
        """The battery from the motor model: voltage (nominal: no sag is modelled), current, charge used."""
        cells = [min(round(sample.battery_voltage_v * 1000.0), _UNUSED_U16 - 1)] + [_UNUSED_U16] * 9
        self._mav.battery_status_send(
            0, mavlink2.MAV_BATTERY_FUNCTION_ALL, mavlink2.MAV_BATTERY_TYPE_LIPO, 32767, cells,
            min(round(sample.battery_current_a * 100.0), 32767), min(round(sample.battery_consumed_mah), 2**31 - 1),
            -1, -1,
        )  # fmt: skip

    def _position(self, name: str, sample: TelemetrySample, boot_ms: int) -> None:
        north, east, down = sample.position_ned_m
        lat, lon, alt = ned_to_geodetic(north, east, down, *sample.home)
        vn, ve, vd = sample.velocity_ned_m_s
        heading_cdeg = round(math.degrees(sample.attitude_rad[2]) * 100.0) % 36000
        lat_e7, lon_e7, alt_mm = round(lat * 1e7), round(lon * 1e7), round(alt * 1e3)
        if name == "GLOBAL_POSITION_INT":
            velocities = (_clamp_i16(vn * 100.0), _clamp_i16(ve * 100.0), _clamp_i16(vd * 100.0))
            self._mav.global_position_int_send(boot_ms, lat_e7, lon_e7, alt_mm, round(-down * 1e3), *velocities,
                                               heading_cdeg)  # fmt: skip
        else:
            ground_cm_s = min(round(math.hypot(vn, ve) * 100.0), _UNUSED_U16 - 1)
            course_cdeg = round(math.degrees(math.atan2(ve, vn)) * 100.0) % 36000 if ground_cm_s else _UNUSED_U16
            # a 3D fix, HDOP 0.8 and VDOP 1.2, 12 satellites: a good GPS under open sky
            self._mav.gps_raw_int_send(boot_ms * 1000, mavlink2.GPS_FIX_TYPE_3D_FIX, lat_e7, lon_e7, alt_mm, 80, 120,
                                       ground_cm_s, course_cdeg, 12)  # fmt: skip


def _base_mode(sample: TelemetrySample) -> int:
    base = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink2.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
    if sample.flight_mode in _SELF_LEVELLING:
        base |= mavlink2.MAV_MODE_FLAG_STABILIZE_ENABLED
    if sample.armed:
        base |= mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
    return base


def _system_status(sample: TelemetrySample) -> int:
    if sample.crashed:
        return mavlink2.MAV_STATE_EMERGENCY
    if sample.failsafe:
        return mavlink2.MAV_STATE_CRITICAL
    return mavlink2.MAV_STATE_ACTIVE if sample.armed else mavlink2.MAV_STATE_STANDBY


def _clamp_i16(value: float) -> int:
    return max(-32768, min(32767, round(value)))


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
