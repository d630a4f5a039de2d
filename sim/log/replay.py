"""Deterministic replay: a log's recorded inputs through the same model give the same flight.

The helicopter and the flight settings come from the log's header (not from today's
``configs/``), so a log replays the flight it recorded.  Each tick does what the loop did, in
the same order: a reset where the log has one, the controller on the recorded pilot frames,
freshness and dt (unless paused), then the recorded number of physics steps.  After every tick
the replayed vehicles are compared with the recorded ones, bit for bit (a NaN equals the same
NaN): the first difference is reported (tick, vehicle, column, both values).  A long catch-up is
stepped in parts, so a stop request is seen within ~0.1 s whatever the log holds.

The log was checked when it was read (``sim.log.validate``); no code runs because a log names
it: a flight flown with a user's controller replays only when the user names it again.

No clock, no ports, no threads: a replay runs as fast as the CPU allows (``pace`` slows it to the
recorded wall-clock times, for the view).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from heli.errors import ConfigError, HeliSimError
from sim.errors import LogError
from sim.flight import Flight
from sim.ground_control import parse_param_set
from sim.log.format import CHANNEL_COLUMNS, COMMAND_COLUMNS, HEADER_FILE, STATE_COLUMNS, TICK_FLAGS
from sim.log.reader import FlightLog
from sim.log.validate import check_header, shorten
from sim.protocols.mavlink_params import ParamTable

__all__ = ["Difference", "Replay", "bitwise_difference", "flight_of"]

_CHUNK_STEPS = 1000  # physics steps between looks at a stop request (the default catch-up cap: never split)
_CHUNK_VEHICLE_STEPS = 100_000  # ... fewer for a big fleet: about 0.1 s of stepping either way
_PACE_SLEEP_S = 0.05  # the longest sleep of a paced replay between looks at a stop request


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


def flight_of(log: FlightLog, controller: str | None = None) -> Flight:
    """A ``Flight`` built from the log's header: the recorded helicopter and settings.

    No code is imported because a log says so: a flight flown with a controller of the user's
    own replays only with ``controller`` (``MODULE:FUNCTION``, named again by the user; any other
    name flies that one instead, and the replay shows how it differs).  ``LogError`` if the log
    needs one that was not given, or if the recorded configuration does not build a flight.
    """
    source = f"{log.path}/{HEADER_FILE}"
    heli, config = log.heli, log.config
    if heli is None or config is None:  # a FlightLog made by hand: its tables get the usual checks
        heli, config = check_header(log.header, source)
    recorded = config.flight.controller
    if recorded and controller is None:
        raise LogError(
            f"{source}: flight.flight.controller = {recorded!r}: this flight was flown with a controller of your "
            f"own, and a replay imports no code by itself: name it again with --controller {recorded}"
        )
    # the pilot is not flown again (its frames are in the log); a script it read may be gone
    try:
        settings = replace(config.flight, pilot="hover", controller=controller or "")
        air = tuple(fault for fault in config.faults if fault.target == "air")  # gusts: the air, not an input
        return Flight(heli, replace(config, flight=settings, ports=(), faults=air))  # the inputs are in the log
    except ConfigError as error:
        if controller:  # the user's controller, not the log
            raise ConfigError(f"--controller {controller}: {error}") from None
        raise LogError(f"{source}: the recorded flight does not build: {shorten(str(error))}") from None
    except (HeliSimError, ArithmeticError, ValueError) as error:  # e.g. no hover trim for the recorded helicopter
        raise LogError(f"{source}: the recorded flight does not build: {shorten(str(error))}") from None


def param_sets_of(log: FlightLog) -> list[tuple[int, str, float]]:
    """(tick, field, value) of every parameter a ground station set in the flight, in order: the
    replay applies each at the start of its tick, as the loop did.  ``LogError`` (one line) for a
    set the flight could not have made: no such parameter, or a value outside its range."""
    by_field = {info.field: info for info in ParamTable().infos}
    sets = []
    for event in log.events:
        if event.get("kind") != "param_set":
            continue
        parsed = parse_param_set(str(event.get("detail", "")))
        if parsed is None:  # a refused set (the flight did not change): nothing to replay
            continue
        field, value, tick = parsed
        info = by_field.get(field)
        refusal = f"no controller parameter {field!r}" if info is None else info.refusal(value)
        if refusal is not None:
            raise LogError(f"{log.path}: a param_set event the flight could not have made: {shorten(refusal)}")
        sets.append((tick, field, value))
    return sets


class Replay:
    """Steps a ``Flight`` through a log, tick by tick (``step``) or all at once (``run``)."""

    def __init__(self, log: FlightLog, controller: str | None = None):
        self.log = log
        self.flight = flight_of(log, controller)
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
        self.interrupted = False  # stopped in the middle of a tick
        self._frames_now: np.ndarray | None = None
        self._chunk_steps = max(1, min(_CHUNK_STEPS, _CHUNK_VEHICLE_STEPS // fleet))
        self._param_sets = param_sets_of(log)

    @property
    def done(self) -> bool:
        return self.index >= self.count

    def step(self, stop_requested: Callable[[], bool] | None = None) -> bool:
        """Replay the next tick and compare it with the log; False (the tick left unfinished, the
        replay over) if ``stop_requested()`` turned true during a long physics catch-up."""
        k, flight = self.index, self.flight
        flags = int(self.flags[k])
        if flags & TICK_FLAGS["reset"]:
            flight.reset()
        while self._param_sets and self._param_sets[0][0] <= int(self.tick_numbers[k]):  # as the loop set them
            _, field, value = self._param_sets.pop(0)
            try:
                flight.set_controller_params(replace(flight.controller_params, **{field: value}))
            except (TypeError, HeliSimError, ValueError, ArithmeticError) as error:
                raise LogError(f"{self.log.path}: a param_set event ({field} = {value!r}) does not apply: "
                               f"{shorten(str(error))}") from None  # fmt: skip
        if flags & TICK_FLAGS["controlled"]:
            # a new array object per tick (the flight decodes a frame once per array it is given)
            self._frames_now = self.frames[k].copy()
            too_slow = bool(flags & TICK_FLAGS["controller_too_slow"])  # judged by the clock, so recorded
            flight.run_controller(self._frames_now, self.fresh[k], float(self.dt_control[k]), too_slow=too_slow)
        steps = int(self.steps[k])
        while steps > self._chunk_steps:  # a long catch-up, in parts: a stop is seen within one part
            flight.advance(self._chunk_steps)
            steps -= self._chunk_steps
            if stop_requested is not None and stop_requested():
                self.interrupted = True
                return False
        flight.advance(steps)
        if self.difference is None:
            self._compare(k)
        self.index += 1
        return True

    def run(
        self,
        pace: bool = False,
        on_tick: Callable[[Replay], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        """Replay every tick (until ``stop_requested()``); with ``pace``, at the recorded wall-clock times."""
        start = time.monotonic() - (self.t_s[0] if self.count else 0.0)
        while not self.done and not (stop_requested is not None and stop_requested()):
            if pace:
                delay = start + self.t_s[self.index] - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, _PACE_SLEEP_S))
                    continue
            if not self.step(stop_requested):
                return
            if on_tick is not None:
                on_tick(self)

    def _compare(self, k: int) -> None:
        for replayed, logged, columns in (
            (self.flight.command.packed, self.commands[k], COMMAND_COLUMNS),
            (self.flight.vehicles.packed, self.states[k], STATE_COLUMNS),
        ):
            if replayed.shape != logged.shape:
                raise LogError(
                    f"{self.log.path}: the replayed flight has {replayed.shape} values where the log has "
                    f"{logged.shape}; the log is damaged"
                )
            where = bitwise_difference(replayed, logged)
            if where is not None:
                v, c = where
                self.difference = Difference(
                    int(self.tick_numbers[k]), v, columns[c], float(logged[v, c]), float(replayed[v, c])
                )
                return


def bitwise_difference(replayed: np.ndarray, logged: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first float64 that differs bit for bit, or None: a NaN equals the same
    NaN (a NaN compares unequal to itself as a number), and -0.0 is not 0.0."""
    replayed_bits = np.ascontiguousarray(replayed, dtype=np.float64).view(np.int64)
    logged_bits = np.ascontiguousarray(logged, dtype=np.float64).view(np.int64)
    if np.array_equal(replayed_bits, logged_bits):
        return None
    row, column = np.argwhere(replayed_bits != logged_bits)[0]
    return int(row), int(column)
