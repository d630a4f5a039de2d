"""The flight model: forces and moments on N helicopters and one fixed-dt integration step.

``step(model, state, command, dt_s)`` is the only entry point the simulator needs.  It runs one
kernel written over ``xp`` (``heli.ops``): Python floats per vehicle for small batches, one
numpy array per state column for large ones (and ``sim.compiled`` compiles it with numba).  What
one step does, in order:

1. actuators: servos follow their commands (first-order lag, then a slew limit), the swash
   geometry turns servo positions into blade pitch, the drive follows the throttle;
2. air loads (``air_loads``): main rotor thrust, inflow and tip-path-plane targets, tail rotor,
   vertical fin, horizontal stabiliser, fuselage drag in the rotor downwash;
3. drive torque through a one-way clutch (engine: power-limited; electric: DC motor);
4. ground contact and crash detection (``heli.ground``), only near the ground;
5. integration: exact exponential updates for the first-order states (servos, drive,
   flapping, inflow), a midpoint step for the rotational dynamics, symplectic Euler for
   translation, an exponential-map quaternion update, renormalised.

The fuselage yaws from the drive's reaction torque (``-dir * Q_drive``), not the rotor's aero
torque; the difference accelerates the rotor.  With ``J_zz`` the whole-vehicle yaw inertia and
``I_rot`` the rotor's polar inertia, the fuselage alone turns with ``J_zz - I_rot``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from heli.ground import ContactConstants, contact_loads
from heli.mixer import SwashGeometry, unmix
from heli.ops import ARRAY, SCALAR
from heli.params import Environment, HeliParams
from heli.rotor import STALL_KNEE, blade_element_thrust, induced_inflow_target, profile_torque_coeff, stall_limited
from heli.state import ActuatorCommand, VehicleState

__all__ = [
    "ENGINE_TORQUE_SPEED_FRACTION",
    "SCALAR_BATCH_LIMIT",
    "AirLoads",
    "FlightModel",
    "air_loads",
    "rotation_matrix",
    "step",
    "step_columns",
    "steps",
]

# Below this many vehicles a per-vehicle loop on floats beats numpy's per-call overhead.
SCALAR_BATCH_LIMIT = 24
_MIN_TIP_SPEED_FRACTION = 0.05  # non-dimensionalise with at least 5 % of nominal tip speed
_MIN_FLAP_SPEED_FRACTION = 0.1  # flap time constant as if the rotor turned at >= 10 % speed
ENGINE_TORQUE_SPEED_FRACTION = 0.3  # engine torque stops rising below 30 % headspeed
_WRECKED_ROTOR_SPIN_DOWN_S = 0.3  # a rotor that has struck the ground stops this fast
_PITT_PETERS_INFLOW_LAG = 0.849  # tau = 0.849 / (4 lambda Omega), uniform dynamic inflow


@dataclass(frozen=True)
class FlightModel:
    """A helicopter type reduced to the plain floats the kernel reads (built once per run)."""

    params: HeliParams
    env: Environment
    # air and gravity
    rho: float
    gravity: float
    wind_ned: tuple[float, float, float]
    # mass
    mass: float
    ixx: float
    iyy: float
    izz_fuselage: float
    rotor_inertia: float
    # main rotor
    radius: float
    hub_height: float
    half_a_sigma: float
    ct_max: float
    kappa: float
    thrust_scale: float  # rho A R^2: T = C_T * thrust_scale * Omega^2
    torque_scale: float  # rho A R^3
    profile_polar: tuple[float, float, float, float, float]  # see heli.rotor.profile_torque_coeff
    hub_stiffness: float
    direction: float
    nominal_speed: float
    flap_time_nominal: float
    flap_gain: float
    flap_speed_gain: float
    coupling_cos: float
    coupling_sin: float
    ground_effect_min_height: float
    min_tip_speed: float
    inflow_time: float
    # tail rotor
    tail_radius: float
    tail_gear: float
    tail_arm: float
    tail_height: float
    tail_half_a_sigma: float
    tail_ct_max: float
    tail_thrust_scale: float  # includes the fin blockage factor
    tail_torque_scale: float
    tail_cq0: float
    tail_pitch_offset: float
    tail_pitch_per_throw: float
    tail_min_tip_speed: float
    tail_inflow_time: float
    # empennage and fuselage (0.5 rho S)
    fin_half_rho_s: float
    fin_lift_slope: float
    fin_wash: float
    stab_half_rho_s: float
    stab_lift_slope: float
    stab_arm: float
    fus_x: float
    fus_y: float
    fus_z: float
    # drive
    electric: bool
    max_power: float
    battery_voltage: float
    motor_kv_rad: float  # rad/s per volt
    motor_resistance: float
    current_limit: float
    motor_gear: float
    drive_time: float
    # servos
    swash: SwashGeometry
    servo_time: float
    servo_rate: float
    contact: ContactConstants

    @classmethod
    def build(cls, params: HeliParams, env: Environment | None = None) -> FlightModel:
        env = env or Environment()
        rho, g = env.air_density_kg_m3, env.gravity_m_s2
        mr, tr, mp = params.main_rotor, params.tail_rotor, params.mass
        emp, fus, drive, servos = params.empennage, params.fuselage, params.drive, params.servos
        omega = mr.nominal_speed_rad_s
        lock_number = rho * mr.lift_slope_per_rad * mr.chord_m * mr.radius_m**4 / mr.blade_flap_inertia_kg_m2
        thrust_scale = rho * mr.disc_area_m2 * mr.radius_m**2
        hover_ct = mp.mass_kg * g / (thrust_scale * omega * omega)
        hover_inflow = mr.induced_power_factor * math.sqrt(hover_ct / 2.0)
        tail_omega = omega * tr.gear_ratio
        tail_area = tr.disc_area_m2
        # Gavrilets: the fin blocks part of the tail rotor's wake, f_t = 1 - 3/4 S_vf / (4 pi R_tr^2)
        blockage = 1.0 - 0.75 * emp.fin_area_m2 / (4.0 * math.pi * tr.radius_m**2)
        tail_thrust_scale = rho * tail_area * tr.radius_m**2
        tail_half_a_sigma = 0.5 * tr.lift_slope_per_rad * tr.solidity
        tail_hover_inflow = math.sqrt(max(tail_half_a_sigma * 0.05, 1e-4))
        phase = math.radians(mr.cross_coupling_deg)
        return cls(
            params=params,
            env=env,
            rho=rho,
            gravity=g,
            wind_ned=(env.wind_north_m_s, env.wind_east_m_s, env.wind_down_m_s),
            mass=mp.mass_kg,
            ixx=mp.inertia_xx_kg_m2,
            iyy=mp.inertia_yy_kg_m2,
            izz_fuselage=mp.inertia_zz_kg_m2 - mr.polar_inertia_kg_m2,
            rotor_inertia=mr.polar_inertia_kg_m2,
            radius=mr.radius_m,
            hub_height=mr.hub_height_m,
            half_a_sigma=0.5 * mr.lift_slope_per_rad * mr.solidity,
            ct_max=mr.thrust_coeff_max,
            kappa=mr.induced_power_factor,
            thrust_scale=thrust_scale,
            torque_scale=thrust_scale * mr.radius_m,
            profile_polar=(
                mr.solidity * mr.profile_drag_coeff / 8.0,
                mr.solidity * mr.profile_drag_quadratic_per_rad2 / 8.0,
                mr.solidity * mr.stall_drag_per_rad2 / 8.0,
                6.0 / (mr.solidity * mr.lift_slope_per_rad),  # mean blade angle 6 C_T / (sigma a) per C_T
                STALL_KNEE * 6.0 * mr.thrust_coeff_max / (mr.solidity * mr.lift_slope_per_rad),
            ),
            hub_stiffness=mr.hub_stiffness_nm_per_rad,
            direction=float(mr.direction),
            nominal_speed=omega,
            flap_time_nominal=16.0 / (lock_number * omega),
            flap_gain=mr.cyclic_flap_gain,
            flap_speed_gain=mr.flap_speed_gain,
            coupling_cos=math.cos(phase),
            coupling_sin=math.sin(phase) * mr.direction,
            ground_effect_min_height=mr.ground_effect_min_height_ratio * mr.radius_m,
            min_tip_speed=_MIN_TIP_SPEED_FRACTION * omega * mr.radius_m,
            inflow_time=_PITT_PETERS_INFLOW_LAG / (4.0 * hover_inflow * omega),
            tail_radius=tr.radius_m,
            tail_gear=tr.gear_ratio,
            tail_arm=tr.arm_m,
            tail_height=tr.height_m,
            tail_half_a_sigma=tail_half_a_sigma,
            tail_ct_max=tr.thrust_coeff_max,
            tail_thrust_scale=tail_thrust_scale * blockage,
            tail_torque_scale=tail_thrust_scale * tr.radius_m,
            tail_cq0=tr.solidity * tr.profile_drag_coeff / 8.0,
            tail_pitch_offset=math.radians(tr.pitch_offset_deg),
            tail_pitch_per_throw=math.radians(tr.pitch_per_throw_deg),
            tail_min_tip_speed=_MIN_TIP_SPEED_FRACTION * tail_omega * tr.radius_m,
            tail_inflow_time=_PITT_PETERS_INFLOW_LAG / (4.0 * tail_hover_inflow * tail_omega),
            fin_half_rho_s=0.5 * rho * emp.fin_area_m2,
            fin_lift_slope=emp.fin_lift_slope_per_rad,
            fin_wash=emp.fin_wash_fraction,
            stab_half_rho_s=0.5 * rho * emp.stabilizer_area_m2,
            stab_lift_slope=emp.stabilizer_lift_slope_per_rad,
            stab_arm=emp.stabilizer_arm_m,
            fus_x=0.5 * rho * fus.drag_area_x_m2,
            fus_y=0.5 * rho * fus.drag_area_y_m2,
            fus_z=0.5 * rho * fus.drag_area_z_m2,
            electric=drive.kind == "electric",
            max_power=drive.max_power_w,
            battery_voltage=drive.battery_voltage_v,
            motor_kv_rad=drive.motor_kv_rpm_per_v * 2.0 * math.pi / 60.0,
            motor_resistance=drive.motor_resistance_ohm,
            current_limit=drive.current_limit_a,
            motor_gear=drive.gear_ratio,
            drive_time=drive.response_time_s,
            swash=SwashGeometry.build(servos.swash_type_deg, servos.pitch_per_throw_deg),
            servo_time=servos.time_constant_s,
            servo_rate=servos.max_rate_per_s,
            contact=ContactConstants.build(params, env),
        )


def rotation_matrix(qw: Any, qx: Any, qy: Any, qz: Any) -> tuple:
    """Body-to-NED rotation matrix of a unit quaternion, 9 entries row-major."""
    xx, yy, zz = qx * qx, qy * qy, qz * qz
    xy, xz, yz = qx * qy, qx * qz, qy * qz
    wx, wy, wz = qw * qx, qw * qy, qw * qz
    return (
        1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
        2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
        2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy),
    )  # fmt: skip


class AirLoads(NamedTuple):
    """Aerodynamic loads and the targets of the fast rotor states (body axes, SI units)."""

    force_x: Any
    force_y: Any
    force_z: Any
    moment_x: Any
    moment_y: Any
    moment_z: Any  # without the drive's reaction torque
    rotor_torque: Any  # main + tail (reflected), the load on the main shaft
    flap_a1_target: Any
    flap_b1_target: Any
    flap_time: Any
    inflow_target: Any
    tail_inflow_target: Any
    thrust: Any
    main_torque: Any
    induced_velocity: Any
    tail_thrust: Any


def air_loads(
    xp: Any,
    m: FlightModel,
    body_air_velocity: tuple,
    rates: tuple,
    rotor_speed: Any,
    blade_pitch: tuple,
    tail_pitch: Any,
    flapping: tuple,
    inflow: tuple,
    hub_height_above_ground: Any,
    alive: Any,
) -> AirLoads:
    """Forces and moments of rotor, tail, fin, stabiliser and fuselage (see module doc).

    ``blade_pitch`` is (collective, lateral, longitudinal) in radians; ``alive`` is 1.0 for a
    flying vehicle and 0.0 for a wreck (no thrust).
    """
    u, v, w = body_air_velocity
    p, q, r = rates
    collective, lateral, longitudinal = blade_pitch
    a1, b1 = flapping
    lam, lam_tail = inflow
    omega = rotor_speed
    d = m.direction

    # --- main rotor: thrust, inflow, torque
    tip_speed = xp.maximum(omega * m.radius, m.min_tip_speed)
    inv_tip = 1.0 / tip_speed
    u_hub, v_hub = u - q * m.hub_height, v + p * m.hub_height
    mu = xp.sqrt(u_hub * u_hub + v_hub * v_hub) * inv_tip
    mu_z = w * inv_tip
    ct_linear = blade_element_thrust(xp, m.half_a_sigma, collective, mu, mu_z, lam) * alive
    ct_magnitude = xp.abs(ct_linear)
    ct = stall_limited(xp, ct_linear, ct_magnitude, m.ct_max)
    lam_target = induced_inflow_target(xp, ct, mu, mu_z, lam, m.kappa)
    # ground effect, for a downward wake only: Cheeseman and Bennett (1955) give, at constant power,
    # T / T_oge = 1 / (1 - (R / 4z)^2 / (1 + (V / v_i)^2)).  The induced velocity here is that of the
    # present thrust (it grows as sqrt(T)), so the factor on it that yields their thrust ratio at
    # constant induced power is the 3/2 power of theirs: (1 - g)^(3/2), g the bracket's term
    height = xp.maximum(hub_height_above_ground, m.ground_effect_min_height)
    ratio = m.radius / (4.0 * height)
    edgewise_over_induced_sq = mu * mu / (lam_target * lam_target + 1e-12)
    relief = 1.0 - ratio * ratio / (1.0 + edgewise_over_induced_sq)
    lam_target = lam_target * xp.where(ct > 0.0, relief * xp.sqrt(relief), 1.0)
    omega_sq = omega * omega
    thrust = ct * m.thrust_scale * omega_sq
    lam_net = lam - mu_z
    cq = ct * lam_net + profile_torque_coeff(xp, m.profile_polar, collective, lam_net, mu, ct_magnitude)
    main_torque = cq * m.torque_scale * omega_sq

    # --- tip-path plane: first-order flapping targets (steady state of Gavrilets' ODEs)
    speed_ratio_sq = xp.minimum(omega_sq * (1.0 / (m.nominal_speed * m.nominal_speed)), 1.0)
    flap_time = m.flap_time_nominal * m.nominal_speed / xp.maximum(omega, _MIN_FLAP_SPEED_FRACTION * m.nominal_speed)
    blow_back = 2.0 * m.flap_speed_gain * ((4.0 / 3.0) * collective - lam)
    a1_free = speed_ratio_sq * (-q * flap_time + blow_back * u_hub * inv_tip + m.flap_gain * longitudinal)
    b1_free = speed_ratio_sq * (-p * flap_time - blow_back * v_hub * inv_tip + m.flap_gain * lateral)
    a1_target = (m.coupling_cos * a1_free - m.coupling_sin * b1_free) * alive
    b1_target = (m.coupling_cos * b1_free + m.coupling_sin * a1_free) * alive
    hub_moment = m.hub_stiffness * alive + thrust * m.hub_height

    # --- tail rotor (thrust axis -dir * y: positive pitch opposes the main rotor's reaction)
    tail_omega = omega * m.tail_gear
    tail_tip = xp.maximum(tail_omega * m.tail_radius, m.tail_min_tip_speed)
    inv_tail_tip = 1.0 / tail_tip
    v_tail = v - m.tail_arm * r + m.tail_height * p
    w_tail = w + m.tail_arm * q
    edge_tail = xp.sqrt(u * u + w_tail * w_tail)
    mu_t = edge_tail * inv_tail_tip
    mu_z_t = d * v_tail * inv_tail_tip
    ct_t = blade_element_thrust(xp, m.tail_half_a_sigma, tail_pitch, mu_t, mu_z_t, lam_tail) * alive
    ct_t = stall_limited(xp, ct_t, xp.abs(ct_t), m.tail_ct_max)
    lam_t_target = induced_inflow_target(xp, ct_t, mu_t, mu_z_t, lam_tail, 1.0)
    tail_omega_sq = tail_omega * tail_omega
    tail_thrust = ct_t * m.tail_thrust_scale * tail_omega_sq
    cq_t = ct_t * (lam_tail - mu_z_t) + m.tail_cq0 * (1.0 + (7.0 / 3.0) * mu_t * mu_t)  # constant C_d0
    tail_torque = cq_t * m.tail_torque_scale * tail_omega_sq
    y_tail = -d * tail_thrust

    # --- vertical fin at the tail station, partly in the tail rotor's wash
    v_fin = v_tail - d * m.fin_wash * lam_tail * tail_omega * m.tail_radius
    y_fin = -m.fin_half_rho_s * (m.fin_lift_slope * edge_tail + xp.sqrt(v_fin * v_fin)) * v_fin
    fin_cap = m.fin_half_rho_s * (edge_tail * edge_tail + v_fin * v_fin)
    y_fin = xp.clip(y_fin, -fin_cap, fin_cap)

    # --- horizontal stabiliser (lift opposes its vertical motion through the air)
    w_stab = w + m.stab_arm * q
    z_stab = -m.stab_half_rho_s * (m.stab_lift_slope * xp.sqrt(u * u) + xp.sqrt(w_stab * w_stab)) * w_stab
    stab_cap = m.stab_half_rho_s * (u * u + w_stab * w_stab)
    z_stab = xp.clip(z_stab, -stab_cap, stab_cap)

    # --- fuselage drag, the vertical part in the rotor downwash (download in hover)
    induced_velocity = lam * omega * m.radius
    w_fus = w - induced_velocity
    airspeed = xp.sqrt(u * u + v * v + w_fus * w_fus)

    force_x = -thrust * a1 - m.fus_x * u * airspeed
    force_y = thrust * b1 + y_tail + y_fin - m.fus_y * v * airspeed
    force_z = -thrust + z_stab - m.fus_z * w_fus * airspeed
    moment_x = hub_moment * b1 + m.tail_height * (y_tail + y_fin)
    moment_y = hub_moment * a1 + m.stab_arm * z_stab
    moment_z = -m.tail_arm * (y_tail + y_fin)
    return AirLoads(
        force_x, force_y, force_z, moment_x, moment_y, moment_z,
        main_torque + m.tail_gear * tail_torque,
        a1_target, b1_target, flap_time, lam_target, lam_t_target,
        thrust, main_torque, induced_velocity, tail_thrust,
    )  # fmt: skip


def motor_current(xp: Any, m: FlightModel, throttle: Any, rotor_speed: Any) -> Any:
    """An electric drive's motor current (A): the ESC's average voltage ``throttle x V`` against the
    back-EMF, across the winding; never negative (one-way clutch), at most the ESC's limit."""
    motor_speed = m.motor_gear * rotor_speed
    current = (throttle * m.battery_voltage - motor_speed / m.motor_kv_rad) / m.motor_resistance
    return xp.clip(current, 0.0, m.current_limit)


def drive_torque(xp: Any, m: FlightModel, throttle: Any, rotor_speed: Any) -> Any:
    """Torque the drive puts on the main shaft (N m), never negative (one-way clutch)."""
    if m.electric:
        return m.motor_gear * motor_current(xp, m, throttle, rotor_speed) / m.motor_kv_rad
    speed = xp.maximum(rotor_speed, ENGINE_TORQUE_SPEED_FRACTION * m.nominal_speed)
    return xp.clip(throttle, 0.0, 1.0) * m.max_power / speed


def rotate(
    ixx: float, iyy: float, izz: float, izz_yaw: float, rates: tuple, moments: tuple, dt: float
) -> tuple[Any, Any, Any, Any]:
    """Body rates after ``dt`` under constant body moments: Euler's equations, midpoint rule.

    ``J w' = M - w x (J w)`` with a diagonal ``J``; ``izz_yaw`` is the inertia the yaw axis
    accelerates with (the fuselage alone, when the rotor turns on its own bearing).  Returns
    (p, q, r, r') with r' the midpoint yaw acceleration.
    """
    p, q, r = rates
    mx, my, mz = moments
    inv_x, inv_y, inv_z = 1.0 / ixx, 1.0 / iyy, 1.0 / izz_yaw
    p_dot = (mx - q * r * (izz - iyy)) * inv_x
    q_dot = (my - r * p * (ixx - izz)) * inv_y
    r_dot = (mz - p * q * (iyy - ixx)) * inv_z
    half = 0.5 * dt
    pm, qm, rm = p + half * p_dot, q + half * q_dot, r + half * r_dot
    p_dot = (mx - qm * rm * (izz - iyy)) * inv_x
    q_dot = (my - rm * pm * (ixx - izz)) * inv_y
    r_dot = (mz - pm * qm * (iyy - ixx)) * inv_z
    return p + dt * p_dot, q + dt * q_dot, r + dt * r_dot, r_dot


def quaternion_step(xp: Any, quat: tuple, rates: tuple, new_rates: tuple, dt: float) -> tuple[Any, Any, Any, Any]:
    """``q (x) exp(w_avg dt / 2)`` to second order with the mean of old and new rates, renormalised."""
    qw, qx, qy, qz = quat
    (p, q, r), (p1, q1, r1) = rates, new_rates
    quarter = 0.25 * dt
    hx, hy, hz = (p + p1) * quarter, (q + q1) * quarter, (r + r1) * quarter
    hw = 1.0 - 0.5 * (hx * hx + hy * hy + hz * hz)
    nw = qw * hw - qx * hx - qy * hy - qz * hz
    nx = qw * hx + qx * hw + qy * hz - qz * hy
    ny = qw * hy - qx * hz + qy * hw + qz * hx
    nz = qw * hz + qx * hy - qy * hx + qz * hw
    inv_norm = 1.0 / xp.sqrt(nw * nw + nx * nx + ny * ny + nz * nz)
    return nw * inv_norm, nx * inv_norm, ny * inv_norm, nz * inv_norm


def _servo_follow(xp: Any, position: Any, command: Any, decay: float, max_move: float) -> Any:
    """A servo's next position: a first-order lag towards its (clipped) command, then a slew limit."""
    target = xp.clip(command, -1.0, 1.0)
    lagged = target + (position - target) * decay
    return position + xp.clip(lagged - position, -max_move, max_move)


def _step_kernel(xp: Any, m: FlightModel, x: Any, c: Any, dt: float, wind: Any) -> tuple:
    """One integration step over state columns ``x`` and command columns ``c`` in the NED ``wind``
    (three floats or columns; module doc)."""
    (pn, pe, pd, vn, ve, vd, qw, qx, qy, qz, p, q, r, a1, b1, omega, lam, lam_t,
     s0, s1, s2, s3, throttle, crash) = x  # fmt: skip
    c0, c1, c2, c3, throttle_cmd = c
    alive = xp.where(crash == 0.0, 1.0, 0.0)

    # 1. actuators: first-order lag, then slew limit
    servo_decay = math.exp(-dt / m.servo_time)
    max_move = m.servo_rate * dt
    s0 = _servo_follow(xp, s0, c0, servo_decay, max_move)
    s1 = _servo_follow(xp, s1, c1, servo_decay, max_move)
    s2 = _servo_follow(xp, s2, c2, servo_decay, max_move)
    s3 = _servo_follow(xp, s3, c3, servo_decay, max_move)
    collective, lateral, longitudinal = unmix(m.swash, s0, s1, s2)
    tail_pitch = m.tail_pitch_offset + s3 * m.tail_pitch_per_throw
    drive_decay = math.exp(-dt / m.drive_time)
    throttle_target = xp.clip(throttle_cmd, 0.0, 1.0) * alive
    throttle = throttle_target + (throttle - throttle_target) * drive_decay

    # 2. air loads, in body axes
    rot = rotation_matrix(qw, qx, qy, qz)
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
    an, ae, ad = vn - wind[0], ve - wind[1], vd - wind[2]
    u = r00 * an + r10 * ae + r20 * ad
    v = r01 * an + r11 * ae + r21 * ad
    w = r02 * an + r12 * ae + r22 * ad
    hub_agl = -(pd - r22 * m.hub_height)
    loads = air_loads(
        xp, m, (u, v, w), (p, q, r), omega, (collective, lateral, longitudinal),
        tail_pitch, (a1, b1), (lam, lam_t), hub_agl, alive,
    )  # fmt: skip

    # 3. drive through the one-way clutch
    q_drive = drive_torque(xp, m, throttle, omega) * alive

    # forces to NED accelerations, gravity included
    fx, fy, fz = loads.force_x, loads.force_y, loads.force_z
    inv_mass = 1.0 / m.mass
    acc_n = (r00 * fx + r01 * fy + r02 * fz) * inv_mass
    acc_e = (r10 * fx + r11 * fy + r12 * fz) * inv_mass
    acc_d = (r20 * fx + r21 * fy + r22 * fz) * inv_mass + m.gravity
    mx, my, mz = loads.moment_x, loads.moment_y, loads.moment_z - m.direction * q_drive

    # 4. ground contact, only when some vehicle is within reach of the ground
    near = pd > -m.contact.reach_m
    if xp.any(near):
        gn, ge, gd, gx, gy, gz, new_crash = _contact_near(xp, m, near, rot, pd, (vn, ve, vd), (p, q, r), omega)
        acc_n, acc_e, acc_d = acc_n + gn * inv_mass, acc_e + ge * inv_mass, acc_d + gd * inv_mass
        mx, my, mz = mx + gx, my + gy, mz + gz
        crash = xp.where(crash == 0.0, new_crash, crash)

    # 5a. rotation (the rotor's own angular momentum acts through the flapping states: the
    # tip-path plane lags the shaft and the hub spring carries the moment; only the yaw axis
    # trades torque with the rotor, through the drive, see the module doc)
    p_new, q_new, r_new, r_dot = rotate(
        m.ixx, m.iyy, m.izz_fuselage + m.rotor_inertia, m.izz_fuselage, (p, q, r), (mx, my, mz), dt
    )

    # rotor speed: drive minus aero load, relative to a fuselage that may itself accelerate
    omega_dot = (q_drive - loads.rotor_torque) / m.rotor_inertia - m.direction * r_dot
    omega_new = xp.maximum(omega + dt * omega_dot, 0.0)
    omega_new = xp.where(crash == 0.0, omega_new, omega * math.exp(-dt / _WRECKED_ROTOR_SPIN_DOWN_S))

    nw, nx, ny, nz = quaternion_step(xp, (qw, qx, qy, qz), (p, q, r), (p_new, q_new, r_new), dt)

    # 5b. translation: symplectic Euler
    vn_new, ve_new, vd_new = vn + dt * acc_n, ve + dt * acc_e, vd + dt * acc_d

    # first-order rotor states: exact exponential update towards their targets
    flap_decay = xp.exp(-dt / loads.flap_time)
    a1_t, b1_t = loads.flap_a1_target, loads.flap_b1_target
    lam_decay, lam_t_decay = math.exp(-dt / m.inflow_time), math.exp(-dt / m.tail_inflow_time)
    lam_new = loads.inflow_target + (lam - loads.inflow_target) * lam_decay
    lam_t_new = loads.tail_inflow_target + (lam_t - loads.tail_inflow_target) * lam_t_decay

    return (
        pn + dt * vn_new, pe + dt * ve_new, pd + dt * vd_new, vn_new, ve_new, vd_new,
        nw, nx, ny, nz, p_new, q_new, r_new,
        a1_t + (a1 - a1_t) * flap_decay, b1_t + (b1 - b1_t) * flap_decay,
        omega_new, lam_new, lam_t_new, s0, s1, s2, s3, throttle,
        crash,
    )  # fmt: skip


def steps(model: FlightModel, state: VehicleState, command: ActuatorCommand, dt_s: float, count: int) -> VehicleState:
    """``count`` consecutive ``step``s in the environment's steady wind, bit for bit the same: a small
    fleet stays in Python floats between them (the list-to-array round trip is a third of a step)."""
    if state.count > SCALAR_BATCH_LIMIT or count < 2:
        for _ in range(count):
            state = step(model, state, command, dt_s)
        return state
    if command.packed.shape[0] != state.count:
        raise ValueError(f"command has {command.packed.shape[0]} rows for {state.count} vehicles")
    rows, commands, wind = state.packed.tolist(), command.packed.tolist(), model.wind_ned
    for _ in range(count):
        rows = [_step_kernel(SCALAR, model, xs, cs, dt_s, wind) for xs, cs in zip(rows, commands, strict=True)]
    return VehicleState(np.array(rows, dtype=np.float64))


def _contact_near(xp: Any, m: FlightModel, near: Any, rot: tuple, pd: Any, vel: tuple, rates: tuple, omega: Any):
    """``contact_loads`` for the vehicles within reach of the ground only (a fleet with one on the
    ground would otherwise take every vehicle through the contact model, doubling a step's cost);
    the others' loads are zero, as the contact model gives them."""
    if xp is not ARRAY or bool(near.all()):
        return contact_loads(xp, m.contact, rot, pd, vel, rates, omega)
    index = np.flatnonzero(near)
    picked = contact_loads(
        xp, m.contact, tuple(a[index] for a in rot), pd[index], tuple(a[index] for a in vel),
        tuple(a[index] for a in rates), omega[index],
    )  # fmt: skip
    out = []
    for values in picked:
        full = np.zeros(pd.shape[0])
        full[index] = values
        out.append(full)
    return tuple(out)


def step(
    model: FlightModel, state: VehicleState, command: ActuatorCommand, dt_s: float, wind_ned: np.ndarray | None = None
) -> VehicleState:
    """Advance N vehicles by ``dt_s`` seconds (stable at 1 ms; see the module doc).

    ``wind_ned``: an (N, 3) wind (m/s, NED) per vehicle for this step (``heli.wind``); without it,
    the environment's steady wind."""
    count = state.count
    if command.packed.shape[0] != count:
        raise ValueError(f"command has {command.packed.shape[0]} rows for {count} vehicles")
    if wind_ned is not None and np.shape(wind_ned) != (count, 3):
        raise ValueError(f"wind has shape {np.shape(wind_ned)} for {count} vehicles; expected ({count}, 3)")
    if count <= SCALAR_BATCH_LIMIT:
        winds = [model.wind_ned] * count if wind_ned is None else wind_ned.tolist()
        rows = [
            _step_kernel(SCALAR, model, xs, cs, dt_s, ws)
            for xs, cs, ws in zip(state.packed.tolist(), command.packed.tolist(), winds, strict=True)
        ]
        return VehicleState(np.array(rows, dtype=np.float64))
    # Columns as contiguous rows of a (STATE_SIZE, N) array: the state is kept in Fortran order,
    # so ``packed.T`` is contiguous and each column a cache-friendly 1-D array.
    column_rows = np.asfortranarray(state.packed).T  # no copy once the state is in Fortran order
    wind = model.wind_ned if wind_ned is None else np.ascontiguousarray(np.asarray(wind_ned, dtype=np.float64).T)
    columns = step_columns(model, column_rows, np.ascontiguousarray(command.packed.T), dt_s, wind)
    return VehicleState(np.array(columns).T)


def step_columns(model: FlightModel, columns: Any, command_columns: Any, dt_s: float, wind: Any) -> tuple:
    """The batch kernel itself: one step of the (STATE_SIZE, N) ``columns`` holding the
    (COMMAND_SIZE, N) ``command_columns`` in ``wind`` (three floats, or a (3, N) array); returns
    the new state's columns.  ``step`` calls it for more than ``SCALAR_BATCH_LIMIT`` vehicles."""
    return _step_kernel(ARRAY, model, columns, command_columns, dt_s, wind)
