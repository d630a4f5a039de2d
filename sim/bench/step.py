"""``heli-sim bench step``: what one vehicle step and one controller cycle cost, alone and in
batches, on the numpy and the compiled kernels, against the limits of this machine (medians of
repeats, steady state)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from heli.control import ControllerConstants, ControllerState, PilotInput, control
from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.state import ActuatorCommand, VehicleState
from heli.trim import solve_hover_trim
from sim.bench.common import Result, median_time
from sim.bench.limits import count_kernel_calls, elementwise_ns_per_element, jsbsim_run_us
from sim.compiled import available as compiled_available
from sim.compiled import compiled_kernels
from sim.config import load_heli

__all__ = ["bench_step"]

log = logging.getLogger(__name__)


def bench_step(quick: bool = False, heli: str = "xcell60", figures: dict | None = None) -> list[Result]:
    """Physics and controller cost for one vehicle, batch throughput at N = 10,000, and the
    cost per vehicle-step against fleet size (one numpy kernel serves every size)."""
    config = load_heli(heli)
    model = FlightModel.build(config.params)
    trim = solve_hover_trim(model)
    collective = math.radians(trim.collective_deg)
    constants = ControllerConstants.build(config.controller, model, collective)
    repeats = 3 if quick else 7
    steps = 300 if quick else 2000

    def hold(state):
        return ActuatorCommand(np.concatenate([state.servo_position, state.throttle[:, None]], axis=1))

    single = hover_state(model, trim, 1, 50.0)
    single_cmd = hold(single)

    step_us = _seconds_per_call(lambda s: step(model, s, single_cmd, 0.001), single, steps, repeats) * 1e6

    def controller_state(count: int) -> ControllerState:
        return ControllerState.in_hover(
            constants, count, math.radians(trim.lateral_cyclic_deg), math.radians(trim.longitudinal_cyclic_deg),
            math.radians(trim.tail_pitch_deg), collective, trim.throttle,
        )  # fmt: skip

    pilot1 = PilotInput.centred(1, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg)
    cstate1 = controller_state(1)

    control_us = (
        _seconds_per_call(lambda cs: control(constants, cs, pilot1, single, 0.002)[0], cstate1, steps, repeats) * 1e6
    )

    batch_n = 10_000
    batch_steps = 5 if quick else 20
    batch = hover_state(model, trim, batch_n, 50.0, spacing_m=10.0)
    batch_cmd = hold(batch)
    batch = step(model, batch, batch_cmd, 0.001)  # steady state: stepped once, so kept column-major (no first copy)

    batch_rate = batch_n / _seconds_per_call(lambda s: step(model, s, batch_cmd, 0.001), batch, batch_steps, repeats)
    pilot_n = PilotInput.centred(
        batch_n, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg
    )
    cstate_n = controller_state(batch_n)

    batch_control_rate = batch_n / _seconds_per_call(
        lambda cs: control(constants, cs, pilot_n, batch, 0.002)[0], cstate_n, batch_steps, repeats
    )
    fleet_rows = []
    for n in (1, 10, 100, 1000, 10_000):
        fleet = hover_state(model, trim, n, 50.0, spacing_m=10.0)
        fleet_cmd = hold(fleet)
        fleet = step(model, fleet, fleet_cmd, 0.001)  # steady state, as above
        fleet_steps = max(5 if quick else 10, (300 if quick else 2000) // n)

        def advance(s: VehicleState, fleet_cmd: ActuatorCommand = fleet_cmd) -> VehicleState:
            return step(model, s, fleet_cmd, 0.001)

        per_vehicle_us = _seconds_per_call(advance, fleet, fleet_steps, repeats) / n * 1e6
        fleet_rows.append(Result("step", f"fleet_step_us_per_vehicle_n{n}", round(per_vehicle_us, 3), "us"))
    # default rates: controller at 500 Hz, physics at 1 kHz: half a controller cycle per step
    share_us = step_us + 0.5 * control_us
    both_rate = 1.0 / (1.0 / batch_rate + 0.5 / batch_control_rate)
    limits, jsbsim_us = _step_limits(model, batch, batch_cmd, batch_rate, step_us, repeats, steps)
    compiled = _compiled_step(
        model, constants, (single, single_cmd, cstate1, pilot1), (batch, batch_cmd, cstate_n, pilot_n),
        (steps, batch_steps, repeats), (step_us, batch_rate, both_rate, jsbsim_us),
    )  # fmt: skip
    return [
        Result("step", "single_step_us", round(step_us, 2), "us"),
        Result("step", "controller_cycle_us", round(control_us, 2), "us"),
        Result("step", "per_physics_step_us", round(share_us, 2), "us"),
        Result("step", "one_vehicle_cpu_share", round(share_us * 1e-6 * 1000.0, 4), "cores"),
        Result("step", "headless_realtime_factor", round(1000.0 / share_us, 1), "x"),
        Result("step", "batch_vehicle_steps_per_s", round(batch_rate), "1/s"),
        Result("step", "batch_controller_cycles_per_s", round(batch_control_rate), "1/s"),
        Result("step", "batch_size", batch_n, "vehicles"),
        Result("step", "batch_physics_and_controller_per_s", round(both_rate), "1/s"),
        *fleet_rows,
        *limits,
        *compiled,
    ]


def _seconds_per_call(advance: Callable[[Any], Any], start: Any, calls: int, repeats: int) -> float:
    """Seconds per call of ``advance`` chained ``calls`` times from ``start`` (each call takes the last
    one's result: a state stepped on), the median of ``repeats`` runs."""

    def run() -> None:
        value = start
        for _ in range(calls):
            value = advance(value)

    return median_time(run, repeats) / calls


def _step_limits(
    model: FlightModel,
    batch: VehicleState,
    batch_cmd: ActuatorCommand,
    batch_rate: float,
    step_us: float,
    repeats: int,
    steps: int,
) -> tuple[list[Result], float | None]:
    """The limits the step figures are measured against (``sim.bench.limits``), in this run; and
    JSBSim's step (us), None where JSBSim is not installed."""
    calls = count_kernel_calls(model, batch, batch_cmd, 0.001)
    element_ns = elementwise_ns_per_element(batch.count, repeats)
    floor_rate = 1e9 / (calls * element_ns)
    rows = [
        Result("step", "batch_numpy_calls_per_step", calls, "calls"),
        Result("step", "numpy_elementwise_ns_per_element", round(element_ns, 3), "ns"),
        Result("step", "batch_numpy_floor_vehicle_steps_per_s", round(floor_rate), "1/s"),
        Result("step", "batch_share_of_numpy_floor", round(batch_rate / floor_rate, 3), "x"),
    ]
    jsbsim_us = jsbsim_run_us(steps, repeats)
    if jsbsim_us is not None:
        rows += [
            Result("step", "jsbsim_ah1s_run_us", round(jsbsim_us, 2), "us"),
            Result("step", "single_step_speed_vs_jsbsim", round(jsbsim_us / step_us, 3), "x"),
        ]
    return rows, jsbsim_us


def _compiled_step(
    model: FlightModel, constants: ControllerConstants, single: tuple, batch: tuple, counts: tuple, numpy: tuple
) -> list[Result]:
    """The same figures with the compiled kernels (``sim.compiled``), and their ratios to the numpy
    ones of this run: ``single`` and ``batch`` are (state, command, controller state, pilot);
    ``counts`` (single steps, batch steps, repeats); ``numpy`` (single step us, batch rate, physics
    and controller rate, JSBSim us or None).  None of them without numba (said in the log)."""
    if not compiled_available():
        log.warning("bench step: no compiled-kernel figures: numba is not installed (pip install 'heli-sim[fast]')")
        return []
    kernels = compiled_kernels()
    steps, batch_steps, repeats = counts
    step_us, batch_rate, both_rate, jsbsim_us = numpy
    vehicle, command, controller, pilot = single
    fleet, fleet_command, fleet_controller, fleet_pilot = batch
    build_s = kernels.warm_up(model, constants)  # compiling, or loading the machine code cached on disk

    single_us = _seconds_per_call(lambda s: kernels.steps(model, s, command, 0.001), vehicle, steps, repeats) * 1e6
    control_us = (
        _seconds_per_call(
            lambda cs: kernels.control(constants, cs, pilot, vehicle, 0.002)[0], controller, steps, repeats
        )
        * 1e6
    )
    rate = fleet.count / _seconds_per_call(
        lambda s: kernels.steps(model, s, fleet_command, 0.001), fleet, batch_steps, repeats
    )
    control_rate = fleet.count / _seconds_per_call(
        lambda cs: kernels.control(constants, cs, fleet_pilot, fleet, 0.002)[0], fleet_controller, batch_steps, repeats
    )
    both = 1.0 / (1.0 / rate + 0.5 / control_rate)
    rows = [
        Result("step", "compiled_build_s", round(build_s, 2), "s"),
        Result("step", "compiled_single_step_us", round(single_us, 2), "us"),
        Result("step", "compiled_controller_cycle_us", round(control_us, 2), "us"),
        Result("step", "compiled_batch_vehicle_steps_per_s", round(rate), "1/s"),
        Result("step", "compiled_batch_controller_cycles_per_s", round(control_rate), "1/s"),
        Result("step", "compiled_batch_physics_and_controller_per_s", round(both), "1/s"),
        Result("step", "compiled_single_step_speedup", round(step_us / single_us, 2), "x"),
        Result("step", "compiled_batch_speedup", round(rate / batch_rate, 2), "x"),
        Result("step", "compiled_physics_and_controller_speedup", round(both / both_rate, 2), "x"),
    ]
    if jsbsim_us is not None:
        rows.append(Result("step", "compiled_single_step_speed_vs_jsbsim", round(jsbsim_us / single_us, 3), "x"))
    return rows
