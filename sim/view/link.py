"""The simulator's end of the view: starts the view process, publishes snapshots, takes commands.

``ViewLink`` runs in the simulator (it never imports pygame).  Once a tick, ``on_tick`` appends
the tick's period and lateness to the shared history and, at ``PUBLISH_HZ``, the vehicles,
sticks and ports; commands from the view (keys) arrive on a pipe, read without blocking.  The
view runs as ``python -P -m sim.view.app`` in its own process (and process group; ``-P``: never
from the working directory): it can crash or be killed without taking the flight along (the link
notices and records ``view_lost``), and closing its window ends the flight (``quit``).  Its start
and its end are waits SIGINT and SIGTERM cut short (``sim.stopping``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Protocol

import numpy as np

from heli.errors import ConfigError
from heli.mixer import unmix
from heli.state import StateIndex
from sim import stopping
from sim.config import FC_PORT
from sim.rc import ARM_THRESHOLD_US
from sim.runtime import python_line
from sim.view.app import SCRIPT_ENV, parse_script
from sim.view.shared import (
    _MODE_STRIDE,
    CPU_HELPER,
    FIRMWARE_MODE,
    LAYOUT,
    PORT_FIELDS,
    VEHICLE_FIELDS,
    SnapshotWriter,
    VehicleRow,
)
from sim.view.snapshot import HISTORY, IO_MODES, MAX_PORTS, MAX_VEHICLES, lateness_bin

if TYPE_CHECKING:
    from sim.flight import Flight
    from sim.stats import Event

__all__ = ["COMMANDS", "ViewLink", "has_display", "view_environment"]

log = logging.getLogger(__name__)
PUBLISH_HZ = 100.0
PORTS_HZ = 5.0


def has_display() -> bool:
    """Whether a window can be shown (an X or Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view_environment() -> dict[str, str]:
    """The environment of a pygame process: off screen (SDL's dummy driver) where there is no display."""
    env = dict(os.environ)
    if not has_display():
        env["SDL_VIDEODRIVER"] = "dummy"  # no display: render off screen (screenshots still work)
    env.setdefault("SDL_AUDIODRIVER", "dummy")
    env.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    return env


_PASSED_ON = ("note ", "fault ", "joystick ", "joystick_lost ", "joystick_back ")  # view lines the loop records
COMMANDS = ("toggle_io", "toggle_asyncio", "cpu_thread", "cpu_process", "reset", "pause", "quit")
FIRST_FRAME_WAIT_S = 10.0  # a loaded machine may take a few seconds to start the view
_QUIT_WAIT_S = 5.0  # the view closes its window
# ... and saves a screenshot first: at the idle priority, on a machine busy with other work, that
# can take a while, and the user asked for the picture (a signal still ends it at once)
_SCREENSHOT_WAIT_S = 30.0
_QUIT_WAIT_STOPPING_S = 0.4  # the same when SIGINT / SIGTERM asked heli-sim to stop: until this long after it
_REAP_WAIT_STOPPING_S = 0.8  # then killed, its end is waited for until this long after the signal
_STOP_CHECK_S = 0.05  # how often the wait for the first frame looks for a stop request


class _HasMode(Protocol):
    @property
    def mode(self) -> str: ...


class PublishedLoop(Protocol):
    """What the publisher reads of a loop: a ``sim.loop.FlightLoop``, or a replay dressed as one
    (``sim.log.replay_view``).  Looked up where a loop has them: ``state`` and ``fc_status()``
    (firmware in the loop), ``faults``."""

    @property
    def flight(self) -> Flight: ...
    @property
    def loop_hz(self) -> float: ...
    @property
    def io_mode(self) -> str: ...
    @property
    def ticks(self) -> int: ...
    @property
    def paused(self) -> bool: ...
    @property
    def cpu_helper(self) -> _HasMode: ...
    @property
    def io(self) -> object: ...  # its ``ports``, where it has them
    @property
    def rc_source(self) -> str: ...
    @property
    def events(self) -> list[Event]: ...
    @property
    def last_input(self) -> tuple[np.ndarray, np.ndarray | bool]: ...  # the pilot's frames, and which are fresh


class Publisher:
    """Writes the loop's ticks and state into a ``SnapshotWriter`` (no process, no pygame)."""

    def __init__(self, writer: SnapshotWriter, caption: tuple[str, ...] = ()):
        self.writer = writer
        self.caption = list(caption)
        self._next_publish = 0.0
        self._next_ports = 0.0
        self._head = 0
        self._count = 0
        self._last_port_totals: dict[str, tuple[float, int, int]] = {}

    def finish(self) -> None:
        self.writer.begin()
        self.writer.set(finished=1)
        self.writer.end()

    def publish_state(self, loop: PublishedLoop) -> None:
        """The vehicles, ports and names as they are, before the first tick (no timing recorded)."""
        now = time.monotonic()
        self.writer.begin()
        self.writer.set(last_tick_monotonic=now, sim_time_s=loop.flight.sim_time_s, loop_hz=loop.loop_hz,
                        io_mode=IO_MODES.index(loop.io_mode))  # fmt: skip
        self._publish_vehicles(loop)
        self._publish_ports_and_text(loop, now)
        self.writer.end()

    # --- each tick
    def on_tick(self, loop: PublishedLoop, lateness_s: float, period_s: float | None, skipped: int) -> None:
        """Record the tick; publish what is due."""
        w, floats, now = self.writer, self.writer.floats, time.monotonic()
        mode_index = IO_MODES.index(loop.io_mode)
        w.begin()
        ring = LAYOUT.history
        floats[ring + self._head] = (period_s or 0.0) * 1e3
        floats[ring + HISTORY + self._head] = lateness_s * 1e3
        floats[ring + 2 * HISTORY + self._head] = mode_index
        self._head = (self._head + 1) % HISTORY
        self._count = min(self._count + 1, HISTORY)
        base = LAYOUT.by_mode + mode_index * _MODE_STRIDE
        floats[base] += 1
        floats[base + 1] += skipped
        floats[base + 2 + lateness_bin(lateness_s * 1e3)] += 1
        w.set(
            history_head=self._head, history_count=self._count, last_tick_monotonic=now, tick=loop.ticks,
            sim_time_s=loop.flight.sim_time_s, loop_hz=loop.loop_hz, io_mode=mode_index, paused=loop.paused,
            cpu_helper=CPU_HELPER.index(loop.cpu_helper.mode),
        )  # fmt: skip
        if now >= self._next_publish:
            self._next_publish = now + 1.0 / PUBLISH_HZ
            self._publish_vehicles(loop)
        if now >= self._next_ports:
            self._next_ports = now + 1.0 / PORTS_HZ
            self._publish_ports_and_text(loop, now)
        w.end()

    def _publish_vehicles(self, loop: PublishedLoop) -> None:
        flight, floats = loop.flight, self.writer.floats
        v = flight.vehicles
        count = min(v.count, MAX_VEHICLES)
        packed = v.packed[:count]
        rows = np.zeros((count, VEHICLE_FIELDS))
        row = VehicleRow
        rows[:, row.POSITION] = packed[:, StateIndex.POSITION]
        rows[:, row.VELOCITY] = packed[:, StateIndex.VELOCITY]
        rows[:, row.ATTITUDE] = packed[:, StateIndex.ATTITUDE]
        rows[:, row.FLAPPING] = packed[:, StateIndex.FLAPPING]
        rows[:, row.ROTOR_RPM] = packed[:, StateIndex.ROTOR_SPEED] * 30.0 / math.pi
        rows[:, row.THROTTLE] = packed[:, StateIndex.THROTTLE]
        rows[:, row.CRASHED] = v.crashed[:count]
        if flight.fc_outputs is None:
            rows[:, row.COLLECTIVE_DEG] = np.degrees(flight.controller.collective_rad[:count])
            rows[:, row.ARMED] = flight.controller.governor_state[:count] > 0
            rows[:, row.FAILSAFE] = flight.controller.failsafe_active[:count]
            rows[:, row.MODE] = flight.controller.flight_mode[:count]
            rows[:, row.GOVERNOR] = flight.controller.governor_state[:count]
        else:  # firmware flies: the collective its servos give, its motor output running, its link lost
            servos = flight.command.servo[:count, :3].T
            rows[:, row.COLLECTIVE_DEG] = np.degrees(unmix(flight.model.swash, *servos)[0])
            governor = flight.fc_outputs.governor_state()[:count]
            rows[:, row.ARMED] = flight.motor_on()[:count]
            rows[:, row.FAILSAFE] = getattr(loop, "state", "") == "lost"
            rows[:, row.MODE] = FIRMWARE_MODE
            rows[:, row.GOVERNOR] = governor
        frames, fresh = loop.last_input
        rc = flight.config.rc
        if rc.hold_channel:  # the switches the pilot holds: arm on and throttle hold on
            arm_on = frames[:count, rc.arm - 1] > ARM_THRESHOLD_US
            rows[:, row.THROTTLE_HOLD] = arm_on & (frames[:count, rc.hold_channel - 1] > ARM_THRESHOLD_US)
        rows[:, row.WIND] = flight.wind_ned()[:count]
        floats[LAYOUT.vehicles : LAYOUT.vehicles + count * VEHICLE_FIELDS] = rows.ravel()
        floats[LAYOUT.sticks : LAYOUT.sticks + 16] = frames[0, :16]
        self.writer.set(vehicles=count, sticks_fresh=bool(np.asarray(fresh).reshape(-1)[0]))

    def _publish_ports_and_text(self, loop: PublishedLoop, now: float) -> None:
        floats, meta = self.writer.floats, []
        ports = getattr(loop.io, "ports", [])[:MAX_PORTS]
        for i, port in enumerate(ports):
            s = port.stats
            previous_t, previous_frames, previous_bytes = self._last_port_totals.get(port.name, (now, 0, 0))
            frames, nbytes = s.frames_in + s.frames_out, s.bytes_in + s.bytes_out
            span = max(now - previous_t, 1e-6)
            self._last_port_totals[port.name] = (now, frames, nbytes)
            wait = s.io_wait.quantile(0.5) or 0.0
            base = LAYOUT.ports + i * PORT_FIELDS
            rates = ((frames - previous_frames) / span, (nbytes - previous_bytes) / span)
            floats[base : base + PORT_FIELDS] = (*rates, port.decode_errors, wait * 1e3)
            direction = "in" if port.is_input else "out"
            if port.role in ("rc-in", "servo", "link") or (port.role == "telemetry" and port.protocol == "mavlink"):
                direction = "in/out"  # a MAVLink ground station is answered (sim.protocols.mavlink_fc)
            meta.append([port.name, port.role, port.protocol, direction, port.state, _faults_on(loop, port.name)])
        events = [f"{e.t_s:7.2f} s  {e.kind}: {e.detail}" for e in loop.events[-6:]]
        self.writer.set(ports=len(ports))
        self.writer.set_text(
            {"heli": loop.flight.heli.params.name, "rc_source": loop.rc_source, "ports": meta, "events": events,
             "loop_fault": _faults_on(loop, "loop"), "python": python_line(), "caption": self.caption,
             **({"fc": {**loop.fc_status(), "fault": _faults_on(loop, FC_PORT)}} if hasattr(loop, "fc_status") else {})}
        )  # fmt: skip


def _faults_on(loop: PublishedLoop, target: str) -> str:
    """The injected faults active on ``target`` (a port's name or "loop"), for the view to show."""
    faults = getattr(loop, "faults", None)
    return "; ".join(faults.active_on(target)) if faults is not None else ""


class ViewLink:
    """Starts the view process and talks to it: snapshots out (shared memory), commands in (pipe)."""

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        screenshot: str | None = None,
        rc_fd: int | None = None,
        joystick: dict | None = None,
        caption: tuple[str, ...] = (),
    ):
        try:
            parse_script(os.environ.get(SCRIPT_ENV, ""))  # a bad script is the user's error, said here
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self._pending = b""
        self._queue: list[str] = []
        try:
            self._start(size, screenshot, rc_fd, joystick)
        except OSError as error:  # out of file descriptors, memory (/dev/shm) or processes
            error.add_note("starting the view")
            raise
        self.lost = False
        self.publisher = Publisher(self.writer, caption)
        self._quit_wait_s = _SCREENSHOT_WAIT_S if screenshot else _QUIT_WAIT_S
        self.first_frame_s: float | None = None  # from starting the process to its first frame shown
        self.frames_drawn = 0  # frames the view drew, and over how long (it says so as it closes)
        self.frames_seconds = 0.0

    def _start(self, size: tuple[int, int], screenshot: str | None, rc_fd: int | None, joystick: dict | None) -> None:
        """The shared memory, the command pipe and the process; what was made is undone if a step fails."""
        try:
            self.writer = SnapshotWriter()
            try:
                read_fd, write_fd = os.pipe()
            except BaseException:
                self.writer.close()
                raise
            try:
                self._spawn(size, screenshot, rc_fd, joystick, write_fd)
            except BaseException:
                os.close(read_fd)
                self.writer.close()
                raise
            finally:
                os.close(write_fd)
        finally:
            if rc_fd is not None:
                os.close(rc_fd)  # the view holds the transmitter's end now (or nobody will)
        os.set_blocking(read_fd, False)
        self._commands_fd = read_fd

    def _spawn(
        self, size: tuple[int, int], screenshot: str | None, rc_fd: int | None, joystick: dict | None, write_fd: int
    ) -> None:
        # -P: safe-path mode, the working directory is not on the view's sys.path
        args = [sys.executable, "-P", "-m", "sim.view.app", "--shm", self.writer.name, "--commands-fd", str(write_fd),
                "--size", f"{size[0]}x{size[1]}"]  # fmt: skip
        pass_fds = [write_fd]
        if screenshot:
            args += ["--screenshot", os.path.abspath(screenshot)]
        if rc_fd is not None:
            args += ["--rc-fd", str(rc_fd)]
            pass_fds.append(rc_fd)
        if joystick:
            args += ["--joystick", json.dumps(joystick)]
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            args, pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL, process_group=0, env=view_environment()
        )  # process group: see EmulatorProcess (Ctrl-C, and the scheduler autogroup for SCHED_IDLE)

    def _kill_now(self) -> None:
        self.process.kill()
        try:
            self.process.wait(stopping.time_left(_REAP_WAIT_STOPPING_S) or 0.0)
        except subprocess.TimeoutExpired:
            log.warning("the view (pid %d) was killed but is still dying", self.process.pid)

    def on_tick(self, loop: PublishedLoop, lateness_s: float, period_s: float | None, skipped: int) -> list[str]:
        """Publish the tick; return the commands the view sent since the last one."""
        self.publisher.on_tick(loop, lateness_s, period_s, skipped)
        self._read_pipe()
        commands, self._queue = self._queue, []
        return commands

    def poll(self) -> list[str]:
        """The commands the view sent since the last look, without publishing anything."""
        self._read_pipe()
        commands, self._queue = self._queue, []
        return commands

    def wait_shown(self, loop: PublishedLoop, timeout_s: float | None = None) -> bool:
        """Publish the flight as it stands and wait until the view shows its first frame.

        The flight starts after that: the view's start-up (an interpreter, pygame, fonts: half a
        second of a core) is not charged to the loop's timing, and the user sees the first tick.
        False if the view did not show a frame in ``timeout_s`` (default ``FIRST_FRAME_WAIT_S``, read
        now) (the flight starts anyway).  ``sim.stopping.Stopped`` if SIGINT or SIGTERM asks heli-sim
        to stop meanwhile.
        """
        timeout_s = FIRST_FRAME_WAIT_S if timeout_s is None else timeout_s
        self.publisher.publish_state(loop)
        deadline = time.monotonic() + timeout_s
        with selectors.PollSelector() as selector:  # poll needs no file descriptor of its own (EMFILE)
            selector.register(self._commands_fd, selectors.EVENT_READ)
            while self.first_frame_s is None and not self.lost:
                stopping.check()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("the view showed no frame in %.0f s; flying without waiting", timeout_s)
                    return False
                if selector.select(min(remaining, _STOP_CHECK_S)):
                    self._read_pipe()
        return self.first_frame_s is not None

    def _read_pipe(self) -> None:
        """Read what the view sent (never blocks); commands queue up for the loop."""
        try:
            chunk = os.read(self._commands_fd, 4096)
        except BlockingIOError:
            return
        if chunk == b"":
            if not self.lost:  # the view's end of the pipe closed: it is gone
                self.lost = True
                self._queue.append("view_lost")
            return
        self._pending += chunk
        lines, _, self._pending = self._pending.rpartition(b"\n")
        for line in lines.decode(errors="replace").split("\n"):
            if line in COMMANDS or line.startswith(_PASSED_ON):
                self._queue.append(line)
            elif line == "shown":
                self.first_frame_s = time.monotonic() - self.started_at
                self._queue.append(f"note first frame {self.first_frame_s:.2f} s after the view started")
            elif line.startswith("frames "):  # the view's own count, sent as it closes
                count, seconds = line.split()[1:3]
                self.frames_drawn, self.frames_seconds = int(count), float(seconds)

    # --- the end
    def close(self, finished: bool = True) -> None:
        """Tell the view the flight is over, wait for it (screenshot) and reap it; free the memory.

        The view gets 5 s to close (30 s if it saves a screenshot); then it is ended (SIGTERM,
        then SIGKILL).  When SIGINT or SIGTERM asked heli-sim to stop (``sim.stopping``), it gets until
        0.4 s after the signal, then SIGKILL, and its end is waited for until 0.8 s after the
        signal: at the idle priority, on a busy machine, even dying can take it longer (it is
        logged, and left to the system).
        """
        if finished and self.process.poll() is None:
            self.publisher.finish()
            left_s = stopping.time_left(_QUIT_WAIT_STOPPING_S)  # None: no signal, no hurry
            wait_s = self._quit_wait_s if left_s is None else left_s
            try:
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                log.warning("the view did not close in %.1f s; ending it", wait_s)
        if self.process.poll() is None:
            if stopping.requested() is not None:
                self._kill_now()
            else:
                self.process.terminate()
                try:
                    self.process.wait(1.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    try:  # at the idle priority on a busy machine even dying can take a while
                        self.process.wait(5.0)
                    except subprocess.TimeoutExpired:
                        log.warning("the view (pid %d) was killed but is still dying", self.process.pid)
        self._read_pipe()  # the view's last words (its frame count)
        os.close(self._commands_fd)
        self.writer.close()
