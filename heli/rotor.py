"""Rotor aerodynamics: blade-element thrust with stall, induced inflow, profile torque.

Pure kernels over ``xp`` (see ``heli.ops``): arguments are floats (one vehicle) or 1-D arrays
(a batch).  Notation follows Gavrilets, Mettler and Feron (2001): inflow ratios are velocities
divided by the tip speed ``Omega R``; ``mu`` is the edgewise advance ratio, ``mu_z`` the axial
velocity along the thrust axis *against* the thrust (positive into the disc from below for a
main rotor, i.e. descending), ``lam`` the induced inflow ratio (positive along the wake).

Thrust: blade-element theory of an untwisted blade in uniform inflow,
``C_T = (a sigma / 2) (theta (1/3 + mu^2/2) - (lam - mu_z)/2)``, whose mean blade lift
coefficient is ``6 C_T / sigma``.  Stall is a limit on that mean lift (``C_T,max = sigma
C_L,max / 6``), approached smoothly: linear up to 85 % of it, then bending over towards it
(``x - e^2 / (w + e)`` with ``e`` the excess over the knee and ``w`` the room left above it), so
a flare at low rotor speed keeps some thrust instead of meeting a wall.

Profile torque from the blade section's angle of attack: with a drag polar
``C_d = C_d0 + C_d2 alpha^2`` and ``alpha(r) = theta - (lam - mu_z) / r``, the torque integral
``(sigma / 2) int C_d r^3 dr`` is exact in closed form,
``sigma / 8 (C_d0 + C_d2 (theta^2 - 8/3 theta lam_net + 2 lam_net^2))``; past the stall knee
the drag rises with the square of the mean angle's excess (``C_d,stall``).  Forward speed
multiplies it by ``1 + 7/3 mu^2`` as before.

Induced inflow, from momentum theory, smooth through hover and the vortex ring:

* axial climb (x >= 0):        nu = -x/2 + sqrt(x^2/4 + 1)
* windmill brake (x <= -2.5):  nu = -x/2 - sqrt(x^2/4 - 1)
* in between, a degree-6 polynomial fitted (least squares over -1.95 <= x <= -0.2, rms 0.046)
  to the empirical vortex-ring curve of Leishman's *Principles of Helicopter Aerodynamics*
  (a fit to flight and wind-tunnel measurements, normalised by its kappa 1.15), constrained to
  meet the climb branch with equal value, slope (-1/2) and curvature (1/4) at hover, and the
  windmill branch with equal value and slope at x = -2.5.  So the heave damping is the same just above and just below
  hover, falls to about a fifth of it deep in the vortex ring (never changing sign), and ideal
  vertical autorotation (x + nu = 0) falls at x = -1.73,
* forward flight: Glauert, nu = 1 / sqrt(y^2 + (x + nu)^2), one fixed-point pass per step from
  the previous inflow (the inflow filter in the caller completes the iteration over time),

where ``x`` and ``y`` are the axial (climb) and edgewise speeds over the hover induced velocity
``v_h`` of the current thrust, ``nu = v_i / (kappa v_h)``, and kappa is the induced-power
factor.  The axial and Glauert values are blended by ``min(y^2, 1)``: pure axial in a vertical
descent, pure Glauert from an edgewise speed of ``v_h`` up, where the vortex ring cannot form.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "STALL_KNEE",
    "WINDMILL_JOIN",
    "axial_inflow",
    "blade_element_thrust",
    "induced_inflow_target",
    "profile_torque_coeff",
    "stall_limited",
]

# nu(x) on WINDMILL_JOIN < x < 0 (see the module doc): coefficients of x^0 .. x^6
_VRS_COEFFS = (1.0, -0.5, 0.125, -0.4140150638, -0.188975841, 0.1657332245, 0.0596644603)
WINDMILL_JOIN = -2.5
STALL_KNEE = 0.85  # fraction of C_T,max where the lift curve starts to bend
_TINY_THRUST_COEFF = 2e-15  # keeps v_h above zero at zero thrust (inflow ratio floor 3e-8)


def blade_element_thrust(xp: Any, half_a_sigma: float, pitch_rad: Any, mu: Any, mu_z: Any, lam: Any) -> Any:
    """Thrust coefficient of an untwisted blade in uniform inflow, before stall."""
    return half_a_sigma * (pitch_rad * (1.0 / 3.0 + 0.5 * mu * mu) + 0.5 * (mu_z - lam))


def stall_limited(xp: Any, ct_linear: Any, magnitude: Any, ct_max: float) -> Any:
    """``ct_linear`` (of size ``magnitude = |ct_linear|``) bent smoothly towards +-``ct_max`` above
    ``STALL_KNEE`` of it (module doc)."""
    knee = STALL_KNEE * ct_max
    excess = xp.maximum(magnitude - knee, 0.0)
    bend = excess * excess / ((ct_max - knee) + excess)
    return xp.where(ct_linear >= 0.0, ct_linear - bend, ct_linear + bend)


def profile_torque_coeff(
    xp: Any, polar: tuple[float, float, float, float, float], pitch_rad: Any, lam_net: Any, mu: Any, ct_magnitude: Any
) -> Any:
    """Profile-drag torque coefficient from the section polar (module doc).

    ``polar`` is ``(sigma C_d0 / 8, sigma C_d2 / 8, sigma C_d,stall / 8, mean angle per C_T,
    mean angle at the stall knee)``; ``lam_net = lam - mu_z`` is the net inflow through the disc;
    ``ct_magnitude`` the size of the thrust coefficient before stall.
    """
    cq0, cq2, cq_stall, angle_per_ct, knee_angle = polar
    mean_square_angle = pitch_rad * pitch_rad - (8.0 / 3.0) * pitch_rad * lam_net + 2.0 * lam_net * lam_net
    past_knee = xp.maximum(ct_magnitude * angle_per_ct - knee_angle, 0.0)
    section = cq0 + cq2 * mean_square_angle + cq_stall * past_knee * past_knee
    return section * (1.0 + (7.0 / 3.0) * mu * mu)


def axial_inflow(xp: Any, x: Any) -> Any:
    """``nu = v_i / (kappa v_h)`` in axial flight at climb ratio ``x = V_climb / v_h``."""
    quarter_x2 = 0.25 * x * x
    nu_climb = -0.5 * x + xp.sqrt(quarter_x2 + 1.0)
    nu_windmill = -0.5 * x - xp.sqrt(xp.maximum(quarter_x2 - 1.0, 0.0))
    c0, c1, c2, c3, c4, c5, c6 = _VRS_COEFFS
    nu_vrs = c0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * (c5 + x * c6)))))
    return xp.where(x >= 0.0, nu_climb, xp.where(x <= WINDMILL_JOIN, nu_windmill, nu_vrs))


def induced_inflow_target(xp: Any, ct: Any, mu: Any, mu_z: Any, lam_prev: Any, kappa: float) -> Any:
    """The quasi-steady induced inflow ratio for thrust coefficient ``ct`` (see module doc).

    ``lam_prev`` is the current inflow state, used as the Glauert iterate.  Negative thrust
    (negative pitch) reverses the wake, so the problem is solved for ``|ct|`` and the sign
    put back.
    """
    sign = xp.where(ct >= 0.0, 1.0, -1.0)
    lam_h = xp.sqrt(0.5 * (ct * sign) + _TINY_THRUST_COEFF)
    inv_lam_h = 1.0 / lam_h
    x = -mu_z * sign * inv_lam_h
    y = mu * inv_lam_h
    nu_prev = lam_prev * sign * inv_lam_h * (1.0 / kappa)
    s = x + nu_prev
    nu_glauert = 1.0 / xp.sqrt(y * y + s * s + 1e-12)
    nu_axial = axial_inflow(xp, x)
    weight = xp.minimum(y * y, 1.0)
    nu = nu_axial + weight * (nu_glauert - nu_axial)
    return sign * kappa * nu * lam_h
