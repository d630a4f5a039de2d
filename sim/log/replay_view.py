"""A replay shown in the view: the replay dressed as the loop the view's publisher reads.

The view draws what the loop publishes (``sim.view.link.Publisher``); during a replay this
stands in for the loop: the replayed vehicles, the recorded timing (so the strip chart and the
histograms show the recorded stalls), the recorded events up to the current tick.  Replays are
paced at the recorded wall-clock times.  Of the view's keys, Space pauses, Esc and closing the
window stop; the keys that change a live flight (T, G, P, R) have nothing to change here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

from sim.log.format import IO_MODE_CODES
from sim.log.replay import Replay
from sim.session import ViewOptions
from sim.stats import Event

__all__ = ["run_in_view"]

_MODE_NAMES = {code: name for name, code in IO_MODE_CODES.items()}
_POLL_S = 0.02  # the longest sleep between looks at the view's keys


class _ReplayAsLoop:
    """The attributes of ``FlightLoop`` that the publisher reads."""

    def __init__(self, replay: Replay):
        self.replay = replay
        self.flight = replay.flight
        self.loop_hz = replay.log.header["loop_hz"]
        self.io_mode = _MODE_NAMES.get(int(replay.io_mode[0]), "threaded") if replay.count else "threaded"
        self.ticks = 0
        self.paused = False
        self.cpu_helper = SimpleNamespace(mode="off")
        self.io = SimpleNamespace(ports=[])
        self.rc_source = f"replay of {replay.log.path}"
        self.events: list[Event] = []
        self.last_input = (self.flight.frames_us, True)
        self._pending_events = [
            Event(e.get("t_s", 0.0), e.get("kind", ""), e.get("detail", "")) for e in replay.log.events
        ]

    def advance(self, stop_requested: Callable[[], bool] | None = None) -> None:
        """Replay one tick and bring the loop-like view of it up to date (unless a stop cut it short)."""
        replay = self.replay
        k = replay.index
        if not replay.step(stop_requested):
            return
        self.ticks = k
        self.io_mode = _MODE_NAMES.get(int(replay.io_mode[k]), "threaded")
        self.last_input = (replay.frames[k], replay.fresh[k])
        now_s = float(replay.t_s[k])
        while self._pending_events and self._pending_events[0].t_s <= now_s:
            self.events.append(self._pending_events.pop(0))


def run_in_view(replay: Replay, options: ViewOptions, stop_requested) -> None:
    """Replay at the recorded pace with the view open, until done, quit or ``stop_requested()``."""
    from sim.view.link import ViewLink

    loop = _ReplayAsLoop(replay)
    view = ViewLink(size=options.size, screenshot=options.screenshot)
    try:
        view.wait_shown(loop)
        rows = replay.log.ticks.reshape(replay.count, replay.log.fleet)[:, 0]
        start = time.monotonic() - (float(replay.t_s[0]) if replay.count else 0.0)
        previous_t = None
        while not replay.done and not stop_requested():
            commands = view.poll()
            if not loop.paused:
                k = replay.index
                delay = start + float(replay.t_s[k]) - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, _POLL_S))
                else:
                    loop.advance(stop_requested)
                    if replay.interrupted:
                        return
                    t = float(replay.t_s[k])
                    period = None if previous_t is None else t - previous_t
                    previous_t = t
                    commands += view.on_tick(loop, float(rows[k]["lateness_s"]), period, int(rows[k]["missed"]))
            else:
                time.sleep(_POLL_S)
            for command in commands:
                if command in ("quit", "view_lost"):
                    return
                if command == "pause":
                    loop.paused = not loop.paused
                    if not loop.paused:  # resume where it stopped: the pace clock moves on by the pause
                        start = time.monotonic() - float(replay.t_s[replay.index])
    finally:
        view.close(finished=True)
