"""Labels over the scene, laid out so that none covers another, a helicopter or a panel.

The scene asks for labels while it draws (``LabelRequest``: what to write, where the thing it names
is on the screen); the renderer lays them out last, once the HUD and the overlays ("no tick for
N ms", messages, the tour's caption) have said which rectangles they hold.  A label goes right
above what it names; if that spot is taken it climbs in steps, then tries below; the focused
helicopter's label always shows, the others only where they fit; a label that had to move away
from what it names is joined to it by a thin leader line.  Requests are placed in rank
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
_POINTER_PX = 10  # the focused helicopter's triangle, part of its label


class _Text(Protocol):
    def height(self, style: str) -> int: ...
    def width(self, s: str, style: str) -> int: ...
    def draw(
        self,
        target: pygame.Surface,
        s: str,
        pos: tuple[float, float],
        style: str,
        colour: tuple[int, ...],
        *,
        anchor: str,
        shadow: bool,
    ) -> object: ...


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
    pointer: bool = False  # a triangle between the label and what it names (the focused helicopter's)


def lay_out(
    requests: list[LabelRequest], occupied: list[pygame.Rect], bounds: pygame.Rect, text: _Text
) -> list[tuple[LabelRequest, pygame.Rect]]:
    """Where each label goes (those that fit, and every ``must_show``), in rank order; no two placed
    labels overlap, nor does one overlap ``occupied`` unless it must show and nothing fits."""
    taken = [pygame.Rect(r) for r in occupied]
    placed = []
    for request in sorted(requests, key=lambda r: r.rank):
        width = max(text.width(line, style) for line, style, _ in request.lines)
        height = sum(text.height(style) for _, style, _ in request.lines) + (_POINTER_PX if request.pointer else 0)
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
    """Each label in its place; one moved away from what it names gets a thin leader line to it."""
    for request, rect in placed:
        right_above = rect.bottom == int(request.top) - _GAP_PX and rect.left <= request.centre_x <= rect.right
        above = rect.bottom <= request.top
        if request.pointer:  # a triangle on the side towards what it names, under its x where it can be
            x = max(rect.left + 6, min(rect.right - 6, request.centre_x))
            y = rect.bottom if above else rect.top
            tip_y, base_y = (y - 1, y - _POINTER_PX + 1) if above else (y + 1, y + _POINTER_PX - 1)
            pygame.draw.polygon(surface, request.lines[-1][2], [(x, tip_y), (x - 6, base_y), (x + 6, base_y)])
        elif not (request.fixed or right_above):
            end = (rect.centerx, rect.bottom) if above else (rect.centerx, rect.top)
            target = (request.centre_x, request.top) if above else (request.centre_x, request.bottom)
            colour = request.lines[-1][2]
            pygame.draw.line(surface, (20, 20, 24), (end[0] + 1, end[1] + 1), (target[0] + 1, target[1] + 1), 1)
            pygame.draw.line(surface, colour, end, target, 1)
        y = rect.top + (_POINTER_PX if request.pointer and not above else 0)
        for line, style, colour in request.lines:
            text.draw(surface, line, (rect.centerx, y), style, colour, anchor="midtop", shadow=True)
            y += text.height(style)


def _candidates(request: LabelRequest, width: int, height: int, bounds: pygame.Rect):
    """Rectangles to try, best first: right above, higher and higher, then right below, lower and lower;
    kept inside the bounds sideways (a helicopter at the edge keeps its label on the screen)."""
    centred = round(request.centre_x - width / 2)
    # centred over it, then with its right or its left edge over it (a neighbour's label beside it)
    lefts = [centred, round(request.centre_x) - width, round(request.centre_x)]
    lefts = [max(bounds.left, min(left, bounds.right - width)) for left in lefts]
    above = int(request.top) - _GAP_PX - height
    yield pygame.Rect(lefts[0], above, width, height)
    if request.fixed:
        return
    for left in lefts[1:]:
        yield pygame.Rect(left, above, width, height)
    below = int(request.bottom) + _GAP_PX
    for step in range(1, _CLIMB_STEPS + 1):
        for left in lefts:
            yield pygame.Rect(left, above - step * (height + _GAP_PX), width, height)
        for left in lefts:
            yield pygame.Rect(left, below + (step - 1) * (height + _GAP_PX), width, height)
