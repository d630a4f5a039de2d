"""Draws one frame of the view from a ``Snapshot``: the 3D scene with its HUD, the timing panel and the ports.

``Renderer.draw`` is called by the view process about 60 times a second, on its main thread (pygame
is not thread-safe).  It reads nothing but the snapshot, a small ``UiState`` and the monotonic time
(for the live stall counter and the rotor blades), and lays itself out for any surface size.  The
scene, the HUD and the panels are drawn by ``sim.view.scene`` (with ``sim.view.camera`` and
``sim.view.model``), ``sim.view.hud`` and ``sim.view.panels``; this module owns the layout, fonts
and text cache, and the help overlay.

The caller initialises ``pygame.font`` (``pygame.font.init()``) before building a ``Renderer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pygame

from sim.view.camera import CHASE_FOV_DEG, PILOT_FOV_DEG
from sim.view.hud import darken, draw_hud
from sim.view.labels import LabelRequest, draw_labels, lay_out
from sim.view.model import DEFAULT_ROTOR_RADIUS_M
from sim.view.panels import BANNER_COLORS, draw_ports, draw_timing
from sim.view.scene import Scene
from sim.view.snapshot import Snapshot
from sim.view.text import Text

__all__ = [
    "BANNER_COLORS",
    "CAPTION_EDGE",
    "HELP_KEY",
    "HELP_KEYS",
    "Layout",
    "Renderer",
    "Text",
    "UiState",
    "banner_rect",
]

HELP_KEYS: list[tuple[str, str]] = [
    ("T", "switch the loop's I/O: blocking / threaded (or asyncio)"),
    ("I", "switch the I/O to asyncio / back to threaded"),
    ("G", "CPU helper thread on / off"),
    ("P", "move the CPU helper into a process"),
    ("R", "reset the flight"),
    ("Space", "pause / resume"),
    ("1", "pilot's view (from the ground)"),
    ("2", "chase camera"),
    ("Tab", "next helicopter"),
    ("F1", "this help"),
    ("Esc", "quit"),
    ("Arrows", "roll / pitch (cyclic)"),
    ("W / S", "collective up / down"),
    ("A / D", "yaw left / right"),
    ("E", "arm / disarm"),
    ("H", "throttle hold (autorotate)"),
    ("M", "flight mode: rate / angle / rescue"),
    ("F2", "fault: RC silence (the receiver loses the radio)"),
    ("F3 / F4", "fault: 5 % of RC bytes lost / corrupted"),
    ("F5", "fault: unplug the servo board (again: plug it back)"),
    ("F6", "fault: the servo board stops reading (backpressure)"),
    ("F7", "fault: the link (or servo board) answers 50 ms later"),
    ("F8", "fault: the servo line paced at 9600 baud"),
    ("F9", "fault: a 30 ms loop stall every second"),
]

REFERENCE_SIZE = (1280, 720)  # fonts and spacing are designed at this size and scale with the window
MIN_SCALE, MAX_SCALE = 0.7, 2.0  # below 0.7 text would be unreadable: small windows get cramped instead
PANEL_SHARE = 0.28  # of the window's width, for the timing panel on the right
PORTS_MAX_SHARE = 0.32  # of the window's height, at most, for the ports panel at the bottom
BANNER_HEIGHT_PX = 58  # at the reference size
STALL_FRAME = (255, 64, 48)
SCENE_STALL_MS = 50.0  # the scene is framed in red for stalls this long (the timing panel shows every stall)
HELP_BG = (16, 18, 24, 228)
HELP_KEY = (255, 226, 80)
HELP_TEXT = (232, 236, 242)
CAPTION_TITLE = (120, 200, 255)  # the tour's step titles
CAPTION_EDGE = (120, 200, 255)


@dataclass
class UiState:
    """What the view's user chose (keys), as opposed to what the flight is doing (the snapshot)."""

    camera: str = "pilot"  # "pilot": from the ground, turned towards the focused heli; "chase": behind and above it
    focus: int = 0  # which vehicle is focused (Tab cycles); taken modulo the fleet size
    help: bool = False  # F1: overlay listing every key
    message: str = ""  # a transient line to show (e.g. "CPU helper: thread")
    radio: str = ""  # the view's transmitter's telemetry screen, in one line
    hover_collective_deg: float | None = None  # the hover trim's collective, marked on the collective bar
    rotor_radius_m: float = DEFAULT_ROTOR_RADIUS_M  # drawn size of the helicopters (not in the snapshot)


def ui_scale(size: tuple[int, int]) -> float:
    return max(MIN_SCALE, min(MAX_SCALE, size[0] / REFERENCE_SIZE[0], size[1] / REFERENCE_SIZE[1]))


def _panel_rect(size: tuple[int, int]) -> pygame.Rect:
    w, h = size
    width = max(min(w, 150), min(int(w * PANEL_SHARE), 520))
    return pygame.Rect(w - width, 0, width, h)


def banner_rect(size: tuple[int, int]) -> pygame.Rect:
    """Where the THREADED / BLOCKING banner is drawn on a surface of this size."""
    scale = ui_scale(size)
    panel = _panel_rect(size)
    pad = max(3, int(8 * scale))
    return pygame.Rect(panel.left + pad, pad, panel.width - 2 * pad, max(16, int(BANNER_HEIGHT_PX * scale)))


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a surface: the scene (left, top), ports (under it), the timing panel (right)."""

    scene: pygame.Rect
    ports: pygame.Rect
    panel: pygame.Rect
    banner: pygame.Rect
    scale: float


class Renderer:
    """Draws frames of the view. Main thread only; ``pygame.font`` must be initialised first."""

    def __init__(self, size: tuple[int, int] = REFERENCE_SIZE) -> None:
        self._scene = Scene()
        self._size: tuple[int, int] = (0, 0)
        self._scale = 1.0
        self._text: Text  # set by _resize, with the fonts for the window's size
        self._help: pygame.Surface | None = None
        width, height = size
        self._resize((width, height))

    def _resize(self, size: tuple[int, int]) -> None:
        self._size = size
        self._scale = ui_scale(size)
        self._text = Text(self._scale)
        self._help = None
        self.placed_labels: list[tuple[LabelRequest, pygame.Rect]] = []  # where the last frame's labels went
        self.label_obstacles: list[pygame.Rect] = []  # what they kept clear of: panels, overlays, helicopters

    def layout(self, size: tuple[int, int], port_count: int) -> Layout:
        """The rectangles of a frame on a surface of ``size`` showing ``port_count`` ports."""
        if size != self._size:
            self._resize(size)
        h = size[1]
        panel = _panel_rect(size)
        pad = max(3, int(8 * self._scale))
        text = self._text
        rows = max(1, port_count)
        ports_h = text.height("small") + 2 + rows * (text.height("mono") + 1) + 2 * pad
        ports_h = min(ports_h, int(h * PORTS_MAX_SHARE))
        scene = pygame.Rect(0, 0, panel.left, h - ports_h)
        ports = pygame.Rect(0, scene.bottom, panel.left, ports_h)
        return Layout(scene=scene, ports=ports, panel=panel, banner=banner_rect(size), scale=self._scale)

    def draw(self, surface: pygame.Surface, snapshot: Snapshot, ui: UiState, now_monotonic: float) -> None:
        """Draw a whole frame of ``snapshot`` onto ``surface`` (any size)."""
        layout = self.layout(surface.get_size(), len(snapshot.ports))
        text = self._text
        scale = layout.scale
        radius = ui.rotor_radius_m if math.isfinite(ui.rotor_radius_m) and ui.rotor_radius_m > 0 else 0.75
        count = len(snapshot.vehicles)
        focus = ui.focus % count if count else 0
        scene = layout.scene
        if scene.width > 0 and scene.height > 0:
            cam = self._scene.camera(snapshot, ui.camera, focus, scene, radius)
            self._scene.draw(surface, scene, snapshot, cam, focus, radius, now_monotonic, text)
            previous_clip = surface.get_clip()
            surface.set_clip(scene)
            try:
                zoom = CHASE_FOV_DEG / cam.fov_deg if ui.camera == "chase" else PILOT_FOV_DEG / cam.fov_deg
                label = f"{ui.camera} view" + (f" (zoom {zoom:.1f}x)" if zoom > 1.05 else "")
                occupied: list[pygame.Rect] = []
                card_bottom = draw_hud(
                    surface, scene, snapshot, focus, label, text, scale, ui.radio, ui.hover_collective_deg, occupied
                )
                occupied += self._scene_overlays(surface, scene, snapshot, ui, now_monotonic, card_bottom)
                # the labels last, where no panel, overlay, helicopter or other label is (sim.view.labels)
                self.label_obstacles = occupied + self._scene.heli_rects
                self.placed_labels = lay_out(self._scene.labels, self.label_obstacles, scene, text)
                draw_labels(surface, self.placed_labels, text)
            finally:
                surface.set_clip(previous_clip)
        draw_timing(surface, layout.panel, layout.banner, snapshot, now_monotonic, text, scale)
        if layout.ports.height > 0 and layout.ports.width > 0:
            draw_ports(surface, layout.ports, snapshot.ports, text, scale)
        if ui.help:
            self._draw_help(surface)

    def _scene_overlays(
        self, surface, scene: pygame.Rect, snapshot: Snapshot, ui: UiState, now: float, top: int
    ) -> list[pygame.Rect]:
        """The stall frame and counter, PAUSED, the tour's caption and the message line; returns what they cover."""
        text = self._text
        scale = self._scale
        covered = []
        stalled_ms = snapshot.stalled_ms(now) if snapshot.last_tick_monotonic > 0 and not snapshot.finished else 0.0
        if stalled_ms >= SCENE_STALL_MS:
            # a stall long enough to see: a red frame round the scene, which froze with the loop
            pygame.draw.rect(surface, STALL_FRAME, scene, max(2, int(4 * scale)))
            stall = text.draw(
                surface,
                f"no tick for {stalled_ms:,.0f} ms",
                (scene.centerx, top + int(12 * scale)),
                "huge",
                STALL_FRAME,
                anchor="midtop",
                shadow=True,
            )
            covered.append(stall)
        if snapshot.paused:
            covered.append(
                text.draw(surface, "PAUSED", scene.center, "big", (255, 255, 255), anchor="center", shadow=True)
            )
        if snapshot.caption:
            covered.append(self._caption(surface, scene, snapshot.caption))
        if ui.message:
            s = text.render(ui.message, "title", (255, 255, 255))
            box = s.get_rect().inflate(int(24 * scale), int(10 * scale))
            box.midbottom = (scene.centerx, scene.bottom - int(12 * scale))
            darken(surface, box, edge=(200, 206, 220))
            surface.blit(s, s.get_rect(center=box.center))
            covered.append(box)
        return covered

    def _caption(self, surface: pygame.Surface, scene: pygame.Rect, caption: list[str]) -> pygame.Rect:
        """The tour's title, paragraphs and "now: ..." line, in a box at the top right of the scene."""
        text, scale = self._text, self._scale
        pad = int(12 * scale)
        box = pygame.Rect(scene.left + int(scene.width * 0.37), scene.top + int(48 * scale), 0, 0)
        box.width = scene.right - pad - box.left
        inner = box.width - 2 * pad
        lines: list[tuple[str, str, tuple[int, int, int]]] = [(caption[0], "title", CAPTION_TITLE)]
        for paragraph in caption[1:]:
            style, colour = ("bold", HELP_KEY) if paragraph.startswith("now:") else ("body", HELP_TEXT)
            lines += [(line, style, colour) for line in text.wrap(paragraph, style, inner)]
        box.height = sum(text.height(style) + int(3 * scale) for _, style, _ in lines) + 2 * pad
        darken(surface, box, edge=CAPTION_EDGE)
        y = box.top + pad
        for line, style, colour in lines:
            text.draw(surface, line, (box.left + pad, y), style, colour, max_width=inner)
            y += text.height(style) + int(3 * scale)
        return box

    def _draw_help(self, surface: pygame.Surface) -> None:
        if self._help is None:
            self._help = self._help_surface()
        surface.fill((110, 110, 118), special_flags=pygame.BLEND_RGB_MULT)
        w, h = surface.get_size()
        surface.blit(self._help, self._help.get_rect(center=(w // 2, h // 2)))

    def _help_surface(self) -> pygame.Surface:
        text = self._text
        scale = self._scale
        pad = int(16 * scale)
        line = text.height("body") + int(4 * scale)
        key_w = max(text.render(k, "bold", HELP_KEY).get_width() for k, _ in HELP_KEYS) + int(20 * scale)
        desc_w = max(text.render(d, "body", HELP_TEXT).get_width() for _, d in HELP_KEYS)
        title_h = text.height("title") + int(10 * scale)
        width = min(self._size[0] - 8, key_w + desc_w + 2 * pad)
        height = min(self._size[1] - 8, title_h + line * len(HELP_KEYS) + 2 * pad)
        box = pygame.Surface((max(width, 1), max(height, 1)), pygame.SRCALPHA)
        box.fill(HELP_BG)
        pygame.draw.rect(box, (150, 164, 186, 255), box.get_rect(), 1, border_radius=6)
        text.draw(box, "heli-sim: keys", (pad, pad), "title", HELP_TEXT)
        text.draw(box, "F1 closes", (width - pad, pad), "small", (150, 158, 172), anchor="topright")
        y = pad + title_h
        for key, what in HELP_KEYS:
            text.draw(box, key, (pad, y), "bold", HELP_KEY)
            text.draw(box, what, (pad + key_w, y), "body", HELP_TEXT, max_width=width - pad - key_w - pad)
            y += line
        return box
