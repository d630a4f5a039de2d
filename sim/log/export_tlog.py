"""A flight log as a MAVLink telemetry log (``.tlog``): what MAVExplorer, UAV Log Viewer and Mission
Planner open, showing the flight as a ground station would have seen it.

The file format is the one MAVProxy writes and pymavlink's ``mavutil.mavlogfile`` reads: per
message, the receive time as 8 bytes big-endian microseconds since the UNIX epoch, then the
packed MAVLink message.  ``mavlogfile`` opened for writing adds no times of its own (its
``write`` writes the bytes it is given), so each time is written through it just before the
message.  pymavlink's reader takes the two lowest bits of a time as a link number: they are
written as 0 (link 0), so times have 4 us resolution.

Vehicle 0 is one MAVLink v2 system (id 1, component 1, ``MAV_TYPE_HELICOPTER``).  Each message
is sent at its rate (``RATES_HZ``) in simulated time: at the first tick at or after each multiple
of its period since the log's first tick.  The times are the flight's start
(``sim.log.export_timeline.flight_start_unix_s``) plus simulated seconds.  The messages are the
live telemetry's own, packed by pymavlink in ``sim.protocols.mavlink.TelemetryEncoder`` (one
encoder: one sequence counter) from a ``TelemetrySample`` of the logged tick.  SERVO_OUTPUT_RAW:
outputs 1-3 the swashplate servos, 4 the tail servo (the command's full throw -1..1 as
1000..2000 us), 5 the throttle (0..1 as 1000..2000 us).

The HEARTBEAT's armed flag and flight mode come from the built-in controller's state where the
log replays (``sim.log.export_controller``: the governor running, the mode in effect, as the live
telemetry reports them), else from the pilot's arm and mode switches in the logged frames
(a stale frame: failsafe).
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Iterator

import numpy as np
from pymavlink import mavutil

from heli.control import FLIGHT_MODES, PilotIndex
from heli.state import CommandIndex, StateIndex, VehicleState
from sim.errors import LogError
from sim.log.export_controller import GOVERNOR_COLUMN, MODE_COLUMN, ControllerTrace
from sim.log.export_timeline import simulated_time_s
from sim.log.format import CHANNEL_COLUMNS, COMMAND_COLUMNS, STATE_COLUMNS
from sim.log.reader import FlightLog
from sim.protocols.mavlink import TelemetryEncoder, TelemetrySample
from sim.rc import CENTRE_US, HALF_RANGE_US, to_pilot_input

__all__ = ["DEFAULT_HOME", "RATES_HZ", "message_ticks", "write_tlog"]

RATES_HZ = {
    "HEARTBEAT": 1.0,
    "ATTITUDE": 25.0,
    "GLOBAL_POSITION_INT": 10.0,
    "LOCAL_POSITION_NED": 10.0,
    "VFR_HUD": 4.0,
    "RC_CHANNELS": 5.0,
    "SERVO_OUTPUT_RAW": 10.0,
}
# sim.config.HomePosition's defaults, for a log recorded before flights had a home
DEFAULT_HOME = (-35.363261, 149.16523, 584.0)
_LINK_BITS = 0x3  # the timestamp's bits pymavlink reads as the link number
_DUE_SLACK_S = 1e-9  # a tick whose time is a period's multiple, short by a rounding, is that multiple
_PULSE_MIN_US, _PULSE_MAX_US = CENTRE_US - HALF_RANGE_US, CENTRE_US + HALF_RANGE_US
_STALE_MODE = next(code for code, name in FLIGHT_MODES.items() if name == "failsafe: level")
_FIRMWARE_MODE = next(code for code, name in FLIGHT_MODES.items() if name == "angle")  # the firmware's own: unknown


def message_ticks(times_s: np.ndarray, rate_hz: float) -> np.ndarray:
    """Indices into ``times_s`` (non-decreasing) of the ticks a message at ``rate_hz`` goes out at:
    the first tick at or after each multiple of its period since the first tick."""
    if len(times_s) == 0:
        return np.zeros(0, dtype=np.int64)
    first, span = float(times_s[0]), float(times_s[-1] - times_s[0])
    due = first + np.arange(math.floor(span * rate_hz + 1e-6) + 1) / rate_hz
    ticks = np.searchsorted(times_s, due - _DUE_SLACK_S, side="left")
    return np.unique(ticks[ticks < len(times_s)])


def _home(log: FlightLog) -> tuple[float, float, float]:
    home = getattr(log.config, "home", None)
    if home is None:
        return DEFAULT_HOME
    return (float(home.latitude_deg), float(home.longitude_deg), float(home.altitude_m))


def _finite(table: np.ndarray) -> np.ndarray:
    """``table`` with each row that holds a NaN or an infinity (a vehicle whose integration
    diverged) replaced by the last whole row before it: its telemetry holds still, as a ground
    station would see it stop; zeros where none came before."""
    whole = np.isfinite(table).all(axis=1)
    if whole.all():
        return table
    last = np.maximum.accumulate(np.where(whole, np.arange(len(table)), 0))
    return np.nan_to_num(table[last], nan=0.0, posinf=0.0, neginf=0.0)


def _armed_and_mode(log: FlightLog, trace: ControllerTrace) -> tuple[np.ndarray, np.ndarray]:
    """Vehicle 0's armed flag and flight-mode code per tick."""
    rows = log.ticks[:: log.fleet]
    config = log.config
    if config is None:  # a FlightLog made by hand (read_log gives every log its configuration)
        raise LogError(f"{log.path}: no flight configuration: the pilot's channels cannot be read")
    if config.fc.enabled:  # firmware flew: its motor output running, its own modes
        return rows["cmd_throttle"] > 0.0, np.full(len(rows), _FIRMWARE_MODE, dtype=np.int64)
    fresh = rows["fresh"].astype(bool)
    pilot = to_pilot_input(np.stack([rows[c] for c in CHANNEL_COLUMNS], axis=1), fresh, config.rc).packed
    armed = fresh & (pilot[:, PilotIndex.ARM] > 0.5)
    mode = np.where(fresh, pilot[:, PilotIndex.MODE], _STALE_MODE)
    if trace.states is not None:
        states = trace.states[:: log.fleet]
        replayed = np.isfinite(states[:, MODE_COLUMN])
        armed = np.where(replayed, states[:, GOVERNOR_COLUMN] > 0.0, armed)
        mode = np.where(replayed, states[:, MODE_COLUMN], mode)
    return armed, mode.astype(np.int64)


def _schedule(times_s: np.ndarray) -> Iterator[tuple[int, str]]:
    """(tick, message name) in the order they go out: by tick, then in ``RATES_HZ`` order."""
    ticks, order = [], []
    for rank, rate in enumerate(RATES_HZ.values()):
        sent = message_ticks(times_s, rate)
        ticks.append(sent)
        order.append(np.full(len(sent), rank))
    tick, position = np.concatenate(ticks), np.concatenate(order)
    names = list(RATES_HZ)
    for index in np.lexsort((position, tick)):
        yield int(tick[index]), names[int(position[index])]


def _servo_pulses_us(commands: np.ndarray) -> np.ndarray:
    """Commands (rows of 4 servos in full throw -1..1, then throttle 0..1) as 1000..2000 us pulses."""
    pulses = np.empty_like(commands)
    servos, throttle = CommandIndex.SERVOS, CommandIndex.THROTTLE
    pulses[:, servos] = CENTRE_US + HALF_RANGE_US * commands[:, servos]
    pulses[:, throttle] = _PULSE_MIN_US + 2.0 * HALF_RANGE_US * commands[:, throttle]
    return np.clip(pulses, _PULSE_MIN_US, _PULSE_MAX_US)


def write_tlog(log: FlightLog, trace: ControllerTrace, path: str, start_unix_s: float) -> Counter:
    """Write vehicle 0's telemetry to ``path`` (created or truncated); how many of each message."""
    rows = log.ticks[:: log.fleet]
    times_s = simulated_time_s(log)
    states = _finite(np.stack([rows[c] for c in STATE_COLUMNS], axis=1))
    euler_rad = np.radians(VehicleState(states.copy()).euler_deg())
    servos_us = _servo_pulses_us(_finite(np.stack([rows[c] for c in COMMAND_COLUMNS], axis=1)))
    channels = _finite(np.stack([rows[c] for c in CHANNEL_COLUMNS], axis=1))
    armed, mode = _armed_and_mode(log, trace)
    home = _home(log)
    encoder = TelemetryEncoder()
    counts: Counter = Counter()
    log_file = mavutil.mavlogfile(path, write=True)
    try:
        sample: TelemetrySample | None = None
        sample_tick = -1
        for k, name in _schedule(times_s):
            t = float(times_s[k])
            if sample is None or sample_tick != k:
                sample = _sample(k, t, states, euler_rad, servos_us, channels, armed, mode, home)
                sample_tick = k
            stamp = struct.pack(">Q", round((start_unix_s + t) * 1e6) & ~_LINK_BITS)
            log_file.write(stamp + encoder.encode(sample, [name]))
            counts[name] += 1
    finally:
        log_file.close()
    return counts


def _sample(
    k: int,
    t: float,
    states: np.ndarray,
    euler_rad: np.ndarray,
    servos_us: np.ndarray,
    channels: np.ndarray,
    armed: np.ndarray,
    mode: np.ndarray,
    home: tuple[float, float, float],
) -> TelemetrySample:
    """What vehicle 0's live telemetry would have said at tick ``k``."""
    state = states[k].tolist()
    return TelemetrySample(
        time_s=t,
        position_ned_m=tuple(state[StateIndex.POSITION]),
        velocity_ned_m_s=tuple(state[StateIndex.VELOCITY]),
        attitude_rad=tuple(euler_rad[k].tolist()),
        body_rates_rad_s=tuple(state[StateIndex.RATES]),
        throttle=state[StateIndex.THROTTLE],
        armed=bool(armed[k]),
        channels_us=tuple(channels[k].tolist()),
        servo_us=tuple(servos_us[k].tolist()),
        quaternion=tuple(state[StateIndex.ATTITUDE]),
        flight_mode=FLIGHT_MODES.get(int(mode[k]), "?"),
        crashed=state[StateIndex.CRASH] != 0.0,
        home=home,
    )
