"""Swashplate CCPM geometry: blade-pitch commands to servo positions and back.

Three servos push the swashplate at azimuths measured from the nose, clockwise seen from above
(90 degrees = right side).  The rear servo sits at 180 degrees; the two side servos at
``180 -+ spacing``, i.e. at +-60 (120-degree CCPM), +-45 (135) or +-40 degrees (140).  The
height of the plate at azimuth psi, in blade-pitch radians, is

    h(psi) = C - L sin(psi) + M cos(psi)

with C the collective, L the lateral cyclic (positive lowers the right side: roll right) and M
the longitudinal cyclic (positive lowers the rear: the disc tilts aft, nose up).  Servo i
moves to ``h(psi_i) / pitch_per_throw`` in full-throw units.  The mixer (``mix``) is that map
with limits; the physics undoes it exactly (``unmix``), so a servo that saturates is felt by
the helicopter as the blade pitch it really gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SwashGeometry", "mix", "servo_azimuths_deg", "unmix"]

SERVO_LIMIT = 1.0  # full throw, both directions


def servo_azimuths_deg(swash_type_deg: int) -> tuple[float, float, float]:
    """Azimuths of servos 0 (rear), 1 (front right), 2 (front left) for a CCPM type."""
    if swash_type_deg not in (120, 135, 140):
        raise ValueError(f"swash type must be 120, 135 or 140 degrees, got {swash_type_deg}")
    side = 180.0 - swash_type_deg
    return (180.0, side, -side)


@dataclass(frozen=True)
class SwashGeometry:
    """The 3x3 map from (C, L, M) in radians to servo throw, and its inverse, as float tuples."""

    forward: tuple[tuple[float, float, float], ...]
    inverse: tuple[tuple[float, float, float], ...]

    @classmethod
    def build(cls, swash_type_deg: int, pitch_per_throw_deg: float) -> SwashGeometry:
        scale = 1.0 / math.radians(pitch_per_throw_deg)
        rows = []
        for azimuth in servo_azimuths_deg(swash_type_deg):
            psi = math.radians(azimuth)
            rows.append((scale, -math.sin(psi) * scale, math.cos(psi) * scale))
        matrix = np.array(rows)
        inverse = np.linalg.inv(matrix)
        return cls(tuple(map(tuple, matrix.tolist())), tuple(map(tuple, inverse.tolist())))


def mix(xp: Any, geometry: SwashGeometry, collective: Any, lateral: Any, longitudinal: Any) -> tuple[Any, Any, Any]:
    """Servo positions (full-throw units, clipped to +-1) for blade-pitch commands in radians."""
    (a, b, c), (d, e, f), (g, h, i) = geometry.forward
    return (
        xp.clip(a * collective + b * lateral + c * longitudinal, -SERVO_LIMIT, SERVO_LIMIT),
        xp.clip(d * collective + e * lateral + f * longitudinal, -SERVO_LIMIT, SERVO_LIMIT),
        xp.clip(g * collective + h * lateral + i * longitudinal, -SERVO_LIMIT, SERVO_LIMIT),
    )


def unmix(geometry: SwashGeometry, s0: Any, s1: Any, s2: Any) -> tuple[Any, Any, Any]:
    """Collective, lateral and longitudinal blade pitch (rad) that servo positions produce."""
    (a, b, c), (d, e, f), (g, h, i) = geometry.inverse
    return a * s0 + b * s1 + c * s2, d * s0 + e * s1 + f * s2, g * s0 + h * s1 + i * s2
