"""How fast the view draws, measured in a view process of its own (``heli-sim bench view`` runs it).

``python -P -m sim.view.frame_rate FRAMES CASES`` draws, for each case of the JSON list ``CASES``
(``[label, shared-memory name of a snapshot writer, camera]``), that snapshot ``FRAMES`` times at
1280x720 as fast as it can (SDL's dummy video driver when there is no display, so the figure is
the drawing, not a compositor), and prints the frame times as JSON: ``{label: [seconds, ...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["SIZE", "frame_times"]

SIZE = (1280, 720)


def frame_times(frames: int, cases: list[tuple[str, str, str]]) -> dict[str, list[float]]:
    """Each case's snapshot drawn ``frames`` times: the seconds each frame took."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    from sim.view.render import Renderer, UiState
    from sim.view.shared import SnapshotReader

    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode(SIZE)
        renderer = Renderer(SIZE)
        times: dict[str, list[float]] = {}
        for label, shared_name, camera in cases:
            reader = SnapshotReader(shared_name)
            try:
                snapshot = reader.read()
            finally:
                reader.close()
            ui = UiState(camera=camera)
            samples = times[label] = []
            for _ in range(frames):
                start = time.perf_counter()
                renderer.draw(screen, snapshot, ui, snapshot.last_tick_monotonic)
                pygame.display.flip()
                samples.append(time.perf_counter() - start)
        return times
    finally:
        pygame.quit()


def main(argv: list[str]) -> int:
    frames, cases = int(argv[0]), [tuple(case) for case in json.loads(argv[1])]
    sys.stdout.write(json.dumps(frame_times(frames, cases)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
