"""Labels over the scene, laid out so that none covers another, a helicopter or a panel.

The scene asks for labels while it draws (``LabelRequest``: what to write, where the thing it names
is on the screen); the renderer lays them out last, once the HUD and the overlays ("no tick for
N ms", messages, the tour's caption) have said which rectangles they hold.  A label goes right
above what it names; if that spot is taken it climbs in steps, then tries below; the focused
helicopter's label always shows, the others only where they fit.  Requests are placed in rank
order (the focused helicopter first, then the crashed ones, then the rest), so what matters most
gets the best spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pygame

__all__ = ["LabelRequest", "draw_labels", "lay_out"]

_CLIMB_STEPS = 6  # tries above the thing labelled, each a label's height higher, then as many below
_GAP_PX = 2


class _Text(Protocol):
    def height(self, style: str) -> int: ...
    def width(self, s: str, style: str) -> int: ...
    def draw(self, surface: pygame.Surface, s: str, pos: tuple, style: str, colour: tuple, **kw: object) -> object: ...


@dataclass(frozen=True)
class LabelRequest:
    """A label the scene wants: ``lines`` of (text, style, colour), top to bottom, centred on ``centre_x``,
    just above ``top`` (the top of what it names on the screen) or, failing that, just below ``bottom``."""

    lines: tuple[tuple[str, str, tuple[int, int, int]], ...]
    centre_x: float
    top: float
    bottom: float
    rank: int  # lower is placed first
    must_show: bool = False  # drawn even where everything overlaps (the focused helicopter's)
    fixed: bool = False  # only its own spot, or not at all (a compass letter on the ground)


def lay_out(
    requests: list[LabelRequest], occupied: list[pygame.Rect], bounds: pygame.Rect, text: _Text
) -> list[tuple[LabelRequest, pygame.Rect]]:
    """Where each label goes (those that fit, and every ``must_show``), in rank order; no two placed
    labels overlap, nor does one overlap ``occupied`` unless it must show and nothing fits."""
    taken = [pygame.Rect(r) for r in occupied]
    placed = []
    for request in sorted(requests, key=lambda r: r.rank):
        width = max(text.width(line, style) for line, style, _ in request.lines)
        height = sum(text.height(style) for _, style, _ in request.lines)
        candidates = list(_candidates(request, width, height, bounds))
        spot = next((c for c in candidates if bounds.contains(c) and c.collidelist(taken) < 0), None)
        if spot is None:
            if not request.must_show:
                continue
            spot = candidates[0].clamp(bounds)
        taken.append(spot)
        placed.append((request, spot))
    return placed


def draw_labels(surface: pygame.Surface, placed: list[tuple[LabelRequest, pygame.Rect]], text: _Text) -> None:
    for request, rect in placed:
        y = rect.top
        for line, style, colour in request.lines:
            text.draw(surface, line, (rect.centerx, y), style, colour, anchor="midtop", shadow=True)
            y += text.height(style)


def _candidates(request: LabelRequest, width: int, height: int, bounds: pygame.Rect):
    """Rectangles to try, best first: right above, higher and higher, then right below, lower and lower;
    kept inside the bounds sideways (a helicopter at the edge keeps its label on the screen)."""
    left = round(request.centre_x - width / 2)
    left = max(bounds.left, min(left, bounds.right - width))
    above = int(request.top) - _GAP_PX - height
    yield pygame.Rect(left, above, width, height)
    if request.fixed:
        return
    for step in range(1, _CLIMB_STEPS + 1):
        yield pygame.Rect(left, above - step * (height + _GAP_PX), width, height)
    below = int(request.bottom) + _GAP_PX
    for step in range(_CLIMB_STEPS + 1):
        yield pygame.Rect(left, below + step * (height + _GAP_PX), width, height)
