"""``heli-sim bench view``: how fast the view draws, and what opening it does to the loop.

Two measurements in the same run:

- frames per second: the ``Renderer`` drawing real snapshots (a flown helicopter, and a fleet
  of eight) at 1280x720 as fast as it can, in a view process of its own (``sim.view.frame_rate``),
  on SDL's dummy video driver when there is no display (so the figure is the drawing, not a
  compositor);
- loop lateness with the view on and off: the default flight (virtual transmitter, servo
  board, ground station, threaded I/O) alternately with and without the view process, against
  a bare sleep-to-deadline loop, medians of the rounds.  The view process's own frame rate
  (capped at 60) and its time to first frame are reported too.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys

import numpy as np

from sim.bench.common import Result, bare_loop_lateness
from sim.config import FlightConfig, apply_overrides, load_heli
from sim.loop import FlightLoop, ManualClock
from sim.session import ViewOptions, flight_session
from sim.view.frame_rate import SIZE
from sim.view.shared import SnapshotWriter

__all__ = ["bench_view"]

_FRAMES_TIMEOUT_S = 60.0  # the drawing process's start and its snapshots' reading; plus a second per frame


def _flown_snapshot(fleet: int) -> SnapshotWriter:
    """A real flight's snapshot after a second in the air, in shared memory as the view reads it
    (the caller closes the writer)."""
    from sim.flight import Flight
    from sim.view.link import Publisher

    config = apply_overrides(FlightConfig(), start="hover", fleet=fleet, heli="xcell60")
    loop = FlightLoop(Flight(load_heli("xcell60"), config), ManualClock(), loop_hz=500, duration_s=1.0)
    writer = SnapshotWriter()
    try:
        publisher = Publisher(writer)
        loop.before_tick = lambda lp: publisher.on_tick(lp, 0.0001 * (lp.ticks % 7), 0.002, 0)
        loop.run()
    except BaseException:
        writer.close()
        raise
    return writer


def _frame_times(frames: int) -> dict[str, list[float]]:
    """The view's frame times for one helicopter (pilot's and chase camera) and a fleet of eight, drawn
    by a view process of its own (``sim.view.frame_rate``: pygame never runs in the simulator's process)."""
    with contextlib.ExitStack() as stack:
        one, eight = (stack.enter_context(contextlib.closing(_flown_snapshot(fleet))) for fleet in (1, 8))
        cases = [("", one.name, "pilot"), ("_chase", one.name, "chase"), ("_fleet8", eight.name, "pilot")]
        # -P: not from the working directory
        command = [sys.executable, "-P", "-m", "sim.view.frame_rate", str(frames), json.dumps(cases)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=_FRAMES_TIMEOUT_S + frames, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"bench view: the drawing process ended with status {done.returncode}: {last}")
        return json.loads(done.stdout)


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
