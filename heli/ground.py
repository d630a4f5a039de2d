"""Ground contact: penalty spring-dampers with Coulomb friction, and crash detection.

Contact points are fixed in the body frame: four skid ends, a tail skid and four points on the
rotor disc rim.  Each point below the ground plane (down > 0) pushes back with
``k * depth + c * sink rate`` (never pulling) and rubs with friction ``mu * normal`` opposing its
sliding velocity, made viscous below the stiction speed so that a helicopter at rest stays at
rest.  Stiffness comes from the skid sag at rest: four skid points carry the weight.

A crash is latched when a disc point touches the ground with the rotor turning (rotor strike),
a skid point touches down faster than the gear can take (hard landing), or the helicopter is on
the ground tilted past its roll-over angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from heli.params import Environment, HeliParams

__all__ = ["ContactConstants", "contact_loads"]

CRASH_ROTOR_STRIKE = 1.0
CRASH_HARD_LANDING = 2.0
CRASH_ROLL_OVER = 3.0
_STRIKE_SPEED_FRACTION = 0.25  # of nominal headspeed: a slower rotor touching down is no strike
_REACH_MARGIN_M = 0.05


@dataclass(frozen=True)
class ContactConstants:
    """Per-helicopter contact geometry and coefficients, as plain floats for the kernel."""

    skid_points: tuple[tuple[float, float, float], ...]
    disc_points: tuple[tuple[float, float, float], ...]
    stiffness_n_m: float
    damping_n_s_m: float
    friction_coeff: float
    stiction_speed_m_s: float
    hard_landing_speed_m_s: float
    cos_max_tilt: float
    strike_speed_rad_s: float
    reach_m: float  # no point is farther than this from the CG

    @classmethod
    def build(cls, params: HeliParams, env: Environment) -> ContactConstants:
        c, rotor = params.contact, params.main_rotor
        skid_ends = [
            (x, side * c.skid_half_width_m, c.skid_depth_m)
            for x in (c.skid_front_x_m, c.skid_rear_x_m)
            for side in (1.0, -1.0)
        ]
        skids = (*skid_ends, (c.tail_skid_x_m, 0.0, c.tail_skid_depth_m))
        radius, hub = rotor.radius_m, -rotor.hub_height_m
        disc = ((radius, 0.0, hub), (-radius, 0.0, hub), (0.0, radius, hub), (0.0, -radius, hub))
        weight_per_skid = params.mass.mass_kg * env.gravity_m_s2 / 4.0
        stiffness = weight_per_skid / c.static_deflection_m
        damping = 2.0 * c.damping_ratio * math.sqrt(stiffness * params.mass.mass_kg / 4.0)
        reach = max(math.sqrt(x * x + y * y + z * z) for x, y, z in skids + disc) + _REACH_MARGIN_M
        return cls(
            skid_points=skids,
            disc_points=disc,
            stiffness_n_m=stiffness,
            damping_n_s_m=damping,
            friction_coeff=c.friction_coeff,
            stiction_speed_m_s=c.stiction_speed_m_s,
            hard_landing_speed_m_s=c.hard_landing_speed_m_s,
            cos_max_tilt=math.cos(math.radians(c.max_ground_tilt_deg)),
            strike_speed_rad_s=_STRIKE_SPEED_FRACTION * rotor.nominal_speed_rad_s,
            reach_m=reach,
        )


def contact_loads(
    xp: Any, k: ContactConstants, rot: tuple, down_m: Any, vel_ned: tuple, rates: tuple, rotor_speed: Any
) -> tuple:
    """Ground forces (NED, N), moments (body, N m) and a new-crash code (0 if none).

    ``rot`` is the body-to-NED rotation matrix as 9 row-major entries.  Returns
    ``(f_north, f_east, f_down, m_x, m_y, m_z, crash_code)``; the code is the first crash
    found this step, in the order rotor strike, hard landing, roll-over.
    """
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
    v_n, v_e, v_d = vel_ned
    p, q, r = rates
    f_n = f_e = f_d = m_x = m_y = m_z = 0.0
    touching = hard = strike = False
    stiff, damp, mu, v_stick = k.stiffness_n_m, k.damping_n_s_m, k.friction_coeff, k.stiction_speed_m_s
    for index, (rx, ry, rz) in enumerate(k.skid_points + k.disc_points):
        depth = down_m + r20 * rx + r21 * ry + r22 * rz
        in_contact = depth > 0.0
        # velocity of the point: v + R (omega x r)
        cx, cy, cz = q * rz - r * ry, r * rx - p * rz, p * ry - q * rx
        pv_n = v_n + r00 * cx + r01 * cy + r02 * cz
        pv_e = v_e + r10 * cx + r11 * cy + r12 * cz
        pv_d = v_d + r20 * cx + r21 * cy + r22 * cz
        normal = xp.where(in_contact, xp.maximum(stiff * depth + damp * pv_d, 0.0), 0.0)
        slide = xp.sqrt(pv_n * pv_n + pv_e * pv_e)
        rub = mu * normal / xp.maximum(slide, v_stick)
        pf_n, pf_e, pf_d = -rub * pv_n, -rub * pv_e, -normal
        # the same force in body axes, then its moment about the CG
        bx = r00 * pf_n + r10 * pf_e + r20 * pf_d
        by = r01 * pf_n + r11 * pf_e + r21 * pf_d
        bz = r02 * pf_n + r12 * pf_e + r22 * pf_d
        f_n, f_e, f_d = f_n + pf_n, f_e + pf_e, f_d + pf_d
        m_x, m_y, m_z = m_x + ry * bz - rz * by, m_y + rz * bx - rx * bz, m_z + rx * by - ry * bx
        touching = touching | in_contact
        if index < len(k.skid_points):
            hard = hard | (in_contact & (pv_d > k.hard_landing_speed_m_s))
        else:
            strike = strike | (in_contact & (rotor_speed > k.strike_speed_rad_s))
    rolled = touching & (r22 < k.cos_max_tilt)
    code = xp.where(
        strike, CRASH_ROTOR_STRIKE, xp.where(hard, CRASH_HARD_LANDING, xp.where(rolled, CRASH_ROLL_OVER, 0.0))
    )
    return f_n, f_e, f_d, m_x, m_y, m_z, code
