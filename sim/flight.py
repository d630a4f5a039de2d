"""The simulated world the loop drives: N helicopters, their controllers and their pilot.

``Flight`` owns the vehicle and controller states and advances them on request: the loop asks
it to run one controller cycle with the latest pilot frames (``run_controller``) and to step
the physics (``advance``), holding the last actuator command between cycles.  It knows nothing
of wall-clock time, threads or ports (a user's controller is timed in ``sim.controllers``).

Nothing numerical ends the flight.  A vehicle whose command goes non-finite, or whose state goes
non-finite or runs away beyond ``STATE_MAGNITUDE_LIMIT``, or on which the physics raises, has
*diverged*: it is no longer integrated (it keeps its last sane state, the one before the physics
step that broke it, and its last finite command is held), a ``diverged`` event names it and what
went wrong, and the rest of the fleet flies on.  The fleet's state is checked once per ``advance``,
in one cheap reduction; only when that check fails, or once a vehicle has diverged, are the steps
taken one at a time with every vehicle checked after each.

A user's controller that fails (``sim.controllers.UserController``) hands the vehicles it failed
to the built-in controller in failsafe (level, hold height, descend, land, cut the motor), with a
``controller_failed`` event: one vehicle when only its command row was bad, every vehicle when
the whole call was (an exception, a wrong answer, too slow); once it has failed every vehicle it
is no longer called.  A reset (the view's key) gives it back every vehicle.

Both are decided here, from the flight's own inputs, so a replay reproduces them; the too-slow
judgement, which depends on the clock, comes back from the log as ``run_controller``'s ``too_slow``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from heli.control import (
    ControllerConstants,
    ControllerParams,
    ControllerState,
    PilotIndex,
    PilotInput,
    control,
    control_with_terms,
)
from heli.dynamics import SCALAR_BATCH_LIMIT, FlightModel, step
from heli.dynamics import steps as many_steps
from heli.errors import ConfigError
from heli.initial import ground_state, hover_state
from heli.state import CRASH_REASONS, STATE_SIZE, ActuatorCommand, StateIndex, VehicleState
from heli.trim import solve_hover_trim
from heli.wind import WindField, turbulence_w20_m_s
from sim.config import FlightConfig, HeliConfig
from sim.controllers import UserController, describe_error, dry_run, load_controller
from sim.fc.outputs import OutputMapper
from sim.log.format import COMMAND_COLUMNS, STATE_COLUMNS
from sim.pilots import make_pilot
from sim.rc import to_pilot_input
from sim.shards import FleetController, ShardedFleet, ThreadedFleet, WorkerDied

if TYPE_CHECKING:
    from sim.compiled import CompiledKernels

__all__ = ["STATE_MAGNITUDE_LIMIT", "Flight"]

log = logging.getLogger(__name__)
# Beyond this size a state value (m/s, rad/s, rad, ratios: every column but the position, which the
# velocity bounds) has no physical meaning: 10 km/s, 10,000 rad/s (95,000 rpm).  The integration has
# blown up as surely as with a NaN, which it reaches a few steps on.
STATE_MAGNITUDE_LIMIT = 1e4
_CHECKED = slice(StateIndex.VELOCITY.start, STATE_SIZE)  # the columns held to STATE_MAGNITUDE_LIMIT
_LISTED = 8  # vehicles named in one message; more are counted
_LARGEST_FLOAT = sys.float_info.max  # within it: finite
_AIRBORNE_MARGIN_M = 0.05  # the skids this far above the ground: airborne
_TOUCH_MARGIN_M = 0.005  # ... within this: on the ground


class Flight:
    """N helicopters of one type in one place, flown by one pilot."""

    def __init__(self, heli: HeliConfig, config: FlightConfig):
        settings = config.flight
        self.config = config
        self.heli = heli
        self.count = settings.fleet
        self.physics_dt_s = settings.physics_dt_s
        self.model = FlightModel.build(heli.params, config.environment)
        self.air: WindField | None = None  # built in reset(): turbulence, shear (None: the steady wind)
        self.flown_steps = 0  # physics steps since the flight began, resets included: the clock of gusts
        self.trim = solve_hover_trim(self.model)
        if not config.fc.enabled and self.trim.collective_deg >= heli.controller.collective_max_deg:
            raise ConfigError(
                f"{heli.source}: controller.collective_max_deg = {heli.controller.collective_max_deg:g}: full "
                f"collective stick would not hold a hover (the trim needs {self.trim.collective_deg:.1f} deg); "
                f"expected more than {self.trim.collective_deg:.1f}"
            )
        collective = math.radians(self.trim.collective_deg)
        self._hover_collective_rad = collective
        self.controller_params = heli.controller  # a ground station may change them (set_controller_params)
        self.constants = ControllerConstants.build(heli.controller, self.model, collective)
        # the compiled kernels (sim.compiled), or None: heli.dynamics and heli.control as written
        self.kernels: CompiledKernels | None = None
        if settings.kernel == "compiled":
            from sim.compiled import compiled_kernels  # (numba: imported only for a flight that asks for it)

            self.kernels = compiled_kernels()
        # real firmware in the loop ([fc]): its output pulses are the command, through the wiring
        self.fc_outputs = OutputMapper(config.fc.outputs, self.constants, self.count) if config.fc.enabled else None
        self.shards: ShardedFleet | ThreadedFleet | None = None  # when the physics (and control) runs in workers
        self._control_pending = False  # a controller cycle sent to the workers, not yet collected
        function = load_controller(settings.controller)
        self.user = None
        if function is not control:
            self.user = UserController(settings.controller, function, period_s=1.0 / settings.loop_hz)
        # per vehicle, over the whole flight (a reset does not clear them): what the summary reports
        self.diverged_in_flight = np.zeros(self.count, dtype=bool)
        self.taken_over_in_flight = np.zeros(self.count, dtype=bool)
        self.reset()
        if self.kernels is not None:
            self._load_kernels(self.kernels)
        if self.user is not None:  # a dry run on the starting state: a controller that cannot fly fails here
            dry_run(function, settings.controller, self.constants, self.controller, self.vehicles, 0.002)

    def _load_kernels(self, kernels: CompiledKernels) -> None:
        """Compile the kernels (or load them from the disk cache) now, not in the first tick."""
        from sim.compiled import is_cached

        if not is_cached():
            log.warning(
                "compiling the physics and controller kernels for this machine (once per heli-sim and numba "
                "version: about half a minute; cached after)"
            )
        log.info("compiled kernels ready in %.1f s", kernels.warm_up(self.model, self.constants))

    def set_controller_params(self, params: ControllerParams) -> None:
        """Fly with these gains, rates and limits from the next controller cycle on (a ground
        station's parameter set, or a replay of one); ``ConfigError`` if they do not build."""
        self.constants = ControllerConstants.build(params, self.model, self._hover_collective_rad)
        self.controller_params = params
        if self.shards is not None and self.shards.controls:
            if self._control_pending:  # a cycle already sent flew with the gains it was sent with
                self._finish_control()
            try:
                self.shards.set_params(params)
            except WorkerDied as error:
                self._worker_died(error)
        if self.fc_outputs is not None:  # its ESC governor's gains
            self.fc_outputs.constants = self.constants

    @property
    def command(self) -> ActuatorCommand:
        """The actuator command held until the next controller cycle."""
        if self._control_pending:
            self._finish_control()
        return self._command

    @command.setter
    def command(self, command: ActuatorCommand) -> None:
        self._command = command

    @property
    def controller(self) -> ControllerState:
        """The controllers' states after the last cycle."""
        if self._control_pending:
            self._finish_control()
        return self._controller

    @controller.setter
    def controller(self, state: ControllerState) -> None:
        self._controller = state

    def fly_gains(self, each: list[ControllerParams]) -> None:
        """Each vehicle flies its own controller gains from now on (a sweep's batch: one flight per
        vehicle), from the start again.  The controller then runs in this process."""
        if len(each) != self.count:
            raise ValueError(f"{len(each)} sets of gains for a fleet of {self.count}")
        built = [ControllerConstants.build(params, self.model, self._hover_collective_rad) for params in each]
        self.constants = ControllerConstants.stacked(built)
        self.reset()

    def reset(self) -> None:
        """Everything back to the start: vehicles, controllers, pilot, simulated time."""
        if self._control_pending:  # collected (and dropped): the workers answer every order in turn
            self._finish_control()
        settings, heli, config = self.config.flight, self.heli, self.config
        spacing = settings.spacing_m or None
        if settings.start == "hover":
            self.vehicles = hover_state(self.model, self.trim, self.count, settings.start_altitude_m, spacing)
            self.controller = self._hover_controllers(self.count)
        else:
            self.vehicles = ground_state(self.model, self.count, spacing)
            self.controller = ControllerState.initial(self.count)
        self.command = ActuatorCommand(
            np.concatenate([self.vehicles.servo_position, self.vehicles.throttle[:, None]], axis=1)
        )
        env = config.environment
        gusts = [fault for fault in config.faults if fault.kind == "gust"]
        self.air = None
        if env.moves_the_air or gusts:  # seeded anew: a reset flies in the same turbulence again
            self.air = WindField(
                count=self.count,
                wind_ned=self.model.wind_ned,
                w20_m_s=turbulence_w20_m_s(env),
                seed=env.turbulence_seed,
                shear=env.wind_shear,
                roughness_m=env.surface_roughness_m,
                start_time_s=self.flown_steps * self.physics_dt_s,  # gusts keep the faults' clock
            )
            for gust in gusts:  # on the flight's own clock: a replay meets them at the same step
                peak = (gust.gust_north_m_s, gust.gust_east_m_s, gust.gust_down_m_s)
                self.air.add_gust(gust.start_s, float(np.linalg.norm(peak)), gust.gust_length_m, peak)
        # the keyboard pilot lives in the view, a joystick's in its emulated transmitter: both send
        # their sticks down the RC port; here the pilot is neutral
        pilot_spec = "neutral" if settings.pilot_is_transmitter else settings.pilot
        self.pilot = make_pilot(
            pilot_spec, heli, self.model, self.trim, config.rc, self.vehicles, airborne=settings.start == "hover",
            kernels=self.kernels,
        )  # fmt: skip
        self.pilot_period_s = 1.0 / settings.pilot_hz
        self._next_pilot_t = 0.0
        self.steps = 0
        if self.fc_outputs is not None:
            self.fc_outputs.reset(self.count)
        # the built-in controller's setpoints and P/D/F terms of its last cycle (heli.control.CONTROL_TERMS),
        # kept when asked (an export's replay): a live flight does not pay for them
        self.record_terms = False
        self.terms: np.ndarray | None = None
        self.frames_us = self.pilot.channels(0.0, self.vehicles)
        self._pilot_input_key: tuple[int, bytes] | None = None
        self._pilot_input_frames: np.ndarray | None = None
        self._pilot_input = to_pilot_input(self.frames_us, True, config.rc)
        self.max_altitude_m = self.vehicles.altitude_m.copy()
        self.min_altitude_m = self.vehicles.altitude_m.copy()
        self._crash_reported = self.vehicles.crashed.copy()
        self._skid_height_m = self.model.params.contact.skid_depth_m  # the CG's height with the skids touching
        self.airborne = self.vehicles.altitude_m > self._skid_height_m + _AIRBORNE_MARGIN_M  # per vehicle, now
        self.touchdown_sink_m_s = np.full(self.count, math.nan)  # per vehicle: the sink rate of its last touchdown
        self.diverged = np.zeros(self.count, dtype=bool)  # no longer integrated
        self.taken_over = np.zeros(self.count, dtype=bool)  # flown by the built-in controller in failsafe
        self.judged_too_slow = False  # the last controller cycle judged the user's controller too slow
        self._any_diverged = False
        self._events: list[tuple[str, str]] = []  # found by run_controller, handed out by advance
        if self.user is not None:
            self.user.restart()

    def _hover_controllers(self, count: int) -> ControllerState:
        trim = self.trim
        return ControllerState.in_hover(
            self.constants, count, math.radians(trim.lateral_cyclic_deg), math.radians(trim.longitudinal_cyclic_deg),
            math.radians(trim.tail_pitch_deg), math.radians(trim.collective_deg), trim.throttle,
        )  # fmt: skip

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

    def run_controller(
        self, frames_us: np.ndarray, fresh: np.ndarray | bool, dt_s: float, too_slow: bool | None = None
    ) -> None:
        """One controller cycle of ``dt_s`` seconds on the given pilot frames (fresh: per vehicle).

        ``too_slow`` matters only with a user's controller: None judges its speed by the clock
        (a live flight; ``judged_too_slow`` then says whether this cycle did), True or False
        replays a judgement recorded in the log.

        With firmware in the loop (``[fc]``) the frames are the firmware's output pulses, and the
        command is what they drive (``sim.fc.outputs``); no controller runs."""
        if self._control_pending:  # the last cycle, not collected (a tick without physics steps)
            self._finish_control()
        if self.fc_outputs is not None:
            self.command = self.fc_outputs.command(frames_us, fresh, self.vehicles, dt_s)
            return
        key = (id(frames_us), np.asarray(fresh, dtype=bool).tobytes())
        if key != self._pilot_input_key:  # decode a frame once, however many cycles hold it
            self._pilot_input = to_pilot_input(frames_us, fresh, self.config.rc, self.kernels)
            self._pilot_input_key = key
            self._pilot_input_frames = frames_us  # held: while it is the key, no other array has its id
        if (workers := self._control_workers()) is not None:  # sent to them; collected when needed (_finish_control)
            try:
                workers.start_control(self._pilot_input, dt_s, self.vehicles, self._controller)
                self._control_dt_s = dt_s
                self._control_pending = True
                return
            except WorkerDied as error:
                self._worker_died(error)
        if self.user is None and self.record_terms:
            state, command, self.terms = control_with_terms(
                self.constants, self.controller, self._pilot_input, self.vehicles, dt_s
            )
        elif self.user is None:
            state, command = self._control(self.constants, self.controller, self._pilot_input, self.vehicles, dt_s)
        else:
            state, command = self._user_cycle(self.user, dt_s, too_slow)
        self._set_control(state, command)

    def _control(
        self,
        constants: ControllerConstants,
        state: ControllerState,
        pilot: PilotInput,
        vehicles: VehicleState,
        dt_s: float,
    ) -> tuple[ControllerState, ActuatorCommand]:
        """The built-in controller's cycle, on the flight's kernels."""
        if self.kernels is not None:
            return self.kernels.control(constants, state, pilot, vehicles, dt_s)
        return control(constants, state, pilot, vehicles, dt_s)

    def _set_control(self, state: ControllerState, command: ActuatorCommand) -> None:
        if not _all_within(command.packed, _LARGEST_FLOAT):  # a non-finite command never leaves: that vehicle diverged
            command = self._hold_diverged_commands(command)
        self.controller, self.command = state, command

    def _control_workers(self) -> ShardedFleet | ThreadedFleet | None:
        """The worker processes when the built-in controller's cycle runs in them (each on its own
        vehicles), else None."""
        # (the workers were started controlling only without a user's controller or firmware in the loop)
        if self.shards is not None and self.shards.controls and not self.record_terms:
            return self.shards
        return None

    def _finish_control(self) -> None:
        """Collect the controller cycle the workers were sent (or, if one died, run it here)."""
        self._control_pending = False
        if self.shards is None:
            raise RuntimeError("a controller cycle pending without worker processes")
        try:
            state, command = self.shards.finish_control()
        except WorkerDied as error:
            self._worker_died(error)
            state, command = self._control(self.constants, self._controller, self._pilot_input, self.vehicles,
                                           self._control_dt_s)  # fmt: skip
        self._set_control(state, command)

    def _worker_died(self, error: WorkerDied) -> None:
        """Found within this tick: the fleet flies on in this process, from where it was."""
        self._events.append(("worker_died", f"{error}; the whole fleet is stepped in this process now"))
        log.warning("%s", error)
        self.stop_workers()

    def motor_on(self) -> np.ndarray:
        """Per vehicle: its drive runs (what telemetry reports as armed): heli-sim's governor engaged, or,
        with firmware in the loop, its motor output driving the ESC."""
        if self.fc_outputs is not None:
            return self.command.throttle > 0.0
        return self.controller.governor_state > 0

    def start_workers(self, asked: int, *, threads: bool = False) -> str:
        """Step the physics (and run the built-in controller) in ``asked`` worker processes from now on
        (``sim.shards``; ``threads``: in threads of this process, for the benchmark); what was done, in
        words.  Fewer when the fleet is small: each worker needs a slice the numpy kernel steps (more than
        ``SCALAR_BATCH_LIMIT`` vehicles), which is what keeps the states bit for bit the loop's own.
        ``stop_workers`` ends them (the session does)."""
        workers = min(asked, self.count // (SCALAR_BATCH_LIMIT + 1))
        if workers < 1:
            return (
                f"workers: {_processes(asked, threads)} asked for, but a fleet of {self.count} is stepped in this "
                f"process (a worker needs more than {SCALAR_BATCH_LIMIT} vehicles)"
            )
        # (a batch whose vehicles fly different gains keeps its controller here)
        controls = self.user is None and self.fc_outputs is None and self.constants.vehicles is None
        controller = FleetController(self.controller_params, self._hover_collective_rad, self.controller)
        if threads:  # the same split in threads of this process: what the GIL leaves of it (bench fleet)
            self.shards = ThreadedFleet(self.model, self.vehicles, workers, controller if controls else None)
        else:
            self.shards = ShardedFleet(self.heli, self.vehicles, workers, self.config.environment,
                                       controller=controller if controls else None,
                                       kernel=self.config.flight.kernel)  # fmt: skip
        what = "physics and control" if controls else "physics"
        extra = ""
        if self.air is not None:
            what = "control" if controls else "nothing"
            extra = "; in turbulence or gusts the air moves each step: the physics is stepped here"
        elif not controls:
            why = ("a controller of your own" if self.user is not None else "firmware in the loop"
                   if self.fc_outputs is not None else "each vehicle flies its own gains")  # fmt: skip
            extra = f"; the controller runs here ({why})"
        fewer = f" (of {asked} asked for: each needs more than {SCALAR_BATCH_LIMIT} vehicles)" * (workers < asked)
        share = f"{self.count // workers} vehicles or so each" if workers > 1 else f"all {self.count} vehicles"
        return f"{what} in {_processes(workers, threads)}{fewer}, {share}{extra}"

    def stop_workers(self) -> None:
        if self.shards is not None:
            if self._control_pending:
                self._finish_control()  # (a worker that died here hands the cycle to this process)
            if self.shards is not None:
                self.shards.close()
                self.shards = None

    def wind_ned(self) -> np.ndarray:
        """(N, 3) NED wind each vehicle met in its last physics step (m/s): steady, shear, turbulence, gusts."""
        air = self.air
        if air is None or air.current is None:
            return np.tile(np.asarray(self.model.wind_ned, dtype=np.float64), (self.count, 1))
        return air.current

    def take_events(self) -> list[tuple[str, str]]:
        """The (kind, detail) events found since the last call (``advance`` hands them out too)."""
        events, self._events = self._events, []
        return events

    def _user_cycle(
        self, user: UserController, dt_s: float, too_slow: bool | None
    ) -> tuple[ControllerState, ActuatorCommand]:
        """The user's controller, with the vehicles it failed flown by the built-in one in failsafe."""
        self.judged_too_slow = False
        state = self.controller
        if self.taken_over.all():  # it failed every vehicle: it is not called any more
            return self._failsafe(state, dt_s)
        answer = user.call(self.constants, state, self._pilot_input, self.vehicles, dt_s, too_slow)
        self.judged_too_slow = answer.too_slow
        if answer.result is None:  # the whole call: every vehicle it still flies
            failed = np.flatnonzero(~self.taken_over)
        elif answer.bad_vehicles is not None:
            failed = answer.bad_vehicles[~self.taken_over[answer.bad_vehicles]]
        else:
            failed = None
        if failed is not None and failed.size:
            state = self._take_over(state, failed, f"{user.name} {answer.failure or 'failed'}")
        if answer.result is None or self.taken_over.all():
            return self._failsafe(state, dt_s)
        if not self.taken_over.any():
            return answer.result
        rows = np.flatnonzero(self.taken_over)
        failsafe_state, failsafe_command = self._failsafe(state, dt_s, rows)
        user_state, user_command = answer.result
        state_rows, command_rows = user_state.packed.copy(), user_command.packed.copy()
        state_rows[rows] = failsafe_state.packed
        command_rows[rows] = failsafe_command.packed
        return ControllerState(state_rows), ActuatorCommand(command_rows)

    def _failsafe(
        self, state: ControllerState, dt_s: float, rows: np.ndarray | None = None
    ) -> tuple[ControllerState, ActuatorCommand]:
        """The built-in controller with a stale pilot input (its failsafe) for ``rows`` (None: all)."""
        vehicles = self.vehicles
        if rows is not None:
            vehicles, state = VehicleState(vehicles.packed[rows]), ControllerState(state.packed[rows])
        stale = PilotInput.centred(vehicles.count)
        stale.packed[:, PilotIndex.VALID] = 0.0
        return self._control(self.constants, state, stale, vehicles, dt_s)

    def _take_over(self, state: ControllerState, failed: np.ndarray, what: str) -> ControllerState:
        """Hand ``failed`` vehicles to the built-in controller: ``state`` with their rows ready to fly
        the failsafe, and the event that says so."""
        self.taken_over[failed] = True
        self.taken_over_in_flight[failed] = True
        rows = np.array(state.packed, dtype=np.float64)
        vehicles = VehicleState(self.vehicles.packed[failed])
        rows[failed] = ControllerState.taking_over(
            self.constants, vehicles, self._hover_controllers(failed.size)
        ).packed
        which = f"every vehicle ({self.count})" if failed.size == self.count > 1 else _vehicles(failed)
        detail = (
            f"controller {what} at {self.sim_time_s:.3f} s; the built-in controller took over "
            f"{which} in failsafe (level, descend, land)"
        )
        self._events.append(("controller_failed", detail))
        log.warning("%s", detail)
        return ControllerState(rows)

    def _hold_diverged_commands(self, command: ActuatorCommand) -> ActuatorCommand:
        """``command`` with its non-finite rows replaced by the last (finite) command: those vehicles diverged."""
        packed = command.packed
        bad_values = ~np.isfinite(packed)
        bad = bad_values.any(axis=1)
        for index in np.flatnonzero(bad & ~self.diverged):
            values = _listed(
                f"{COMMAND_COLUMNS[c]} = {packed[index, c]:.3g}" for c in np.flatnonzero(bad_values[index])
            )
            self._diverged_event(index, f"command went non-finite ({values})", self.sim_time_s)
        self._mark_diverged(bad)
        rows = packed.copy()
        rows[bad] = self.command.packed[bad]
        return ActuatorCommand(rows)

    def _diverged_event(self, index: int | np.integer, what: str, t_s: float) -> None:
        self._events.append((
            "diverged",
            f"vehicle {index}: {what} at {t_s:.3f} s; no longer integrated, it keeps its last sane state",
        ))  # fmt: skip

    def _mark_diverged(self, vehicles: np.ndarray) -> None:
        self.diverged |= vehicles
        self.diverged_in_flight |= vehicles
        self._any_diverged = True

    def advance(self, steps: int) -> list[tuple[str, str]]:
        """Step the physics ``steps`` times with the held command; returns new (kind, detail) events
        (with those of the last controller cycle).  Diverged vehicles keep their last sane state."""
        if self._control_pending:  # the cycle the workers computed meanwhile (a non-finite command shows here)
            self._finish_control()
        start, first_step = self.vehicles, self.steps
        wind_field = self.air
        air = None if wind_field is None else wind_field.snapshot()
        vehicles = None if self._any_diverged else self._step_all(start, steps)
        if vehicles is None:  # a vehicle broke in these steps, or one had before
            if wind_field is not None and air is not None:
                wind_field.restore(air)  # the same air again, step by step
            vehicles = self._step_guarded(start, steps, first_step)
        self.steps += steps
        self.flown_steps += steps
        self.vehicles = vehicles
        altitude = vehicles.altitude_m
        np.maximum(self.max_altitude_m, altitude, out=self.max_altitude_m)
        np.minimum(self.min_altitude_m, altitude, out=self.min_altitude_m)
        events = self.take_events()
        self._touchdowns(vehicles, altitude, events)
        crashed = vehicles.crashed
        if np.any(crashed & ~self._crash_reported):
            for index in np.flatnonzero(crashed & ~self._crash_reported):
                reason = CRASH_REASONS.get(int(vehicles.crash_code[index]), "crash")
                events.append(("crash", f"vehicle {index}: {reason} at {self.sim_time_s:.3f} s"))
            self._crash_reported = crashed.copy()
        return events

    def _touchdowns(self, vehicles: VehicleState, altitude: np.ndarray, events: list) -> None:
        """A ``touchdown`` event, with the sink rate, for each vehicle whose skids meet the ground after
        it was airborne (at the first tick on the skids: how hard the landing was; 2.5 m/s breaks RC gear)."""
        touching = altitude <= self._skid_height_m + _TOUCH_MARGIN_M
        landed = self.airborne & touching
        if landed.any():
            sink = vehicles.velocity_ned_m_s[:, 2]
            self.touchdown_sink_m_s[landed] = sink[landed]
            for index in np.flatnonzero(landed)[:_LISTED]:
                speed = sink[index]  # down positive: a skid that meets the ground while rising says so
                how = f"sinking {speed:.2f} m/s" if speed >= 0.0 else f"rising {-speed:.2f} m/s"
                events.append(("touchdown", f"vehicle {index}: {how} at {self.sim_time_s:.3f} s"))
        self.airborne = np.where(
            altitude > self._skid_height_m + _AIRBORNE_MARGIN_M, True, np.where(touching, False, self.airborne)
        )

    def _step_all(self, vehicles: VehicleState, steps: int) -> VehicleState | None:
        """The whole fleet ``steps`` steps on; None if a vehicle broke on the way (its state ran away
        or went non-finite, or the physics raised on it)."""
        try:
            vehicles = self._step(vehicles, self.command, steps)
        except (ArithmeticError, ValueError):  # the per-vehicle kernel on a runaway state, e.g. x / 0.0
            return None
        # One check at the end is enough: a runaway value spreads through the state and stays (a NaN fails it
        # too).  It includes the position, so a vehicle 10 km out takes the slow path (same result, no event).
        return vehicles if _all_within(vehicles.packed, STATE_MAGNITUDE_LIMIT) else None

    def _air(self, vehicles: VehicleState) -> np.ndarray | None:
        """The (N, 3) wind of the next physics step (the air moves on one step), or None: the steady wind."""
        return None if self.air is None else self.air.step(vehicles.altitude_m, self.physics_dt_s)

    def _step(self, vehicles: VehicleState, command: ActuatorCommand, steps: int) -> VehicleState:
        """``steps`` physics steps of ``vehicles`` holding ``command`` (no checks)."""
        dt = self.physics_dt_s
        if self.shards is not None and self.air is None:  # worker processes step their slices
            try:
                return self.shards.step(command, dt, steps, state=vehicles)
            except WorkerDied as error:
                self._worker_died(error)
        if self.kernels is not None:
            if self.air is None:
                return self.kernels.steps(self.model, vehicles, command, dt, steps)
            for _ in range(steps):
                vehicles = self.kernels.steps(self.model, vehicles, command, dt, 1, self._air(vehicles))
            return vehicles
        if self.air is None:  # the steady wind: consecutive steps in one call (a small fleet stays in floats)
            with np.errstate(all="ignore"):
                return many_steps(self.model, vehicles, command, dt, steps)
        if vehicles.count <= SCALAR_BATCH_LIMIT:
            for _ in range(steps):
                vehicles = step(self.model, vehicles, command, dt, self._air(vehicles))
            return vehicles
        with np.errstate(all="ignore"):  # a vehicle going non-finite is a ``diverged`` event, not warnings
            for _ in range(steps):
                vehicles = step(self.model, vehicles, command, dt, self._air(vehicles))
        return vehicles

    def _step_guarded(self, start: VehicleState, steps: int, first_step: int) -> VehicleState:
        """``steps`` steps from ``start``, one at a time, checking each vehicle after each step: one
        that breaks keeps the state it had before that step and is no longer stepped.  The result
        does not depend on how the steps are split into ``advance`` calls (the loop splits a long
        catch-up by wall time, a replay by its own rule), so a replay finds the same.  Vehicles
        are stepped on their own where the kernel runs per vehicle anyway (the same floats), so the
        physics raising on one stops only that one."""
        packed = np.array(start.packed)
        command = self.command.packed
        frozen = self.diverged.copy()
        alone = self.count <= SCALAR_BATCH_LIMIT
        for k in range(1, steps + 1):
            t_s = (first_step + k) * self.physics_dt_s
            wind = self._air(VehicleState(packed.copy()))  # the whole fleet's air moves on once per step
            if alone:
                for index in np.flatnonzero(~frozen):
                    one = VehicleState(packed[index : index + 1].copy())
                    air = None if wind is None else wind[index : index + 1]
                    try:
                        row = step(self.model, one, ActuatorCommand(command[index : index + 1]), self.physics_dt_s, air)
                        row = row.packed[0]
                    except (ArithmeticError, ValueError) as error:
                        self._diverged_event(index, f"the physics raised {describe_error(error)}", t_s)
                        frozen[index] = True
                        continue
                    if _sane(row[None, :])[0]:
                        packed[index] = row
                    else:
                        self._diverged_event(index, _runaway(row), t_s)
                        frozen[index] = True
            else:
                with np.errstate(all="ignore"):
                    stepped = step(self.model, VehicleState(packed.copy()), self.command, self.physics_dt_s, wind)
                stepped_rows = stepped.packed
                sane = _sane(stepped_rows)
                for index in np.flatnonzero(~sane & ~frozen):
                    self._diverged_event(index, _runaway(stepped_rows[index]), t_s)
                frozen |= ~sane
                packed[~frozen] = stepped_rows[~frozen]
        new = frozen & ~self.diverged
        if new.any():
            self._mark_diverged(new)
        return VehicleState(packed)

    def vehicle_summary(self) -> list[dict]:
        """The ``vehicles`` list of the run summary."""
        v = self.vehicles
        # every column once, as Python lists (a fleet of 100,000 takes a fraction of a second)
        crashed, codes = v.crashed.tolist(), v.crash_code.tolist()
        diverged, taken_over = self.diverged_in_flight.tolist(), self.taken_over_in_flight.tolist()
        position = np.round(v.position_ned_m, 4).tolist()
        velocity = np.round(v.velocity_ned_m_s, 4).tolist()
        attitude = np.round(v.euler_deg(), 3).tolist()
        highest, lowest = np.round(self.max_altitude_m, 4).tolist(), np.round(self.min_altitude_m, 4).tolist()
        rpm = np.round(v.rotor_speed_rad_s * 30.0 / math.pi, 1).tolist()
        return [
            {
                "id": i,
                "crashed": crashed[i],
                "crash_reason": CRASH_REASONS.get(codes[i]),
                "diverged": diverged[i],
                "controller_failed": taken_over[i],
                "final_position_m": position[i],
                "final_velocity_m_s": velocity[i],
                "final_attitude_deg": attitude[i],
                "max_altitude_m": highest[i],
                "min_altitude_m": lowest[i],
                "rotor_speed_rpm": rpm[i],
            }
            for i in range(self.count)
        ]


def _all_within(values: np.ndarray, limit: float) -> bool:
    """Whether every value lies in -limit..limit (a NaN does not): two reductions, no temporary array."""
    return bool(values.max() <= limit and values.min() >= -limit)


def _sane(packed: np.ndarray, by_column: bool = False) -> np.ndarray:
    """Per vehicle state row (or, ``by_column``, per value): finite, and within ``STATE_MAGNITUDE_LIMIT``
    where it applies."""
    sane = np.isfinite(packed)
    sane[:, _CHECKED] = np.abs(packed[:, _CHECKED]) <= STATE_MAGNITUDE_LIMIT
    return sane if by_column else sane.all(axis=1)


def _runaway(row: np.ndarray) -> str:
    """What broke in a vehicle's state row: "state went non-finite or beyond 10000 (p_rad_s = 1.2e+05, ...)"."""
    values = _listed(f"{STATE_COLUMNS[c]} = {row[c]:.3g}" for c in np.flatnonzero(~_sane(row[None, :], True)[0]))
    return f"state went non-finite or beyond {STATE_MAGNITUDE_LIMIT:g} ({values})"


def _listed(items: Iterable[str], most: int = 4) -> str:
    items = list(items)
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def _processes(count: int, threads: bool = False) -> str:
    if threads:
        return f"{count} worker thread{'s' if count != 1 else ''}"
    return f"{count} worker process{'es' if count != 1 else ''}"


def _vehicles(indices: np.ndarray) -> str:
    """Vehicles named in a message: vehicle 1; vehicles 0, 2; vehicles 0, 1, ..., 7 and 92 more."""
    listed = ", ".join(str(int(i)) for i in indices[:_LISTED])
    more = f" and {indices.size - _LISTED} more" if indices.size > _LISTED else ""
    return f"vehicle {listed}" if indices.size == 1 else f"vehicles {listed}{more}"
