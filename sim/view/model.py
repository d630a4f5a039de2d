"""The helicopter as drawn: a fixed mesh in the body frame, scaled to the rotor radius.

``heli_model`` builds (and caches) a ``HeliModel``: the points of an octagonal fuselage, tail boom,
mast, skids, fin, horizontal stabiliser and tail rotor disc, with the fuselage faces, their outward
normals and colour keys, and the line segments drawn with a width.  ``DISC_UNIT`` is the unit circle
of the main rotor disc; ``rotor_disc_ned`` places that disc's rim in the world.  Nothing here draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sim.view.camera import flapping_tilt, quat_to_matrix

if TYPE_CHECKING:
    from sim.view.snapshot import VehicleView

__all__ = ["DEFAULT_ROTOR_RADIUS_M", "DISC_UNIT", "HeliModel", "heli_model", "rotor_disc_ned"]

DEFAULT_ROTOR_RADIUS_M = 0.75  # the X-Cell's is 0.775 m


@dataclass(frozen=True)
class HeliModel:
    """Body-frame points (m) of a helicopter drawn with a given rotor radius."""

    points: np.ndarray  # all fixed points, one array so they transform in one product
    faces: tuple[tuple[int, ...], ...]  # fuselage faces (indices into points)
    face_normals: np.ndarray  # outward, body frame
    face_colours: tuple[str, ...]  # "body" or "canopy"
    face_first: np.ndarray  # index of each face's first point
    fin: tuple[int, ...]
    stabiliser: tuple[int, ...]
    tail_disc: tuple[int, ...]
    lines: tuple[tuple[int, int, float, str], ...]  # (a, b, width m, colour key)
    line_a: tuple[int, ...]
    line_b: tuple[int, ...]
    fin_normal: np.ndarray
    stabiliser_normal: np.ndarray
    hub: np.ndarray
    hub_index: int
    radius_m: float
    body_half_m: float  # for the "too close to draw" test


# fuselage sections: x (forward), half width, top z, bottom z (m, body frame, for a 0.75 m rotor)
_FUSELAGE_SECTIONS = (
    (-0.22, 0.05, -0.05, 0.08),
    (-0.05, 0.085, -0.09, 0.13),
    (0.17, 0.08, -0.06, 0.13),
    (0.35, 0.035, 0.04, 0.10),
)
# an octagon (y share of the half width, z share of the height from the top), going round clockwise seen from behind
_OCTAGON = ((-0.55, 0.0), (0.55, 0.0), (1.0, 0.3), (1.0, 0.72), (0.6, 1.0), (-0.6, 1.0), (-1.0, 0.72), (-1.0, 0.3))
_OCTAGON_TOP = (0, 1, 7)  # its edges on the roof (edge j joins corners j and j + 1)


@lru_cache(maxsize=8)
def heli_model(radius_m: float) -> HeliModel:
    """The helicopter mesh for a main rotor of this radius (m): the 0.75 m one scaled, cached by radius."""
    s = radius_m / DEFAULT_ROTOR_RADIUS_M
    # fuselage: octagonal sections lofted from the tail end to the nose; the hull is convex, so culling
    # the faces that look away is enough to paint it
    pts: list[tuple[float, float, float]] = []
    for x, half_w, top, bottom in _FUSELAGE_SECTIONS:
        h = bottom - top
        for sy, sz in _OCTAGON:
            pts.append((x, sy * half_w, top + sz * h))
    sides = len(_OCTAGON)
    faces_l: list[tuple[int, ...]] = [tuple(range(sides - 1, -1, -1))]  # tail end cap
    colours_l = ["body"]
    for k in range(len(_FUSELAGE_SECTIONS) - 1):
        for j in range(sides):
            a, b = k * sides + j, k * sides + (j + 1) % sides
            faces_l.append((a, b, b + sides, a + sides))
            glass = k == len(_FUSELAGE_SECTIONS) - 2 and j in _OCTAGON_TOP
            colours_l.append("canopy" if glass else "body")
    faces_l.append(tuple(range((len(_FUSELAGE_SECTIONS) - 1) * sides, len(_FUSELAGE_SECTIONS) * sides)))  # nose
    colours_l.append("body")
    faces = tuple(faces_l)
    face_colours = tuple(colours_l)
    n_hull = len(pts)
    base = len(pts)
    pts += [
        (-0.20, 0.0, -0.02),  # boom root
        (-0.96, 0.0, -0.04),  # boom tip
        (0.0, 0.0, -0.08),  # mast foot
        (0.0, 0.0, -0.22),  # hub
    ]
    lines = [(base, base + 1, 0.035, "metal"), (base + 2, base + 3, 0.025, "metal")]
    # skids: struts from the belly, and the skid tubes with an upturned front
    for side in (-1.0, 1.0):
        k = len(pts)
        pts += [
            (0.10, 0.05 * side, 0.11),
            (0.12, 0.17 * side, 0.25),
            (-0.12, 0.05 * side, 0.11),
            (-0.14, 0.17 * side, 0.25),
            (-0.24, 0.17 * side, 0.25),
            (0.24, 0.17 * side, 0.25),
            (0.31, 0.17 * side, 0.20),
        ]
        lines += [
            (k, k + 1, 0.018, "metal"),
            (k + 2, k + 3, 0.018, "metal"),
            (k + 4, k + 5, 0.02, "metal"),
            (k + 5, k + 6, 0.02, "metal"),
        ]
    k = len(pts)
    pts += [(-0.86, 0.0, -0.04), (-0.98, 0.0, -0.22), (-1.03, 0.0, -0.22), (-0.99, 0.0, 0.07)]
    fin = (k, k + 1, k + 2, k + 3)
    k = len(pts)
    pts += [(-0.60, -0.13, -0.03), (-0.66, -0.13, -0.03), (-0.68, 0.13, -0.03), (-0.60, 0.13, -0.03)]
    stabiliser = (k, k + 1, k + 2, k + 3)
    k = len(pts)
    tail_r = 0.13
    for a in np.linspace(0.0, 2 * math.pi, 14, endpoint=False):
        pts.append((-0.97 + tail_r * math.cos(a), 0.045, -0.07 + tail_r * math.sin(a)))
    tail_disc = tuple(range(k, len(pts)))
    points = np.array(pts) * s
    normals = []
    centroid = points[:n_hull].mean(axis=0)
    for face in faces:
        v = points[list(face)]
        n = np.cross(v[1] - v[0], v[2] - v[0])
        if np.dot(n, v.mean(axis=0) - centroid) < 0:
            n = -n
        normals.append(n / np.linalg.norm(n))

    def plane_normal(face: tuple[int, ...]) -> np.ndarray:
        v = points[list(face)]
        n = np.cross(v[1] - v[0], v[2] - v[0])
        return n / np.linalg.norm(n)

    return HeliModel(
        points=points,
        faces=faces,
        face_normals=np.array(normals),
        face_colours=face_colours,
        face_first=np.array([face[0] for face in faces]),
        fin=fin,
        stabiliser=stabiliser,
        tail_disc=tail_disc,
        lines=tuple(lines),
        line_a=tuple(a for a, _, _, _ in lines),
        line_b=tuple(b for _, b, _, _ in lines),
        fin_normal=plane_normal(fin),
        stabiliser_normal=plane_normal(stabiliser),
        hub=points[base + 3].copy(),
        hub_index=base + 3,
        radius_m=radius_m,
        body_half_m=0.6 * s,
    )


# the main rotor disc's rim in the shaft frame, for a unit radius: 36 points from the nose, turning right
_DISC_ANGLES = np.linspace(0.0, 2 * math.pi, 36, endpoint=False)
DISC_UNIT = np.stack([np.cos(_DISC_ANGLES), np.sin(_DISC_ANGLES), np.zeros_like(_DISC_ANGLES)], axis=1)


def rotor_disc_ned(vehicle: VehicleView, radius_m: float = DEFAULT_ROTOR_RADIUS_M) -> np.ndarray:
    """Rim of a heli's main rotor disc as drawn: (36, 3) points in NED, m, starting at the nose, turning right."""
    model = heli_model(float(radius_m))
    r = quat_to_matrix(vehicle.attitude_quat)
    rim_body = model.hub + (model.radius_m * DISC_UNIT) @ flapping_tilt(vehicle.flapping_rad).T
    return np.asarray(vehicle.position_ned_m, dtype=float) + rim_body @ r.T
