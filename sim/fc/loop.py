"""The lock-step loop: the firmware's frames drive simulated time.

Where ``sim.loop.FlightLoop`` keeps its own 500 Hz schedule, here each frame from the firmware is
one tick: take the pilot's channels, turn the frame's output pulses into the helicopter's servo
and motor command (``sim.fc.outputs``, through ``Flight.run_controller``), push the ports'
outputs, step the physics by the frame's step, and answer with the sensors of that instant
(``sim.fc.sensors``), the pilot's channels in them.  The firmware waits for each answer, so the
pair runs as fast as the slower of the two: real time, or the firmware's ``--speedup``.

States:

- **waiting** for the first frame: nothing moves (the view and the ports stay live);
- **flying**: one tick per frame; a repeated frame is answered again and not flown, a lost one
  counted, a restarted firmware (its frame counter went back) resets the flight;
- **lost**: no frame for ``[fc] timeout_s`` of wall-clock time.  The firmware no longer drives its
  servos: they hold, the ESC stops the motor, and the physics runs on against the wall clock
  (a helicopter in the air comes down).  Its next frame resumes lock-step (``fc_back``).

Everything else is the ordinary loop's: the view, the ports, faults, the flight log (each tick
records the frame's pulses as its input: the replay flies the same command from them), stop
requests (a wait for a frame lasts at most ``_POLL_S``) and the summary (with an ``fc`` entry).
"""

from __future__ import annotations

import math
from typing import Unpack

import numpy as np

from heli.state import StateIndex
from sim.fc.config import FcConfig
from sim.fc.firmwares import FIRMWARES
from sim.fc.link import FirmwareFrame, LockstepLink, frame_pulses
from sim.fc.radio import FirmwareRadio
from sim.fc.sensors import SensorModel
from sim.flight import Flight
from sim.loop import Clock, FlightLoop, LoopOptions
from sim.stats import Segment

__all__ = ["LockstepLoop"]

_POLL_S = 0.02  # the longest wait for a frame: stop requests, the view and the timeout are looked at this often
_RATE_WINDOW_S = 1.0  # the frame rate shown is counted over this much wall time
_RC_RATE_HZ = 50.0  # the pilot's channels on the firmware's RC input, per simulated second


def firmware_link(fc: FcConfig) -> LockstepLink:
    """The lock-step link to the firmware ``fc`` names (opened by ``LockstepLink.open``)."""
    return LockstepLink(fc.host, fc.port, FIRMWARES[fc.protocol].decode)


class LockstepLoop(FlightLoop):
    """Flies a ``Flight`` on a firmware's frames (``[fc]``); otherwise a ``FlightLoop``."""

    def __init__(
        self, flight: Flight, clock: Clock, *, fc: FcConfig, link: LockstepLink | None = None,
        **options: Unpack[LoopOptions],
    ):  # fmt: skip
        super().__init__(flight, clock, **options)
        self.fc = fc
        self.firmware = FIRMWARES[fc.protocol]
        self.link = link if link is not None else firmware_link(fc)  # (the session makes it: its faults act on it)
        self.radio = FirmwareRadio(fc, flight.config.rc, flight.count)
        self.sensors = SensorModel(fc.sensors, flight.model, flight.config.flight.seed)
        self.state = "waiting"
        self.firmware_time_s = 0.0  # the clock the replies carry: only a firmware restart sets it back
        self.behind_s = 0.0  # wall-clock time since the first frame, less the simulated time flown since
        self.frame_rate_hz = 0.0  # frames flown per wall-clock second, lately
        self.timeouts = 0
        self._residual_s = 0.0  # the firmware's time not yet stepped (its step and ours may differ)
        self._last_frame_wall: float | None = None
        self._flown_at_first_frame = 0
        self._first_frame_wall: float | None = None
        self._rate_mark: tuple[float, int] = (0.0, 0)
        self._last_view_wall = -math.inf
        self._last_pulses = np.zeros((1, 16))  # no pulses yet: outputs silent
        self._lost_origin = (0.0, 0)  # wall time and physics steps when the firmware was lost
        self._step_mismatch_said = False
        self._next_rc_s = 0.0
        self._last_wall: float | None = None  # the last frame's wall-clock time: the periods between frames

    # --- the loop
    def _run(self) -> None:
        clock = self.clock
        self.t0 = clock.now()
        if self.recorder is not None:
            self.recorder.t0 = self.t0
        self.segments.append(Segment(self.io_mode, 0.0))
        self.record("fc_waiting", f"waiting for {self.firmware.title} on {self.address}", 0.0)
        while self._stop_requested is None:
            if self.paused:  # the firmware waits for its answer meanwhile: its clock stops too
                self._wait_until(clock.now() + _POLL_S)
                self._idle(clock.now())
                continue
            kind, frame = self.link.receive(_POLL_S)
            now = clock.now()
            if kind == "none":
                self._idle(now)  # lost: the world runs on by the wall clock, and the duration counts it
            elif kind == "repeat":  # answered again by the link; not flown twice
                self._last_frame_wall = now
            elif frame is not None:  # "frame" or "restart", each with its frame
                self._last_frame_wall = now
                self._fly(frame, now, restart=kind == "restart")
            if self.duration_s and self.flight.sim_time_s >= self.duration_s - 1e-9:
                self._stop_requested = "duration reached"
        self.segments[-1].t_end_s = clock.now() - self.t0
        self.stop_reason = self._stop_requested

    def _fly(self, frame: FirmwareFrame, now: float, restart: bool) -> None:
        """One tick on one frame: command from its pulses, physics by its step, the sensors answered."""
        flight, dt = self.flight, self.flight.physics_dt_s
        if restart:
            self._restart(now)
        if self.state != "flying":
            self._connected(frame, now)
        segment = self.segments[-1]
        if self._last_wall is not None:
            segment.period.add(now - self._last_wall)
        segment.ticks += 1
        segment.lateness.add(0.0)
        self._last_wall = now
        self._view_tick(now, force=False)
        frames, fresh, _stick_t = self.io.read_inputs(now)
        self.last_input = (frames, fresh)
        rc = self.radio.channels(frames, self.firmware_time_s)[0] if self.firmware.sends_rc else None
        self._send_rc(rc)
        pulses = frame_pulses(frame)
        self._last_pulses = pulses
        self.link.stats.frames += 1
        flight.run_controller(pulses, True, frame.step_s)
        for kind, detail in flight.take_events():
            self.record(kind, detail)
        self.io.push_outputs(now)
        self._faults_due()
        self._residual_s += frame.step_s
        steps = max(0, round(self._residual_s / dt))
        self._residual_s -= steps * dt
        if not self._step_mismatch_said and abs(frame.step_s - dt) > 1e-3 * dt:
            self._step_mismatch_said = True
            self.record(
                "fc_step",
                f"the firmware steps {frame.step_s * 1e3:.4g} ms, the physics {dt * 1e3:.4g} ms: frames step the "
                "physics a varying number of times, its answers are up to half a step off (set physics_dt_s = "
                "1 / its rate)",
            )
        velocity_before = np.array(flight.vehicles.packed[0, StateIndex.VELOCITY])
        taken = self._advance(steps)
        # the firmware's clock moves by its own step, whatever the physics took (with a step of its own
        # that differs, the state answered is the physics' nearest, at most half a step off)
        self.firmware_time_s += frame.step_s
        reading = self.sensors.read(
            flight.vehicles, velocity_before, taken * dt, self.firmware_time_s, flight.wind_ned()[0], rc
        )
        if self.link.faults.latency_s:
            self._wait_until(self.clock.now() + self.link.faults.latency_s)
        try:
            reply = self.firmware.encode_reply(reading)
        except ValueError as error:  # a non-finite reading: the firmware gets the last good answer again
            self.record("fc_reply", f"not sent: {error}; the last answer went again")
            reply = self.link.last_reply
        self.link.reply(reply)
        self._finish_tick(now, pulses, True, frame.step_s, taken)

    def _send_rc(self, rc: np.ndarray | None) -> None:
        """The channels on the firmware's own RC input too, ``_RC_RATE_HZ`` times a simulated second."""
        encode = self.firmware.encode_rc
        if rc is None or encode is None or not self.fc.rc_udp_port or self.firmware_time_s < self._next_rc_s:
            return
        self._next_rc_s = self.firmware_time_s + 1.0 / _RC_RATE_HZ
        self.link.send_to(encode(rc), self.fc.rc_udp_port)

    def _idle(self, now: float) -> None:
        """No frame came: the view and the ports stay live; past the timeout the firmware is lost and
        the world runs on by the wall clock without it."""
        self._view_tick(now, force=True)
        last_frame_wall = self._last_frame_wall  # (set once flying)
        if self.state == "flying" and last_frame_wall is not None and now - last_frame_wall > self.fc.timeout_s:
            self.state = "lost"
            self.timeouts += 1
            self._lost_origin = (last_frame_wall, self.flight.steps)
            self.link.forget_peer()  # whoever sends next is the firmware (ArduPilot restarted: a new port)
            self.record(
                "fc_lost",
                f"no frame from {self.firmware.title} for {self.fc.timeout_s:g} s: its servos hold, the motor "
                "stops, the physics runs on by the wall clock",
            )
        if self.state != "lost" or self.paused:
            self._poll_io(now)
            self._progress(now)
            return
        flight = self.flight
        frames, fresh, _stick_t = self.io.read_inputs(now)
        self.last_input = (frames, fresh)
        flight.run_controller(self._last_pulses, False, _POLL_S)
        self.io.push_outputs(now)
        self._faults_due()
        wall, steps_then = self._lost_origin
        due = math.floor((now - wall) / flight.physics_dt_s + 1e-9) - (flight.steps - steps_then)
        due = min(max(due, 0), self.catchup_steps)
        if self.duration_s:  # no further than the flight's duration
            due = min(due, max(0, round((self.duration_s - flight.sim_time_s) / flight.physics_dt_s)))
        taken = self._advance(due)
        self._finish_tick(now, self._last_pulses, False, _POLL_S, taken)

    def _poll_io(self, now: float) -> None:
        """Waiting (or paused): keep the ports' inboxes drained and their events recorded."""
        frames, fresh, _stick_t = self.io.read_inputs(now)
        self.last_input = (frames, fresh)
        self.io.push_outputs(now)
        self._collect_events()

    def _finish_tick(self, now: float, pulses: np.ndarray, fresh: bool, dt_control: float, steps: int) -> None:
        if self.recorder is not None:
            self._record_tick(self.recorder, now, 0.0, 0, pulses, fresh, dt_control, steps)
        self._collect_events()
        self.ticks += 1
        if self._first_frame_wall is not None:
            self.behind_s = (now - self._first_frame_wall) - (self._steps_flown - self._flown_at_first_frame) * (
                self.flight.physics_dt_s
            )
        self._progress(now)

    def _progress(self, now: float) -> None:
        """Once per ``_RATE_WINDOW_S``: the frame rate lately, and the caller's progress report."""
        mark_t, mark_frames = self._rate_mark
        if now - mark_t >= _RATE_WINDOW_S:
            self.frame_rate_hz = (self.link.stats.frames - mark_frames) / (now - mark_t) if mark_t else 0.0
            self._rate_mark = (now, self.link.stats.frames)
            if self.on_progress is not None:
                self.on_progress(self)

    def _faults_due(self) -> None:
        if self.faults is not None:
            stall = self.faults.on_tick(self.flight_time_s, self.record)
            if stall:
                self._wait_until(self.clock.now() + stall)

    def _connected(self, frame: FirmwareFrame, now: float) -> None:
        came_back = self.state == "lost"
        self.state = "flying"
        if came_back:
            self.record("fc_back", f"{self.firmware.title} is back ({self.link.stats.peer}): lock-step again")
            return
        self._first_frame_wall = now
        self._flown_at_first_frame = self._steps_flown
        self._rate_mark = (now, self.link.stats.frames)
        self.record(
            "fc_connected",
            f"{self.firmware.title} at {self.link.stats.peer}: {1.0 / frame.step_s:g} frames/s of simulated time",
        )

    def _restart(self, now: float) -> None:
        """The firmware restarted: the flight starts again with it."""
        self.flight.reset()
        self.radio.reset(self.flight.count)
        self.sensors = SensorModel(self.fc.sensors, self.flight.model, self.flight.config.flight.seed)
        self._reset_this_tick = True
        self.firmware_time_s = 0.0
        self._residual_s = 0.0
        self._next_rc_s = 0.0
        self.state = "waiting"
        self.record("fc_restart", f"{self.firmware.title} restarted (its frame counter went back): the flight restarts")

    def _view_tick(self, now: float, force: bool) -> None:
        """Publish to the view at most once a loop period of wall time (frames come faster)."""
        if self.view is None or (now - self._last_view_wall < self.period_s and not force):
            return
        period = None if self._last_view_wall == -math.inf else now - self._last_view_wall
        self._last_view_wall = now
        for command in self.view.on_tick(self, 0.0, period, 0):
            self.command(command)

    @property
    def address(self) -> str:
        """Where the link listens (the port the system gave, if any port would do)."""
        return f"udp:{self.fc.host}:{self.link.port}"

    # --- results
    def fc_status(self) -> dict:
        """The firmware link as the view's panel and the summary show it."""
        return {
            "firmware": self.firmware.title,
            "protocol": self.fc.protocol,
            "address": self.address,
            "state": self.state,
            "frame_rate_hz": round(self.frame_rate_hz, 1),
            "behind_s": round(self.behind_s, 3),
            "timeouts": self.timeouts,
            "timeout_s": self.fc.timeout_s,
            "firmware_time_s": round(self.firmware_time_s, 6),
            **self.link.stats.to_dict(),
        }

    def summary(self) -> dict:
        return {**super().summary(), "fc": self.fc_status()}
