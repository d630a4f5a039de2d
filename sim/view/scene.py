"""The 3D scene of the view: sky and ground, the take-off pad and the ground grid, and the helicopters
with their shadows, drawn through a ``Camera`` (``sim.view.camera``) from the mesh of
``sim.view.model``.

Helicopter parts are painted back to front (the fuselage faces that look away are culled), with the
main rotor disc before or after the body depending on which side of it the camera is; translucent
parts (rotor discs, shadows) are blended from a small temporary surface.  pygame is used here only
to draw, on the view process's main thread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pygame

from sim.view.camera import (
    GUARD_PX,
    NEAR_M,
    PILOT_EYE_NED_M,
    Camera,
    all_finite,
    chase_camera,
    flapping_tilt,
    pilot_camera,
    quat_to_matrix,
)
from sim.view.labels import LabelRequest
from sim.view.model import DISC_UNIT, HeliModel, heli_model

if TYPE_CHECKING:
    from sim.view.snapshot import Snapshot, VehicleView
    from sim.view.text import Text

__all__ = ["Scene"]

GRID_STEP_M = 2.0
GRID_HALF_M = 40.0
GRID_PIECE_M = 4.0  # grid lines are faded piece by piece
GRID_FADE_M = 70.0  # grid lines fade into the haze over this distance from the camera
GRID_BANDS = 7  # distance bands of the fade (one colour each)
SUN_TRAVEL_NED = np.array([0.7, 0.35, 0.75]) / np.linalg.norm([0.7, 0.35, 0.75])  # sunlight, from the south-south-west
TOWARDS_SUN = -SUN_TRAVEL_NED
AMBIENT = 0.42  # share of a face's colour lit with no sun on it
SHADOW_FADE_M = 40.0  # a shadow fades out as its heli climbs this high
MIN_DRAW_DISTANCE_M = 0.6  # a heli closer than this to the camera is not drawn (the camera is inside it)
TINY_PX = 3.0  # a heli smaller than this on screen is drawn as a dot
BLADE_VISUAL_REV_PER_RPM = 1.0 / 600.0  # drawn blade speed, rev/s per rpm: slow enough not to alias at 60 fps

SKY_ZENITH = (58, 104, 170)
SKY_HORIZON = (178, 204, 228)
GROUND_HORIZON = (150, 168, 140)
GROUND_NEAR = (78, 116, 62)
GRID_LINE = (214, 226, 196)
PAD_COLOUR = (150, 150, 140)
PAD_MARK = (235, 235, 225)
HELI_COLOURS = ((236, 184, 42), (220, 86, 64), (72, 140, 232), (126, 200, 90), (196, 112, 222), (60, 196, 196))
CRASHED_COLOUR = (92, 40, 36)
# the order labels are laid out in (sim.view.labels): the focused helicopter (0), the crashed ones, the
# others, then the compass letters on the ground, which give way to everything
_CRASHED_RANK = 1_000_000
_FLYING_RANK = 2_000_000
_COMPASS_RANK = 3_000_000
_SCREEN_LIMIT_PX = 1e6  # a projected point farther out than this (or not finite) is no screen rectangle
METAL = (70, 72, 78)
CANOPY = (40, 58, 82)
BLADE = (30, 30, 34)
DISC_RGBA = (222, 226, 234, 64)
DISC_RIM_RGBA = (70, 76, 90, 110)
TAIL_DISC_RGBA = (34, 36, 44, 80)
SHADOW_RGBA = (10, 24, 8, 120)
FOCUS_COLOUR = (255, 226, 80)
LABEL_COLOUR = (236, 240, 246)
CRASH_TEXT = (255, 70, 60)


def _shade(colour: tuple[int, int, int], light: float) -> tuple[int, int, int]:
    k = AMBIENT + (1.0 - AMBIENT) * max(0.0, light)
    return (min(255, int(colour[0] * k)), min(255, int(colour[1] * k)), min(255, int(colour[2] * k)))


def _mix(a: tuple[int, ...], b: tuple[int, ...], t: float) -> tuple[int, int, int]:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


_PAD_ANGLES = np.linspace(0.0, 2 * math.pi, 28, endpoint=False)
_PAD_RADIUS_M = 1.2
PAD_LINE_M = 0.12  # width of the H painted on it
_PAD_H = np.array(  # (segment, end, NED) m
    [
        [(-0.5, -0.35, 0.0), (0.5, -0.35, 0.0)],
        [(-0.5, 0.35, 0.0), (0.5, 0.35, 0.0)],
        [(0.0, -0.35, 0.0), (0.0, 0.35, 0.0)],
    ]
)


# ------------------------------------------------------------------------------------- draw lists


_Points = Sequence[Sequence[float]]  # screen points, (x, y) each
_Shape = tuple[str, _Points, tuple[int, ...], int]  # a translucent shape: (kind, screen points, rgba, width)


@dataclass
class _Item:
    """One thing to paint: drawn back to front by depth (distance along the line of sight)."""

    depth: float
    kind: str  # "poly", "line", "alpha" (translucent shapes on one temporary surface)
    colour: tuple[int, ...]
    points: _Points = ()  # screen polygon, or a line's two end points
    width: int = 1
    extra: Sequence[_Shape] = ()  # for "alpha": the shapes


def _blit_translucent(surface: pygame.Surface, clip: pygame.Rect, shapes: Sequence[_Shape]) -> None:
    """Draw translucent shapes, (kind, screen points, rgba, width) with kind "poly" (filled), "rim" (outline)
    or "line": drawn on a small temporary surface, blended in one blit."""
    if not shapes:
        return
    left = top = math.inf
    right = bottom = -math.inf
    for _, pts, _, width in shapes:
        xs, ys = zip(*pts, strict=True)
        left, right = min(left, min(xs) - width), max(right, max(xs) + width)
        top, bottom = min(top, min(ys) - width), max(bottom, max(ys) + width)
    box = pygame.Rect(int(left) - 2, int(top) - 2, int(right - left) + 5, int(bottom - top) + 5).clip(clip)
    if box.width <= 0 or box.height <= 0:
        return
    tmp = pygame.Surface(box.size, pygame.SRCALPHA)
    ox, oy = box.x, box.y
    for kind, pts, rgba, width in shapes:
        moved = [(x - ox, y - oy) for x, y in pts]
        if kind == "poly":
            pygame.draw.polygon(tmp, rgba, moved)
        elif kind == "rim":
            pygame.draw.polygon(tmp, rgba, moved, width)
        else:
            pygame.draw.line(tmp, rgba, moved[0], moved[1], width)
    surface.blit(tmp, box.topleft)


# ------------------------------------------------------------------------------------------- scene


class Scene:
    """Draws sky, ground, grid and helicopters of a snapshot into a rectangle of the window."""

    def __init__(self) -> None:
        self._gradients: dict[tuple[int, int], tuple[pygame.Surface, pygame.Surface]] = {}
        self.labels: list[LabelRequest] = []  # laid out by the renderer once the panels are drawn (sim.view.labels)
        self.heli_rects: list[pygame.Rect] = []  # where the helicopters are on the screen: no label covers one
        gs = np.arange(-GRID_HALF_M, GRID_HALF_M + 0.5 * GRID_STEP_M, GRID_STEP_M)
        pieces = np.arange(-GRID_HALF_M, GRID_HALF_M + 0.5 * GRID_PIECE_M, GRID_PIECE_M)
        # grid lines cut in pieces, line by line (runs of pieces in one fade band are drawn as one line)
        a_list, b_list, line_id = [], [], []
        for i, c in enumerate(gs):
            for j in range(len(pieces) - 1):
                a_list.append((pieces[j], c, 0.0))
                b_list.append((pieces[j + 1], c, 0.0))
                line_id.append(i)
                a_list.append((c, pieces[j], 0.0))
                b_list.append((c, pieces[j + 1], 0.0))
                line_id.append(len(gs) + i)
        order = np.lexsort((np.arange(len(line_id)), np.array(line_id)))
        self._grid_a = np.array(a_list)[order]
        self._grid_b = np.array(b_list)[order]
        self._grid_line = np.array(line_id)[order]
        a, b = self._grid_a, self._grid_b
        along_north_axis = (np.abs(a[:, 1]) < 1e-9) & (np.abs(b[:, 1]) < 1e-9)
        along_east_axis = (np.abs(a[:, 0]) < 1e-9) & (np.abs(b[:, 0]) < 1e-9)
        self._grid_axis = along_north_axis | along_east_axis
        self._band_colours = [_mix(GRID_LINE, GROUND_HORIZON, (k + 0.5) / GRID_BANDS) for k in range(GRID_BANDS)]
        self._pad = np.stack(
            [_PAD_RADIUS_M * np.cos(_PAD_ANGLES), _PAD_RADIUS_M * np.sin(_PAD_ANGLES), np.zeros_like(_PAD_ANGLES)],
            axis=1,
        )

    # -- public

    def camera(self, snapshot: Snapshot, camera: str, focus: int, rect: pygame.Rect, radius_m: float) -> Camera:
        vehicle = _focused(snapshot, focus)
        if camera == "chase":
            return chase_camera(vehicle, rect, radius_m)
        target = vehicle.position_ned_m if vehicle is not None and all_finite(vehicle.position_ned_m) else None
        return pilot_camera(target, rect)

    def draw(
        self,
        surface: pygame.Surface,
        rect: pygame.Rect,
        snapshot: Snapshot,
        cam: Camera,
        focus: int,
        radius_m: float,
        now_monotonic: float,
        text: Text,
    ) -> None:
        previous_clip = surface.get_clip()
        surface.set_clip(rect)
        self.labels, self.heli_rects = [], []
        try:
            self._draw_backdrop(surface, rect, cam)
            self._draw_pad_and_grid(surface, rect, cam, text)
            if cam.eye[0] > PILOT_EYE_NED_M[0] + 1.0 or abs(cam.eye[1]) > 1.0 or cam.eye[2] < -3.0:
                self._draw_pilot_post(surface, cam)
            self._draw_vehicles(surface, rect, snapshot, cam, focus, radius_m, now_monotonic, text)
        finally:
            surface.set_clip(previous_clip)

    # -- backdrop

    def _gradient(self, size: tuple[int, int]) -> tuple[pygame.Surface, pygame.Surface]:
        if size not in self._gradients:
            w, h = size
            h = max(h, 2)
            t = np.linspace(0.0, 1.0, h)[:, None]
            sky = (np.array(SKY_ZENITH) + (np.array(SKY_HORIZON) - np.array(SKY_ZENITH)) * t**1.6).astype(np.uint8)
            ground = (np.array(GROUND_HORIZON) + (np.array(GROUND_NEAR) - np.array(GROUND_HORIZON)) * t**0.45).astype(
                np.uint8
            )
            surfaces = []
            for column in (sky, ground):
                strip = pygame.surfarray.make_surface(column[None, :, :])
                surfaces.append(pygame.transform.scale(strip, (max(w, 1), h)))
            self._gradients.clear()
            self._gradients[size] = (surfaces[0], surfaces[1])
        return self._gradients[size]

    def _draw_backdrop(self, surface: pygame.Surface, rect: pygame.Rect, cam: Camera) -> None:
        sky, ground = self._gradient(rect.size)
        y = int(max(rect.top - GUARD_PX, min(rect.bottom + GUARD_PX, cam.horizon_y())))
        surface.fill(SKY_ZENITH, rect)
        if y < rect.bottom:
            top = max(y, rect.top)
            surface.fill(GROUND_NEAR, pygame.Rect(rect.left, top, rect.width, rect.bottom - top))
        surface.blit(sky, (rect.left, y - sky.get_height()))
        surface.blit(ground, (rect.left, y))
        if rect.top <= y < rect.bottom:
            pygame.draw.line(surface, _mix(SKY_HORIZON, (255, 255, 255), 0.35), (rect.left, y), (rect.right, y))

    def _draw_pad_and_grid(self, surface: pygame.Surface, rect: pygame.Rect, cam: Camera, text: Text) -> None:
        pad = cam.polygon(cam.to_camera(self._pad))
        if pad is not None:
            pygame.draw.polygon(surface, PAD_COLOUR, pad)
            # an H on the take-off pad, legs along north
            a, b, keep = cam.clip_segments(cam.to_camera(_PAD_H[:, 0]), cam.to_camera(_PAD_H[:, 1]))
            z = np.maximum(0.5 * (a[:, 2] + b[:, 2]), NEAR_M)
            # a line painted on the ground looks thinner the lower the eye: foreshortening
            flat = max(0.15, min(1.0, -cam.eye[2] / max(float(np.linalg.norm(cam.eye)), 1e-6)))
            for pa, pb, ok, depth in zip(cam.project(a).tolist(), cam.project(b).tolist(), keep, z, strict=True):
                if ok:
                    width = max(1, min(30, int(cam.focal_px * PAD_LINE_M * flat / depth)))
                    pygame.draw.line(surface, PAD_MARK, pa, pb, width)
        a, b, keep = cam.clip_segments(cam.to_camera(self._grid_a), cam.to_camera(self._grid_b))
        if keep.any():
            mid = 0.5 * (a[:, 2] + b[:, 2])
            band = np.minimum((mid / GRID_FADE_M * GRID_BANDS).astype(int), GRID_BANDS - 1)
            band = np.where(self._grid_axis, -1, band)  # the two axes through the pad: drawn brighter
            pa = cam.project(a)
            pb = cam.project(b)
            idx = np.flatnonzero(keep)
            # a run: consecutive kept segments of one line in one band, contiguous in 3D
            brk = np.ones(len(idx), dtype=bool)
            if len(idx) > 1:
                brk[1:] = (
                    (np.diff(idx) != 1)
                    | (np.diff(self._grid_line[idx]) != 0)
                    | (np.diff(band[idx]) != 0)
                    | (np.abs(a[idx[1:]] - b[idx[:-1]]).max(axis=1) > 1e-6)
                )
            starts = np.flatnonzero(brk)
            ends = np.append(starts[1:], len(idx)) - 1
            first, last = idx[starts], idx[ends]
            p0 = pa[first].tolist()
            p1 = pb[last].tolist()
            bands = band[first].tolist()
            colours = self._band_colours
            axis_colour = _mix(GRID_LINE, (255, 255, 255), 0.4)
            for q0, q1, k in zip(p0, p1, bands, strict=True):
                pygame.draw.line(surface, axis_colour if k < 0 else colours[k], q0, q1)
        # compass letters at the edges of the grid
        edge = GRID_HALF_M + 3.0
        for label, p in (("N", (edge, 0.0, 0.0)), ("E", (0.0, edge, 0.0)), ("W", (0.0, -edge, 0.0))):
            c = cam.to_camera(np.array([p], dtype=float))[0]
            if c[2] > 1.0 and abs(c[0]) < c[2] * 2 and abs(c[1]) < c[2] * 2:
                x, y = cam.project(c)  # on the ground at the grid's edge, or not at all where a helicopter is
                self.labels.append(LabelRequest(((label, "bold", GRID_LINE),), x, y + 2, y, _COMPASS_RANK, fixed=True))

    def _draw_pilot_post(self, surface: pygame.Surface, cam: Camera) -> None:
        foot = np.array(PILOT_EYE_NED_M) * (1.0, 1.0, 0.0)
        head = np.array(PILOT_EYE_NED_M)
        seg = cam.line(cam.to_camera(foot), cam.to_camera(head))
        if seg is None:
            return
        pa, pb, z = seg
        width = max(1, min(12, int(cam.focal_px * 0.25 / max(z, NEAR_M))))
        pygame.draw.line(surface, (230, 110, 40), pa, pb, width)
        pygame.draw.circle(surface, (240, 200, 170), pb, max(2, width * 0.8))

    # -- vehicles

    def _draw_vehicles(
        self,
        surface: pygame.Surface,
        rect: pygame.Rect,
        snapshot: Snapshot,
        cam: Camera,
        focus: int,
        radius_m: float,
        now: float,
        text: Text,
    ) -> None:
        model = heli_model(float(radius_m))
        placed = []
        for index, v in enumerate(snapshot.vehicles):
            if not (all_finite(v.position_ned_m) and all_finite(v.attitude_quat) and all_finite(v.flapping_rad)):
                continue
            pos = np.asarray(v.position_ned_m, dtype=float)
            distance = float(np.linalg.norm(pos - cam.eye))
            if distance < MIN_DRAW_DISTANCE_M + model.body_half_m:
                continue
            placed.append((distance, index, v, pos))
        placed.sort(key=lambda item: -item[0])  # far first
        posed = [(index, v, _Posed(model, v, pos, now)) for _, index, v, pos in placed]
        for _, _, heli in posed:
            self._draw_shadow(surface, rect, cam, heli)
        for index, v, heli in posed:
            self._draw_heli(surface, rect, cam, heli, index, v, index == focus, text)

    @staticmethod
    def _draw_shadow(surface: pygame.Surface, rect: pygame.Rect, cam: Camera, heli: _Posed) -> None:
        height = -heli.pos[2]
        if not (-1.0 < height < SHADOW_FADE_M):
            return
        alpha = int(SHADOW_RGBA[3] * (1.0 - max(0.0, height) / SHADOW_FADE_M))
        if alpha < 8:
            return
        world = heli.world
        ground = world - (world[:, 2:3] / SUN_TRAVEL_NED[2]) * SUN_TRAVEL_NED  # along the sunlight to down = 0
        view = _View(cam, cam.to_camera(ground))
        m = heli.model
        rgba = (*SHADOW_RGBA[:3], alpha)
        shapes = []
        if heli.spinning:
            poly = view.polygon(heli.disc)
            if poly is not None:
                shapes.append(("poly", poly, (*SHADOW_RGBA[:3], alpha // 3), 1))
        # the outline seen from the sun: the faces lit by it, the fin and the stabiliser
        lit = [face for face, light in zip(m.faces, heli.light, strict=True) if light > 0.0]
        for face in (*lit, m.fin, m.stabiliser):
            poly = view.polygon(face)
            if poly is not None:
                shapes.append(("poly", poly, rgba, 1))
        for (pa, pb, depth), (_, _, width_m, _) in zip(view.segments(m.line_a, m.line_b), m.lines, strict=True):
            if depth > 0:
                shapes.append(("line", [pa, pb], rgba, max(1, int(cam.focal_px * width_m / depth))))
        if shapes:
            _blit_translucent(surface, rect, shapes)

    def _draw_heli(
        self,
        surface: pygame.Surface,
        rect: pygame.Rect,
        cam: Camera,
        heli: _Posed,
        index: int,
        v: VehicleView,
        focused: bool,
        text: Text,
    ) -> None:
        """One helicopter, far away a dot; else its body, tail rotor and main rotor painted back to
        front (the main rotor after the body when the camera sees the disc from above), then its label."""
        base = CRASHED_COLOUR if heli.crashed else HELI_COLOURS[index % len(HELI_COLOURS)]
        view = _View(cam, cam.to_camera(heli.world))
        centre = cam.to_camera(heli.pos[None, :])[0]
        if centre[2] > NEAR_M and cam.focal_px * heli.model.radius_m / centre[2] < TINY_PX:
            x, y = cam.project(centre).tolist()
            if rect.collidepoint(x, y):
                pygame.draw.circle(surface, base, (x, y), 2)
                self._label(surface, cam, heli.pos, index, v, focused, [(x - 2, y - 2), (x + 2, y + 2)], text)
            return
        items = sorted(_body_items(cam, view, heli, base), key=lambda item: -item.depth)
        shapes, blades = _rotor_shapes(cam, view, heli)
        camera_above = float(np.dot(cam.eye - heli.world[heli.hub], heli.disc_up)) > 0.0
        if not camera_above:
            self._paint_rotor(surface, rect, shapes, blades)
        _paint_items(surface, rect, items)
        if camera_above:
            self._paint_rotor(surface, rect, shapes, blades)
        bounds = [p for item in items if item.points for p in item.points]
        for _, pts, _, _ in shapes:
            bounds.extend(pts)
        for pa, pb, _ in blades:
            bounds.extend((pa, pb))
        self._label(surface, cam, heli.pos, index, v, focused, bounds, text)

    @staticmethod
    def _paint_rotor(surface: pygame.Surface, rect: pygame.Rect, shapes: list, blades: list) -> None:
        if shapes:
            _blit_translucent(surface, rect, shapes)
        for pa, pb, width in blades:
            pygame.draw.line(surface, BLADE, pa, pb, width)

    def _label(self, surface, cam: Camera, pos, index: int, v: VehicleView, focused: bool, bounds, text: Text) -> None:
        if not bounds:
            return
        xs = [p[0] for p in bounds]
        ys = [p[1] for p in bounds]
        left, right, top, bottom = min(xs), max(xs), min(ys), max(ys)
        cx = 0.5 * (left + right)
        # where it is on the screen, even partly off it: no label goes over it
        if all(abs(edge) < _SCREEN_LIMIT_PX for edge in (left, right, top, bottom)):
            self.heli_rects.append(pygame.Rect(int(left), int(top), int(right - left) + 1, int(bottom - top) + 1))
        if not surface.get_clip().collidepoint(cx, top):
            return  # the heli is at the edge of the view: no label hanging at the border
        crashed = (("CRASHED", "bold", CRASH_TEXT),) if v.crashed else ()
        if focused:
            pad = 6
            left, right, top, bottom = left - pad, right + pad, top - pad, bottom + pad
            arm = max(6.0, min(18.0, 0.25 * min(right - left, bottom - top)))
            corners = ((left, top, 1, 1), (right, top, -1, 1), (left, bottom, 1, -1), (right, bottom, -1, -1))
            for x0, y0, dx, dy in corners:
                pygame.draw.line(surface, FOCUS_COLOUR, (x0, y0), (x0 + dx * arm, y0), 2)
                pygame.draw.line(surface, FOCUS_COLOUR, (x0, y0), (x0, y0 + dy * arm), 2)
            lines = (*crashed, (f"#{index}", "bold", FOCUS_COLOUR))
            self.labels.append(LabelRequest(lines, cx, top - 2, bottom + 2, 0, must_show=True, pointer=True))
        else:
            lines = (*crashed, (f"#{index}", "small", LABEL_COLOUR))
            rank = (_CRASHED_RANK if v.crashed else _FLYING_RANK) + index
            self.labels.append(LabelRequest(lines, cx, top - 1, bottom, rank))


class _Posed:
    """One helicopter placed in the world: its model's points, rotor disc and blade tips in NED, and lighting."""

    def __init__(self, model: HeliModel, v: VehicleView, pos: np.ndarray, now: float) -> None:
        self.model = model
        self.pos = pos
        self.crashed = bool(v.crashed)
        rpm = float(v.rotor_speed_rpm)
        self.rpm = rpm if math.isfinite(rpm) else 0.0
        self.spinning = self.rpm > 0 and not self.crashed
        r = quat_to_matrix(v.attitude_quat)
        tilt = flapping_tilt(v.flapping_rad)
        radius = model.radius_m
        disc = model.hub + (radius * DISC_UNIT) @ tilt.T
        # two blades at a slowed-down visual speed; two faint trailing copies of each while spinning
        turns = now * self.rpm * BLADE_VISUAL_REV_PER_RPM if math.isfinite(now) else 0.0
        phase = 2 * math.pi * (turns - math.floor(turns)) if self.spinning else 0.7
        lags = (0.0, 0.16, 0.32) if self.spinning else (0.0,)
        span = radius * (0.8 if self.crashed else 1.0)
        droop = 0.12 * span if self.crashed else 0.0
        angles = np.array([phase + blade - lag for lag in lags for blade in (0.0, math.pi)])
        tips = np.stack([span * np.cos(angles), span * np.sin(angles), np.full_like(angles, droop)], axis=1)
        tips = model.hub + tips @ tilt.T
        body = np.vstack([model.points, disc, tips])
        n0 = len(model.points)
        self.disc = tuple(range(n0, n0 + len(disc)))
        self.blade_tips = list(range(n0 + len(disc), len(body)))
        self.hub = model.hub_index
        self.world = pos + body @ r.T
        self.normals = model.face_normals @ r.T
        self.light = (self.normals @ TOWARDS_SUN).tolist()
        fin_n, stab_n = (r @ model.fin_normal, r @ model.stabiliser_normal)
        self.fin_light = abs(float(fin_n @ TOWARDS_SUN))
        self.stabiliser_light = abs(float(stab_n @ TOWARDS_SUN))
        self.disc_up = -(r @ tilt[:, 2])


class _View:
    """Camera-frame points of one object, projected once; polygons and segments are picked by index."""

    def __init__(self, cam: Camera, cam_pts: np.ndarray) -> None:
        self.cam = cam
        self.pts = cam_pts
        self.in_front = bool(cam_pts[:, 2].min() >= NEAR_M)
        self.scr = cam.project(cam_pts).tolist()

    def polygon(self, idx) -> list | None:
        if self.in_front:
            return [self.scr[i] for i in idx]
        return self.cam.polygon(self.pts[list(idx)])

    def segments(self, ia, ib) -> list[tuple[list[float], list[float], float]]:
        """(screen a, screen b, depth) per segment; depth 0 for a segment out of view."""
        if self.in_front:
            z = self.pts[:, 2]
            return [(self.scr[a], self.scr[b], 0.5 * float(z[a] + z[b])) for a, b in zip(ia, ib, strict=True)]
        a, b, keep = self.cam.clip_segments(self.pts[list(ia)], self.pts[list(ib)])
        pa = self.cam.project(a).tolist()
        pb = self.cam.project(b).tolist()
        depth = np.where(keep, 0.5 * (a[:, 2] + b[:, 2]), 0.0).tolist()
        return list(zip(pa, pb, depth, strict=True))


def _focused(snapshot: Snapshot, focus: int) -> VehicleView | None:
    if not snapshot.vehicles:
        return None
    return snapshot.vehicles[focus % len(snapshot.vehicles)]


def _body_items(cam: Camera, view: _View, heli: _Posed, base: tuple) -> list[_Item]:
    """The body's faces that face the camera, the fin and stabiliser, the skids and booms as lines, and
    the tail rotor's disc: each with its depth, for painting back to front."""
    m, crashed = heli.model, heli.crashed
    z = view.pts[:, 2].tolist()

    def depth_of(face) -> float:
        return sum(z[i] for i in face) / len(face)

    items: list[_Item] = []
    towards_camera = np.einsum("ij,ij->i", heli.normals, cam.eye - heli.world[m.face_first]).tolist()
    for k, face in enumerate(m.faces):
        if towards_camera[k] <= 0.0:
            continue  # facing away
        poly = view.polygon(face)
        if poly is not None:
            colour = base if m.face_colours[k] == "body" or crashed else CANOPY
            items.append(_Item(depth_of(face), "poly", _shade(colour, heli.light[k]), poly))
    for face, lit in ((m.fin, heli.fin_light), (m.stabiliser, heli.stabiliser_light)):
        poly = view.polygon(face)
        if poly is not None:
            items.append(_Item(depth_of(face), "poly", _shade(base, lit), poly))
    line_colour = (40, 30, 28) if crashed else METAL
    for pa, pb, depth, width_m in zip(
        *zip(*view.segments(m.line_a, m.line_b), strict=True), (w for _, _, w, _ in m.lines), strict=True
    ):
        if depth > 0:
            width = max(1, min(40, round(cam.focal_px * width_m / max(depth, NEAR_M))))
            items.append(_Item(depth, "line", line_colour, [pa, pb], width))
    tail = view.polygon(m.tail_disc)
    if tail is not None:
        tail_shapes = [("poly", tail, TAIL_DISC_RGBA if heli.spinning else (0, 0, 0, 0), 1)]
        pa, pb, depth = view.segments([m.tail_disc[0]], [m.tail_disc[len(m.tail_disc) // 2]])[0]
        if depth > 0:
            tail_shapes.append(("line", [pa, pb], (*BLADE, 255), 1))
        items.append(_Item(depth_of(m.tail_disc), "alpha", (0, 0, 0), extra=tail_shapes))
    return items


def _rotor_shapes(cam: Camera, view: _View, heli: _Posed) -> tuple[list, list]:
    """The main rotor: its translucent disc and the blades' fading ghosts (shapes), and the blades
    themselves (lines: start, end, width)."""
    shapes: list = []
    if heli.spinning:
        poly = view.polygon(heli.disc)
        if poly is not None:
            alpha = int(DISC_RGBA[3] * min(1.0, 0.35 + heli.rpm / 1500.0))
            shapes.append(("poly", poly, (*DISC_RGBA[:3], alpha), 1))
            shapes.append(("rim", poly, DISC_RIM_RGBA, 1))
    blades = []
    hub = [heli.hub] * len(heli.blade_tips)
    for k, (pa, pb, depth) in enumerate(view.segments(hub, heli.blade_tips)):
        if depth <= 0:
            continue
        width = max(1, min(12, round(cam.focal_px * 0.03 * heli.model.radius_m / max(depth, NEAR_M))))
        ghost = k // 2
        if ghost == 0:
            blades.append((pa, pb, width))
        else:
            shapes.append(("line", [pa, pb], (*BLADE, 70 - 25 * ghost), width))
    return shapes, blades


def _paint_items(surface: pygame.Surface, rect: pygame.Rect, items: list[_Item]) -> None:
    """Faces outlined, lines, and translucent shapes, in the given order."""
    for item in items:
        if item.kind == "poly":
            pygame.draw.polygon(surface, item.colour, item.points)
            pygame.draw.polygon(surface, _mix(item.colour, (0, 0, 0), 0.4), item.points, 1)
        elif item.kind == "line":
            pygame.draw.line(surface, item.colour, item.points[0], item.points[1], item.width)
        else:
            _blit_translucent(surface, rect, item.extra)
