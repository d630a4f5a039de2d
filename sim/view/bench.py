"""``heli-sim bench view``: how fast the view draws, and what opening it does to the loop.

Two measurements in the same run:

- frames per second: the ``Renderer`` drawing real snapshots (a flown helicopter, and a fleet
  of eight) at 1280x720 as fast as it can, in this process, on SDL's dummy video driver when
  there is no display (so the figure is the drawing, not a compositor);
- loop lateness with the view on and off: the default flight (virtual transmitter, servo
  board, ground station, threaded I/O) alternately with and without the view process, against
  a bare sleep-to-deadline loop, medians of the rounds.  The view process's own frame rate
  (capped at 60) and its time to first frame are reported too.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from sim.bench_common import Result, bare_loop_lateness
from sim.config import FlightConfig, apply_overrides, load_heli
from sim.loop import FlightLoop, ManualClock
from sim.session import ViewOptions, flight_session

__all__ = ["bench_view"]

SIZE = (1280, 720)


def _snapshot(fleet: int):
    """A snapshot of a real flight after a second in the air, as the view would read it."""
    from sim.flight import Flight
    from sim.view.link import Publisher
    from sim.view.shared import SnapshotReader, SnapshotWriter

    config = apply_overrides(FlightConfig(), start="hover", fleet=fleet, heli="xcell60")
    loop = FlightLoop(Flight(load_heli("xcell60"), config), ManualClock(), loop_hz=500, duration_s=1.0)
    writer = SnapshotWriter()
    try:
        publisher = Publisher(writer)
        loop.before_tick = lambda lp: publisher.on_tick(lp, 0.0001 * (lp.ticks % 7), 0.002, 0)
        loop.run()
        reader = SnapshotReader(writer.name)
        try:
            return reader.read()
        finally:
            reader.close()
    finally:
        writer.close()


def _frame_times(frames: int) -> dict[str, list[float]]:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    from sim.view.render import Renderer, UiState

    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode(SIZE)
        renderer = Renderer(SIZE)
        times: dict[str, list[float]] = {}
        for label, fleet, camera in (("", 1, "pilot"), ("_chase", 1, "chase"), ("_fleet8", 8, "pilot")):
            snapshot, ui = _snapshot(fleet), UiState(camera=camera)
            samples = times[label] = []
            for _ in range(frames):
                start = time.perf_counter()
                renderer.draw(screen, snapshot, ui, snapshot.last_tick_monotonic)
                pygame.display.flip()
                samples.append(time.perf_counter() - start)
        return times
    finally:
        pygame.quit()


def _fly(seconds: float, view: bool) -> FlightLoop:
    config = apply_overrides(FlightConfig(), heli="xcell60", start="hover", pilot="hover", duration_s=seconds)
    options = ViewOptions(size=SIZE) if view else None
    with flight_session(config, load_heli("xcell60"), view=options) as loop:
        loop.run()
    return loop


def bench_view(quick: bool = False, flight_s: float | None = None, frames: int | None = None) -> list[Result]:
    """Frames per second at 1280x720, and loop lateness with the view on vs off.

    ``frames`` drawn for the frame rate (default 60 with ``quick``, else 300); ``flight_s``: how long
    each flight (and the bare loop) is (default 2 s with ``quick``, else 4 s)."""
    results: list[Result] = []
    for label, samples in _frame_times(frames or (60 if quick else 300)).items():
        median = statistics.median(samples)
        results.append(Result("view", f"fps{label}", round(1.0 / median, 1), "1/s"))
        results.append(Result("view", f"frame_ms_p50{label}", round(median * 1e3, 2), "ms"))
        results.append(Result("view", f"frame_ms_p99{label}", round(float(np.quantile(samples, 0.99)) * 1e3, 2), "ms"))

    seconds = flight_s or (2.0 if quick else 4.0)
    rounds: dict[str, list[float]] = {}
    view_rates, first_frames = [], []
    for _ in range(1 if quick else 3):
        for name in ("bare", "view_off", "view_on"):
            if name == "bare":
                lateness = bare_loop_lateness(seconds)
            else:
                loop = _fly(seconds, view=name == "view_on")
                (segment,) = loop.segments
                lateness = segment.lateness
                if loop.view is not None:
                    if loop.view.frames_seconds > 0:
                        view_rates.append(loop.view.frames_drawn / loop.view.frames_seconds)
                    if loop.view.first_frame_s is not None:
                        first_frames.append(loop.view.first_frame_s)
            rounds.setdefault(f"{name}50", []).append(lateness.sampled_quantile(0.5))
            rounds.setdefault(f"{name}99", []).append(lateness.sampled_quantile(0.99))
    med = {key: statistics.median(values) for key, values in rounds.items()}
    for name in ("view_on", "view_off"):
        for q in ("50", "99"):
            results.append(Result("view", f"{name}_lateness_p{q}_us", round(med[f"{name}{q}"] * 1e6, 1), "us"))
    for q in ("50", "99"):
        results.append(Result("view", f"bare_loop_lateness_p{q}_us", round(med[f"bare{q}"] * 1e6, 1), "us"))
    for q in ("50", "99"):
        on_off = med[f"view_on{q}"] / max(med[f"view_off{q}"], 1e-9)
        on_bare = med[f"view_on{q}"] / max(med[f"bare{q}"], 1e-9)
        results.append(Result("view", f"view_on_vs_off_p{q}", round(on_off, 2), "ratio"))
        results.append(Result("view", f"view_on_vs_bare_p{q}", round(on_bare, 2), "ratio"))
    if view_rates:
        results.append(Result("view", "view_process_fps", round(statistics.median(view_rates), 1), "1/s"))
    if first_frames:
        results.append(Result("view", "first_frame_s", round(statistics.median(first_frames), 2), "s"))
    return results
