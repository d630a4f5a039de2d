"""The hover pilot's arithmetic for one vehicle, written once for numpy columns and for numba.

``sim.pilots.HoverPilot`` flies a fleet with it on numpy columns (``heli.ops.ARRAY``; one
vehicle on floats, ``heli.ops.SCALAR``), and ``sim.compiled`` compiles the same function into a
loop over the vehicles for a flight on the compiled kernels, where the pilot would otherwise cost
as much as the physics (some 80 numpy calls per frame, 100 frames a second).  The rules of
``heli.ops`` apply: no ``if`` on a value, ``xp.where`` instead; tuples, not lists.

The pilot's own state per vehicle is ``HoverState``'s columns; what it reads of a vehicle is
``VEHICLE_COLUMNS`` of the vehicle state, in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from heli.layout import Layout, column
from heli.state import StateIndex
from sim.protocols.rc import CENTRE_US, HALF_RANGE_US

__all__ = ["HOVER_STATE_SIZE", "NOT_YET", "VEHICLE_COLUMNS", "HoverConstants", "HoverState", "hover_kernel"]

POSITION_P = 1.0  # (m/s^2) per m
POSITION_D = 1.8  # (m/s^2) per m/s
POSITION_I = 0.25  # (m/s^2) per m s
ALTITUDE_P = 1.5
ALTITUDE_D = 2.0
ALTITUDE_I = 0.4
ALTITUDE_INTEGRAL_LIMIT = 5.0  # m s
POSITION_INTEGRAL_LIMIT = 2.0 / POSITION_I  # m s: the integral alone asks at most 2 m/s^2
GRAVITY_M_S2 = 9.81
MAX_TILT_RAD = math.radians(20.0)
LIFTOFF_TILT_RAD = math.radians(2.0)  # the most it leans into a drift just off the ground ...
LIFTOFF_LOW_M, LIFTOFF_HIGH_M = 1.5, 4.0  # ... growing to MAX_TILT_RAD between these heights
AIRBORNE_HEIGHT_M = 0.3  # above its ground: the position hold leans
LANDED_HEIGHT_M = 0.01  # hover:SECONDS: within this of its ground ...
LANDED_SINK_M_S = 0.2  # ... and this slow, it is down
CLIMB_SPANS = 3.0  # the climb counts as done after this many of its time constants (95 %)
FLARE_HEIGHT_M = 1.0  # hover:SECONDS, landing: below this the descent eases off ...
FLARE_AIM_BELOW_M = 1.0  # ... towards a point this far under the ground (ground effect holds it up)
EXP_ARGUMENT_MAX = 40.0  # the climb's rest past 40 time constants is below a float's resolution of the height
ARMED_US = 2000.0
DISARMED_US = CENTRE_US - HALF_RANGE_US
NOT_YET = math.inf  # the take-off time of a vehicle still spooling up

# what the kernel reads of a vehicle's state, in this order: position and velocity (NED), attitude, rotor speed
VEHICLE_NAMES = ("pn", "pe", "pd", "vn", "ve", "vd", "qw", "qx", "qy", "qz", "omega")
VEHICLE_COLUMNS = tuple(StateIndex.index(name) for name in VEHICLE_NAMES)


class HoverState(Layout):
    """The hover pilot's columns per vehicle (``heli.layout``: what ``hover_kernel`` reads and returns)."""

    TARGET_NORTH: int = column("target_north", "m: the take-off point, held")
    TARGET_EAST: int = column("target_east", "m")
    GROUND_ALTITUDE: int = column(
        "ground", "m: where it took off from (for one that starts up: its height less the target height)"
    )
    TAKEOFF_TIME: int = column("takeoff", "s of simulated time; NOT_YET while it spools up")
    HEADING_COS: int = column("heading_cos", "the heading to hold, as a unit vector")
    HEADING_SIN: int = column("heading_sin", "")
    NORTH_INTEGRAL: int = column("north_i", "m s")
    EAST_INTEGRAL: int = column("east_i", "m s")
    ALTITUDE_INTEGRAL: int = column("altitude_i", "m s")
    LANDED: int = column("landed", "1.0: hover:SECONDS, down again and disarmed")


HOVER_STATE_SIZE = HoverState.SIZE


@dataclass(frozen=True)
class HoverConstants:
    """What the kernel reads of the pilot's tuning, worked out once (``HoverPilot`` makes it)."""

    hover_collective_deg: float
    accel_per_collective_deg: float  # m/s^2 per degree
    collective_max_deg: float
    stick_us_per_tilt_rad: float  # pitch and roll: microseconds of stick per radian of lean asked
    yaw_stick_per_heading_rad: float  # full yaw stick per radian of heading error
    spooled_rad_s: float  # the head speed at which it lifts off
    target_altitude_m: float
    approach_s: float  # the climb's time constant
    hold_s: float  # then the descent; inf: hover on
    descent_rate_m_s: float
    straight_descent_s: float  # down at the descent rate for this long, then the flare
    airborne_start: bool


def hover_kernel(xp: Any, c: HoverConstants, s: tuple, v: tuple, t: float, dt: float) -> tuple:
    """One frame of the hover pilot for one vehicle (or numpy columns of many): ``s`` its
    ``HoverState`` columns, ``v`` the ``VEHICLE_COLUMNS`` of its state, ``t`` the simulated time and
    ``dt`` the time since the last frame.  Returns (the new ``HoverState`` columns, the
    (collective, pitch, roll, yaw, arm) channels in microseconds).  Armed from the first frame:
    ``HoverPilot`` sends the frames before the arming time itself."""
    target_north, target_east, ground, takeoff, heading_cos, heading_sin, north_i, east_i, altitude_i, landed = s
    pn, pe, pd, vn, ve, vd, qw, qx, qy, qz, omega = v  # VEHICLE_NAMES

    # spooled up: it takes off (and is flying from then on)
    takeoff = xp.where((takeoff == NOT_YET) & (omega >= c.spooled_rad_s), t, takeoff)
    flying = takeoff < NOT_YET
    climb_time = xp.where(flying, t - takeoff, 0.0)

    # height: a first-order approach to the target (climbing at the climb rate at first, easing off
    # near the top), PID on height and climb rate, feed-forward from trim
    remaining = c.target_altitude_m * xp.exp(-xp.minimum(climb_time / c.approach_s, EXP_ARGUMENT_MAX))
    target_altitude = ground + c.target_altitude_m - remaining
    target_climb = remaining / c.approach_s
    altitude = -pd
    if c.hold_s < NOT_YET:  # (a constant: the same branch for every vehicle, on every backend)
        # hover:SECONDS: after the hold (from the end of the climb, or at once for a flight that starts
        # up), down at the descent rate, then easing off over the last metre towards a point below the
        # ground, so that it touches at about half the descent rate and keeps pressing down
        held = xp.where(c.airborne_start, t, climb_time - CLIMB_SPANS * c.approach_s)
        descending = xp.where(flying, held - c.hold_s, -1.0)
        elapsed = xp.maximum(descending, 0.0)
        rate, span = c.descent_rate_m_s, FLARE_HEIGHT_M + FLARE_AIM_BELOW_M
        decay = xp.exp(-xp.maximum(elapsed - c.straight_descent_s, 0.0) * rate / span)
        straight = elapsed < c.straight_descent_s
        down_height = xp.where(straight, c.target_altitude_m - rate * elapsed, -FLARE_AIM_BELOW_M + span * decay)
        down_climb = xp.where(straight, -rate, -rate * decay)
        target_altitude = xp.where(descending > 0.0, ground + down_height, target_altitude)
        target_climb = xp.where(descending > 0.0, down_climb, target_climb)
        touched = (descending > 0.0) & (altitude < ground + LANDED_HEIGHT_M) & (xp.abs(vd) < LANDED_SINK_M_S)
        landed = xp.maximum(landed, xp.where(touched, 1.0, 0.0))

    altitude_error = target_altitude - altitude
    altitude_i = xp.where(
        flying,
        xp.clip(altitude_i + altitude_error * dt, -ALTITUDE_INTEGRAL_LIMIT, ALTITUDE_INTEGRAL_LIMIT),
        altitude_i,
    )
    accel = ALTITUDE_P * altitude_error + ALTITUDE_D * (target_climb + vd) + ALTITUDE_I * altitude_i
    collective_deg = c.hover_collective_deg + accel / c.accel_per_collective_deg
    collective_stick = xp.where(flying, collective_deg / c.collective_max_deg, 0.0)
    collective_us = CENTRE_US + HALF_RANGE_US * xp.clip(collective_stick, -1.0, 1.0)

    # position: accelerations towards the take-off point, as lean in the heading's frame
    height = altitude - ground
    airborne = flying & (height > AIRBORNE_HEIGHT_M)
    error_north, error_east = target_north - pn, target_east - pe
    limit = POSITION_INTEGRAL_LIMIT
    north_i = xp.where(airborne, xp.clip(north_i + error_north * dt, -limit, limit), north_i)
    east_i = xp.where(airborne, xp.clip(east_i + error_east * dt, -limit, limit), east_i)
    accel_north = POSITION_P * error_north - POSITION_D * vn + POSITION_I * north_i
    accel_east = POSITION_P * error_east - POSITION_D * ve + POSITION_I * east_i
    # the heading as a unit vector, from the quaternion: the nose's direction on the ground
    nose_north = 1.0 - 2.0 * (qy * qy + qz * qz)
    nose_east = 2.0 * (qw * qz + qx * qy)
    length = xp.maximum(xp.sqrt(nose_north * nose_north + nose_east * nose_east), 1e-12)  # 0: nose straight down
    yaw_cos, yaw_sin = nose_north / length, nose_east / length
    forward = accel_north * yaw_cos + accel_east * yaw_sin
    right = accel_east * yaw_cos - accel_north * yaw_sin
    # near the ground a careful pilot climbs out first and leans only a little into a drift (a sharp
    # bank there puts a skid into the grass); the full correction from a few metres up
    reach = xp.clip((height - LIFTOFF_LOW_M) / (LIFTOFF_HIGH_M - LIFTOFF_LOW_M), 0.0, 1.0)
    max_tilt = LIFTOFF_TILT_RAD + reach * (MAX_TILT_RAD - LIFTOFF_TILT_RAD)
    nose_down = xp.clip(xp.atan(forward / GRAVITY_M_S2), -max_tilt, max_tilt)
    bank = xp.clip(xp.atan(right / GRAVITY_M_S2), -max_tilt, max_tilt)
    pitch_us = xp.where(airborne, CENTRE_US + c.stick_us_per_tilt_rad * nose_down, CENTRE_US)
    roll_us = xp.where(airborne, CENTRE_US + c.stick_us_per_tilt_rad * bank, CENTRE_US)

    # heading hold: the angle from the heading now to the one held, -pi..pi
    heading_error = xp.atan2(
        heading_sin * yaw_cos - heading_cos * yaw_sin, heading_cos * yaw_cos + heading_sin * yaw_sin
    )
    yaw_stick = xp.clip(c.yaw_stick_per_heading_rad * heading_error, -0.5, 0.5)
    yaw_us = xp.where(flying, CENTRE_US + HALF_RANGE_US * yaw_stick, CENTRE_US)

    # down (hover:SECONDS): sticks centred, zero pitch (no thrust either way), disarmed
    down_now = landed > 0.5
    channels = (
        xp.where(down_now, CENTRE_US, collective_us),
        xp.where(down_now, CENTRE_US, pitch_us),
        xp.where(down_now, CENTRE_US, roll_us),
        xp.where(down_now, CENTRE_US, yaw_us),
        xp.where(down_now, DISARMED_US, ARMED_US),
    )
    state = (target_north, target_east, ground, takeoff, heading_cos, heading_sin, north_i, east_i, altitude_i, landed)
    return state, channels
