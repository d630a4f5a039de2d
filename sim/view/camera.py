"""Cameras and the rotation maths behind them: where the view looks from and how NED points reach the screen.

Frames: NED earth frame (north, east, down; the ground is down = 0), body frame x forward, y right,
z down; a camera frame x right, y down, z along the line of sight.  A ``Camera`` clips camera-frame
points and segments to its frustum before it projects them, so nothing behind the camera (or
absurdly far to the side) reaches pygame; screen coordinates are clamped to +- ``GUARD_PX``.
``pilot_camera`` stands with the RC pilot on the ground, ``chase_camera`` flies behind the heli.
Nothing here draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pygame

if TYPE_CHECKING:
    from sim.view.snapshot import VehicleView

__all__ = [
    "CHASE_FOV_DEG",
    "GUARD_PX",
    "NEAR_M",
    "PILOT_EYE_NED_M",
    "PILOT_FOV_DEG",
    "Camera",
    "all_finite",
    "chase_camera",
    "euler_from_matrix",
    "flapping_tilt",
    "pilot_camera",
    "quat_to_matrix",
]

NEAR_M = 0.1  # near clipping plane
FRUSTUM_MARGIN = 1.25  # side planes this much wider than the screen, so clipping happens off screen
GUARD_PX = 30000  # screen coordinates are clamped to +- this (pygame takes C ints)
PILOT_EYE_NED_M = (-10.0, 0.0, -1.7)  # the RC pilot: 10 m south of the take-off point, eyes 1.7 m up
PILOT_FOV_DEG = 40.0  # vertical field of view ...
PILOT_ZOOM_FROM_M = 15.0  # ... narrowing (a zoom) for a heli further away than this ...
PILOT_MIN_FOV_DEG = 22.0  # ... down to this
CHASE_FOV_DEG = 60.0
CHASE_BACK_RADII = 5.5  # chase camera: this many rotor radii behind the heli ...
CHASE_UP_RADII = 2.0  # ... and this many above it
CAMERA_MIN_HEIGHT_M = 0.3
MAX_PITCH_RAD = math.radians(80.0)  # cameras look at most this far up or down


# ---------------------------------------------------------------------------------------------- maths


def quat_to_matrix(q: tuple[float, float, float, float]) -> np.ndarray:
    """Rotation matrix (body -> NED) of a quaternion (w, x, y, z); identity for a zero or non-finite one."""
    w, x, y, z = (float(c) for c in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not (n > 1e-9 and math.isfinite(n)):
        return np.eye(3)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def euler_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad, ZYX) of a body -> NED rotation matrix."""
    roll = math.atan2(r[2, 1], r[2, 2])
    pitch = -math.asin(max(-1.0, min(1.0, r[2, 0])))
    yaw = math.atan2(r[1, 0], r[0, 0])
    return roll, pitch, yaw


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def flapping_tilt(flapping_rad: tuple[float, float]) -> np.ndarray:
    """Rotation from the shaft frame to the rotor's tip-path plane: a1 > 0 tilts the disc aft (its front
    edge rises), b1 > 0 tilts it to the right (its right edge drops)."""
    a1, b1 = (float(f) for f in flapping_rad)
    return _rot_y(a1) @ _rot_x(b1)


def all_finite(values) -> bool:
    """True when every value is a finite number."""
    return all(math.isfinite(float(v)) for v in values)


# --------------------------------------------------------------------------------------------- camera


@dataclass(frozen=True)
class Camera:
    """A pinhole camera without roll: where it is, where it looks, and the screen it projects onto."""

    eye: np.ndarray  # NED, m
    rot: np.ndarray  # rows: camera x (right), y (down), z (forward), in NED
    focal_px: float
    fov_deg: float  # vertical field of view
    centre: tuple[float, float]  # screen position of the optical axis, px
    elevation_rad: float  # of the line of sight above the horizon
    planes: np.ndarray  # (5, 3) inward normals of the clipping planes (camera frame) ...
    offsets: np.ndarray  # (5,) ... a point p is inside when planes @ p >= offsets

    @classmethod
    def looking(cls, eye, azimuth_rad: float, elevation_rad: float, rect: pygame.Rect, fov_deg: float) -> Camera:
        """A camera at ``eye`` (NED) looking along an azimuth (from north, towards east) and elevation."""
        el = max(-MAX_PITCH_RAD, min(MAX_PITCH_RAD, elevation_rad))
        ca, sa, ce, se = math.cos(azimuth_rad), math.sin(azimuth_rad), math.cos(el), math.sin(el)
        forward = np.array([ce * ca, ce * sa, -se])
        right = np.array([-sa, ca, 0.0])
        down = np.array([se * ca, se * sa, ce])  # forward x right
        focal = 0.5 * rect.height / math.tan(math.radians(fov_deg) / 2.0)
        tx = FRUSTUM_MARGIN * 0.5 * rect.width / focal
        ty = FRUSTUM_MARGIN * 0.5 * rect.height / focal
        planes = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, tx], [-1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, -1.0, ty]])
        offsets = np.array([NEAR_M, 0.0, 0.0, 0.0, 0.0])
        return cls(
            eye=np.asarray(eye, dtype=float),
            rot=np.array([right, down, forward]),
            focal_px=focal,
            fov_deg=fov_deg,
            centre=(rect.centerx, rect.centery),
            elevation_rad=el,
            planes=planes,
            offsets=offsets,
        )

    @classmethod
    def look_at(cls, eye, target, rect: pygame.Rect, fov_deg: float, default_azimuth: float = 0.0) -> Camera:
        d = np.asarray(target, dtype=float) - np.asarray(eye, dtype=float)
        horizontal = math.hypot(d[0], d[1])
        if not (math.isfinite(horizontal) and math.isfinite(d[2])) or horizontal + abs(d[2]) < 1e-6:
            return cls.looking(eye, default_azimuth, 0.0, rect, fov_deg)
        azimuth = math.atan2(d[1], d[0]) if horizontal > 1e-6 else default_azimuth
        return cls.looking(eye, azimuth, math.atan2(-d[2], horizontal), rect, fov_deg)

    def to_camera(self, points_ned: np.ndarray) -> np.ndarray:
        return (points_ned - self.eye) @ self.rot.T

    def project(self, cam: np.ndarray) -> np.ndarray:
        """Screen positions (px) of camera-frame points in front of the near plane."""
        z = np.maximum(cam[..., 2], NEAR_M * 0.5)
        out = np.empty((*cam.shape[:-1], 2))
        out[..., 0] = self.centre[0] + self.focal_px * cam[..., 0] / z
        out[..., 1] = self.centre[1] + self.focal_px * cam[..., 1] / z
        return np.clip(out, -GUARD_PX, GUARD_PX)

    def horizon_y(self) -> float:
        return self.centre[1] + self.focal_px * math.tan(self.elevation_rad)

    def clip_segments(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clip camera-frame segments a[i]-b[i] to the view frustum: (new a, new b, kept mask)."""
        t0 = np.zeros(len(a))
        t1 = np.ones(len(a))
        keep = np.ones(len(a), dtype=bool)
        fa_all = a @ self.planes.T - self.offsets
        fb_all = b @ self.planes.T - self.offsets
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(len(self.offsets)):
                fa, fb = fa_all[:, k], fb_all[:, k]
                keep &= (fa >= 0) | (fb >= 0)
                t = fa / (fa - fb)
                entering = (fa < 0) & (fb >= 0)
                leaving = (fb < 0) & (fa >= 0)
                t0 = np.where(entering, np.maximum(t0, t), t0)
                t1 = np.where(leaving, np.minimum(t1, t), t1)
        keep &= t0 <= t1
        d = b - a
        return a + t0[:, None] * d, a + t1[:, None] * d, keep

    def polygon(self, cam: np.ndarray) -> list[tuple[float, float]] | None:
        """Screen polygon of a camera-frame polygon, clipped to the near plane; None when nothing is left."""
        if cam[:, 2].min() < NEAR_M:
            clipped = _clip_near(cam)
            if clipped is None:
                return None
            cam = clipped
        return self.project(cam).tolist()

    def line(self, a: np.ndarray, b: np.ndarray) -> tuple[list[float], list[float], float] | None:
        """Screen end points of a camera-frame segment and its distance; None when it is not in view."""
        ca, cb, keep = self.clip_segments(a[None, :], b[None, :])
        if not keep[0]:
            return None
        pa, pb = self.project(np.vstack([ca, cb]))
        return pa.tolist(), pb.tolist(), 0.5 * (ca[0, 2] + cb[0, 2])


def _clip_near(cam: np.ndarray) -> np.ndarray | None:
    """Sutherland-Hodgman clip of one camera-frame polygon against the near plane."""
    out = []
    n = len(cam)
    for i in range(n):
        p, q = cam[i], cam[(i + 1) % n]
        p_in, q_in = p[2] >= NEAR_M, q[2] >= NEAR_M
        if p_in:
            out.append(p)
        if p_in != q_in:
            t = (NEAR_M - p[2]) / (q[2] - p[2])
            out.append(p + t * (q - p))
    return np.array(out) if len(out) >= 3 else None


def pilot_camera(target_ned, rect: pygame.Rect) -> Camera:
    """The RC pilot's view: from the ground south of the take-off point, turned towards the heli."""
    eye = np.array(PILOT_EYE_NED_M)
    target = np.asarray(target_ned, dtype=float) if target_ned is not None else eye + np.array([10.0, 0.0, 0.0])
    distance = float(np.linalg.norm(target - eye))
    fov = PILOT_FOV_DEG
    if distance > PILOT_ZOOM_FROM_M:  # zoom a little, so that a heli far away stays visible
        fov = max(PILOT_MIN_FOV_DEG, PILOT_FOV_DEG * PILOT_ZOOM_FROM_M / distance)
    return Camera.look_at(eye, target, rect, fov)


def chase_camera(vehicle: VehicleView | None, rect: pygame.Rect, rotor_radius_m: float) -> Camera:
    """Behind and above the heli along its heading, looking at it."""
    if vehicle is None or not all_finite(vehicle.position_ned_m):
        return pilot_camera(None, rect)
    pos = np.asarray(vehicle.position_ned_m, dtype=float)
    r = quat_to_matrix(vehicle.attitude_quat)
    nose = r[:, 0]
    if math.hypot(nose[0], nose[1]) > 0.2:
        heading = math.atan2(nose[1], nose[0])
    else:  # nose straight up (the belly faces where it was heading) or down (the top does)
        ahead = r[:, 2] if nose[2] < 0 else -r[:, 2]
        heading = math.atan2(ahead[1], ahead[0]) if math.hypot(ahead[0], ahead[1]) > 1e-6 else 0.0
    back = CHASE_BACK_RADII * rotor_radius_m
    eye = pos + np.array([-back * math.cos(heading), -back * math.sin(heading), -CHASE_UP_RADII * rotor_radius_m])
    eye[2] = min(eye[2], -CAMERA_MIN_HEIGHT_M)
    return Camera.look_at(eye, pos, rect, CHASE_FOV_DEG, default_azimuth=heading)
