"""Pilots for flights without a transmitter: they produce RC channel frames in microseconds.

``HoverPilot`` flies like a careful human in angle mode: arms, waits for the governor to spool
up, climbs to the target height and holds position and heading over its take-off point; with a
hold time (``hover:SECONDS``) it then descends, lands, lowers the collective and disarms.
``ScriptPilot`` plays a TOML timeline of stick values (``--pilot script:FILE``, see the
contract in the README).  Both return one frame of ``CHANNEL_COUNT`` channels per vehicle and
are called once per loop tick with the simulated time and the vehicles' state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from heli.dynamics import FlightModel
from heli.errors import ConfigError
from heli.params import quantity
from heli.state import VehicleState
from heli.trim import TrimResult, collective_sensitivity
from sim.config import MAX_DURATION_S, PILOT_KINDS, ChannelMap, HeliConfig, load_toml
from sim.dataclass_io import build
from sim.rc import CENTRE_US, CHANNEL_COUNT, HALF_RANGE_US, neutral_channels

__all__ = ["SCRIPT_CHANNELS", "HoverPilot", "Pilot", "PilotScript", "ScriptEntry", "ScriptPilot"]

SCRIPT_CHANNELS = ("roll", "pitch", "collective", "yaw", "arm", "mode", "throttle_hold")
_STICKS = ("roll", "pitch", "collective", "yaw")
_ARMED_US = 2000.0
_ANGLE_MODE_US = 1500.0
_SCRIPT_MIN_US, _SCRIPT_MAX_US = 800.0, 2200.0
_SCRIPT_US_WHY = "RC pulses: 1000-2000 us, some radios reach 800-2200"
_SCRIPT_TIME_WHY = "a flight of up to 11.6 days"
MAX_SCRIPT_ENTRIES = 100_000


class Pilot(Protocol):
    """Something that moves the sticks."""

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        """(N, CHANNEL_COUNT) channel values in microseconds at simulated time ``t_s``."""
        ...


@dataclass(frozen=True)
class HoverTuning:
    """What the hover pilot knows about its helicopter and how it flies it."""

    hover_collective_deg: float  # from trim
    accel_per_collective_deg: float  # m/s^2 per degree, from heli.trim.collective_sensitivity
    collective_max_deg: float  # full stick
    max_angle_deg: float  # angle mode at full stick
    yaw_rate_max_deg_s: float
    headspeed_rad_s: float
    target_altitude_m: float = 5.0
    climb_rate_m_s: float = 1.5
    arm_at_s: float = 0.5
    hold_s: float | None = None  # after this long at the target height: land and disarm (None: hover on)
    descent_rate_m_s: float = 0.5


class HoverPilot:
    """Spool up, take off to ``target_altitude_m`` and hold position and heading (angle mode)."""

    _POSITION_P = 1.0  # (m/s^2) per m
    _POSITION_D = 1.8  # (m/s^2) per m/s
    _POSITION_I = 0.25  # (m/s^2) per m s
    _ALTITUDE_P = 1.5
    _ALTITUDE_D = 2.0
    _ALTITUDE_I = 0.4
    _HEADING_P = 2.0  # (rad/s) per rad
    _MAX_TILT_RAD = math.radians(20.0)
    _LIFTOFF_TILT_RAD = math.radians(2.0)  # the most it leans into a drift just off the ground ...
    _LIFTOFF_HEIGHTS_M = (1.5, 4.0)  # ... growing to _MAX_TILT_RAD between these heights
    _INTEGRAL_LIMIT = 2.0 / _POSITION_I  # m s: the integral alone asks at most 2 m/s^2
    _SPOOLED_FRACTION = 0.95
    _CLIMB_SPANS = 3.0  # the climb counts as done after this many of its time constants (95 %)
    _FLARE_HEIGHT_M = 1.0  # hover:SECONDS, landing: below this the descent eases off ...
    _FLARE_AIM_BELOW_M = 1.0  # ... towards a point this far under the ground (ground effect holds it up)

    def __init__(self, tuning: HoverTuning, channel_map: ChannelMap, start: VehicleState, *, airborne: bool = False):
        self.tuning = tuning
        self.channel_map = channel_map
        count = start.count
        self.target_ne = start.position_ned_m[:, 0:2].copy()
        self.heading = np.radians(start.euler_deg()[:, 2])
        self.ground_altitude = start.altitude_m.copy()
        self.airborne_start = airborne
        self.takeoff_time = np.full(count, -1e9 if airborne else np.nan)
        if airborne:
            self.ground_altitude[:] = start.altitude_m - tuning.target_altitude_m
        self.position_integral = np.zeros((count, 2))
        self.altitude_integral = np.zeros(count)
        self.landed = np.zeros(count, dtype=bool)  # hover:SECONDS: down again, disarmed
        self.last_t: float | None = None

    def _descent(self, elapsed_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Height above the ground and climb rate ``elapsed_s`` into the descent: straight down at
        the descent rate to the flare height, then an exponential towards a point below the ground
        (so it touches at about half the descent rate, and keeps pressing down)."""
        tune, flare, below = self.tuning, self._FLARE_HEIGHT_M, self._FLARE_AIM_BELOW_M
        rate = tune.descent_rate_m_s
        straight_s = max(tune.target_altitude_m - flare, 0.0) / rate
        span = flare + below
        after = np.maximum(elapsed_s - straight_s, 0.0)
        decay = np.exp(-after * rate / span)
        height = np.where(elapsed_s < straight_s, tune.target_altitude_m - rate * elapsed_s, -below + span * decay)
        climb = np.where(elapsed_s < straight_s, -rate, -rate * decay)
        return height, climb

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        tune, cmap = self.tuning, self.channel_map
        dt = 0.0 if self.last_t is None else max(0.0, t_s - self.last_t)
        self.last_t = t_s
        frames = neutral_channels(vehicles.count, cmap)
        frames[:, cmap.mode - 1] = _ANGLE_MODE_US
        frames[:, cmap.collective - 1] = CENTRE_US  # zero pitch while spooling up
        if t_s < tune.arm_at_s and not self.airborne_start:
            return frames
        frames[:, cmap.arm - 1] = _ARMED_US
        spooled = vehicles.rotor_speed_rad_s >= self._SPOOLED_FRACTION * tune.headspeed_rad_s
        self.takeoff_time = np.where(np.isnan(self.takeoff_time) & spooled, t_s, self.takeoff_time)
        flying = ~np.isnan(self.takeoff_time)

        # height: a first-order approach to the target (climbing at climb_rate_m_s at first, easing
        # off near the top), PID on height and climb rate, feed-forward from trim
        climb_time = np.where(flying, t_s - np.nan_to_num(self.takeoff_time), 0.0)
        approach_s = tune.target_altitude_m / tune.climb_rate_m_s
        remaining = tune.target_altitude_m * np.exp(-climb_time / approach_s)
        target_alt = self.ground_altitude + tune.target_altitude_m - remaining
        target_climb = remaining / approach_s
        if tune.hold_s is not None:  # then down at descent_rate_m_s, easing off over the last metre
            # the hold starts once the climb is done, or at once for a flight that starts in the air
            held = t_s if self.airborne_start else climb_time - self._CLIMB_SPANS * approach_s
            descending = np.where(flying, held - tune.hold_s, -1.0)
            height, climb_to = self._descent(np.maximum(descending, 0.0))
            target_alt = np.where(descending > 0.0, self.ground_altitude + height, target_alt)
            target_climb = np.where(descending > 0.0, climb_to, target_climb)
            landed = (descending > 0.0) & (vehicles.altitude_m < self.ground_altitude + 0.01)  # on the skids
            landed &= np.abs(vehicles.velocity_ned_m_s[:, 2]) < 0.2
            self.landed |= landed
        alt_error = target_alt - vehicles.altitude_m
        climb = -vehicles.velocity_ned_m_s[:, 2]
        self.altitude_integral = np.where(
            flying, np.clip(self.altitude_integral + alt_error * dt, -5.0, 5.0), self.altitude_integral
        )
        accel = self._ALTITUDE_P * alt_error + self._ALTITUDE_D * (target_climb - climb)
        accel += self._ALTITUDE_I * self.altitude_integral
        collective_deg = tune.hover_collective_deg + accel / tune.accel_per_collective_deg
        collective_stick = np.where(flying, collective_deg / tune.collective_max_deg, 0.0)
        frames[:, cmap.collective - 1] = CENTRE_US + HALF_RANGE_US * np.clip(collective_stick, -1.0, 1.0)

        # position: accelerations towards the take-off point, as tilt in the heading frame
        error_ne = self.target_ne - vehicles.position_ned_m[:, 0:2]
        airborne = flying & (vehicles.altitude_m > self.ground_altitude + 0.3)
        self.position_integral = np.where(
            airborne[:, None],
            np.clip(self.position_integral + error_ne * dt, -self._INTEGRAL_LIMIT, self._INTEGRAL_LIMIT),
            self.position_integral,
        )
        accel_ne = self._POSITION_P * error_ne - self._POSITION_D * vehicles.velocity_ned_m_s[:, 0:2]
        accel_ne += self._POSITION_I * self.position_integral
        yaw = np.radians(vehicles.euler_deg()[:, 2])
        forward = accel_ne[:, 0] * np.cos(yaw) + accel_ne[:, 1] * np.sin(yaw)
        right = -accel_ne[:, 0] * np.sin(yaw) + accel_ne[:, 1] * np.cos(yaw)
        gravity = 9.81
        # near the ground a careful pilot climbs out first and leans only a little into a drift (a
        # sharp bank there puts a skid into the grass); the full correction from a couple of metres up
        height = vehicles.altitude_m - self.ground_altitude
        max_tilt = np.interp(height, self._LIFTOFF_HEIGHTS_M, (self._LIFTOFF_TILT_RAD, self._MAX_TILT_RAD))
        nose_down = np.clip(np.arctan(forward / gravity), -max_tilt, max_tilt)
        bank = np.clip(np.arctan(right / gravity), -max_tilt, max_tilt)
        max_angle = math.radians(tune.max_angle_deg)
        frames[:, cmap.pitch - 1] = np.where(airborne, CENTRE_US + HALF_RANGE_US * nose_down / max_angle, CENTRE_US)
        frames[:, cmap.roll - 1] = np.where(airborne, CENTRE_US + HALF_RANGE_US * bank / max_angle, CENTRE_US)

        # heading hold
        heading_error = (self.heading - yaw + math.pi) % (2.0 * math.pi) - math.pi
        yaw_stick = np.clip(self._HEADING_P * heading_error / math.radians(tune.yaw_rate_max_deg_s), -0.5, 0.5)
        frames[:, cmap.yaw - 1] = np.where(flying, CENTRE_US + HALF_RANGE_US * yaw_stick, CENTRE_US)
        if self.landed.any():  # down: sticks centred, zero pitch (no thrust either way), disarmed
            frames[self.landed] = neutral_channels(int(self.landed.sum()), cmap)
            frames[self.landed, cmap.mode - 1] = _ANGLE_MODE_US
            frames[self.landed, cmap.collective - 1] = CENTRE_US
        return frames


class NeutralPilot:
    """Sticks centred, collective low, disarmed, angle mode: nobody at the sticks."""

    def __init__(self, channel_map: ChannelMap, count: int):
        self.frames = neutral_channels(count, channel_map)
        self.frames[:, channel_map.mode - 1] = _ANGLE_MODE_US

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        return self.frames


@dataclass(frozen=True)
class ScriptEntry:
    """One ``[[at]]`` entry of a pilot script: a time, and the channels that change then (microseconds)."""

    t: float = quantity("s", ge=0.0, le=MAX_DURATION_S, doc="from the start of the flight", why=_SCRIPT_TIME_WHY)
    roll: float | None = quantity("us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, why=_SCRIPT_US_WHY)
    pitch: float | None = quantity("us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, why=_SCRIPT_US_WHY)
    collective: float | None = quantity("us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, why=_SCRIPT_US_WHY)
    yaw: float | None = quantity("us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, why=_SCRIPT_US_WHY)
    arm: float | None = quantity(
        "us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, doc="> 1700 armed", why=_SCRIPT_US_WHY
    )
    mode: float | None = quantity(
        "us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, doc="< 1300 rate, 1300-1700 angle, > 1700 rescue",
        why=_SCRIPT_US_WHY,
    )  # fmt: skip
    throttle_hold: float | None = quantity(
        "us", ge=_SCRIPT_MIN_US, le=_SCRIPT_MAX_US, default=None, doc="> 1700 held: the motor stops", why=_SCRIPT_US_WHY
    )


@dataclass(frozen=True)
class PilotScript:
    """A pilot script (``--pilot script:FILE``): ``[[at]]`` entries in time order."""

    at: tuple[ScriptEntry, ...] = quantity(
        "-", max_items=MAX_SCRIPT_ENTRIES, doc="the timeline", why="a 1 MiB file holds about 25,000 entries"
    )

    def __post_init__(self) -> None:
        if not self.at:
            raise ConfigError("at: expected a list of [[at]] entries, each with t and channel values in us; got none")
        for index in range(1, len(self.at)):
            before, now = self.at[index - 1].t, self.at[index].t
            if now < before:
                raise ConfigError(
                    f"at[{index}].t = {now:g}: entries must be in time order (at[{index - 1}].t = {before:g})"
                )


class ScriptPilot:
    """Stick values from a TOML timeline of ``[[at]]`` entries (see the README's contract).

    Sticks (roll, pitch, collective, yaw) are interpolated linearly between entries; arm, mode
    and throttle hold are held from the last entry at or before ``t``; a channel an entry leaves
    out keeps its previous value.  Before the first entry: sticks centred, collective low,
    disarmed, angle mode, no throttle hold.
    """

    def __init__(self, path: str | Path, channel_map: ChannelMap, count: int):
        self.channel_map = channel_map
        self.count = count
        script = build(PilotScript, load_toml(path, what="pilot script"), source=str(path))
        if not channel_map.hold_channel and any(entry.throttle_hold is not None for entry in script.at):
            raise ConfigError(
                f"{path}: the script sets throttle_hold, but the flight's channel map has no throttle-hold "
                "channel ([rc] throttle_hold is 0, or another function has channel 7); expected [rc] "
                "throttle_hold = a free channel"
            )
        initial = {"roll": CENTRE_US, "pitch": CENTRE_US, "yaw": CENTRE_US, "collective": 1000.0}
        initial.update(arm=1000.0, mode=_ANGLE_MODE_US, throttle_hold=1000.0)
        times, rows = [], []
        values = dict(initial)
        for entry in script.at:
            for key in SCRIPT_CHANNELS:
                if getattr(entry, key) is not None:
                    values[key] = getattr(entry, key)
            times.append(entry.t)
            rows.append([values[key] for key in SCRIPT_CHANNELS])
        self.initial = [initial[key] for key in SCRIPT_CHANNELS]
        self.times = np.array(times)
        self.rows = np.array(rows)

    def values_at(self, t_s: float) -> dict[str, float]:
        """Channel values (us) by function name at time ``t_s``."""
        if t_s < self.times[0]:
            return dict(zip(SCRIPT_CHANNELS, self.initial, strict=True))
        last = int(np.searchsorted(self.times, t_s, side="right")) - 1
        out = dict(zip(SCRIPT_CHANNELS, self.rows[last].tolist(), strict=True))
        if last + 1 < len(self.times):
            t0, t1 = self.times[last], self.times[last + 1]
            frac = (t_s - t0) / (t1 - t0) if t1 > t0 else 1.0
            for i, key in enumerate(SCRIPT_CHANNELS):
                if key in _STICKS:
                    out[key] = float(self.rows[last, i] + frac * (self.rows[last + 1, i] - self.rows[last, i]))
        return out

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        frames = np.full((self.count, CHANNEL_COUNT), CENTRE_US, dtype=np.float64)
        for key, value in self.values_at(t_s).items():
            if channel := self.channel_map.channel_of(key):  # throttle_hold may be 0: no such switch
                frames[:, channel - 1] = value
        return frames


def make_pilot(
    spec: str,
    heli: HeliConfig,
    model: FlightModel,
    trim: TrimResult,
    channel_map: ChannelMap,
    start: VehicleState,
    *,
    airborne: bool = False,
) -> Pilot:
    """The pilot named by ``spec`` (hover[:SECONDS] or script:FILE) for the vehicles of ``start``."""
    if spec == "hover" or spec.startswith("hover:"):
        params = heli.controller
        tuning = HoverTuning(
            hover_collective_deg=trim.collective_deg,
            accel_per_collective_deg=math.radians(collective_sensitivity(model, trim)),
            collective_max_deg=params.collective_max_deg,
            max_angle_deg=params.max_angle_deg,
            yaw_rate_max_deg_s=params.yaw_rate_max_deg_s,
            headspeed_rad_s=(
                params.governor_headspeed_rpm * math.pi / 30.0 if params.governor_headspeed_rpm > 0
                else model.nominal_speed
            ),
            hold_s=float(spec.removeprefix("hover:")) if spec.startswith("hover:") else None,
        )  # fmt: skip
        if airborne:  # already up: hold the height it starts at, over the real ground (the skids' height)
            height = float(np.median(start.altitude_m)) - model.params.contact.skid_depth_m
            tuning = replace(tuning, target_altitude_m=max(height, 0.1))
        return HoverPilot(tuning, channel_map, start, airborne=airborne)
    if spec.startswith("script:"):
        return ScriptPilot(spec.removeprefix("script:"), channel_map, start.count)
    if spec == "neutral":
        return NeutralPilot(channel_map, start.count)
    in_process = " and ".join(kind.shape for kind in PILOT_KINDS.values() if not kind.transmitter)
    raise ConfigError(
        f"pilot {spec!r} is a transmitter (the view's keyboard, or an emulated one reading a joystick) and needs "
        f"an rc-in port; in-process pilots are {in_process}"
    )
