"""Flybarless flight controller: rates, angle and rescue modes, tail, governor, failsafe, mixer.

The structure follows Rotorflight's (rate PID with feed-forward per axis, yaw precompensation
from collective and cyclic, a headspeed governor with spool-up, self-level and rescue), with
gains in physical units: cyclic and tail outputs are blade pitch in radians, so a feed-forward
gain ``f_s`` in seconds means "radians of cyclic per rad/s of demanded rate" (for a flybarless
rotor the steady roll rate is ``cyclic / flap time constant``, so ``f_s`` near that time
constant gives the demanded rate with no error to correct).

One call of ``control`` runs one controller cycle for N vehicles (``heli.ops`` kernel: floats
per vehicle for small fleets, arrays for large ones).  Inputs are the pilot's sticks, already
normalised by the simulator (``PilotInput``), and the vehicle state standing in for the
sensors (gyro = body rates, attitude, vertical speed, headspeed); outputs are servo positions
and throttle (``ActuatorCommand``) and the controller's new state.

Modes: rate (sticks command body rates), angle (sticks command roll and pitch angles up to
``max_angle_deg`` about the level trim, the attitude that hovers without drifting), rescue
(level, pull away from the ground if upside down, climb, hold).  Arm switch off is throttle
hold: the motor stops, the rotor keeps its cyclic and collective (so autorotations can be
flown).  When the pilot input is stale (``valid`` = 0) the failsafe levels the helicopter and
holds height for ``failsafe_level_s`` (braking its speed over the ground), then descends at
``failsafe_descent_m_s`` until it has stopped sinking for ``failsafe_landed_s`` with its
collective lowered (landed), then cuts the motor; a valid input hands control straight back to
the pilot.  On the ground (as the controller infers it) the self-level and the rate integrators
rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from heli.dynamics import SCALAR_BATCH_LIMIT, FlightModel
from heli.layout import Layout, column, columns
from heli.mixer import SwashGeometry, mix
from heli.ops import ARRAY, SCALAR
from heli.params import quantity
from heli.state import ActuatorCommand, StateIndex, VehicleState

__all__ = [
    "CONTROL_STATE_SIZE",
    "CONTROL_TERMS",
    "FLIGHT_MODES",
    "GOVERNOR_STATES",
    "PILOT_INPUT_SIZE",
    "ControlIndex",
    "ControllerConstants",
    "ControllerParams",
    "ControllerState",
    "PilotIndex",
    "PilotInput",
    "control",
    "control_with_terms",
    "governor_pi",
]


class PilotIndex(Layout):
    """The columns of ``PilotInput.packed`` (``heli.layout``)."""

    ROLL: int = column("stick_roll", "-1..1, right positive")
    PITCH: int = column("stick_pitch", "-1..1, forward (nose down) positive")
    YAW: int = column("stick_yaw", "-1..1, nose right positive")
    COLLECTIVE: int = column("stick_coll", "-1..1, up positive")
    ARM: int = column("stick_arm", "0/1")
    MODE: int = column("stick_mode", "0 rate, 1 angle, 2 rescue")
    VALID: int = column("valid", "0: stale input, failsafe")


class ControlIndex(Layout):
    """The columns of ``ControllerState.packed`` (``heli.layout``)."""

    RATE_I: slice = columns(
        ("i_roll", "i_pitch", "i_yaw"), "rate integrators, rad", ("i_roll_rad", "i_pitch_rad", "i_yaw_rad")
    )
    GYRO: slice = columns(
        ("gf_p", "gf_q", "gf_r"), "the D term's filtered gyro, rad/s",
        ("gyro_p_filt_rad_s", "gyro_q_filt_rad_s", "gyro_r_filt_rad_s"),
    )  # fmt: skip
    PRECOMP: int = column("precomp_f", "filtered tail precompensation, rad", "yaw_precomp_rad")
    GOVERNOR_I: int = column("gov_i", "governor integrator, throttle fraction", "governor_i_frac")
    GOVERNOR_SETPOINT: int = column("gov_sp", "governor setpoint, rad/s", "governor_setpoint_rad_s")
    GOVERNOR_STATE: int = column("gov_state", "a key of GOVERNOR_STATES", "governor_state_code")
    CLIMB_I: int = column("climb_i", "height-hold integrator (collective), rad", "climb_i_rad")
    FAILSAFE_TIME: int = column("fs_time", "s", "failsafe_time_s")
    FAILSAFE_ACTIVE: int = column("fs_active", "0/1", "failsafe_active")
    LANDED_TIME: int = column("landed_time", "s", "landed_time_s")
    FAILSAFE_ARMED: int = column("fs_armed", "armed at the failsafe's onset, 0/1", "failsafe_armed")
    RESCUE_TIME: int = column("rescue_time", "s", "rescue_time_s")
    COLLECTIVE: int = column("collective_prev", "the last cycle's collective, rad", "collective_rad")
    FLIGHT_MODE: int = column("mode_prev", "the flight mode in effect, a key of FLIGHT_MODES", "flight_mode_code")
    ON_GROUND: int = column(
        "on_ground", "time on the ground, s: on the ground from 0.5 s, as the controller infers it from "
        "its vertical speed and collective; 0 once airborne", "ground_time_s",
    )  # fmt: skip


PILOT_INPUT_SIZE = PilotIndex.SIZE
CONTROL_STATE_SIZE = ControlIndex.SIZE
# the vehicle state's columns the controller reads (its sensors), by name (numba: constants)
_VN, _VE, _VD = (StateIndex.index(name) for name in ("vn", "ve", "vd"))
_QW, _QX, _QY, _QZ = (StateIndex.index(name) for name in ("qw", "qx", "qy", "qz"))
_P, _Q, _R = (StateIndex.index(name) for name in ("p", "q", "r"))
_OMEGA = StateIndex.ROTOR_SPEED
_I_ROLL, _I_PITCH, _I_YAW = (ControlIndex.index(name) for name in ("i_roll", "i_pitch", "i_yaw"))
FLIGHT_MODES = {0: "rate", 1: "angle", 2: "rescue", 3: "failsafe: level", 4: "failsafe: descend", 5: "failsafe: landed"}
GOVERNOR_STATES = {0: "off", 1: "spool-up", 2: "active"}
# what one cycle computes and does not keep (``control_with_terms``): the setpoints, and the P, D and
# F terms of each rate PID (its I term is the integrator, kept in the state); rad of blade pitch
CONTROL_TERMS = (
    "sp_roll_rate_rad_s", "sp_pitch_rate_rad_s", "sp_yaw_rate_rad_s",  # rate setpoints
    "target_roll_rad", "target_pitch_rad",  # the attitude self-level aims at (angle, rescue, failsafe)
    "roll_p_rad", "roll_d_rad", "roll_f_rad", "pitch_p_rad", "pitch_d_rad", "pitch_f_rad",
    "yaw_p_rad", "yaw_d_rad", "yaw_f_rad",
    "climb_sp_m_s",  # the climb rate rescue and failsafe hold
)  # fmt: skip
_REFERENCE_PITCH_RAD = math.radians(12.0)  # precomp deflections are measured in units of 12 degrees
_I_DECAY_TIME_S = 0.5  # integrators bleed off at this rate while the rotor is too slow to fly
_I_ACTIVE_SPEED_FRACTION = 0.5  # ... i.e. below half of the governed headspeed
_UPRIGHT_COS = 0.5  # rescue pulls up (or down) until the tilt is below 60 degrees
_LANDED_SINK_M_S = 0.15  # failsafe: slower than this counts as "not descending"
_LIFTOFF_CLIMB_M_S = 0.25  # climbing faster than this: off the ground
_TOUCHDOWN_CONFIRM_S = 0.3  # failsafe: told to descend and not sinking this long, the collective is lowered
_TOUCHDOWN_SINK_M_S = 0.5  # ... "not sinking": slower than this
_BRAKE_LEAN_PER_M_S = math.atan(0.5 / 9.81)  # failsafe braking: 0.5 m/s^2 per m/s over the ground (a 2 s time constant)
_BRAKE_LEAN_MAX = math.radians(15.0)
_GROUND_COLLECTIVE_FRACTION = 0.5  # below this share of the hover collective, with no vertical speed ...
_GROUND_CONFIRM_S = 0.5  # ... for this long: on the ground
_GROUND_TIME_CAP_S = 10.0
# where the gains' ranges come from (blade pitch in rad per rad/s of rate error, as the module doc says)
_P_WHY = "RC tunes ~0.005-0.15"
_I_WHY = "RC tunes ~0.05-1"
_D_WHY = "RC tunes ~0-0.005"
_F_WHY = "about the rotor's flap time constant, 0.01-0.05 s"


@dataclass(frozen=True)
class ControllerParams:
    """Controller gains and limits (``[controller]`` in a helicopter's TOML file)."""

    roll_pitch_rate_max_deg_s: float = quantity("deg/s", gt=0.0, le=1000.0, default=240.0)
    yaw_rate_max_deg_s: float = quantity("deg/s", gt=0.0, le=2000.0, default=360.0)
    rate_expo: float = quantity("-", ge=0.0, le=1.0, default=0.4, doc="cubic share of the stick curve")
    roll_p_s: float = quantity("rad/(rad/s)", ge=0.0, le=1.0, default=0.012, why=_P_WHY)
    roll_i_per_s: float = quantity(
        "rad/rad", ge=0.0, le=20.0, default=0.3, doc="cyclic per rad of rate error integral", why=_I_WHY
    )
    roll_d_s2: float = quantity(
        "rad/(rad/s^2)", ge=0.0, le=0.1, default=0.0, doc="on the gyro, not the error", why=_D_WHY
    )
    roll_f_s: float = quantity(
        "rad/(rad/s)", ge=0.0, le=0.5, default=0.026, doc="feed-forward of the demanded rate", why=_F_WHY
    )
    pitch_p_s: float = quantity("rad/(rad/s)", ge=0.0, le=1.0, default=0.012, why=_P_WHY)
    pitch_i_per_s: float = quantity("rad/rad", ge=0.0, le=20.0, default=0.3, why=_I_WHY)
    pitch_d_s2: float = quantity("rad/(rad/s^2)", ge=0.0, le=0.1, default=0.0, why=_D_WHY)
    pitch_f_s: float = quantity("rad/(rad/s)", ge=0.0, le=0.5, default=0.026, why=_F_WHY)
    yaw_p_s: float = quantity("rad/(rad/s)", ge=0.0, le=1.0, default=0.05, why=_P_WHY)
    yaw_i_per_s: float = quantity("rad/rad", ge=0.0, le=20.0, default=0.5, doc="heading hold", why=_I_WHY)
    yaw_d_s2: float = quantity("rad/(rad/s^2)", ge=0.0, le=0.1, default=0.0, why=_D_WHY)
    yaw_f_s: float = quantity("rad/(rad/s)", ge=0.0, le=0.5, default=0.01, why=_F_WHY)
    cyclic_i_limit_deg: float = quantity("deg", ge=0.0, le=20.0, default=6.0)
    yaw_i_limit_deg: float = quantity("deg", ge=0.0, le=40.0, default=15.0)
    d_cutoff_hz: float = quantity("Hz", gt=0.0, le=500.0, default=20.0)
    cyclic_max_deg: float = quantity("deg", gt=0.0, le=20.0, default=10.0, doc="cyclic ring")
    collective_max_deg: float = quantity("deg", gt=0.0, le=20.0, default=12.0, doc="at full collective stick")
    yaw_precomp_base_deg: float = quantity("deg", ge=-30.0, le=30.0, default=0.0, doc="tail pitch at zero collective")
    yaw_precomp_gain_deg: float = quantity("deg", ge=0.0, le=200.0, default=0.0, doc="times the squared deflection")
    yaw_precomp_collective_weight: float = quantity("-", ge=0.0, le=2.0, default=0.6)
    yaw_precomp_cyclic_weight: float = quantity("-", ge=0.0, le=2.0, default=0.1)
    yaw_precomp_cutoff_hz: float = quantity("Hz", gt=0.0, le=100.0, default=5.0)
    yaw_precomp_release_s: float = quantity(
        "s", gt=0.0, le=2.0, default=0.01, doc="motor off: the precompensation fades to zero tail pitch this fast",
        why="as fast as the drive's torque fades: at once for an electric motor, ~0.1 s for a glow engine",
    )  # fmt: skip
    level_gain_per_s: float = quantity("1/s", gt=0.0, le=50.0, default=6.0, doc="angle error to rate")
    max_angle_deg: float = quantity("deg", gt=0.0, le=80.0, default=55.0, doc="angle mode at full stick")
    level_trim_roll_deg: float = quantity("deg", ge=-15.0, le=15.0, default=0.0, doc="what self-level calls level")
    level_trim_pitch_deg: float = quantity("deg", ge=-15.0, le=15.0, default=0.0, doc="(accelerometer trim)")
    climb_p_deg_per_m_s: float = quantity(
        "deg/(m/s)", ge=0.0, le=20.0, default=0.6, doc="collective per climb-rate error", why="RC tunes ~0.3-1"
    )
    climb_i_deg_per_m: float = quantity("deg/m", ge=0.0, le=20.0, default=0.2, why="RC tunes ~0.1-0.5")
    climb_i_limit_deg: float = quantity("deg", ge=0.0, le=20.0, default=6.0)
    rescue_climb_m_s: float = quantity("m/s", gt=0.0, le=20.0, default=2.0)
    rescue_climb_s: float = quantity("s", ge=0.0, le=30.0, default=2.0)
    rescue_pullup_collective_deg: float = quantity("deg", gt=0.0, le=15.0, default=7.8)
    failsafe_level_s: float = quantity("s", ge=0.0, le=60.0, default=1.0)
    failsafe_descent_m_s: float = quantity("m/s", gt=0.0, le=5.0, default=0.8)
    failsafe_landed_s: float = quantity("s", gt=0.0, le=10.0, default=1.0)
    governor_headspeed_rpm: float = quantity(
        "rpm", ge=0.0, le=8000.0, default=0.0, doc="0: the helicopter's nominal", why="RC headspeeds reach ~4500 rpm"
    )
    governor_p: float = quantity(
        "throttle", ge=0.0, le=100.0, default=4.0, doc="per relative headspeed error", why="Rotorflight's default 4"
    )
    governor_i_per_s: float = quantity(
        "throttle/s", ge=0.0, le=100.0, default=5.0, doc="per relative headspeed error", why="Rotorflight's default 5"
    )
    governor_ff: float = quantity(
        "throttle",
        ge=0.0,
        le=1.0,
        default=0.0,
        doc="throttle at the governed headspeed, scaled by the setpoint",
        why="an electric drive's back-EMF share, headspeed x gear / (Kv x V): ~0.7-0.9",
    )
    spoolup_time_s: float = quantity("s", gt=0.0, le=60.0, default=5.0, doc="zero to full headspeed")


@dataclass(frozen=True)
class ControllerConstants:
    """``ControllerParams`` in kernel units (rad, rad/s, s) for one helicopter type."""

    params: ControllerParams
    rp_rate_max: float
    yaw_rate_max: float
    expo: float
    roll: tuple[float, float, float, float]  # P, I, D, F
    pitch: tuple[float, float, float, float]
    yaw: tuple[float, float, float, float]
    cyclic_i_limit: float
    yaw_i_limit: float
    d_cutoff_hz: float
    cyclic_max: float
    collective_max: float
    precomp_base: float
    precomp_gain: float
    precomp_collective_weight: float
    precomp_cyclic_weight: float
    precomp_cutoff_hz: float
    precomp_release_s: float
    level_gain: float
    max_angle: float
    level_roll: float
    level_pitch: float
    climb_p: float
    climb_i: float
    climb_i_limit: float
    rescue_climb: float
    rescue_climb_s: float
    rescue_pullup: float
    failsafe_level_s: float
    failsafe_descent: float
    failsafe_landed_s: float
    hover_collective: float
    ground_collective: float  # below this, with no vertical speed, the helicopter is on the ground
    headspeed: float
    governor_p: float
    governor_i: float
    governor_ff: float
    spoolup_rate: float
    direction: float
    swash: SwashGeometry
    tail_pitch_offset: float
    tail_pitch_per_throw: float
    # a batch whose vehicles fly different gains (``stacked``): each vehicle's own constants
    vehicles: tuple[ControllerConstants, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def stacked(cls, each: list[ControllerConstants]) -> ControllerConstants:
        """Constants for a batch of vehicles of one helicopter type, each with its own gains (a
        sweep's flights): a value every vehicle shares stays as it is, one that differs becomes an
        ``(N,)`` array (a P/I/D/F tuple element by element), which the batch kernel broadcasts; the
        per-vehicle kernel takes each vehicle's own (``vehicles``).  ``params`` is the first's."""
        if not each:
            raise ValueError("stacked constants need at least one vehicle")
        first = each[0]
        if len(each) == 1:
            return first
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in ("params", "swash", "vehicles"):
                continue
            column = [getattr(c, item.name) for c in each]
            if isinstance(column[0], tuple):
                values[item.name] = tuple(_shared_or_array([c[i] for c in column]) for i in range(len(column[0])))
            else:
                values[item.name] = _shared_or_array(column)
        if any(c.swash != first.swash for c in each):
            raise ValueError("stacked constants must be of one helicopter type (one swashplate)")
        return replace(first, **values, vehicles=tuple(each))

    @classmethod
    def build(cls, params: ControllerParams, model: FlightModel, hover_collective_rad: float) -> ControllerConstants:
        """Constants for ``model``; ``hover_collective_rad`` (from trim) seeds height holding."""
        rad = math.radians
        headspeed = (
            params.governor_headspeed_rpm * math.pi / 30.0 if params.governor_headspeed_rpm > 0 else model.nominal_speed
        )
        return cls(
            params=params,
            rp_rate_max=rad(params.roll_pitch_rate_max_deg_s),
            yaw_rate_max=rad(params.yaw_rate_max_deg_s),
            expo=params.rate_expo,
            roll=(params.roll_p_s, params.roll_i_per_s, params.roll_d_s2, params.roll_f_s),
            pitch=(params.pitch_p_s, params.pitch_i_per_s, params.pitch_d_s2, params.pitch_f_s),
            yaw=(params.yaw_p_s, params.yaw_i_per_s, params.yaw_d_s2, params.yaw_f_s),
            cyclic_i_limit=rad(params.cyclic_i_limit_deg),
            yaw_i_limit=rad(params.yaw_i_limit_deg),
            d_cutoff_hz=params.d_cutoff_hz,
            cyclic_max=rad(params.cyclic_max_deg),
            collective_max=rad(params.collective_max_deg),
            precomp_base=rad(params.yaw_precomp_base_deg),
            precomp_gain=rad(params.yaw_precomp_gain_deg),
            precomp_collective_weight=params.yaw_precomp_collective_weight,
            precomp_cyclic_weight=params.yaw_precomp_cyclic_weight,
            precomp_cutoff_hz=params.yaw_precomp_cutoff_hz,
            precomp_release_s=params.yaw_precomp_release_s,
            level_gain=params.level_gain_per_s,
            max_angle=rad(params.max_angle_deg),
            level_roll=rad(params.level_trim_roll_deg),
            level_pitch=rad(params.level_trim_pitch_deg),
            climb_p=rad(params.climb_p_deg_per_m_s),
            climb_i=rad(params.climb_i_deg_per_m),
            climb_i_limit=rad(params.climb_i_limit_deg),
            rescue_climb=params.rescue_climb_m_s,
            rescue_climb_s=params.rescue_climb_s,
            rescue_pullup=rad(params.rescue_pullup_collective_deg),
            failsafe_level_s=params.failsafe_level_s,
            failsafe_descent=params.failsafe_descent_m_s,
            failsafe_landed_s=params.failsafe_landed_s,
            hover_collective=hover_collective_rad,
            ground_collective=_GROUND_COLLECTIVE_FRACTION * hover_collective_rad,
            headspeed=headspeed,
            governor_p=params.governor_p,
            governor_i=params.governor_i_per_s,
            governor_ff=params.governor_ff,
            spoolup_rate=headspeed / params.spoolup_time_s,
            direction=model.direction,
            swash=model.swash,
            tail_pitch_offset=model.tail_pitch_offset,
            tail_pitch_per_throw=model.tail_pitch_per_throw,
        )


@dataclass(frozen=True, eq=False)
class PilotInput:
    """Normalised pilot commands, ``(N, PILOT_INPUT_SIZE)``, ``PilotIndex``'s columns: roll, pitch,
    yaw, collective (-1..1), arm (0/1), mode (0 rate, 1 angle, 2 rescue), valid (0: stale input, failsafe).

    Stick signs: roll right, pitch forward (nose down), yaw right (nose right), collective up
    are positive.
    """

    packed: np.ndarray

    def __post_init__(self) -> None:
        packed = np.asarray(self.packed, dtype=np.float64)
        if packed.ndim != 2 or packed.shape[1] != PILOT_INPUT_SIZE:
            raise ValueError(f"PilotInput.packed must have shape (N, {PILOT_INPUT_SIZE}), got {packed.shape}")
        object.__setattr__(self, "packed", packed)

    @classmethod
    def centred(cls, count: int, *, arm: float = 0.0, mode: float = 1.0, collective: float = 0.0) -> PilotInput:
        row = np.zeros(PILOT_INPUT_SIZE)
        row[PilotIndex.COLLECTIVE], row[PilotIndex.ARM], row[PilotIndex.MODE], row[PilotIndex.VALID] = (
            collective, arm, mode, 1.0,
        )  # fmt: skip
        return cls(np.tile(row, (count, 1)))


@dataclass(frozen=True, eq=False)
class ControllerState:
    """Integrators, filters and mode state of N controllers, ``(N, CONTROL_STATE_SIZE)``.

    Its columns: ``ControlIndex`` (``ControlIndex.describe()`` lists them).
    """

    packed: np.ndarray

    def __post_init__(self) -> None:
        packed = np.asarray(self.packed, dtype=np.float64)
        if packed.ndim != 2 or packed.shape[1] != CONTROL_STATE_SIZE:
            raise ValueError(f"ControllerState.packed must have shape (N, {CONTROL_STATE_SIZE}), got {packed.shape}")
        packed.flags.writeable = False
        object.__setattr__(self, "packed", packed)

    @classmethod
    def initial(cls, count: int) -> ControllerState:
        """Controllers of helicopters on the ground: everything at rest, throttle held."""
        packed = np.zeros((count, CONTROL_STATE_SIZE))
        packed[:, ControlIndex.FLIGHT_MODE] = 1.0
        packed[:, ControlIndex.ON_GROUND] = _GROUND_TIME_CAP_S  # on the ground
        return cls(packed)

    @classmethod
    def in_hover(cls, constants: ControllerConstants, count: int, lateral_rad: float, longitudinal_rad: float,
                 tail_pitch_rad: float, collective_rad: float, throttle: float) -> ControllerState:  # fmt: skip
        """Controllers already flying a trimmed hover: integrators hold the trim, governor active."""
        packed = np.zeros((count, CONTROL_STATE_SIZE))
        packed[:, _I_ROLL] = lateral_rad
        packed[:, _I_PITCH] = longitudinal_rad
        tail_from_precomp = (
            constants.precomp_base
            + constants.precomp_gain
            * (
                constants.precomp_collective_weight * abs(collective_rad) / _REFERENCE_PITCH_RAD
                + constants.precomp_cyclic_weight * math.hypot(lateral_rad, longitudinal_rad) / _REFERENCE_PITCH_RAD
            )
            ** 2
        )
        packed[:, _I_YAW] = constants.direction * (tail_pitch_rad - constants.tail_pitch_offset - tail_from_precomp)
        packed[:, ControlIndex.PRECOMP] = tail_from_precomp
        packed[:, ControlIndex.GOVERNOR_I] = np.maximum(throttle - constants.governor_ff, 0.0)  # + feed-forward
        packed[:, ControlIndex.GOVERNOR_SETPOINT] = constants.headspeed
        packed[:, ControlIndex.GOVERNOR_STATE] = 2.0
        packed[:, ControlIndex.CLIMB_I] = collective_rad - constants.hover_collective
        packed[:, ControlIndex.COLLECTIVE] = collective_rad
        packed[:, ControlIndex.FLIGHT_MODE] = 1.0
        return cls(packed)

    @classmethod
    def taking_over(
        cls, constants: ControllerConstants, vehicles: VehicleState, hover: ControllerState
    ) -> ControllerState:
        """Controllers taking N vehicles over from another controller (whose state means nothing
        here): the trimmed hover's integrators (``hover``, from ``in_hover``), the gyro filters at
        the present body rates, and the governor holding the headspeed where the rotor turns fast
        enough to fly (the motor stays off elsewhere).  Flown with a stale pilot input, they level,
        hold height, descend and land, as in any failsafe."""
        packed = np.array(hover.packed, dtype=np.float64)
        omega = vehicles.rotor_speed_rad_s
        flying = omega > _I_ACTIVE_SPEED_FRACTION * constants.headspeed
        packed[:, ControlIndex.GYRO] = vehicles.body_rates_rad_s
        governor_i = np.maximum(vehicles.throttle - constants.governor_ff, 0.0)
        packed[:, ControlIndex.GOVERNOR_I] = np.where(flying, governor_i, 0.0)
        packed[:, ControlIndex.GOVERNOR_SETPOINT] = np.where(flying, constants.headspeed, omega)
        packed[:, ControlIndex.GOVERNOR_STATE] = np.where(flying, 2.0, 0.0)
        return cls(packed)

    @property
    def flight_mode(self) -> np.ndarray:
        return self.packed[:, ControlIndex.FLIGHT_MODE].astype(np.int64)

    @property
    def governor_state(self) -> np.ndarray:
        return self.packed[:, ControlIndex.GOVERNOR_STATE].astype(np.int64)

    @property
    def failsafe_active(self) -> np.ndarray:
        return self.packed[:, ControlIndex.FAILSAFE_ACTIVE] != 0.0

    @property
    def collective_rad(self) -> np.ndarray:
        return self.packed[:, ControlIndex.COLLECTIVE]


def _shared_or_array(values: list[float]) -> Any:
    """``values[0]`` if every vehicle has it, else the values as an array."""
    first = values[0]
    return first if all(v == first for v in values) else np.array(values, dtype=np.float64)


def _exp(x: Any) -> Any:
    """``math.exp`` of a float (as ever), ``np.exp`` of stacked constants' arrays."""
    return np.exp(x) if isinstance(x, np.ndarray) else math.exp(x)


def _stick_curve(x: Any, expo: float) -> Any:
    return x * ((1.0 - expo) + expo * x * x)


def _control_kernel(
    xp: Any, k: ControllerConstants, cs: Any, pilot: Any, vs: Any, dt: float, terms: list | None = None
) -> tuple[tuple, tuple]:
    """One controller cycle over columns; returns (new controller state, command columns).  Given a
    list, ``terms`` gets the cycle's ``CONTROL_TERMS`` appended (the same arithmetic either way)."""
    (i_roll, i_pitch, i_yaw, gf_p, gf_q, gf_r, precomp_f, gov_i, gov_sp, gov_state, climb_i,
     fs_time, fs_active, landed_time, fs_armed, rescue_time, collective_prev, _mode_prev, on_ground) = cs  # fmt: skip
    stick_roll, stick_pitch, stick_yaw, stick_coll, stick_arm, stick_mode, valid = pilot
    qw, qx, qy, qz = vs[_QW], vs[_QX], vs[_QY], vs[_QZ]
    p, q, r = vs[_P], vs[_Q], vs[_R]
    climb_rate = -vs[_VD]
    omega = vs[_OMEGA]

    # attitude from the direction of "down" in body axes
    down_x = 2.0 * (qx * qz - qw * qy)
    down_y = 2.0 * (qy * qz + qw * qx)
    down_z = 1.0 - 2.0 * (qx * qx + qy * qy)
    roll_now = xp.atan2(down_y, down_z)
    pitch_now = xp.atan2(-down_x, xp.sqrt(down_y * down_y + down_z * down_z))

    # --- modes and failsafe bookkeeping
    lost = valid < 0.5
    fs_time = xp.where(lost, fs_time + dt, 0.0)
    # armed at the onset of a failsafe: the controller's own state (motor running), not a stale stick
    fs_armed = xp.where(lost, xp.where(fs_active > 0.5, fs_armed, xp.where(gov_state > 0.5, 1.0, 0.0)), 0.0)
    descending = lost & (fs_time >= k.failsafe_level_s)
    still = (climb_rate > -_LANDED_SINK_M_S) & (climb_rate < _LANDED_SINK_M_S)
    # landed: told to descend, not moving vertically for failsafe_landed_s, *and* the collective down.
    # Not moving alone is also the top of a climb the failsafe has just stopped; so, once stopped
    # for a moment, the collective is lowered (below), as a pilot lowers it on touchdown, and only
    # the ground keeps the helicopter from sinking then
    # (not sinking: slower than _TOUCHDOWN_SINK_M_S either way, so the gear's bounce as the collective
    # comes down does not restart the count; in the air the lowered collective soon sinks it faster)
    stopped = (climb_rate > -_TOUCHDOWN_SINK_M_S) & (climb_rate < _TOUCHDOWN_SINK_M_S)
    landed_time = xp.where(descending & stopped, landed_time + dt, xp.where(descending, 0.0, landed_time * 0.0))
    landed = lost & (landed_time >= k.failsafe_landed_s) & (collective_prev < k.ground_collective)
    fs_level = lost & (fs_time < k.failsafe_level_s)
    fs_descend = descending & xp.where(landed, False, True)
    rescue = (valid > 0.5) & (stick_mode > 1.5)
    angle = (valid > 0.5) & (stick_mode > 0.5) & (stick_mode < 1.5)
    mode = xp.where(lost, xp.where(landed, 5.0, xp.where(fs_level, 3.0, 4.0)), xp.clip(stick_mode, 0.0, 2.0))
    rescue_time = xp.where(rescue, rescue_time + dt, 0.0)
    armed = xp.where(lost, xp.where(landed, 0.0, fs_armed), xp.where(stick_arm > 0.5, 1.0, 0.0))

    # --- on the ground, as a flight controller infers it (not from the simulator's contact): a climb
    # says airborne; low collective with no vertical speed says landed.  On the ground the self-level
    # holds the attitude the skids give it (the level trim cannot be reached there) and the rate
    # integrators bleed off, so nothing winds up before liftoff
    # (held for _GROUND_CONFIRM_S: a hover whose collective is dropped to descend is still for a moment)
    settled = still & (collective_prev < k.ground_collective)
    was_grounded = on_ground >= _GROUND_CONFIRM_S
    on_ground = xp.where(
        climb_rate > _LIFTOFF_CLIMB_M_S,
        0.0,
        xp.where(settled, xp.minimum(on_ground + dt, _GROUND_TIME_CAP_S), xp.where(was_grounded, on_ground, 0.0)),
    )
    grounded = on_ground >= _GROUND_CONFIRM_S

    # --- rate setpoints: sticks (rate mode) or self-level (angle, rescue, failsafe)
    sp_p_stick = _stick_curve(stick_roll, k.expo) * k.rp_rate_max
    sp_q_stick = -_stick_curve(stick_pitch, k.expo) * k.rp_rate_max
    # the failsafe brakes what speed it has over the ground (as a flight controller's land mode does, by
    # its GPS velocity): a lean against it, so it lands slow and the lift it loses as it slows is
    # made up while it still holds its height, not in the descent
    vn, ve = vs[_VN], vs[_VE]
    heading_cos, heading_sin = 1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qw * qz + qx * qy)
    heading_norm = 1.0 / xp.sqrt(heading_cos * heading_cos + heading_sin * heading_sin + 1e-12)
    forward = (vn * heading_cos + ve * heading_sin) * heading_norm
    rightward = (ve * heading_cos - vn * heading_sin) * heading_norm
    brake_pitch = xp.where(lost, xp.clip(_BRAKE_LEAN_PER_M_S * forward, -_BRAKE_LEAN_MAX, _BRAKE_LEAN_MAX), 0.0)
    brake_roll = xp.where(lost, xp.clip(-_BRAKE_LEAN_PER_M_S * rightward, -_BRAKE_LEAN_MAX, _BRAKE_LEAN_MAX), 0.0)
    target_roll = xp.where(
        grounded, roll_now, k.level_roll + xp.where(angle, stick_roll * k.max_angle, 0.0) + brake_roll
    )
    target_pitch = xp.where(
        grounded, pitch_now, k.level_pitch + xp.where(angle, -stick_pitch * k.max_angle, 0.0) + brake_pitch
    )
    self_level = mode > 0.5
    sp_p = xp.where(
        self_level, xp.clip(k.level_gain * (target_roll - roll_now), -k.rp_rate_max, k.rp_rate_max), sp_p_stick
    )
    sp_q = xp.where(
        self_level, xp.clip(k.level_gain * (target_pitch - pitch_now), -k.rp_rate_max, k.rp_rate_max), sp_q_stick
    )
    sp_r = xp.where(lost | rescue, 0.0, _stick_curve(stick_yaw, k.expo) * k.yaw_rate_max)

    # --- rate PIDs: P and I on the error, D on the filtered gyro, F on the setpoint
    d_alpha = 1.0 - _exp(-2.0 * math.pi * k.d_cutoff_hz * dt)
    inv_dt = 1.0 / dt
    flying = (omega > _I_ACTIVE_SPEED_FRACTION * k.headspeed) & (on_ground < _GROUND_CONFIRM_S)
    i_bleed = math.exp(-dt / _I_DECAY_TIME_S)
    pid_step = (flying, d_alpha, inv_dt, i_bleed, dt)
    lateral, i_roll, gf_p, p_roll, d_roll, f_roll = _rate_pid(
        xp, sp_p, p, i_roll, gf_p, k.roll, k.cyclic_i_limit, pid_step
    )
    longitudinal, i_pitch, gf_q, p_pitch, d_pitch, f_pitch = _rate_pid(
        xp, sp_q, q, i_pitch, gf_q, k.pitch, k.cyclic_i_limit, pid_step
    )
    yaw_out, i_yaw, gf_r, p_yaw, d_yaw, f_yaw = _rate_pid(xp, sp_r, r, i_yaw, gf_r, k.yaw, k.yaw_i_limit, pid_step)

    # cyclic ring
    cyclic = xp.sqrt(lateral * lateral + longitudinal * longitudinal)
    ring = xp.minimum(1.0, k.cyclic_max / xp.maximum(cyclic, 1e-9))
    lateral, longitudinal, cyclic = lateral * ring, longitudinal * ring, cyclic * ring

    # --- collective: the stick, or climb-rate hold in rescue and failsafe
    manual = stick_coll * k.collective_max
    climb_sp = xp.where(rescue, xp.where(rescue_time < k.rescue_climb_s, k.rescue_climb, 0.0),
                        xp.where(fs_descend, -k.failsafe_descent, 0.0))  # fmt: skip
    climb_error = climb_sp - climb_rate
    upright = down_z > _UPRIGHT_COS
    holding = (rescue & upright) | fs_level | fs_descend
    # the hold starts from the hover's collective (the integrator at 0), not from the pilot's: a pilot
    # who was sinking at 4 m/s held a collective that keeps it sinking, and an integrator seeded
    # with it (bumpless) took most of the way to the ground to unlearn it
    climb_i = xp.where(holding, xp.clip(climb_i + k.climb_i * climb_error * dt, -k.climb_i_limit, k.climb_i_limit), 0.0)
    # told to descend and not sinking for _TOUCHDOWN_CONFIRM_S: the collective is lowered (by the
    # hover's in a second), as a pilot lowers it on touchdown.  In the air (the top of a balloon) it
    # then sinks at once, the stillness ends and the hold has its collective back
    lowering = k.hover_collective * xp.maximum(landed_time - _TOUCHDOWN_CONFIRM_S, 0.0)
    held = k.hover_collective + k.climb_p * climb_error + climb_i - xp.where(descending, lowering, 0.0)
    pullup = xp.where(down_z >= 0.0, k.rescue_pullup, -k.rescue_pullup)
    collective = xp.where(
        landed, 0.0, xp.where(rescue & (down_z <= _UPRIGHT_COS), pullup, xp.where(holding, held, manual))
    )
    collective = xp.clip(collective, -k.collective_max, k.collective_max)

    # --- tail: precompensation of the main rotor's torque, plus the yaw PID
    deflection = (k.precomp_collective_weight * xp.maximum(collective, -collective)
                  + k.precomp_cyclic_weight * cyclic) * (1.0 / _REFERENCE_PITCH_RAD)  # fmt: skip
    precomp_alpha = 1.0 - _exp(-2.0 * math.pi * k.precomp_cutoff_hz * dt)
    # with the motor off (throttle hold, disarmed) its torque no longer reacts on the fuselage: the tail
    # eases to zero pitch (no thrust) at the pace the drive's torque fades, as in an autorotation
    powered = armed > 0.5
    precomp_target = xp.where(powered, k.precomp_base + k.precomp_gain * deflection * deflection, -k.tail_pitch_offset)
    precomp_alpha = xp.where(powered, precomp_alpha, 1.0 - _exp(-dt / k.precomp_release_s))
    precomp_f = precomp_f + precomp_alpha * (precomp_target - precomp_f)
    spool = xp.clip(omega * (1.0 / k.headspeed), 0.0, 1.0)
    # (powered, the precompensation grows with the headspeed as the torque does; unpowered it holds
    # the tail at zero pitch whatever the rotor's speed)
    tail_servo = (precomp_f * xp.where(powered, spool, 1.0) + k.direction * yaw_out) * (1.0 / k.tail_pitch_per_throw)

    # --- governor: spool-up ramp from the present headspeed, then PI on relative error
    arming = armed > 0.5
    ramp_from = xp.where(gov_state < 0.5, omega, gov_sp)
    ramp = xp.minimum(ramp_from + k.spoolup_rate * dt, k.headspeed)
    gov_sp = xp.where(arming, xp.where(gov_state > 1.5, k.headspeed, ramp), omega)
    gov_state = xp.where(arming, xp.where(gov_sp >= k.headspeed, 2.0, 1.0), 0.0)
    throttle, gov_i = governor_pi(xp, k, gov_sp, omega, gov_i, dt, arming)

    s0, s1, s2 = mix(xp, k.swash, collective, lateral, longitudinal)
    new_state = (
        i_roll, i_pitch, i_yaw, gf_p, gf_q, gf_r, precomp_f,
        gov_i, gov_sp, gov_state, climb_i, fs_time, xp.where(lost, 1.0, 0.0), landed_time, fs_armed,
        rescue_time, collective, mode, on_ground,
    )  # fmt: skip
    if terms is not None:
        terms.extend((sp_p, sp_q, sp_r, target_roll, target_pitch, p_roll, d_roll, f_roll,
                      p_pitch, d_pitch, f_pitch, p_yaw, d_yaw, f_yaw, climb_sp))  # fmt: skip
    return new_state, (s0, s1, s2, xp.clip(tail_servo, -1.0, 1.0), throttle)


def _rate_pid(xp: Any, setpoint: Any, rate: Any, integrator: Any, filtered: Any, gains: tuple, i_limit: Any,
              cycle: tuple) -> tuple:  # fmt: skip
    """One axis's rate PID: P and I on the error, D on the filtered gyro, F on the setpoint.  ``cycle``
    is (flying, D filter alpha, 1 / dt, integrator bleed per cycle, dt); returns (output, new
    integrator, new filtered rate, P term, D term, F term)."""
    flying, d_alpha, inv_dt, i_bleed, dt = cycle
    kp, ki, kd, kf = gains
    error = setpoint - rate
    integrator = xp.where(flying, xp.clip(integrator + ki * error * dt, -i_limit, i_limit), integrator * i_bleed)
    filtered_new = filtered + d_alpha * (rate - filtered)
    p_term, d_term, f_term = kp * error, -(kd * (filtered_new - filtered) * inv_dt), kf * setpoint
    output = p_term + integrator + d_term + f_term  # a + (-b) is a - b exactly: replays stay bit-equal
    return output, integrator, filtered_new, p_term, d_term, f_term


def governor_pi(xp: Any, k: ControllerConstants, setpoint: Any, omega: Any, integrator: Any, dt: float, running: Any):
    """The headspeed governor's law: PI on the relative speed error plus a back-EMF feed-forward in
    proportion to the set point (rad/s); (throttle 0..1, new integrator), both 0 where not ``running``.
    heli-sim's controller and, with firmware in the loop, the ESC's governor (``sim.fc.outputs``)."""
    error = (setpoint - omega) * (1.0 / k.headspeed)
    integrator = xp.where(running, xp.clip(integrator + k.governor_i * error * dt, 0.0, 1.0), 0.0)
    feed_forward = k.governor_ff * setpoint * (1.0 / k.headspeed)
    throttle = xp.where(running, xp.clip(feed_forward + k.governor_p * error + integrator, 0.0, 1.0), 0.0)
    return throttle, integrator


def control(
    constants: ControllerConstants, state: ControllerState, pilot: PilotInput, vehicles: VehicleState, dt_s: float
) -> tuple[ControllerState, ActuatorCommand]:
    """One controller cycle of ``dt_s`` seconds for N vehicles: new state and actuator command."""
    state, command, _terms = _cycle(constants, state, pilot, vehicles, dt_s, with_terms=False)
    return state, command


def control_with_terms(
    constants: ControllerConstants, state: ControllerState, pilot: PilotInput, vehicles: VehicleState, dt_s: float
) -> tuple[ControllerState, ActuatorCommand, np.ndarray]:
    """``control``, and the cycle's ``CONTROL_TERMS``, ``(N, len(CONTROL_TERMS))``: for logs and exports."""
    state, command, terms = _cycle(constants, state, pilot, vehicles, dt_s, with_terms=True)
    assert terms is not None  # with_terms=True: the cycle returns them
    return state, command, terms


def _cycle(
    constants: ControllerConstants,
    state: ControllerState,
    pilot: PilotInput,
    vehicles: VehicleState,
    dt_s: float,
    *,
    with_terms: bool,
) -> tuple[ControllerState, ActuatorCommand, np.ndarray | None]:
    count = vehicles.count
    if state.packed.shape[0] != count or pilot.packed.shape[0] != count:
        raise ValueError(f"controller state, pilot input and vehicles disagree on N (vehicles: {count})")
    if count <= SCALAR_BATCH_LIMIT:
        states, commands, all_terms = [], [], []
        each = constants.vehicles or (constants,) * count
        rows = zip(each, state.packed.tolist(), pilot.packed.tolist(), vehicles.packed.tolist(), strict=True)
        for k, cs, ps, vs in rows:
            terms: list | None = [] if with_terms else None
            new_state, command = _control_kernel(SCALAR, k, cs, ps, vs, dt_s, terms)
            states.append(new_state)
            commands.append(command)
            all_terms.append(terms)
        packed_terms = np.array(all_terms, dtype=np.float64) if with_terms else None
        return ControllerState(np.array(states)), ActuatorCommand(np.array(commands)), packed_terms
    terms = [] if with_terms else None
    new_state, command = _control_kernel(
        ARRAY,
        constants,
        np.asfortranarray(state.packed).T,
        np.ascontiguousarray(pilot.packed.T),
        np.asfortranarray(vehicles.packed).T,
        dt_s,
        terms,
    )
    packed_terms = None if terms is None else np.array([np.broadcast_to(t, (count,)) for t in terms]).T
    return ControllerState(np.array(new_state).T), ActuatorCommand(np.array(command).T), packed_terms
