"""The clock of an exported flight log: simulated seconds per tick, and when the flight started.

A log's ``sim_time_s`` is the flight's own clock, which a reset (the view's ``R`` key) sets back to
zero.  An export needs a time that only goes forward, so ``simulated_time_s`` counts the physics
steps of every tick since the log's first one (a reset does not restart it; a pause does not
advance it).  Where the flight was never reset it equals ``sim_time_s`` bit for bit.

``flight_start_unix_s`` is the wall-clock start an export puts on its timestamps (a MAVLink
telemetry log's are UNIX times): the log header's ``created_utc`` (written as the log opened,
just before the first tick, to the second), or, where a header has none that reads as a UTC time,
the log directory's modification time.
"""

from __future__ import annotations

import calendar
import os
import time

import numpy as np

from sim.log.reader import FlightLog

__all__ = ["CREATED_FORMAT", "flight_start_unix_s", "simulated_time_s"]

CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the header's created_utc, as sim.log.writer writes it


def simulated_time_s(log: FlightLog) -> np.ndarray:
    """Seconds of simulated time at the end of each tick (one value per tick, not per row),
    counted across resets; 0-length for a log without ticks."""
    if log.tick_count == 0:
        return np.zeros(0)
    dt = float(log.config.flight.physics_dt_s) if log.config is not None else float(log.header["physics_dt_s"])
    first = log.ticks[0]
    steps = log.ticks["steps"][:: log.fleet].astype(np.int64)
    # the physics steps before the log's first tick (none for a log written from a flight's start)
    before = max(0, round(float(first["sim_time_s"]) / dt) - int(first["steps"]))
    return (before + np.cumsum(steps)) * dt


def flight_start_unix_s(log: FlightLog) -> tuple[float, str | None]:
    """(UNIX seconds when the flight started, None; or, where the header does not say, the log
    directory's modification time and a note saying so)."""
    created = log.header.get("created_utc")
    if isinstance(created, str):
        try:
            return float(calendar.timegm(time.strptime(created, CREATED_FORMAT))), None
        except ValueError:
            pass
    return os.stat(log.path).st_mtime, (
        f"the log's header has no created_utc in {CREATED_FORMAT}: the flight's start is taken as the log "
        "directory's modification time"
    )
