"""One batch of a sweep flown headless, as fast as the kernels go: each vehicle one flight.

The batch flies in a real flight loop (``sim.session.flight_session``, no ports, no view) on a
clock that jumps to each deadline (``ManualClock``): every tick is one controller cycle and the
physics steps of one period, as ``heli-sim fly`` would fly it in real time, faults included.
``run_batch`` takes and returns plain data, so it runs as it is in a worker process or on a
cluster node (Ray); it reads no file the sweep did not put in the batch, except a pilot script.
"""

from __future__ import annotations

from typing import Any

from heli.control import ControllerParams
from sim.config import FlightConfig, heli_from_table
from sim.dataclass_io import build
from sim.loop import FlightLoop, ManualClock
from sim.session import flight_session
from sim.sweep.metrics import FlightMeter
from sim.sweep.plan import Batch

__all__ = ["run_batch"]

_SOURCE = "a sweep's batch"


def run_batch(batch: Batch) -> list[tuple[int, dict[str, Any]]]:
    """Fly ``batch``; (flight number, metrics) per flight, in the batch's order."""
    heli = heli_from_table(batch.heli, _SOURCE)
    config = build(FlightConfig, batch.config, source=_SOURCE)
    gains = [build(ControllerParams, table, source=_SOURCE, path="controller") for table in batch.controllers]
    meter: FlightMeter | None = None

    def sample(loop: FlightLoop) -> None:
        if meter is not None:  # (made before the loop runs)
            meter.sample(loop.flight)

    with flight_session(config, heli, clock=ManualClock(), before_tick=sample) as loop:
        flight = loop.flight
        flight.fly_gains(gains)
        flight.record_terms = True  # the rate setpoints, for the tracking error
        meter = FlightMeter(flight)
        loop.run()
    return list(zip(batch.flights, meter.rows(flight), strict=True))
