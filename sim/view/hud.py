"""The head-up display over the scene: the focused heli's instruments, its status, and the pilot's sticks.

Draws an artificial horizon (roll and pitch), altitude, speed, climb rate, heading and headspeed,
collective and throttle bars, ARMED / flight mode / FAILSAFE chips, and both transmitter gimbals
(mode 2).  pygame, main thread only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pygame

from sim.protocols.rc import CENTRE_US, HALF_RANGE_US
from sim.view.camera import euler_from_matrix, quat_to_matrix

if TYPE_CHECKING:
    from sim.view.snapshot import Snapshot, VehicleView
    from sim.view.text import Text

__all__ = ["darken", "draw_hud", "stick_position"]

COLLECTIVE_RANGE_DEG = 12.0  # the collective bar spans +- this
ATTITUDE_RANGE_DEG = 30.0  # the artificial horizon shows +- this much pitch from centre to rim
CHANNEL_ROLL, CHANNEL_PITCH, CHANNEL_COLLECTIVE, CHANNEL_YAW = 0, 1, 2, 3

CARD_MULT = (96, 104, 118)  # cards darken what is under them (multiply), so the scene shows through
CARD_EDGE = (150, 164, 186)
TEXT = (236, 240, 246)
DIM = (150, 158, 172)
ACCENT = (255, 226, 80)
GOOD = (70, 200, 110)
WARN = (245, 170, 50)
BAD = (235, 60, 50)
AI_SKY = (70, 130, 210)
AI_GROUND = (150, 100, 55)
BAR_BG = (40, 44, 52)
BAR_COLLECTIVE = (110, 180, 250)
BAR_THROTTLE = (250, 170, 70)
HOVER_MARK = (120, 230, 140)  # the hover collective on the collective bar
GIMBAL_BG = (28, 31, 38)
GIMBAL_LINE = (90, 98, 112)


def darken(surface: pygame.Surface, rect: pygame.Rect, edge: tuple[int, int, int] | None = CARD_EDGE) -> None:
    """A card: the area under ``rect`` darkened (cheap multiply, no alpha surface), with a thin edge."""
    surface.fill(CARD_MULT, rect, special_flags=pygame.BLEND_RGB_MULT)
    if edge is not None:
        pygame.draw.rect(surface, edge, rect, 1, border_radius=3)


def stick_position(us: float) -> float:
    """A stick in microseconds as -1..+1 (a little beyond when over-driven), 0 when unknown."""
    if not math.isfinite(us):
        return 0.0
    return max(-1.1, min(1.1, (us - CENTRE_US) / HALF_RANGE_US))


def draw_hud(
    surface: pygame.Surface,
    rect: pygame.Rect,
    snapshot: Snapshot,
    focus: int,
    camera: str,  # what the camera is, for the hint line: "pilot view", "chase view", ...
    text: Text,
    scale: float,
    radio: str = "",  # what the view's transmitter reads back (its telemetry screen), if anything
    hover_collective_deg: float | None = None,  # the hover trim's collective: a mark on the collective bar
    occupied: list[pygame.Rect] | None = None,  # gets the rectangles the HUD holds (no label goes there)
) -> int:
    """Draw the HUD over the scene; returns the bottom of the instruments card (top left)."""
    held = occupied if occupied is not None else []
    vehicle = snapshot.vehicles[focus % len(snapshot.vehicles)] if snapshot.vehicles else None
    pad = max(4, int(10 * scale))
    bottom = rect.top + pad
    if vehicle is not None:
        card = _instruments(
            surface, rect, vehicle, focus % len(snapshot.vehicles), snapshot, text, scale, pad, hover_collective_deg
        )
        held.append(card)
        held.extend(_chips(surface, rect, card.right + pad, vehicle, snapshot, text, scale, pad))
        bottom = card.bottom
    else:
        text.draw(surface, "no vehicles in this snapshot", rect.center, "title", TEXT, anchor="center", shadow=True)
    held.extend(_gimbals(surface, rect, snapshot, text, scale, pad, radio))
    hint = f"{camera} · Tab next heli · 1/2 camera · F1 help"
    held.append(
        text.draw(
            surface, hint, (rect.right - pad, rect.bottom - pad), "small", TEXT, anchor="bottomright", shadow=True
        )
    )
    return bottom


# --------------------------------------------------------------------------------------- instruments


def _instruments(
    surface, rect, v: VehicleView, index: int, snapshot: Snapshot, text: Text, scale, pad, hover_deg: float | None
) -> pygame.Rect:
    """The instruments card, top left; returns where it is."""
    radius = int(52 * scale)
    line = text.height("mono")
    small = text.height("small")
    header = text.height("bold") + int(6 * scale)
    bar_h = small + max(4, int(6 * scale)) + int(5 * scale)
    left_h = header + 2 * radius + small + int(8 * scale)
    right_h = header + 6 * line + small + int(4 * scale) + 2 * bar_h
    card = pygame.Rect(rect.left + pad, rect.top + pad, int(2 * radius + 200 * scale), max(left_h, right_h))
    darken(surface, card)
    name = snapshot.heli_name or "heli"
    count = len(snapshot.vehicles)
    text.draw(surface, f"#{index} {name}", (card.left + 8, card.top + 4), "bold", ACCENT)
    if count > 1:
        text.draw(surface, f"{index + 1} of {count}", (card.right - 8, card.top + 4), "small", DIM, anchor="topright")
    r = quat_to_matrix(v.attitude_quat)
    roll, pitch, yaw = euler_from_matrix(r)
    centre = (card.left + 8 + radius, card.top + header + radius)
    attitude_indicator(surface, centre, radius, roll, pitch)
    text.draw(
        surface,
        f"roll {math.degrees(roll):+.0f}°  pitch {math.degrees(pitch):+.0f}°",
        (centre[0], centre[1] + radius + int(3 * scale)),
        "small",
        DIM,
        anchor="midtop",
    )
    vel = np.asarray(v.velocity_ned_m_s, dtype=float)
    speed = float(np.linalg.norm(vel)) if np.all(np.isfinite(vel)) else float("nan")
    climb = -float(vel[2]) + 0.0  # + 0.0: no "-0.0"
    altitude = -float(v.position_ned_m[2]) + 0.0
    heading = math.degrees(yaw) % 360.0
    x = card.left + 2 * radius + int(26 * scale)
    y = card.top + header
    rows = (
        ("ALT", f"{altitude:7.1f} m"),
        ("SPD", f"{speed:7.1f} m/s"),
        ("V/S", f"{climb:+7.1f} m/s"),
        ("HDG", f"{heading:7.0f}°"),
        ("RPM", f"{float(v.rotor_speed_rpm):7.0f}"),
    )
    for label, value in rows:
        text.draw(surface, label, (x, y), "mono", DIM)
        text.draw(surface, value, (x + int(36 * scale), y), "mono", TEXT)
        y += line
    _wind(surface, (x, y), v, text, scale)
    y += line
    text.draw(surface, f"governor: {v.governor}", (x, y), "small", DIM)
    y += small + int(4 * scale)
    bar_w = card.right - x - int(10 * scale)
    coll = float(v.collective_deg)
    label = f"collective {coll:+.1f}°" + (f" · hover {hover_deg:.1f}°" if hover_deg is not None else "")
    mark = None if hover_deg is None else hover_deg / COLLECTIVE_RANGE_DEG
    _bar(surface, text, (x, y), bar_w, label, coll / COLLECTIVE_RANGE_DEG, BAR_COLLECTIVE, centred=True, scale=scale,
         mark=mark)  # fmt: skip
    y += bar_h
    thr = float(v.throttle)
    _bar(surface, text, (x, y), bar_w, f"throttle {100 * thr:.0f} %", thr, BAR_THROTTLE, centred=False, scale=scale)
    return card


def _wind(surface, pos, v: VehicleView, text: Text, scale) -> None:
    """The wind the helicopter meets (a row of the instruments): speed, the bearing it blows from,
    and an arrow the way it goes (north up)."""
    north, east, down = (float(c) for c in v.wind_ned_m_s)
    speed = math.hypot(north, east)
    text.draw(surface, "WND", pos, "mono", DIM)
    value_pos = (pos[0] + int(36 * scale), pos[1])
    if not math.isfinite(speed) or speed < 0.05:
        text.draw(surface, "   calm" if abs(down) < 0.05 else f"{-down:+5.1f} up", value_pos, "mono", TEXT)
        return
    source = math.degrees(math.atan2(-east, -north)) % 360.0  # where it blows from, as a wind report says
    drawn = text.draw(surface, f"{speed:5.1f} m/s {source:03.0f}°", value_pos, "mono", TEXT)
    size = max(4, int(6 * scale))
    ax, ay = drawn.right + size + int(4 * scale), drawn.centery
    dx, dy = east / speed, -north / speed  # screen: x east, y south
    tip, tail = (ax + dx * size, ay + dy * size), (ax - dx * size, ay - dy * size)
    pygame.draw.line(surface, TEXT, tail, tip, max(1, int(2 * scale)))
    left = (tip[0] - dx * size * 0.7 - dy * size * 0.5, tip[1] - dy * size * 0.7 + dx * size * 0.5)
    right = (tip[0] - dx * size * 0.7 + dy * size * 0.5, tip[1] - dy * size * 0.7 - dx * size * 0.5)
    pygame.draw.polygon(surface, TEXT, [tip, left, right])


def _bar(
    surface, text: Text, pos, width: int, label: str, value: float, colour, centred: bool, scale, mark=None
) -> None:
    """A labelled horizontal bar: 0..1 from the left, or -1..1 from the middle when ``centred``; ``mark``
    (on the same scale) draws a tick above and below it, as the hover collective."""
    x, y = pos
    text.draw(surface, label, (x, y), "small", TEXT)
    h = max(4, int(6 * scale))
    top = y + text.height("small")
    frame = pygame.Rect(x, top, width, h)
    pygame.draw.rect(surface, BAR_BG, frame)
    if math.isfinite(value):
        if centred:
            mid = frame.centerx
            end = mid + int(max(-1.0, min(1.0, value)) * width / 2)
            fill = pygame.Rect(min(mid, end), top, abs(end - mid), h)
        else:
            fill = pygame.Rect(x, top, int(max(0.0, min(1.0, value)) * width), h)
        pygame.draw.rect(surface, colour, fill)
    if centred:
        pygame.draw.line(surface, TEXT, (frame.centerx, top - 1), (frame.centerx, top + h))
    pygame.draw.rect(surface, GIMBAL_LINE, frame, 1)
    if mark is not None and math.isfinite(mark):
        at = frame.centerx + int(max(-1.0, min(1.0, mark)) * width / 2) if centred else x + int(mark * width)
        tick = max(2, int(3 * scale))
        pygame.draw.line(surface, HOVER_MARK, (at, top - tick), (at, top + h + tick), max(2, int(2 * scale)))


def attitude_indicator(surface: pygame.Surface, centre, radius: int, roll: float, pitch: float) -> None:
    """An artificial horizon: sky and ground split by a horizon that banks with roll and moves with pitch."""
    cx, cy = centre
    px_per_deg = radius / ATTITUDE_RANGE_DEG
    nx, ny = math.sin(roll), math.cos(roll)  # screen direction of "down" in the world
    offset = max(-3.0 * radius, min(3.0 * radius, math.degrees(pitch) * px_per_deg))
    pygame.draw.circle(surface, AI_SKY, centre, radius)
    circle = [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 48)[:-1]]
    ground = _clip_half_plane(circle, (cx, cy), (nx, ny), offset)
    if len(ground) >= 3:
        pygame.draw.polygon(surface, AI_GROUND, ground)
    tx, ty = ny, -nx  # along the horizon
    for deg in (-20, -10, 0, 10, 20):
        d = offset - deg * px_per_deg
        half = (0.9 if deg == 0 else 0.28 if deg % 20 else 0.42) * radius
        if abs(d) > 0.92 * radius:
            continue
        half = min(half, math.sqrt(max(radius * radius - d * d, 0.0)) - 1)
        mx, my = cx + nx * d, cy + ny * d
        pygame.draw.line(surface, (255, 255, 255), (mx - tx * half, my - ty * half), (mx + tx * half, my + ty * half))
    # roll scale: fixed ticks on the bezel, a pointer that turns with the sky
    for deg in (-60, -45, -30, -20, -10, 0, 10, 20, 30, 45, 60):
        a = math.radians(deg) - math.pi / 2
        inner = radius - (7 if deg % 30 == 0 else 4)
        pygame.draw.line(
            surface,
            (235, 235, 235),
            (cx + inner * math.cos(a), cy + inner * math.sin(a)),
            (cx + radius * math.cos(a), cy + radius * math.sin(a)),
        )
    ux, uy = -nx, -ny
    tip = (cx + ux * (radius - 8), cy + uy * (radius - 8))
    base = (cx + ux * (radius - 16), cy + uy * (radius - 16))
    pygame.draw.polygon(
        surface, ACCENT, [tip, (base[0] + tx * 5, base[1] + ty * 5), (base[0] - tx * 5, base[1] - ty * 5)]
    )
    # the aircraft: fixed
    w = radius * 0.45
    pygame.draw.line(surface, ACCENT, (cx - w, cy), (cx - w * 0.35, cy), 3)
    pygame.draw.line(surface, ACCENT, (cx + w * 0.35, cy), (cx + w, cy), 3)
    pygame.draw.circle(surface, ACCENT, centre, 3)
    pygame.draw.circle(surface, (20, 22, 28), centre, radius + 1, 2)


def _clip_half_plane(points, centre, normal, offset) -> list[tuple[float, float]]:
    """The part of a polygon where (p - centre) . normal >= offset (Sutherland-Hodgman, one edge)."""
    out = []
    n = len(points)
    cx, cy = centre
    nx, ny = normal
    dist = [(x - cx) * nx + (y - cy) * ny - offset for x, y in points]
    for i in range(n):
        j = (i + 1) % n
        if dist[i] >= 0:
            out.append(points[i])
        if (dist[i] >= 0) != (dist[j] >= 0):
            t = dist[i] / (dist[i] - dist[j])
            out.append(
                (points[i][0] + t * (points[j][0] - points[i][0]), points[i][1] + t * (points[j][1] - points[i][1]))
            )
    return out


# ------------------------------------------------------------------------------------------ status


def _chips(
    surface, rect, min_left: int, v: VehicleView, snapshot: Snapshot, text: Text, scale, pad
) -> list[pygame.Rect]:
    """Status chips along the top of the scene, centred, right of the instruments card; returns their boxes."""
    chips = []
    if v.crashed:
        chips.append(("CRASHED", BAD))
    if v.throttle_hold:  # the arm switch on, the throttle hold switch too: the motor off, autorotating
        chips.append(("THROTTLE HOLD", WARN))
    elif v.mode == "firmware":  # what it commands is all heli-sim knows of the firmware: the motor runs or not
        chips.append(("MOTOR ON", GOOD) if v.armed else ("MOTOR OFF", DIM))
    else:
        chips.append(("ARMED", GOOD) if v.armed else ("DISARMED", DIM))
    mode = snapshot.fc.get("firmware", "firmware").split(" ")[0] if v.mode == "firmware" else v.mode
    chips.append((mode.upper() or "-", (90, 150, 235)))
    if v.failsafe:
        chips.append(("FAILSAFE", BAD))
    if snapshot.paused:
        chips.append(("PAUSED", WARN))
    surfaces = [text.render(label, "title", (255, 255, 255)) for label, _ in chips]
    gap = int(6 * scale)
    hpad = int(9 * scale)
    total = sum(s.get_width() + 2 * hpad for s in surfaces) + gap * (len(surfaces) - 1)
    x = max(rect.centerx - total // 2, min_left)
    y = rect.top + pad
    boxes = []
    for (_, colour), s in zip(chips, surfaces, strict=True):
        box = pygame.Rect(x, y, s.get_width() + 2 * hpad, s.get_height() + int(6 * scale))
        pygame.draw.rect(surface, colour, box, border_radius=max(2, int(5 * scale)))
        surface.blit(s, s.get_rect(center=box.center))
        boxes.append(box)
        x = box.right + gap
    return boxes


# ------------------------------------------------------------------------------------------ sticks


def _gimbals(surface, rect, snapshot: Snapshot, text: Text, scale, pad, radio: str = "") -> list[pygame.Rect]:
    """The transmitter's two gimbals in a card at the bottom left, the radio's telemetry line above it;
    returns what they cover."""
    size = int(78 * scale)
    gap = int(14 * scale)
    label_h = text.height("small")
    card = pygame.Rect(0, 0, 2 * size + gap + 2 * pad, size + 2 * label_h + int(16 * scale))
    card.bottomleft = (rect.left + pad, rect.bottom - pad)
    darken(surface, card)
    covered = [card]
    if radio:
        covered.append(text.draw(surface, radio, (card.left, card.top - int(3 * scale)), "small", TEXT,
                                 anchor="bottomleft", shadow=True, max_width=rect.width - 2 * pad))  # fmt: skip
    sticks = list(snapshot.sticks_us) + [float(CENTRE_US)] * 4
    fresh = bool(snapshot.sticks_fresh)
    left = (stick_position(sticks[CHANNEL_YAW]), stick_position(sticks[CHANNEL_COLLECTIVE]))
    right = (stick_position(sticks[CHANNEL_ROLL]), stick_position(sticks[CHANNEL_PITCH]))
    top = card.top + int(4 * scale) + label_h
    labels = ("yaw · collective", "roll · pitch")
    if text.width(labels[0], "small") > size + gap:
        labels = ("yaw/coll", "roll/pitch")
    for k, (label, (sx, sy)) in enumerate(zip(labels, (left, right), strict=True)):
        box = pygame.Rect(card.left + pad + k * (size + gap), top, size, size)
        text.draw(
            surface,
            label,
            (box.centerx, box.top - 1),
            "small",
            TEXT if fresh else DIM,
            anchor="midbottom",
            max_width=size + gap,
        )
        _gimbal(surface, box, sx, sy, fresh)
    source = snapshot.rc_source or "no RC source"
    status, colour = ("", TEXT) if fresh else ("  (stale)", WARN)
    text.draw(
        surface,
        f"RC: {source}{status}",
        (card.left + pad, card.bottom - int(3 * scale)),
        "small",
        colour,
        anchor="bottomleft",
        max_width=card.width - 2 * pad,
    )
    return covered


def _gimbal(surface: pygame.Surface, box: pygame.Rect, sx: float, sy: float, fresh: bool) -> None:
    pygame.draw.rect(surface, GIMBAL_BG, box, border_radius=6)
    pygame.draw.rect(surface, GIMBAL_LINE, box, 1, border_radius=6)
    cx, cy = box.center
    half = box.width / 2 - 8
    pygame.draw.line(surface, GIMBAL_LINE, (box.left + 6, cy), (box.right - 6, cy))
    pygame.draw.line(surface, GIMBAL_LINE, (cx, box.top + 6), (cx, box.bottom - 6))
    x = cx + sx * half
    y = cy - sy * half  # stick forward (more microseconds) is up
    colour = ACCENT if fresh else (120, 120, 120)
    pygame.draw.line(surface, _dim(colour, 0.6), (cx, cy), (x, y), 3)
    pygame.draw.circle(surface, colour, (x, y), max(4, box.width // 11))
    pygame.draw.circle(surface, (20, 20, 20), (x, y), max(4, box.width // 11), 1)


def _dim(colour, k: float) -> tuple[int, int, int]:
    return (int(colour[0] * k), int(colour[1] * k), int(colour[2] * k))
