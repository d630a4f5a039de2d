"""Deterministic replay: a log's recorded inputs through the same model give the same flight.

The helicopter and the flight settings come from the log's header (not from today's
``configs/``), so a log replays the flight it recorded.  Each tick does what the loop did, in
the same order: a reset where the log has one, the controller on the recorded pilot frames,
freshness and dt (unless paused), then the recorded number of physics steps.  After every tick
the replayed vehicles are compared with the recorded ones, float for float: the first
difference is reported (tick, vehicle, column, both values).

No clock, no ports, no threads: a replay runs as fast as the CPU allows (``pace`` slows it to the
recorded wall-clock times, for the view).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from heli.errors import ConfigError
from sim.config import FlightConfig, heli_from_table
from sim.dataclass_io import build
from sim.errors import LogError
from sim.flight import Flight
from sim.log.format import CHANNEL_COLUMNS, COMMAND_COLUMNS, HEADER_FILE, STATE_COLUMNS, TICK_FLAGS
from sim.log.reader import FlightLog

__all__ = ["Difference", "Replay", "flight_of"]


@dataclass(frozen=True)
class Difference:
    """Where the replay first left the recorded trajectory."""

    tick: int
    vehicle: int
    column: str
    logged: float
    replayed: float

    def to_dict(self) -> dict:
        return {"tick": self.tick, "vehicle": self.vehicle, "column": self.column, "logged": self.logged,
                "replayed": self.replayed}  # fmt: skip


def flight_of(log: FlightLog) -> Flight:
    """A ``Flight`` built from the log's header: the recorded helicopter and settings."""
    source = f"{log.path}/{HEADER_FILE}"
    try:
        heli = heli_from_table(log.header["heli"], source)
        config = build(FlightConfig, log.header["flight"], source=source)
    except ConfigError as error:
        raise LogError(f"{source}: the recorded configuration does not load: {error}") from None
    # the pilot is not flown again (its frames are in the log); a script it read may be gone
    settings = replace(config.flight, pilot="hover")
    return Flight(heli, replace(config, flight=settings, ports=(), faults=()))  # the inputs are in the log


class Replay:
    """Steps a ``Flight`` through a log, tick by tick (``step``) or all at once (``run``)."""

    def __init__(self, log: FlightLog):
        self.log = log
        self.flight = flight_of(log)
        count, fleet = log.tick_count, log.fleet
        rows = log.ticks.reshape(count, fleet)
        self.count = count
        self.tick_numbers = rows["tick"][:, 0]
        self.flags = rows["flags"][:, 0]
        self.steps = rows["steps"][:, 0]
        self.dt_control = rows["dt_control_s"][:, 0]
        self.t_s = rows["t_s"][:, 0]
        self.io_mode = rows["io_mode"][:, 0]
        self.fresh = np.ascontiguousarray(rows["fresh"])
        self.frames = np.stack([rows[c] for c in CHANNEL_COLUMNS], axis=-1)
        self.commands = np.stack([rows[c] for c in COMMAND_COLUMNS], axis=-1)
        self.states = np.stack([rows[c] for c in STATE_COLUMNS], axis=-1)
        self.index = 0
        self.difference: Difference | None = None
        self._frames_now: np.ndarray | None = None

    @property
    def done(self) -> bool:
        return self.index >= self.count

    def step(self) -> None:
        """Replay the next tick and compare it with the log."""
        k, flight = self.index, self.flight
        flags = int(self.flags[k])
        if flags & TICK_FLAGS["reset"]:
            flight.reset()
        if flags & TICK_FLAGS["controlled"]:
            # a new array object per tick (the flight decodes a frame once per array it is given)
            self._frames_now = self.frames[k].copy()
            flight.run_controller(self._frames_now, self.fresh[k], float(self.dt_control[k]))
        flight.advance(int(self.steps[k]))
        if self.difference is None:
            self._compare(k)
        self.index += 1

    def run(self, pace: bool = False, on_tick: Callable[[Replay], None] | None = None) -> None:
        """Replay every tick; with ``pace``, at the recorded wall-clock times."""
        start = time.monotonic() - (self.t_s[0] if self.count else 0.0)
        while not self.done:
            if pace:
                delay = start + self.t_s[self.index] - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.step()
            if on_tick is not None:
                on_tick(self)

    def _compare(self, k: int) -> None:
        for replayed, logged, columns in (
            (self.flight.command.packed, self.commands[k], COMMAND_COLUMNS),
            (self.flight.vehicles.packed, self.states[k], STATE_COLUMNS),
        ):
            if np.array_equal(replayed, logged):
                continue
            vehicle, column = np.argwhere(replayed != logged)[0]
            self.difference = Difference(int(self.tick_numbers[k]), int(vehicle), columns[column],
                                         float(logged[vehicle, column]), float(replayed[vehicle, column]))  # fmt: skip
            return
