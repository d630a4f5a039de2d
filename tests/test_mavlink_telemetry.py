"""What a ground station sees: the flight mode, armed state and system status in the HEARTBEAT,
the sensors in SYS_STATUS, and the helicopter on the map (GLOBAL_POSITION_INT, GPS_RAW_INT,
HOME_POSITION from the flight file's home).  Read with pymavlink's own parser and mode names,
and end to end over a socat pair."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from sim.protocols.geo import ned_to_geodetic
from sim.protocols.mavlink import MavlinkDecoder, TelemetryEncoder, TelemetrySample
from tests.test_ports import needs_socat, socat_pair

ROOT = Path(__file__).resolve().parents[1]
HOME = (-35.363261, 149.16523, 584.0)


def sample(**changes) -> TelemetrySample:
    values = dict(time_s=0.0, position_ned_m=(0.0, 0.0, -5.0), velocity_ned_m_s=(0.0, 0.0, 0.0),
                  attitude_rad=(0.0, 0.0, 0.0), body_rates_rad_s=(0.0, 0.0, 0.0), throttle=0.5, armed=True,
                  channels_us=(1500.0,) * 8, battery_voltage_v=22.2, flight_mode="angle", home=HOME)  # fmt: skip
    return TelemetrySample(**{**values, **changes})


def messages(telemetry: TelemetrySample) -> dict[str, object]:
    """Every message due at the start, by type, as pymavlink parses them."""
    encoder = TelemetryEncoder()
    return {m.get_type(): m for m in MavlinkDecoder().feed(encoder.encode(telemetry, encoder.due(0.0)))}


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius: an independent check."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


@pytest.mark.parametrize("north_m, east_m", [(1000.0, 0.0), (0.0, 1000.0), (-600.0, 800.0)])
def test_metres_from_home_become_a_point_that_far_from_home(north_m, east_m):
    lat, lon, alt = ned_to_geodetic(north_m, east_m, -30.0, *HOME)
    # a sphere differs from WGS-84 by up to half a percent: the check is independent, not exact
    assert haversine_m(HOME[0], HOME[1], lat, lon) == pytest.approx(math.hypot(north_m, east_m), rel=5e-3)
    assert (lat > HOME[0]) == (north_m > 0) and (lon > HOME[1]) == (east_m > 0)
    assert alt == pytest.approx(HOME[2] + 30.0)
    assert ned_to_geodetic(0.0, 0.0, 0.0, *HOME) == HOME


@pytest.mark.parametrize(
    "mode, name", [("rate", "ACRO"), ("angle", "STABILIZE"), ("rescue", "BRAKE"), ("failsafe: descend", "LAND")]
)
def test_the_heartbeat_names_the_flight_mode_as_a_ground_station_does(mode, name):
    heartbeat = messages(sample(flight_mode=mode))["HEARTBEAT"]
    assert mavutil.mode_string_v10(heartbeat) == name  # pymavlink's (MAVProxy's) names for a helicopter
    assert heartbeat.type == mavlink2.MAV_TYPE_HELICOPTER
    assert heartbeat.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
    assert bool(heartbeat.base_mode & mavlink2.MAV_MODE_FLAG_STABILIZE_ENABLED) == (mode != "rate")


@pytest.mark.parametrize(
    "changes, status",
    [
        (dict(armed=False), mavlink2.MAV_STATE_STANDBY),
        (dict(armed=True), mavlink2.MAV_STATE_ACTIVE),
        (dict(flight_mode="failsafe: level"), mavlink2.MAV_STATE_CRITICAL),
        (dict(crashed=True), mavlink2.MAV_STATE_EMERGENCY),
    ],
)
def test_the_heartbeat_says_standby_active_critical_or_emergency(changes, status):
    heartbeat = messages(sample(**changes))["HEARTBEAT"]
    assert heartbeat.system_status == status
    assert bool(heartbeat.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED) == changes.get("armed", True)


def test_sys_status_reports_its_sensors_a_healthy_fence_and_the_battery():
    status = messages(sample())["SYS_STATUS"]
    for sensor in ("3D_GYRO", "3D_ACCEL", "GPS", "RC_RECEIVER"):
        bit = getattr(mavlink2, f"MAV_SYS_STATUS_SENSOR_{sensor}")
        assert status.onboard_control_sensors_present & status.onboard_control_sensors_health & bit
    assert status.onboard_control_sensors_health & mavlink2.MAV_SYS_STATUS_GEOFENCE  # else: "fence breach"
    assert status.voltage_battery == 22200
    failsafe = messages(sample(flight_mode="failsafe: level"))["SYS_STATUS"]
    assert not failsafe.onboard_control_sensors_health & mavlink2.MAV_SYS_STATUS_SENSOR_RC_RECEIVER
    assert messages(sample(battery_voltage_v=0.0))["SYS_STATUS"].voltage_battery == 0xFFFF  # an engine


def test_the_position_messages_put_the_helicopter_where_it_is():
    found = messages(sample(position_ned_m=(30.0, -40.0, -12.0), velocity_ned_m_s=(3.0, -4.0, 0.5),
                            attitude_rad=(0.0, 0.0, math.radians(-90.0))))  # fmt: skip
    lat, lon, alt = ned_to_geodetic(30.0, -40.0, -12.0, *HOME)
    position, gps, home = found["GLOBAL_POSITION_INT"], found["GPS_RAW_INT"], found["HOME_POSITION"]
    assert (position.lat, position.lon) == (round(lat * 1e7), round(lon * 1e7)) == (gps.lat, gps.lon)
    assert position.alt == gps.alt == round(alt * 1e3) and position.relative_alt == 12000
    assert (position.vx, position.vy, position.vz) == (300, -400, 50)
    assert position.hdg == 27000  # heading -90 deg: west
    assert gps.fix_type == mavlink2.GPS_FIX_TYPE_3D_FIX and gps.vel == 500
    assert gps.cog == round(math.degrees(math.atan2(-4.0, 3.0)) % 360 * 100)
    assert (home.latitude, home.longitude, home.altitude) == (-353632610, 1491652300, 584000)


@needs_socat
def test_a_ground_station_sees_the_helicopter_at_the_flight_files_home(tmp_path):
    flight_file = tmp_path / "flight.toml"
    flight_file.write_text("[home]\nlatitude_deg = 51.5\nlongitude_deg = -0.1\naltitude_m = 20.0\n")
    with socat_pair(tmp_path) as (ours, theirs, _socat):
        flight = subprocess.Popen([sys.executable, "-m", "sim", "fly", "--headless", "--quiet", "--config",
                                   str(flight_file), "--no-ports", "--telemetry", ours, "--telemetry-protocol",
                                   "mavlink", "--start", "hover", "--duration", "60"],
                                  cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip
        gcs = mavutil.mavlink_connection(theirs, baud=57600)
        try:
            heartbeat = gcs.recv_match(type="HEARTBEAT", blocking=True, timeout=30)
            home = gcs.recv_match(type="HOME_POSITION", blocking=True, timeout=30)
            position = gcs.recv_match(type="GLOBAL_POSITION_INT", blocking=True, timeout=30)
        finally:
            gcs.close()
            flight.terminate()
            _, stderr = flight.communicate(timeout=60)
    assert flight.returncode == 143, stderr
    assert heartbeat is not None and mavutil.mode_string_v10(heartbeat) == "STABILIZE"
    assert heartbeat.system_status == mavlink2.MAV_STATE_ACTIVE  # started in hover: armed
    assert (home.latitude, home.longitude, home.altitude) == (515000000, -1000000, 20000)
    # hovering near home, about 5 m up
    assert haversine_m(51.5, -0.1, position.lat / 1e7, position.lon / 1e7) < 5.0
    assert 2000 < position.relative_alt < 8000 and position.alt - position.relative_alt == pytest.approx(20000, abs=1)
