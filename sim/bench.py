"""Benchmarks: measured figures, medians of repeats taken in the same run (``heli-sim bench``).

Each benchmark returns ``Result`` rows; ``machine_info`` says where they were taken.  The
figures are measured, never asserted: the README keeps a table of them.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from heli.control import ControllerConstants, ControllerState, PilotInput, control
from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.state import ActuatorCommand
from heli.trim import solve_hover_trim
from sim.config import load_heli

__all__ = ["BENCHMARKS", "Result", "machine_info"]


@dataclass(frozen=True)
class Result:
    """One measured figure (a row of ``bench --json``)."""

    bench: str
    metric: str
    value: float
    unit: str

    def to_dict(self) -> dict:
        return asdict(self)


def machine_info() -> dict:
    """CPU, core count, Python and numpy versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _median_time(run: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_step(quick: bool = False, heli: str = "xcell60") -> list[Result]:
    """Physics and controller cost for one vehicle, and batch throughput at N = 10,000."""
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

    def run_single() -> None:
        s = single
        for _ in range(steps):
            s = step(model, s, single_cmd, 0.001)

    step_us = _median_time(run_single, repeats) / steps * 1e6

    def controller_state(count: int) -> ControllerState:
        return ControllerState.in_hover(
            constants, count, math.radians(trim.lateral_cyclic_deg), math.radians(trim.longitudinal_cyclic_deg),
            math.radians(trim.tail_pitch_deg), collective, trim.throttle,
        )  # fmt: skip

    pilot1 = PilotInput.centred(1, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg)
    cstate1 = controller_state(1)

    def run_controller() -> None:
        cs = cstate1
        for _ in range(steps):
            cs, _cmd = control(constants, cs, pilot1, single, 0.002)

    control_us = _median_time(run_controller, repeats) / steps * 1e6

    batch_n = 10_000
    batch_steps = 5 if quick else 20
    batch = hover_state(model, trim, batch_n, 50.0, spacing_m=10.0)
    batch_cmd = hold(batch)

    def run_batch() -> None:
        s = batch
        for _ in range(batch_steps):
            s = step(model, s, batch_cmd, 0.001)

    batch_rate = batch_n * batch_steps / _median_time(run_batch, repeats)
    pilot_n = PilotInput.centred(
        batch_n, arm=1.0, collective=trim.collective_deg / config.controller.collective_max_deg
    )
    cstate_n = controller_state(batch_n)

    def run_batch_controller() -> None:
        cs = cstate_n
        for _ in range(batch_steps):
            cs, _cmd = control(constants, cs, pilot_n, batch, 0.002)

    batch_control_rate = batch_n * batch_steps / _median_time(run_batch_controller, repeats)
    # default rates: controller at 500 Hz, physics at 1 kHz: half a controller cycle per step
    share_us = step_us + 0.5 * control_us
    return [
        Result("step", "single_step_us", round(step_us, 2), "us"),
        Result("step", "controller_cycle_us", round(control_us, 2), "us"),
        Result("step", "per_physics_step_us", round(share_us, 2), "us"),
        Result("step", "one_vehicle_cpu_share", round(share_us * 1e-6 * 1000.0, 4), "cores"),
        Result("step", "headless_realtime_factor", round(1000.0 / share_us, 1), "x"),
        Result("step", "batch_vehicle_steps_per_s", round(batch_rate), "1/s"),
        Result("step", "batch_controller_cycles_per_s", round(batch_control_rate), "1/s"),
        Result("step", "batch_size", batch_n, "vehicles"),
    ]


BENCHMARKS: dict[str, Callable[..., list[Result]]] = {"step": bench_step}
