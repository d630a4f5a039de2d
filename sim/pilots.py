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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from heli.dynamics import FlightModel
from heli.errors import ConfigError
from heli.ops import ARRAY, SCALAR
from heli.params import quantity
from heli.state import VehicleState
from heli.trim import TrimResult, collective_sensitivity
from sim.config import MAX_DURATION_S, PILOT_KINDS, ChannelMap, HeliConfig, load_toml
from sim.dataclass_io import build
from sim.hover_kernel import (
    FLARE_HEIGHT_M,
    HOVER_STATE_SIZE,
    NOT_YET,
    VEHICLE_COLUMNS,
    HoverConstants,
    HoverState,
    hover_kernel,
)
from sim.rc import CENTRE_US, CHANNEL_COUNT, HALF_RANGE_US, neutral_channels, pulse_us

if TYPE_CHECKING:
    from sim.compiled import CompiledKernels

__all__ = ["SCRIPT_CHANNELS", "HoverPilot", "Pilot", "PilotScript", "ScriptEntry", "ScriptPilot"]

SCRIPT_CHANNELS = ("roll", "pitch", "collective", "yaw", "arm", "mode", "throttle_hold")
_STICKS = ("roll", "pitch", "collective", "yaw")
_ANGLE_MODE_US = 1500.0
_STANDARD_US = (CENTRE_US - HALF_RANGE_US, CENTRE_US, CENTRE_US + HALF_RANGE_US)  # a stick's min, centre, max
HEADING_P = 2.0  # hover pilot: (rad/s of yaw rate asked) per rad of heading error
SPOOLED_FRACTION = 0.95  # hover pilot: it lifts off at this share of the head speed
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
    """Spool up, take off to ``target_altitude_m`` and hold position and heading (angle mode).

    The arithmetic per vehicle is ``sim.hover_kernel``; ``kernels`` (a flight's compiled kernels)
    runs it compiled, else it runs on numpy columns (on floats for one vehicle)."""

    def __init__(
        self,
        tuning: HoverTuning,
        channel_map: ChannelMap,
        start: VehicleState,
        *,
        airborne: bool = False,
        kernels: CompiledKernels | None = None,
    ):
        self.tuning = tuning
        self.channel_map = channel_map
        self.airborne_start = airborne
        self.kernels = kernels
        approach_s = tuning.target_altitude_m / tuning.climb_rate_m_s
        self.constants = HoverConstants(
            hover_collective_deg=tuning.hover_collective_deg,
            accel_per_collective_deg=tuning.accel_per_collective_deg,
            collective_max_deg=tuning.collective_max_deg,
            stick_us_per_tilt_rad=HALF_RANGE_US / math.radians(tuning.max_angle_deg),
            yaw_stick_per_heading_rad=HEADING_P / math.radians(tuning.yaw_rate_max_deg_s),
            spooled_rad_s=SPOOLED_FRACTION * tuning.headspeed_rad_s,
            target_altitude_m=tuning.target_altitude_m,
            approach_s=approach_s,
            hold_s=math.inf if tuning.hold_s is None else tuning.hold_s,
            descent_rate_m_s=tuning.descent_rate_m_s,
            straight_descent_s=max(tuning.target_altitude_m - FLARE_HEIGHT_M, 0.0) / tuning.descent_rate_m_s,
            airborne_start=airborne,
        )
        columns = np.zeros((HOVER_STATE_SIZE, start.count))  # (the kernels read and write columns)
        columns[HoverState.TARGET_NORTH] = start.position_ned_m[:, 0]
        columns[HoverState.TARGET_EAST] = start.position_ned_m[:, 1]
        ground = start.altitude_m - tuning.target_altitude_m if airborne else start.altitude_m
        columns[HoverState.GROUND_ALTITUDE] = ground
        columns[HoverState.TAKEOFF_TIME] = -1e9 if airborne else NOT_YET
        yaw = np.radians(start.euler_deg()[:, 2])
        columns[HoverState.HEADING_COS], columns[HoverState.HEADING_SIN] = np.cos(yaw), np.sin(yaw)
        self.state = columns
        # what each frame starts from; by column, as each channel is written and read whole
        self._idle = np.asfortranarray(neutral_channels(start.count, channel_map))
        self._idle[:, channel_map.mode - 1] = _ANGLE_MODE_US
        self._idle[:, channel_map.collective - 1] = CENTRE_US  # zero pitch while spooling up
        cmap = channel_map
        self._written = [cmap.collective - 1, cmap.pitch - 1, cmap.roll - 1, cmap.yaw - 1, cmap.arm - 1]
        # its radio is set up as the flight's [rc] says: a calibration or a reversal other than the
        # standard one moves its sticks' pulses accordingly, so the controller reads the sticks it means
        self._calibrated = [
            stick for stick in ("collective", "pitch", "roll", "yaw")
            if cmap.calibration(stick) != _STANDARD_US or stick in cmap.reversed
        ]  # fmt: skip
        self._through_calibration(self._idle)
        self.last_t: float | None = None

    @property
    def landed(self) -> np.ndarray:
        """Per vehicle: down again and disarmed (``hover:SECONDS``)."""
        return self.state[HoverState.LANDED] > 0.5

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        dt = 0.0 if self.last_t is None else max(0.0, t_s - self.last_t)
        self.last_t = t_s
        frames = self._idle.copy(order="F")
        if t_s < self.tuning.arm_at_s and not self.airborne_start:
            return frames
        sticks: np.ndarray | Sequence
        if self.kernels is not None:
            self.state, sticks = self.kernels.hover(self.constants, self.state, vehicles, t_s, dt)
        else:
            self.state, sticks = self._numpy_frame(vehicles, t_s, dt)
        for column, values in zip(self._written, sticks, strict=True):
            frames[:, column] = values
        self._through_calibration(frames)
        return frames

    def _through_calibration(self, frames: np.ndarray) -> None:
        """The sticks' standard pulses (1000-1500-2000 us) as the flight's calibrated, reversed radio sends them."""
        for stick in self._calibrated:
            column = getattr(self.channel_map, stick) - 1
            frames[:, column] = pulse_us((frames[:, column] - CENTRE_US) / HALF_RANGE_US, self.channel_map, stick)

    def _numpy_frame(self, vehicles: VehicleState, t_s: float, dt_s: float) -> tuple[np.ndarray, Sequence]:
        """``hover_kernel`` on numpy columns (one vehicle: on floats, ~20x faster than 1-element arrays)."""
        if vehicles.count == 1:
            row = vehicles.packed[0]
            state, sticks = hover_kernel(
                SCALAR, self.constants, tuple(self.state[:, 0].tolist()),
                tuple(row[list(VEHICLE_COLUMNS)].tolist()), t_s, dt_s,
            )  # fmt: skip
            return np.array(state, dtype=np.float64).reshape(HOVER_STATE_SIZE, 1), sticks
        columns = vehicles.packed.T
        state, sticks = hover_kernel(
            ARRAY, self.constants, tuple(self.state), tuple(columns[c] for c in VEHICLE_COLUMNS), t_s, dt_s
        )
        new = np.empty_like(self.state)
        for index, value in enumerate(state):
            new[index] = value
        return new, sticks


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
    kernels: CompiledKernels | None = None,
) -> Pilot:
    """The pilot named by ``spec`` (hover[:SECONDS] or script:FILE) for the vehicles of ``start``
    (the hover pilot on ``kernels``, a flight's compiled kernels, if given)."""
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
        return HoverPilot(tuning, channel_map, start, airborne=airborne, kernels=kernels)
    if spec.startswith("script:"):
        return ScriptPilot(spec.removeprefix("script:"), channel_map, start.count)
    if spec == "neutral":
        return NeutralPilot(channel_map, start.count)
    in_process = " and ".join(kind.shape for kind in PILOT_KINDS.values() if not kind.transmitter)
    raise ConfigError(
        f"pilot {spec!r} is a transmitter (the view's keyboard, or an emulated one reading a joystick) and needs "
        f"an rc-in port; in-process pilots are {in_process}"
    )
