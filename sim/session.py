"""One flight from start to end: the ``Flight``, its I/O, the loop, opened and closed in order.

``with flight_session(config, heli) as loop: loop.run()`` is how the CLI, the benchmarks and the
tests fly: the ports (and their device emulators) are open and ready before the loop starts,
and closed on the way out however the flight ends: threads joined, emulators ended, ports shut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sim.config import FlightConfig, HeliConfig
from sim.flight import Flight
from sim.loop import Clock, FlightLoop, MonotonicClock
from sim.wiring import FlightIO, InProcessIO, PortIO

__all__ = ["flight_session"]


@contextmanager
def flight_session(
    config: FlightConfig,
    heli: HeliConfig,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[FlightLoop], None] | None = None,
    before_tick: Callable[[FlightLoop], None] | None = None,
) -> Iterator[FlightLoop]:
    """A ready-to-run loop for ``config``; ``PortError`` if a port cannot be opened."""
    settings = config.flight
    flight = Flight(heli, config)
    io: FlightIO = PortIO(flight, config, settings.io) if config.port_specs() else InProcessIO(flight)
    loop = FlightLoop(
        flight,
        clock or MonotonicClock(),
        loop_hz=settings.loop_hz,
        io_mode=settings.io,
        duration_s=settings.duration_s,
        catchup_limit_s=settings.catchup_limit_s,
        on_progress=on_progress,
        before_tick=before_tick,
        io=io,
    )
    try:
        io.open()
        yield loop
    finally:
        io.close()
