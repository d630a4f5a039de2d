"""Where the flight is on Earth: the home position, and local north-east-down metres to latitude,
longitude and altitude for the telemetry a ground station puts on its map (MAVLink
GLOBAL_POSITION_INT and GPS_RAW_INT, the CRSF GPS frame).

The flight's position is metres north, east and down of home (its NED origin, the take-off
point).  The conversion is the local tangent plane: metres north divided by the WGS-84 meridian
radius of curvature at home's latitude, metres east by the prime-vertical radius times the
cosine of the latitude.  Within a few kilometres of home, where RC helicopters fly, it is off by
less than a millimetre per kilometre squared, far below a GPS receiver's metres.  Altitude is
above mean sea level: home's altitude minus metres down.
"""

from __future__ import annotations

import math

__all__ = ["WGS84_A_M", "WGS84_E2", "ned_to_geodetic"]

WGS84_A_M = 6378137.0  # WGS-84 semi-major axis
WGS84_E2 = 6.69437999014e-3  # WGS-84 first eccentricity squared


def ned_to_geodetic(
    north_m: float, east_m: float, down_m: float, latitude_deg: float, longitude_deg: float, altitude_m: float
) -> tuple[float, float, float]:
    """(latitude deg, longitude deg, altitude m above mean sea level) of a point ``north_m``,
    ``east_m``, ``down_m`` from home at ``latitude_deg``, ``longitude_deg``, ``altitude_m``."""
    phi = math.radians(latitude_deg)
    sin2 = math.sin(phi) ** 2
    meridian_m = WGS84_A_M * (1.0 - WGS84_E2) / (1.0 - WGS84_E2 * sin2) ** 1.5
    prime_vertical_m = WGS84_A_M / math.sqrt(1.0 - WGS84_E2 * sin2)
    latitude = latitude_deg + math.degrees(north_m / meridian_m)
    cos_phi = max(math.cos(phi), 1e-9)  # at a pole east has no meaning: no division by zero
    longitude = longitude_deg + math.degrees(east_m / (prime_vertical_m * cos_phi))
    longitude = (longitude + 180.0) % 360.0 - 180.0
    return latitude, longitude, altitude_m - down_m
