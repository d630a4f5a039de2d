"""The built-in controller's internal state at every tick of a flight log, for an export.

A log records the controller's command, not its state.  The state comes back by replaying the
log (``sim.log.replay``: the recorded pilot frames through the same controller and model) and
reading ``Flight.controller`` (``heli.control.ControllerState``) after each tick.  It holds the
integrators (the PIDs' I terms), the filters, the governor's setpoint and state, the failsafe and
rescue timers and the flight mode in effect.  The rate and attitude setpoints and the P, D and F
terms of each rate PID are values of one cycle that the state does not keep: the replay asks the
controller for them (``heli.control.control_with_terms``, the same arithmetic) and they follow.

Where the replay cannot stand for the flight the state is not given, and a note says why: a
flight flown with a controller of the user's own (its state is not the built-in one's), a
recorded configuration that no longer builds, or a replay that leaves the logged trajectory
(from that tick on, the rows are NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heli.control import CONTROL_STATE_SIZE, CONTROL_TERMS, ControlIndex
from heli.errors import HeliSimError
from sim.log.reader import FlightLog
from sim.log.replay import Replay

__all__ = ["CONTROLLER_COLUMNS", "TERM_COLUMNS", "ControllerTrace", "replay_controller"]

# heli.control.ControllerState's columns (ControlIndex: their names in exports), units in the names (rad: blade
# pitch; frac: 0..1): ctl_i_roll_rad ... ctl_ground_time_s
CONTROLLER_COLUMNS = tuple(f"ctl_{name}" for name in ControlIndex.EXPORTED)
TERM_COLUMNS = tuple(f"ctl_{name}" for name in CONTROL_TERMS)  # setpoints and P/D/F terms of the cycle
WIND_COLUMNS = ("wind_north_m_s", "wind_east_m_s", "wind_down_m_s")  # the air each vehicle met (replayed)

MODE_COLUMN = CONTROLLER_COLUMNS.index("ctl_flight_mode_code")
GOVERNOR_COLUMN = CONTROLLER_COLUMNS.index("ctl_governor_state_code")


@dataclass(frozen=True)
class ControllerTrace:
    """The controller's state per log row (``states``, rows as in ``FlightLog.ticks``; NaN where the
    replay left the flight) and the cycle's setpoints and terms (``terms``, ``TERM_COLUMNS``), or
    None with ``note`` saying why there are none."""

    states: np.ndarray | None
    note: str | None = None
    terms: np.ndarray | None = None
    wind: np.ndarray | None = None  # (rows, 3): the wind each vehicle met, NED m/s (``WIND_COLUMNS``)


def replay_controller(log: FlightLog) -> ControllerTrace:
    """Replay ``log`` and collect the built-in controller's state after every tick."""
    recorded = log.config.flight.controller if log.config is not None else ""
    if recorded:
        return ControllerTrace(None, f"flown with a controller of your own ({recorded}): no controller columns")
    try:
        replay = Replay(log)
    except HeliSimError as error:
        return ControllerTrace(None, f"the log does not replay ({error}): no controller columns")
    fleet = log.fleet
    fc = None if log.config is None else log.config.fc
    firmware = fc is not None and fc.enabled  # heli-sim's controller did not fly
    states = np.full((replay.count * fleet, CONTROL_STATE_SIZE), np.nan)
    terms = np.full((replay.count * fleet, len(CONTROL_TERMS)), np.nan)
    wind = np.full((replay.count * fleet, 3), np.nan)
    steady = np.asarray(replay.flight.model.wind_ned, dtype=np.float64)
    replay.flight.record_terms = True
    while not replay.done:
        k = replay.index
        replay.step()
        if replay.difference is not None:
            d = replay.difference
            return ControllerTrace(
                states,
                f"the replay left the logged flight at tick {d.tick} (vehicle {d.vehicle}, {d.column}): the "
                "controller columns are empty from there on",
                terms,
                wind,
            )
        if not firmware:
            states[k * fleet : (k + 1) * fleet] = replay.flight.controller.packed
        if replay.flight.terms is not None and not firmware:  # a tick without a controller cycle has none
            terms[k * fleet : (k + 1) * fleet] = replay.flight.terms
        air = replay.flight.air
        wind[k * fleet : (k + 1) * fleet] = steady if air is None or air.current is None else air.current
    if fc is not None and firmware:
        note = f"flown by firmware in the loop ({fc.protocol}): no controller columns"
        return ControllerTrace(None, note, None, wind)
    return ControllerTrace(states, None, terms, wind)
