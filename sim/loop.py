"""The fixed-rate main loop: absolute deadlines, physics up to wall-clock time, timing statistics.

One tick: wait for the next deadline on the monotonic clock (recording how late we woke),
switch I/O mode if one was requested, read the pilot's frames (``FlightIO.read_inputs``), run
the controller, push its outputs to the ports (``push_outputs``), step the physics in fixed
``dt`` up to the present wall-clock time holding the actuator command, then record the tick.
A stall (a blocking call, a busy CPU) therefore never slows the world: the physics catches up,
the controller was simply blind meanwhile.  Catch-up is capped at ``catchup_limit_s``; past it
the world skips ahead and a ``behind`` event says by how much.

Deadlines are absolute (``t0 + k * period``), never ``sleep(period)``.  A tick that wakes more
than a period late runs once, and the deadlines it slept through count as missed; the schedule
then resumes on the grid.  The clock is injected: ``MonotonicClock`` for real runs,
``ManualClock`` for tests that drive time by hand.

A stop request (``request_stop``: SIGINT, SIGTERM, the view closing) is seen within a few tens
of milliseconds whatever the loop is doing: long waits (an injected loop delay, a slow tick rate)
sleep in slices, and the physics catch-up steps in chunks of about ``_CATCHUP_SLICE_S`` of wall
time, looking for it in between.  Injected faults act at simulated flight time (``flight_time_s``).
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol, Required, TypedDict

import numpy as np

from sim import stopping
from sim.config import IO_MODES
from sim.cpu_helper import CpuHelper
from sim.flight import Flight
from sim.log.format import TICK_FLAGS
from sim.runtime import process_age_s
from sim.stats import Event, Segment
from sim.wiring import FlightIO, InProcessIO

if TYPE_CHECKING:
    from sim.faults import FaultInjector
    from sim.log.writer import FlightLogWriter
    from sim.view.link import ViewLink

__all__ = ["Clock", "FlightLoop", "LoopOptions", "ManualClock", "MonotonicClock"]

log = logging.getLogger(__name__)
_PROGRESS_INTERVAL_S = 1.0
_STOP_CHECK_S = 0.05  # a wait longer than this looks for a stop request this often
_CATCHUP_SLICE_S = 0.01  # wall time of physics stepping between two looks for a stop request
_MAX_CHUNK_STEPS = 100_000  # physics steps in one call at most (a catch-up's chunks grow by doubling)
_HEAVY_AFTER_STEPS = 200  # physics steps timed before a flight is judged too heavy for real time


class Clock(Protocol):
    """Monotonic time in seconds and a way to wait for a moment of it."""

    def now(self) -> float: ...

    def sleep_until(self, deadline: float) -> None:
        """Block until ``now() >= deadline`` (returns at once if it already is)."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``time.sleep`` to an absolute deadline."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0.0:
            time.sleep(remaining)


class ManualClock:
    """A clock moved by hand (tests, sweeps): sleeping jumps to the deadline; ``advance`` moves it on."""

    def __init__(self, start: float = 1000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)

    def advance(self, seconds: float) -> None:
        self.t += seconds


class LoopOptions(TypedDict, total=False):
    """The keyword arguments of a ``FlightLoop`` (a ``LockstepLoop`` passes them on)."""

    loop_hz: Required[float]
    io_mode: str
    duration_s: float
    catchup_limit_s: float
    on_progress: Callable[[FlightLoop], None] | None
    before_tick: Callable[[FlightLoop], None] | None
    io: FlightIO | None
    faults: FaultInjector | None
    cpu_helper: CpuHelper | None


class FlightLoop:
    """Runs a ``Flight`` against a clock at ``loop_hz``; owns the timing statistics."""

    def __init__(
        self,
        flight: Flight,
        clock: Clock,
        *,
        loop_hz: float,
        io_mode: str = "threaded",
        duration_s: float = 0.0,
        catchup_limit_s: float = 1.0,
        on_progress: Callable[[FlightLoop], None] | None = None,
        before_tick: Callable[[FlightLoop], None] | None = None,
        io: FlightIO | None = None,
        faults: FaultInjector | None = None,
        cpu_helper: CpuHelper | None = None,
    ):
        if io_mode not in IO_MODES:
            raise ValueError(f"io_mode must be one of {IO_MODES}, got {io_mode!r}")
        self.flight = flight
        self.io: FlightIO = io if io is not None else InProcessIO(flight)
        self.clock = clock
        self.loop_hz = loop_hz
        self.period_s = 1.0 / loop_hz
        self.duration_s = duration_s
        self.catchup_steps = max(1, round(catchup_limit_s / flight.physics_dt_s))
        self.io_mode = io_mode
        self.on_progress = on_progress
        self.before_tick = before_tick
        self.segments: list[Segment] = []
        self.events: list[Event] = []
        self.startup_s: float | None = None  # seconds from the process start to the first tick
        self.ticks = 0
        self.stop_reason: str | None = None
        self._requested_mode = io_mode
        self._concurrent_mode = io_mode if io_mode != "blocking" else "threaded"  # where T goes back to
        self._stop_requested: str | None = None
        self._running = False
        self._steps_flown = 0  # physics steps since the flight started; a reset does not set it back
        self._seconds_per_step: float | None = None  # wall time of one physics step, averaged: sizes catch-up chunks
        self._heavy_told = False  # said once: a physics step costs more than the time it simulates
        self.t0 = 0.0
        self._origin = 0.0
        self._last_control_t = 0.0
        self.paused = False
        self.faults = faults  # injected faults (flight_session makes them), or None
        self.cpu_helper = cpu_helper if cpu_helper is not None else CpuHelper()  # closed by the loop's owner
        # attached by the session as it opens them, after the loop is made (they need its flight, and
        # the view its ports open): the view (when shown) and the flight log's writer (when logged)
        self.view: ViewLink | None = None
        self.recorder: FlightLogWriter | None = None
        self._reset_this_tick = False
        self.rc_source = "in-process pilot"
        self.last_input: tuple[np.ndarray, np.ndarray | bool] = (flight.frames_us, True)  # frames, fresh

    # --- requests (safe from signal handlers: they only set attributes)
    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop at the end of this tick (the first reason given is the one kept).  Safe from a signal
        handler: while the loop runs, the ports' blocking waits are told to give up (an event set once,
        which the loop's thread never holds); before it runs, the loop simply never ticks."""
        if self._stop_requested is not None:
            return
        self._stop_requested = reason
        if self._running:
            self.io.abort()  # a blocking wait on a slow device gives up now

    @property
    def flight_time_s(self) -> float:
        """Simulated seconds flown since the flight started: a reset of the vehicles does not set it
        back, a pause stops it.  The time base of injected faults."""
        return self._steps_flown * self.flight.physics_dt_s

    def request_io_mode(self, mode: str) -> None:
        if mode not in IO_MODES:
            raise ValueError(f"io_mode must be one of {IO_MODES}, got {mode!r}")
        self._requested_mode = mode

    def toggle_io_mode(self) -> None:
        """T (SIGUSR1): blocking <-> the concurrent mode last flown (threaded, or asyncio)."""
        if self._requested_mode == "blocking":
            self._requested_mode = self._concurrent_mode
        else:
            self._concurrent_mode = self._requested_mode
            self._requested_mode = "blocking"

    def toggle_asyncio_mode(self) -> None:
        """I (SIGUSR2): asyncio <-> threaded; from blocking, asyncio."""
        self._requested_mode = "threaded" if self._requested_mode == "asyncio" else "asyncio"

    def command(self, name: str) -> None:
        """A user command (a key in the view, a line it passes on: ``WORD`` or ``WORD DETAIL``): each
        is recorded as an event; one not in ``_COMMANDS`` is ignored (a newer view's)."""
        word, _, detail = name.partition(" ")
        handler = self._COMMANDS.get(word)
        if handler is not None:
            handler(self, word, detail)

    # --- the commands, one method each (the table, _COMMANDS, below them)

    def _toggle_io_command(self, word: str, detail: str) -> None:
        self.toggle_io_mode()

    def _toggle_asyncio_command(self, word: str, detail: str) -> None:
        self.toggle_asyncio_mode()

    def _cpu_helper_command(self, word: str, detail: str) -> None:
        # G: a helper thread on/off; P: move the work into a process (or stop the process)
        want = "thread" if word == "cpu_thread" else "process"
        try:
            self.cpu_helper.set_mode("off" if self.cpu_helper.mode == want else want)
        except (OSError, RuntimeError) as error:  # no process or thread to be had (EAGAIN, EMFILE)
            self.record("cpu_helper", f"cannot start the CPU helper {want}: {error}")
            return
        self.record("cpu_helper", self.cpu_helper.mode)

    def _reset_command(self, word: str, detail: str) -> None:
        self.flight.reset()
        self._reset_this_tick = True
        self._origin = self.clock.now()
        self._last_control_t = -self.period_s
        self.record("reset", "vehicles back to their start")

    def _pause_command(self, word: str, detail: str) -> None:
        self.paused = not self.paused
        if not self.paused:  # the world resumes from where it stopped, without catching up
            self._origin = self.clock.now() - self.flight.sim_time_s
        self.record("pause", "paused" if self.paused else "resumed")

    def _quit_command(self, word: str, detail: str) -> None:
        self.record("view_closed", "the view was closed")
        self.request_stop("view closed")

    def _fault_command(self, word: str, detail: str) -> None:  # a fault key in the view: "fault KIND"
        if self.faults is not None:
            outcome = self.faults.toggle(detail, self.flight_time_s, self.record)
            if outcome.startswith("no ") or "cannot" in outcome:
                self.record("view", outcome)

    def _note_command(self, word: str, detail: str) -> None:  # the view changed only its picture
        self.record("view", detail)

    def _joystick_command(self, word: str, detail: str) -> None:  # the view's joystick came or went
        self.record(word, detail)

    def _view_lost_command(self, word: str, detail: str) -> None:
        self.record("view_lost", "the view process ended; flying on without it")
        view, self.view = self.view, None
        if view is not None:  # (the view said so: it was open)
            view.close(finished=False)

    _COMMANDS: ClassVar[dict[str, Callable[[FlightLoop, str, str], None]]] = {
        "toggle_io": _toggle_io_command,
        "toggle_asyncio": _toggle_asyncio_command,
        "cpu_thread": _cpu_helper_command,
        "cpu_process": _cpu_helper_command,
        "reset": _reset_command,
        "pause": _pause_command,
        "quit": _quit_command,
        "fault": _fault_command,
        "note": _note_command,
        "joystick": _joystick_command,
        "joystick_lost": _joystick_command,
        "joystick_back": _joystick_command,
        "view_lost": _view_lost_command,
    }

    def record(self, kind: str, detail: str, t_s: float | None = None) -> None:
        """An event of the flight at ``t_s`` s of flight (now, if None)."""
        at = (self.clock.now() - self.t0) if t_s is None else t_s
        # in time order: an event can come in after a later one (an emulator's report is read a few
        # times a second; a port's thread pushes what it saw, the loop drains it at its next tick)
        bisect.insort_right(self.events, Event(at, kind, detail), key=_event_time)
        if self.recorder is not None:
            self.recorder.record_event(at, kind, detail)
        log.info("%8.3f s  %s: %s", at, kind, detail)

    def take_recorder_notices(self) -> None:
        """Record what the log writer reported from its thread (``log_stopped``: a full disk); it
        never calls ``record`` itself.  Loop thread (each tick), and the session after closing the log."""
        if self.recorder is not None:
            for kind, detail in self.recorder.take_notices():
                self.record(kind, detail)

    # --- the loop
    def run(self) -> None:
        """Fly until the duration is reached or a stop is requested."""
        self._running = True
        try:
            with stopping.escalating():
                self._run()
        except stopping.Stopped:  # a tick still running ESCALATE_AFTER_S after the stop request: cut short
            if stopping.requested() is None:  # not an escalated request: a signal where nothing handles stops
                raise  # (a flight run by the tour or a benchmark): the whole command ends
            if self.segments:
                self.segments[-1].t_end_s = self.clock.now() - self.t0
            self.stop_reason = self._stop_requested or "stopped"
            self.record("stop_forced", f"a tick had not ended {stopping.ESCALATE_AFTER_S:g} s after the stop request")
        finally:
            self._running = False

    def _run(self) -> None:
        """The ticks, on the deadline grid (the module doc): each step of a tick is a method below."""
        clock, period = self.clock, self.period_s
        self.t0 = start = clock.now()
        self.startup_s = process_age_s()  # from the process's start to its first tick (bench startup)
        if self.recorder is not None:
            self.recorder.t0 = start  # the log's time zero
        self._origin = start  # wall-clock time of simulated time zero (moves on `behind`, pause, reset)
        segment = Segment(self.io_mode, 0.0)
        self.segments.append(segment)
        index = 0  # deadline index: deadline = start + index * period
        last_wake: float | None = None
        self._last_control_t = -period
        next_progress = start + _PROGRESS_INTERVAL_S
        while self._stop_requested is None:
            deadline = start + index * period
            self._wait_until(deadline)
            if self._stop_requested is not None:  # stopped while waiting: no tick more
                break
            woke = clock.now()
            lateness = woke - deadline
            skipped = math.floor(lateness / period + 1e-9) if lateness > 0.0 else 0
            self._count_wake(segment, woke, lateness, skipped, last_wake)
            last_wake = woke
            segment = self._switch_if_asked(segment, woke)
            if self.before_tick is not None:
                self.before_tick(self)
            frames, fresh, dt_control = self._read_and_control()
            self.io.push_outputs(clock.now())
            self._inject_loop_delay()
            now = clock.now()
            steps = self._advance(self._steps_due(now))
            if self.recorder is not None:
                self._record_tick(self.recorder, woke, lateness, skipped, frames, fresh, dt_control, steps)
            self._collect_events()
            self.ticks += 1
            index += 1 + skipped
            if self.duration_s and self.flight.sim_time_s >= self.duration_s - 1e-9:
                self._stop_requested = "duration reached"
            if self.on_progress is not None and now >= next_progress:
                next_progress = now + _PROGRESS_INTERVAL_S
                self.on_progress(self)
        segment.t_end_s = clock.now() - start
        self.stop_reason = self._stop_requested

    def _count_wake(
        self, segment: Segment, woke: float, lateness: float, skipped: int, last_wake: float | None
    ) -> None:
        """How late this wake is, and the period ending at it: the previous tick's doing, so they count
        in its I/O mode's segment (and histogram), even when the mode switches now.  The view hears
        of them, and its keys' commands are carried out."""
        segment.ticks += 1
        segment.missed_deadlines += skipped
        segment.lateness.add(max(lateness, 0.0))
        if last_wake is not None:
            segment.period.add(woke - last_wake)
        if self.view is not None:
            period_s = None if last_wake is None else woke - last_wake
            for command in self.view.on_tick(self, max(lateness, 0.0), period_s, skipped):
                self.command(command)

    def _switch_if_asked(self, segment: Segment, woke: float) -> Segment:
        """The I/O mode a user asked for, if the ports allow it (else the refusal recorded): the
        segment now flying."""
        requested = self._requested_mode  # read once: a signal handler may change it at any moment
        if requested == self.io_mode:
            return segment
        refusal = self.io.refuses(requested)
        if refusal is None:
            return self._switch_segment(segment, requested, woke)
        self.record("mode_refused", refusal, woke - self.t0)
        self._requested_mode = self.io_mode
        return segment

    def _read_and_control(self) -> tuple[np.ndarray, np.ndarray | bool, float]:
        """The pilot's frames read and, unless paused, a controller cycle on them: (frames, fresh, the
        cycle's dt; 0.0 when paused)."""
        flight = self.flight
        frames, fresh, _stick_t = self.io.read_inputs(self.clock.now())
        self.last_input = (frames, fresh)
        if self.paused:
            return frames, fresh, 0.0
        sim_t = flight.sim_time_s
        dt_control = max(sim_t - self._last_control_t, flight.physics_dt_s)
        flight.run_controller(frames, fresh, dt_control)
        for kind, detail in flight.take_events():  # a user's controller failed, a command went NaN
            self.record(kind, detail)
        self._last_control_t = sim_t
        return frames, fresh, dt_control

    def _inject_loop_delay(self) -> None:
        """The faults of this moment of the flight; an injected loop delay makes the tick take that
        much longer (a stop cuts it short)."""
        if self.faults is not None:
            stall = self.faults.on_tick(self.flight_time_s, self.record)
            if stall:
                self._wait_until(self.clock.now() + stall)

    def _steps_due(self, now: float) -> int:
        """Physics steps up to the wall clock ``now``, at most ``catchup_steps``: further behind, the
        world skips ahead (a ``behind`` event says by how much)."""
        if self.paused:
            return 0
        dt = self.flight.physics_dt_s
        behind = math.floor((now - self._origin) / dt + 1e-9) - self.flight.steps
        if behind > self.catchup_steps:
            lost = (behind - self.catchup_steps) * dt
            self._origin += lost
            self.record("behind", f"physics {behind * dt:.3f} s behind the wall clock; skipped {lost:.3f} s")
            behind = self.catchup_steps
        return max(behind, 0)

    def _collect_events(self) -> None:
        """Record what the ports and the log writer reported since the last tick."""
        for event in self.io.drain_events():
            self.record(event.kind, event.detail, event.t_monotonic - self.t0)
        self.take_recorder_notices()

    def _wait_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` on the loop's clock, in slices that notice a stop request."""
        clock = self.clock
        while (remaining := deadline - clock.now()) > _STOP_CHECK_S:
            if self._stop_requested is not None:
                return
            clock.sleep_until(clock.now() + _STOP_CHECK_S)
        if remaining > 0.0 and self._stop_requested is None:
            clock.sleep_until(deadline)

    def _advance(self, steps: int) -> int:
        """Step the physics ``steps`` times in chunks of about ``_CATCHUP_SLICE_S`` of wall time,
        recording its events; a stop request ends a long catch-up between chunks.  Returns the
        steps taken (the log records these: a replay steps the same)."""
        done = 0
        # as many steps as take about a slice, by the time a step took so far (one step at first:
        # with a large fleet a single step can take a good part of a second)
        step_s = self._seconds_per_step
        chunk = 1 if step_s is None else max(1, min(_MAX_CHUNK_STEPS, int(_CATCHUP_SLICE_S / max(step_s, 1e-9))))
        while done < steps:
            count = min(chunk, steps - done)
            started = time.perf_counter()  # sizes the chunks only: the physics never sees it
            for kind, detail in self.flight.advance(count):
                self.record(kind, detail)
            done += count
            took = time.perf_counter() - started
            step_s = took / count if step_s is None else 0.8 * step_s + 0.2 * took / count
            self._seconds_per_step = step_s
            self._tell_if_too_heavy(step_s, self._steps_flown + done)
            if self._stop_requested is not None:
                break
            chunk = count * 2 if took < _CATCHUP_SLICE_S else max(1, count // 2)
        self._steps_flown += done
        return done

    def _tell_if_too_heavy(self, step_s: float, flown: int) -> None:
        """Say once, early, when a physics step costs more wall-clock time than the simulated time it
        covers: such a flight cannot keep real time at all (its duration takes longer than it says)."""
        dt = self.flight.physics_dt_s
        if self._heavy_told or flown < _HEAVY_AFTER_STEPS or step_s <= dt:
            return
        if not isinstance(self.clock, MonotonicClock) or self.flight.config.fc.enabled:
            return  # a sweep's or a test's clock, or firmware's frames setting the pace: no real time to keep
        self._heavy_told = True
        detail = (
            f"the physics of {self.flight.count:,} vehicles takes {step_s * 1e3:.2f} ms of wall-clock time per "
            f"{dt * 1e3:g} ms step: this flight cannot keep real time and runs {step_s / dt:.1f}x slower"
        )
        self.record("too_heavy", detail)
        log.warning("%s (a smaller fleet, a fleet in the air rather than on the ground, or --kernel compiled)", detail)

    def _record_tick(
        self,
        recorder: FlightLogWriter,
        woke: float,
        lateness: float,
        missed: int,
        frames: np.ndarray,
        fresh: np.ndarray | bool,
        dt_control: float,
        steps: int,
    ) -> None:
        """Hand the tick to the log writer: the replay inputs and the outcome (no copies of
        immutable arrays; the pilot frames and freshness are copied, their owners reuse them)."""
        flight = self.flight
        flags = (TICK_FLAGS["reset"] if self._reset_this_tick else 0) | (
            TICK_FLAGS["paused"] if self.paused else TICK_FLAGS["controlled"]
        )
        if flight.judged_too_slow and not self.paused:  # a clock-made takeover: the replay applies it
            flags |= TICK_FLAGS["controller_too_slow"]
        self._reset_this_tick = False
        fresh_row = np.broadcast_to(np.asarray(fresh, dtype=bool), (flight.count,)).copy()
        recorder.record_tick(
            (self.ticks, woke, flight.sim_time_s, max(lateness, 0.0), missed, self.io_mode, flags, steps, dt_control,
             fresh_row, np.array(frames[:, :16], dtype=np.float64), flight.command.packed, flight.vehicles.packed)
        )  # fmt: skip

    def _switch_segment(self, segment: Segment, mode: str, now: float) -> Segment:
        t = now - self.t0
        segment.t_end_s = t
        self.io.switch(mode)  # threads stopped (or started) before the loop goes on
        self.record("mode_switch", f"{self.io_mode} -> {mode}", t)
        self.io_mode = mode
        new = Segment(self.io_mode, t)
        self.segments.append(new)
        return new

    # --- results
    def summary(self) -> dict:
        """The run summary, with the keys of the ``--stats-json`` contract."""
        flight = self.flight
        return {
            "duration_s": round(flight.sim_time_s, 6),
            "loop_hz": self.loop_hz,
            "physics_dt_s": flight.physics_dt_s,
            "kernel": flight.config.flight.kernel,
            "io_mode_final": self.io_mode,
            "heli": flight.heli.params.name,
            "fleet": flight.count,
            "stop_reason": self.stop_reason,
            "pilot_source": self.rc_source,
            "segments": [s.to_dict() for s in self.segments],
            "ports": self.io.port_summaries(),
            "events": [e.to_dict() for e in self.events],
            "vehicles": flight.vehicle_summary(),
            "stick_to_servo_ms": self.io.stick_to_servo_ms(),
            "startup_s": None if self.startup_s is None else round(self.startup_s, 3),
            **({"log": self.recorder.summary()} if self.recorder is not None else {}),
            **({"faults": self.faults.summary()} if self.faults is not None and self.faults.history else {}),
        }


def _event_time(event: Event) -> float:
    return event.t_s
