"""Trim: the controls and attitude that hold a helicopter still in the air, or in steady level flight.

Eleven unknowns (collective, both cyclics, tail pitch, roll, pitch, the two flapping angles,
main and tail inflow, drive torque) make the eleven rates of change of a hovering (or steadily
flying) vehicle zero: forces (3), moments (3), flapping (2), inflow (2) and rotor speed (1).  The
residuals are the flight model's own ``air_loads`` at the flight's airspeed (zero in a hover)
and nominal headspeed, so trim and simulation cannot disagree.  Newton's method with a
central-difference Jacobian converges in a handful of iterations from a momentum-theory first
guess (forward flight: from the trim of a flight 2 m/s slower, stepping up from the hover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heli.dynamics import ENGINE_TORQUE_SPEED_FRACTION, FlightModel, air_loads, rotation_matrix
from heli.errors import TrimError
from heli.ops import SCALAR
from heli.rotor import profile_torque_coeff

__all__ = ["TrimResult", "solve_hover_trim", "solve_trim", "throttle_for_torque"]

_OUT_OF_GROUND_EFFECT_M = 1.0e6
_MAX_ITERATIONS = 60
_TOLERANCE = 1e-12
_JACOBIAN_STEP = 1e-7
_SPEED_STEP_M_S = 2.0  # forward flight is solved in steps from the hover


@dataclass(frozen=True)
class TrimResult:
    """Steady hover; the ``*_deg`` and SI fields are those of the ``trim --json`` contract."""

    collective_deg: float
    lateral_cyclic_deg: float
    longitudinal_cyclic_deg: float
    tail_pitch_deg: float
    roll_deg: float
    pitch_deg: float
    rotor_speed_rpm: float
    induced_velocity_m_s: float
    main_rotor_thrust_n: float
    main_rotor_torque_nm: float
    main_rotor_power_w: float
    tail_thrust_n: float
    # beyond the contract: what initial conditions and tests need
    flapping_rad: tuple[float, float]
    inflow_ratio: tuple[float, float]
    drive_torque_nm: float
    throttle: float
    weight_n: float

    def contract(self) -> dict[str, float]:
        """The keys of ``heli-sim trim --json``."""
        keys = [
            "collective_deg",
            "lateral_cyclic_deg",
            "longitudinal_cyclic_deg",
            "tail_pitch_deg",
            "roll_deg",
            "pitch_deg",
            "rotor_speed_rpm",
            "induced_velocity_m_s",
            "main_rotor_thrust_n",
            "main_rotor_torque_nm",
            "main_rotor_power_w",
            "tail_thrust_n",
        ]
        return {key: getattr(self, key) for key in keys}


def quaternion_from_euler(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """Unit quaternion (w, x, y, z) of ZYX Euler angles in radians."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def throttle_for_torque(model: FlightModel, torque_nm: float, rotor_speed_rad_s: float) -> float:
    """The steady throttle at which the drive gives ``torque_nm`` at ``rotor_speed_rad_s``."""
    if model.electric:
        current = torque_nm * model.motor_kv_rad / model.motor_gear
        volts = current * model.motor_resistance + model.motor_gear * rotor_speed_rad_s / model.motor_kv_rad
        return volts / model.battery_voltage
    return torque_nm * max(rotor_speed_rad_s, ENGINE_TORQUE_SPEED_FRACTION * model.nominal_speed) / model.max_power


def _residuals(model: FlightModel, z: np.ndarray, height_m: float, speed_m_s: float = 0.0) -> np.ndarray:
    a1, b1, lam, lam_t, q_drive = z.tolist()[6:]
    loads, rot = _loads(model, z, height_m, speed_m_s)
    weight = model.mass * model.gravity
    torque_scale = weight * model.radius
    return np.array(
        [
            (loads.force_x + weight * rot[6]) / weight,
            (loads.force_y + weight * rot[7]) / weight,
            (loads.force_z + weight * rot[8]) / weight,
            loads.moment_x / torque_scale,
            loads.moment_y / torque_scale,
            (loads.moment_z - model.direction * q_drive) / torque_scale,
            a1 - loads.flap_a1_target,
            b1 - loads.flap_b1_target,
            lam - loads.inflow_target,
            lam_t - loads.tail_inflow_target,
            (q_drive - loads.rotor_torque) / torque_scale,
        ]
    )


def _loads(model: FlightModel, z: np.ndarray, height_m: float, speed_m_s: float) -> tuple:
    """The air loads at the trim variables ``z``, flying level and straight north at ``speed_m_s`` in
    still air (heading north: the air comes at the body along the earth's north axis), and the
    body-to-earth rotation (row-major)."""
    collective, lateral, longitudinal, tail_pitch, roll, pitch, a1, b1, lam, lam_t, _q_drive = z.tolist()
    rot = rotation_matrix(*quaternion_from_euler(roll, pitch, 0.0))
    air = (speed_m_s * rot[0], speed_m_s * rot[1], speed_m_s * rot[2])  # north, in body axes
    loads = air_loads(
        SCALAR, model, air, (0.0, 0.0, 0.0), model.nominal_speed,
        (collective, lateral, longitudinal), tail_pitch, (a1, b1), (lam, lam_t), height_m, 1.0,
    )  # fmt: skip
    return loads, rot


def solve_hover_trim(model: FlightModel, height_m: float = _OUT_OF_GROUND_EFFECT_M) -> TrimResult:
    """Steady hover at nominal headspeed, hub ``height_m`` above the ground (default: far)."""
    return solve_trim(model, 0.0, height_m)


def solve_trim(model: FlightModel, speed_m_s: float = 0.0, height_m: float = _OUT_OF_GROUND_EFFECT_M) -> TrimResult:
    """Steady level flight at ``speed_m_s`` (0: hover) and nominal headspeed, hub ``height_m`` above
    the ground.  Forward flight is reached from the hover in steps of at most 2 m/s, each solved from
    the last (Newton's method converges from a nearby flight)."""
    steps = max(1, math.ceil(abs(speed_m_s) / _SPEED_STEP_M_S))
    z = _hover_guess(model)
    for k in range(1, steps + 1):
        z = _solve(model, z, height_m, speed_m_s * k / steps)
    return _result(model, z, height_m, speed_m_s)


def _hover_guess(model: FlightModel) -> np.ndarray:
    """A first guess from momentum theory: collective, cyclic, tail pitch, attitude, flapping, inflow, torque."""
    weight = model.mass * model.gravity
    omega = model.nominal_speed
    ct = weight / (model.thrust_scale * omega * omega)
    lam = model.kappa * math.sqrt(ct / 2.0)
    collective = 3.0 * (ct / model.half_a_sigma + lam / 2.0)
    profile = profile_torque_coeff(SCALAR, model.profile_polar, collective, lam, 0.0, ct)
    torque = (ct * lam + profile) * model.torque_scale * omega * omega
    tail_ct = torque / model.tail_arm / (model.tail_thrust_scale * (omega * model.tail_gear) ** 2)
    tail_lam = math.sqrt(max(tail_ct, 1e-6) / 2.0)
    tail_pitch = 3.0 * (tail_ct / model.tail_half_a_sigma + tail_lam / 2.0)
    return np.array([collective, 0.0, 0.0, tail_pitch, 0.0, 0.0, 0.0, 0.0, lam, tail_lam, torque])


def _what(model: FlightModel, speed_m_s: float) -> str:
    return f"hover trim of {model.params.name!r}" if speed_m_s == 0.0 else (
        f"trim of {model.params.name!r} at {speed_m_s:g} m/s"
    )  # fmt: skip


def _solve(model: FlightModel, z: np.ndarray, height_m: float, speed_m_s: float) -> np.ndarray:
    """Newton's method on the residuals from ``z``."""
    for _ in range(_MAX_ITERATIONS):
        res = _residuals(model, z, height_m, speed_m_s)
        if np.max(np.abs(res)) < _TOLERANCE:
            return z
        jac = np.empty((11, 11))
        for i in range(11):
            dz = np.zeros(11)
            dz[i] = _JACOBIAN_STEP * max(1.0, abs(z[i]))
            plus, minus = _residuals(model, z + dz, height_m, speed_m_s), _residuals(model, z - dz, height_m, speed_m_s)
            jac[:, i] = (plus - minus) / (2 * dz[i])
        try:
            z = z - np.linalg.solve(jac, res)
        except np.linalg.LinAlgError as error:
            raise TrimError(f"{_what(model, speed_m_s)}: singular Jacobian ({error})") from None
    raise TrimError(f"{_what(model, speed_m_s)} did not converge (residual {np.max(np.abs(res)):.2e})")


def _result(model: FlightModel, z: np.ndarray, height_m: float, speed_m_s: float) -> TrimResult:
    collective, lateral, longitudinal, tail_pitch, roll, pitch, a1, b1, lam, lam_t, q_drive = z.tolist()
    omega = model.nominal_speed
    weight = model.mass * model.gravity
    loads, _rot = _loads(model, z, height_m, speed_m_s)
    if not (abs(roll) < math.radians(30) and abs(pitch) < math.radians(30) and 0.0 < collective < math.radians(20)):
        kind = "hover" if speed_m_s == 0.0 else "level flight"
        raise TrimError(
            f"{_what(model, speed_m_s)} is not a plausible {kind}: it needs {math.degrees(collective):.1f} deg of "
            f"collective, {math.degrees(roll):.1f} deg of roll and {math.degrees(pitch):.1f} deg of pitch; expected "
            "0-20 deg of collective and attitudes within 30 deg (is the rotor big and fast enough for the mass?)"
        )
    return TrimResult(
        collective_deg=math.degrees(collective),
        lateral_cyclic_deg=math.degrees(lateral),
        longitudinal_cyclic_deg=math.degrees(longitudinal),
        tail_pitch_deg=math.degrees(tail_pitch),
        roll_deg=math.degrees(roll),
        pitch_deg=math.degrees(pitch),
        rotor_speed_rpm=omega * 60.0 / (2.0 * math.pi),
        induced_velocity_m_s=loads.induced_velocity,
        main_rotor_thrust_n=loads.thrust,
        main_rotor_torque_nm=loads.main_torque,
        main_rotor_power_w=loads.main_torque * omega,
        tail_thrust_n=loads.tail_thrust,
        flapping_rad=(a1, b1),
        inflow_ratio=(lam, lam_t),
        drive_torque_nm=q_drive,
        throttle=throttle_for_torque(model, q_drive, omega),
        weight_n=weight,
    )


def collective_sensitivity(model: FlightModel, trim: TrimResult, step_deg: float = 0.25) -> float:
    """Vertical acceleration per radian of collective about the hover, inflow settled (m/s^2/rad).

    The quasi-steady heave control derivative ``-Z_col``: how hard the same collective change
    pushes a light 3D-headspeed 700 (a few m/s^2 per degree) or a heavy X-Cell.
    """
    a1, b1 = trim.flapping_rad
    tail_pitch = math.radians(trim.tail_pitch_deg)

    def settled_thrust(collective: float) -> float:
        lam, lam_t = trim.inflow_ratio
        for _ in range(300):  # damped fixed point on the inflow: converges in well under 300
            loads = air_loads(
                SCALAR, model, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), model.nominal_speed,
                (collective, 0.0, 0.0), tail_pitch, (a1, b1), (lam, lam_t), _OUT_OF_GROUND_EFFECT_M, 1.0,
            )  # fmt: skip
            lam += 0.3 * (loads.inflow_target - lam)
            lam_t += 0.3 * (loads.tail_inflow_target - lam_t)
        return loads.thrust

    delta = math.radians(step_deg)
    base = math.radians(trim.collective_deg)
    return (settled_thrust(base + delta) - settled_thrust(base - delta)) / (2.0 * delta * model.mass)
