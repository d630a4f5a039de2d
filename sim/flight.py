"""The simulated world the loop drives: N helicopters, their controllers and their pilot.

``Flight`` owns the vehicle and controller states and advances them on request: the loop asks
it to run one controller cycle with the latest pilot frames (``run_controller``) and to step
the physics (``advance``), holding the last actuator command between cycles.  It knows nothing
of wall-clock time, threads or ports.
"""

from __future__ import annotations

import math

import numpy as np

from heli.control import ControllerConstants, ControllerState, PilotInput
from heli.dynamics import FlightModel, step
from heli.initial import ground_state, hover_state
from heli.state import CRASH_REASONS, ActuatorCommand
from heli.trim import solve_hover_trim
from sim.config import FlightConfig, HeliConfig
from sim.controllers import load_controller
from sim.pilots import make_pilot
from sim.rc import to_pilot_input

__all__ = ["Flight"]


class Flight:
    """N helicopters of one type in one place, flown by one pilot."""

    def __init__(self, heli: HeliConfig, config: FlightConfig):
        settings = config.flight
        self.config = config
        self.heli = heli
        self.count = settings.fleet
        self.physics_dt_s = settings.physics_dt_s
        self.model = FlightModel.build(heli.params, config.environment)
        self.trim = solve_hover_trim(self.model)
        collective = math.radians(self.trim.collective_deg)
        self.constants = ControllerConstants.build(heli.controller, self.model, collective)
        self.control = load_controller(settings.controller)
        self.reset()
        if settings.controller:  # a dry run on the starting state: a controller that cannot fly fails here
            self.control(self.constants, self.controller, PilotInput.centred(self.count), self.vehicles, 0.002)

    def reset(self) -> None:
        """Everything back to the start: vehicles, controllers, pilot, simulated time."""
        settings, heli, config = self.config.flight, self.heli, self.config
        collective = math.radians(self.trim.collective_deg)
        spacing = settings.spacing_m or None
        if settings.start == "hover":
            self.vehicles = hover_state(self.model, self.trim, self.count, settings.start_altitude_m, spacing)
            trim = self.trim
            self.controller = ControllerState.in_hover(
                self.constants, self.count, math.radians(trim.lateral_cyclic_deg),
                math.radians(trim.longitudinal_cyclic_deg), math.radians(trim.tail_pitch_deg), collective,
                trim.throttle,
            )  # fmt: skip
        else:
            self.vehicles = ground_state(self.model, self.count, spacing)
            self.controller = ControllerState.initial(self.count)
        self.command = ActuatorCommand(
            np.concatenate([self.vehicles.servo_position, self.vehicles.throttle[:, None]], axis=1)
        )
        # the keyboard pilot lives in the view, which sends its sticks down the RC port; here it is neutral
        pilot_spec = "neutral" if settings.pilot == "keyboard" else settings.pilot
        self.pilot = make_pilot(
            pilot_spec, heli, self.model, self.trim, config.rc, self.vehicles, airborne=settings.start == "hover"
        )
        self.pilot_period_s = 1.0 / settings.pilot_hz
        self._next_pilot_t = 0.0
        self.steps = 0
        self.frames_us = self.pilot.channels(0.0, self.vehicles)
        self._pilot_input_key: tuple[int, bytes] | None = None
        self._pilot_input_frames: np.ndarray | None = None
        self._pilot_input = to_pilot_input(self.frames_us, True, config.rc)
        self.max_altitude_m = self.vehicles.altitude_m.copy()
        self.min_altitude_m = self.vehicles.altitude_m.copy()
        self._crash_reported = self.vehicles.crashed.copy()

    @property
    def sim_time_s(self) -> float:
        return self.steps * self.physics_dt_s

    def pilot_frames(self) -> np.ndarray:
        """The pilot's latest channel frames (N, 16): a new frame every ``1 / pilot_hz`` s of sim time."""
        t = self.sim_time_s
        if t >= self._next_pilot_t:
            self.frames_us = self.pilot.channels(t, self.vehicles)
            self._next_pilot_t += self.pilot_period_s * max(1, int((t - self._next_pilot_t) / self.pilot_period_s) + 1)
        return self.frames_us

    def run_controller(self, frames_us: np.ndarray, fresh: np.ndarray | bool, dt_s: float) -> None:
        """One controller cycle of ``dt_s`` seconds on the given pilot frames (fresh: per vehicle)."""
        key = (id(frames_us), np.asarray(fresh, dtype=bool).tobytes())
        if key != self._pilot_input_key:  # decode a frame once, however many cycles hold it
            self._pilot_input = to_pilot_input(frames_us, fresh, self.config.rc)
            self._pilot_input_key = key
            self._pilot_input_frames = frames_us  # held: while it is the key, no other array has its id
        self.controller, self.command = self.control(
            self.constants, self.controller, self._pilot_input, self.vehicles, dt_s
        )

    def advance(self, steps: int) -> list[tuple[str, str]]:
        """Step the physics ``steps`` times with the held command; returns new (kind, detail) events."""
        vehicles, command, dt = self.vehicles, self.command, self.physics_dt_s
        for _ in range(steps):
            vehicles = step(self.model, vehicles, command, dt)
        self.vehicles = vehicles
        self.steps += steps
        altitude = vehicles.altitude_m
        np.maximum(self.max_altitude_m, altitude, out=self.max_altitude_m)
        np.minimum(self.min_altitude_m, altitude, out=self.min_altitude_m)
        events = []
        crashed = vehicles.crashed
        if np.any(crashed & ~self._crash_reported):
            for index in np.flatnonzero(crashed & ~self._crash_reported):
                reason = CRASH_REASONS.get(int(vehicles.crash_code[index]), "crash")
                events.append(("crash", f"vehicle {index}: {reason} at {self.sim_time_s:.3f} s"))
            self._crash_reported = crashed.copy()
        return events

    def vehicle_summary(self) -> list[dict]:
        """The ``vehicles`` list of the run summary."""
        v = self.vehicles
        euler = v.euler_deg()
        rpm = v.rotor_speed_rad_s * 30.0 / math.pi
        return [
            {
                "id": i,
                "crashed": bool(v.crashed[i]),
                "crash_reason": CRASH_REASONS.get(int(v.crash_code[i])),
                "final_position_m": [round(x, 4) for x in v.position_ned_m[i].tolist()],
                "final_velocity_m_s": [round(x, 4) for x in v.velocity_ned_m_s[i].tolist()],
                "final_attitude_deg": [round(x, 3) for x in euler[i].tolist()],
                "max_altitude_m": round(float(self.max_altitude_m[i]), 4),
                "min_altitude_m": round(float(self.min_altitude_m[i]), 4),
                "rotor_speed_rpm": round(float(rpm[i]), 1),
            }
            for i in range(self.count)
        ]
