"""The tour's result card: a step's caption, its live figures and its verdict, in a window.

Run as its own process by ``heli-sim tour`` between steps (``python -m sim.view.card``), with
the card as JSON on standard input.  It prints what the user chose on standard output:
``next`` (Enter, Space, Right or N), ``again`` (R: measure the step once more) or ``stop`` (Esc,
or closing the window).  Without ``--wait`` it draws one frame, saves ``--screenshot`` if
asked, and answers ``next`` (off screen nobody is there to press a key).  Keys can be scripted
with ``HELI_SIM_VIEW_SCRIPT``, as in the flight view; a card has no flight, so its script's times
are seconds since the card opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["CHOICES", "main"]

CHOICES = {"return": "next", "space": "next", "right": "next", "n": "next", "r": "again", "escape": "stop"}
_FPS = 30
_BACKGROUND = (18, 20, 28)
_GOOD = (96, 220, 128)
_NOT_AS_SAID = (255, 170, 64)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim.view.card")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--screenshot", help="save the card as this PNG")
    parser.add_argument("--wait", action="store_true", help="wait for a key (else draw once and answer next)")
    return parser.parse_args(argv)


def draw(surface, card: dict) -> None:
    """The card on ``surface``: step and title, caption, the table of figures, verdict, keys."""
    import pygame

    from sim.view.render import CAPTION_EDGE, CAPTION_TITLE, HELP_KEY, HELP_TEXT, ui_scale
    from sim.view.text import Text

    width, height = surface.get_size()
    scale = ui_scale((width, height)) * 1.4  # a card is read from a distance: larger than the panels
    text = Text(scale)
    pad = int(32 * scale)
    inner = width - 2 * pad
    surface.fill(_BACKGROUND)
    pygame.draw.rect(surface, CAPTION_EDGE, surface.get_rect().inflate(-pad, -pad), 1, border_radius=4)
    y = pad + int(8 * scale)
    text.draw(surface, f"heli-sim tour: step {card['step']}", (pad, y), "bold", HELP_KEY)
    text.draw(surface, card.get("python", ""), (width - pad, y), "small", HELP_TEXT, anchor="topright")
    y += text.height("bold") + int(6 * scale)
    for line in text.wrap(card["title"], "big", inner):
        text.draw(surface, line, (pad, y), "big", CAPTION_TITLE)
        y += text.height("big")
    y += int(10 * scale)
    for line in text.wrap(card["caption"], "body", inner):
        text.draw(surface, line, (pad, y), "body", HELP_TEXT)
        y += text.height("body") + int(2 * scale)
    y += int(14 * scale)
    for line in card["lines"]:
        text.draw(surface, line, (pad, y), "mono", HELP_TEXT, max_width=inner)
        y += text.height("mono") + int(2 * scale)
    y += int(14 * scale)
    colour = _GOOD if card["as_the_lesson_says"] else _NOT_AS_SAID
    said = "as the lesson says" if card["as_the_lesson_says"] else "NOT as the lesson says, on this machine"
    for line in text.wrap(f"{card['verdict']} ({said}).", "bold", inner):
        text.draw(surface, line, (pad, y), "bold", colour)
        y += text.height("bold") + int(2 * scale)
    keys = "Enter: next step    R: measure it again    Esc: end the tour"
    text.draw(surface, keys, (width // 2, height - pad - int(8 * scale)), "bold", HELP_KEY, anchor="midbottom")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    card = json.loads(sys.stdin.read())
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # standard output carries the answer
    import pygame

    from sim.view.app import SCRIPT_ENV, parse_script, press_key, save_atomically

    width, height = (int(v) for v in args.size.lower().split("x"))
    script = parse_script(os.environ.get(SCRIPT_ENV, ""))
    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode((width, height), pygame.RESIZABLE)
        pygame.display.set_caption(f"heli-sim tour: step {card['step']}")
        clock = pygame.time.Clock()
        started = time.monotonic()
        choice = None if args.wait else "next"
        drawn = False
        while True:
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    choice = "stop"
                elif event.type == pygame.VIDEORESIZE:
                    screen = pygame.display.set_mode(event.size, pygame.RESIZABLE)
                    drawn = False
                elif event.type == pygame.KEYDOWN:
                    choice = CHOICES.get(pygame.key.name(event.key), choice)
            if not drawn:
                draw(screen, card)
                pygame.display.flip()
                if args.screenshot:
                    save_atomically(pygame, screen, args.screenshot)
                drawn = True
            if choice is not None:
                sys.stdout.write(choice + "\n")
                sys.stdout.flush()
                return 0
            while script and time.monotonic() - started >= script[0][0]:
                press_key(pygame, script.pop(0)[1])
            clock.tick(_FPS)
    finally:
        pygame.quit()


if __name__ == "__main__":
    sys.exit(main())
