"""Text for the view: fonts at one scale (DejaVu where the system has it, pygame's own otherwise)
and a cache of rendered strings, since rendering text is the costly part of a frame.  Every
drawing module (render, hud, panels, scene, labels, card) writes through it."""

from __future__ import annotations

import functools
import io
import os

import pygame

__all__ = ["FONT_STYLES", "Text"]

TEXT_CACHE_MAX = 2048  # rendered strings kept; the cache is emptied when it grows past this
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")
FONT_FILES = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}
# style -> (face, size in px at the reference size)
FONT_STYLES = {
    "small": ("regular", 11),
    "body": ("regular", 13),
    "mono": ("mono", 12),
    "bold": ("bold", 13),
    "title": ("bold", 14),
    "big": ("bold", 30),
    "huge": ("bold", 30),
}


class Text:
    """Fonts at one scale, and a cache of rendered strings: rendering text is the costly part of a frame."""

    def __init__(self, scale: float) -> None:
        self._fonts: dict[str, pygame.font.Font] = {}
        for style, (face, px) in FONT_STYLES.items():
            data = _font_bytes(FONT_FILES[face])
            size = max(8, round(px * scale))
            if data is None:  # pygame's built-in font (freesansbold) draws smaller than DejaVu at the same size
                self._fonts[style] = pygame.font.Font(None, round(size * 1.25))
            else:  # from memory: no font file stays open
                self._fonts[style] = pygame.font.Font(io.BytesIO(data), size)
        self._heights = {style: font.get_linesize() for style, font in self._fonts.items()}
        self._cache: dict[tuple[str, str, tuple[int, ...]], pygame.Surface] = {}

    def height(self, style: str) -> int:
        return self._heights[style]

    def width(self, s: str, style: str) -> int:
        return self._fonts[style].size(s)[0]

    def render(self, s: str, style: str, colour: tuple[int, ...]) -> pygame.Surface:
        key = (s, style, tuple(colour))
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= TEXT_CACHE_MAX:
                self._cache.clear()
            surf = self._fonts[style].render(s, True, colour)
            self._cache[key] = surf
        return surf

    def wrap(self, paragraph: str, style: str, max_width: float) -> list[str]:
        """``paragraph`` cut into lines no wider than ``max_width`` px (at word boundaries)."""
        lines, line = [], ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if line and self.width(trial, style) > max_width:
                lines.append(line)
                line = word
            else:
                line = trial
        return [*lines, line] if line else lines

    def draw(
        self,
        target: pygame.Surface,
        s: str,
        pos: tuple[float, float],
        style: str = "body",
        colour: tuple[int, ...] = (232, 236, 242),
        anchor: str = "topleft",
        shadow: bool = False,
        max_width: float | None = None,
    ) -> pygame.Rect:
        """Blit ``s`` with its ``anchor`` point (a pygame.Rect attribute) at ``pos``; cut at ``max_width`` px."""
        surf = self.render(s, style, colour)
        width = surf.get_width()
        if max_width is not None and width > max_width:
            width = max(0, int(max_width))
        rect = pygame.Rect(0, 0, width, surf.get_height())
        setattr(rect, anchor, (int(pos[0]), int(pos[1])))
        area = pygame.Rect(0, 0, width, surf.get_height())
        if shadow:
            target.blit(self.render(s, style, (0, 0, 0)), (rect.x + 1, rect.y + 1), area)
        target.blit(surf, rect.topleft, area)
        return rect


@functools.cache
def _font_bytes(name: str) -> bytes | None:
    """A DejaVu font file's contents when the system has one, else None: pygame's built-in font."""
    for folder in FONT_DIRS:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                return handle.read()
    return None
