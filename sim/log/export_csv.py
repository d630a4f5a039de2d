"""A flight log as one CSV table: what PlotJuggler and ``pandas.read_csv`` open as it is.

One header row, then one row per tick and vehicle (tick-major, as the log holds them).  The
first column is ``time_s``, simulated seconds since the log's first tick (``sim.log.export_timeline``:
it goes on across a reset, where the log's own ``sim_time_s`` restarts), the second ``vehicle``;
then every tick column of the log (``sim.log.format.TICK_DTYPE``), under its name with a unit
added where it has none (``_throw``: servo positions in full-throw units, -1..1; ``_frac``:
0..1; ``_us``: microseconds; ``_code``, ``_bits``: numbers that stand for names and flags), the
attitude as Euler angles in degrees next to the quaternion (``roll_deg``, ``pitch_deg``,
``yaw_deg``: aerospace ZYX, ``heli.state.VehicleState.euler_deg``), and last, when the log
replays, the built-in controller's state and then its setpoints and P, D and F terms of each
tick's cycle (``sim.log.export_controller``; an empty cell where the replay left the flight).
Comma-separated, ``\\n`` line ends, floats as Python's shortest repr: they read back equal to the
log's.
"""

from __future__ import annotations

import csv
from typing import TextIO

import numpy as np

from heli.state import VehicleState
from sim.log.export_controller import CONTROLLER_COLUMNS, TERM_COLUMNS, WIND_COLUMNS, ControllerTrace
from sim.log.export_timeline import simulated_time_s
from sim.log.format import CHANNEL_COLUMNS, STATE_COLUMNS, TICK_DTYPE
from sim.log.reader import FlightLog

__all__ = ["EULER_COLUMNS", "csv_columns", "log_column_names", "write_csv"]

EULER_COLUMNS = ("roll_deg", "pitch_deg", "yaw_deg")
_CHUNK_ROWS = 2000  # rows formatted at a time: a Ctrl-C is seen between chunks, memory stays small

# the log's tick columns whose names carry no unit, and what the CSV calls them
_RENAMED = {
    "t_s": "wall_time_s",  # wall-clock seconds since the loop started
    "missed": "missed_ticks",
    "io_mode": "io_mode_code",  # sim.log.format.IO_MODE_CODES
    "flags": "flags_bits",  # sim.log.format.TICK_FLAGS
    "steps": "physics_steps",
    **{name: f"{name}_us" for name in CHANNEL_COLUMNS},
    "cmd_servo_0": "cmd_servo_0_throw",
    "cmd_servo_1": "cmd_servo_1_throw",
    "cmd_servo_2": "cmd_servo_2_throw",
    "cmd_servo_tail": "cmd_servo_tail_throw",
    "cmd_throttle": "cmd_throttle_frac",
    "inflow_main": "inflow_main_ratio",
    "inflow_tail": "inflow_tail_ratio",
    "servo_state_0": "servo_state_0_throw",
    "servo_state_1": "servo_state_1_throw",
    "servo_state_2": "servo_state_2_throw",
    "servo_state_tail": "servo_state_tail_throw",
    "throttle_state": "throttle_state_frac",
}
# every tick column but vehicle, the second (a structured dtype's names are never None)
_LOG_COLUMNS = tuple(name for name in TICK_DTYPE.names or () if name != "vehicle")


def log_column_names() -> dict[str, str]:
    """The log's tick columns (but ``vehicle``) in the CSV's order: {log name: CSV name}."""
    return {name: _RENAMED.get(name, name) for name in _LOG_COLUMNS}


def csv_columns(trace: ControllerTrace) -> list[str]:
    """The CSV's header row for a log with this controller trace."""
    names = ["time_s", "vehicle"]
    for name in log_column_names().values():
        names.append(name)
        if name == "q_z":
            names.extend(EULER_COLUMNS)
    if trace.states is not None:
        names.extend(CONTROLLER_COLUMNS)
    if trace.terms is not None:
        names.extend(TERM_COLUMNS)
    if trace.wind is not None:
        names.extend(WIND_COLUMNS)
    return names


def _columns(log: FlightLog, trace: ControllerTrace) -> list[np.ndarray]:
    """One array per CSV column, in ``csv_columns`` order, one value per log row."""
    ticks = log.ticks
    time_s = np.repeat(simulated_time_s(log), log.fleet)
    euler = VehicleState(np.stack([ticks[name] for name in STATE_COLUMNS], axis=1)).euler_deg()
    arrays = [time_s, ticks["vehicle"]]
    for name in _LOG_COLUMNS:
        values = ticks[name]
        arrays.append(values.astype(np.uint8) if values.dtype == np.bool_ else values)  # 0 / 1, not True / False
        if name == "q_z":
            arrays.extend(euler.T)
    if trace.states is not None:
        arrays.extend(trace.states.T)
    if trace.terms is not None:
        arrays.extend(trace.terms.T)
    if trace.wind is not None:
        arrays.extend(trace.wind.T)
    return arrays


def write_csv(log: FlightLog, trace: ControllerTrace, stream: TextIO) -> int:
    """Write the table to ``stream`` (opened with ``newline=""``); the number of data rows."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(csv_columns(trace))
    arrays = _columns(log, trace)
    first_controller = len(csv_columns(ControllerTrace(None))) if trace.states is not None else len(arrays)
    rows = len(log.ticks)
    for start in range(0, rows, _CHUNK_ROWS):
        chunk = [array[start : start + _CHUNK_ROWS].tolist() for array in arrays]
        for index in range(first_controller, len(chunk)):  # not replayed: an empty cell, not "nan"
            chunk[index] = [None if value != value else value for value in chunk[index]]
        writer.writerows(zip(*chunk, strict=True))
    return rows
