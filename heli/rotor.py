"""Rotor aerodynamics: blade-element thrust, induced inflow, flapping targets and torque.

Pure kernels over ``xp`` (see ``heli.ops``): arguments are floats (one vehicle) or 1-D arrays
(a batch).  Notation follows Gavrilets, Mettler and Feron (2001): inflow ratios are velocities
divided by the tip speed ``Omega R``; ``mu`` is the edgewise advance ratio, ``mu_z`` the axial
velocity along the thrust axis *against* the thrust (positive into the disc from below for a
main rotor, i.e. descending), ``lam`` the induced inflow ratio (positive along the wake).

Induced inflow, from momentum theory, with the descent branch needed for autorotation:

* axial climb (x >= 0):       nu = -x/2 + sqrt(x^2/4 + 1)
* windmill brake (x <= -2):   nu = -x/2 - sqrt(x^2/4 - 1)
* vortex ring / turbulent wake (-2 < x < 0): Leishman's empirical curve, normalised by its own
  kappa = 1.15 and with k1 moved from -1.125 to -1.112 so that it meets both momentum branches
  exactly (nu = 1 at x = 0 and at x = -2); it gives ideal vertical autorotation at x ~ -1.72,
* forward flight: Glauert, nu = 1 / sqrt(y^2 + (x + nu)^2), one fixed-point pass per step from
  the previous inflow (the inflow filter in the caller completes the iteration over time),

where ``x`` and ``y`` are the axial (climb) and edgewise speeds over the hover induced velocity
``v_h`` of the current thrust, ``nu = v_i / (kappa v_h)``, and kappa is the induced-power
factor.  The axial and Glauert values are blended by ``min(y^2, 1)``: pure axial in a vertical
descent, pure Glauert from an edgewise speed of ``v_h`` up, where the vortex ring cannot form.
"""

from __future__ import annotations

from typing import Any

__all__ = ["induced_inflow_target", "profile_torque_coeff", "thrust_coeff"]

# Leishman's empirical vortex-ring curve divided by its kappa (1.15); k1 adjusted, see above.
_VRS_K1 = -1.112 / 1.15
_VRS_K2 = -1.372 / 1.15
_VRS_K3 = -1.718 / 1.15
_VRS_K4 = -0.655 / 1.15
_TINY_THRUST_COEFF = 2e-15  # keeps v_h above zero at zero thrust (inflow ratio floor 3e-8)


def thrust_coeff(xp: Any, half_a_sigma: float, ct_max: float, pitch_rad: Any, mu: Any, mu_z: Any, lam: Any) -> Any:
    """Blade-element thrust coefficient of an untwisted rotor, clipped to +-``ct_max`` (stall)."""
    ct = half_a_sigma * (pitch_rad * (1.0 / 3.0 + 0.5 * mu * mu) + 0.5 * (mu_z - lam))
    return xp.clip(ct, -ct_max, ct_max)


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
    quarter_x2 = 0.25 * x * x
    nu_climb = -0.5 * x + xp.sqrt(quarter_x2 + 1.0)
    nu_windmill = -0.5 * x - xp.sqrt(xp.maximum(quarter_x2 - 1.0, 0.0))
    nu_vrs = 1.0 + x * (_VRS_K1 + x * (_VRS_K2 + x * (_VRS_K3 + x * _VRS_K4)))
    nu_axial = xp.where(x >= 0.0, nu_climb, xp.where(x <= -2.0, nu_windmill, nu_vrs))
    weight = xp.minimum(y * y, 1.0)
    nu = nu_axial + weight * (nu_glauert - nu_axial)
    return sign * kappa * nu * lam_h


def profile_torque_coeff(cq0: float, mu: Any) -> Any:
    """Profile-drag torque coefficient ``sigma Cd0 / 8 (1 + 7/3 mu^2)``; ``cq0 = sigma Cd0 / 8``."""
    return cq0 * (1.0 + (7.0 / 3.0) * mu * mu)
