"""The CRSF telemetry a radio shows, checked by an implementation that is not ours: every frame's
length and CRC by crsf-parser's CRC-8/DVB-S2, the battery decoded by crsf-parser (0.3.2 cannot
parse the other telemetry types: its fallback layout raises), and the GPS frame's fields read here
with ``struct`` against the CRSF specification's layout (big-endian: latitude and longitude in
1e-7 degrees, ground speed in 0.1 km/h, course in 0.01 degrees, altitude in metres + 1000,
satellites)."""

from __future__ import annotations

import math
import struct

import pytest

from sim.ports.codecs import FlightSnapshot, crsf_telemetry
from sim.protocols import crsf
from sim.protocols.geo import ned_to_geodetic

crsf_parser = pytest.importorskip("crsf_parser")
crsf_frame_crc = pytest.importorskip("crsf_parser.handling").crsf_frame_crc

HOME = (51.5, -0.1, 20.0)


def snapshot(**changes) -> FlightSnapshot:
    values = dict(attitude_rad=(0.0, 0.0, 0.5), altitude_m=12.0, climb_m_s=0.5, armed=True, mode="angle",
                  channels_us=(1500.0,) * 16, battery_voltage_v=22.2, position_ned_m=(30.0, -40.0, -12.0),
                  velocity_ned_m_s=(3.0, 4.0, -0.5), home=HOME, battery_current_a=12.34,
                  battery_consumed_mah=321.6)  # fmt: skip
    return FlightSnapshot(**{**values, **changes})


def parsed(frames: list) -> list[tuple[int, bytes]]:
    """(type, payload) of each frame, after crsf-parser's CRC and our length check of its bytes."""
    found = []
    for frame in frames:
        data = crsf.encode(frame)
        assert data[1] == len(data) - 2  # the length byte: type, payload, CRC
        assert crsf_frame_crc(data) == data[-1]
        found.append((data[2], data[3:-1]))
    return found


def test_the_radio_gets_a_gps_position_from_home():
    found = dict(parsed(crsf_telemetry(snapshot())))
    lat, lon, speed, course, altitude, satellites = struct.unpack(">iiHHHB", found[0x02])
    expected_lat, expected_lon, expected_alt = ned_to_geodetic(30.0, -40.0, -12.0, *HOME)
    assert (lat, lon) == (round(expected_lat * 1e7), round(expected_lon * 1e7))
    assert speed == 180  # 5 m/s over the ground = 18.0 km/h
    assert course == round(math.degrees(math.atan2(4.0, 3.0)) * 100)
    assert altitude - 1000 == round(expected_alt) == 32 and satellites >= 6


@pytest.mark.parametrize(("north", "east", "centidegrees"), [(1.0, -1e-6, 0), (1.0, -0.001, 35994), (-1.0, 0.0, 18000)])
def test_a_course_a_hair_west_of_north_wraps_to_zero_not_an_error(north, east, centidegrees):
    """Flying north with the slightest drift west: 359.99995 degrees rounds to 360.00, sent as 0.00
    (it used to be refused, an I/O error a tick on the rc-in port, found flying a joystick north)."""
    found = dict(parsed(crsf_telemetry(snapshot(velocity_ned_m_s=(north, east, 0.0)))))
    assert struct.unpack(">iiHHHB", found[0x02])[3] == centidegrees


def test_an_electric_helicopter_sends_its_battery_and_a_nitro_one_none():
    (battery,) = [f for f in crsf_telemetry(snapshot()) if isinstance(f, crsf.Battery)]
    decoded = crsf_parser.frames.crsf_frame.parse(crsf.encode(battery))
    assert decoded.payload.voltage == 222  # 0.1 V
    assert decoded.payload.current == 123  # 0.1 A: the motor model's current
    assert decoded.payload.capacity == 322  # mAh used
    assert 0x08 not in dict(parsed(crsf_telemetry(snapshot(battery_voltage_v=0.0))))


def test_every_frame_the_radio_gets_has_the_length_and_crc_another_implementation_expects():
    types = [t for t, _ in parsed(crsf_telemetry(snapshot()))]
    assert types == [0x1E, 0x09, 0x07, 0x21, 0x08, 0x02]  # attitude, baro, vario, mode, battery, GPS
