"""The run summary of a replay: the ``--stats-json`` keys of ``fly``, from the log and the replay.

Timing (segments per I/O mode, lateness, periods, missed deadlines) is the recorded flight's,
read from the log; vehicles are the replayed ones; ``replay`` says whether the replay matched
the log, bit for bit, how fast it ran, and whether the log holds the whole flight.
"""

from __future__ import annotations

import numpy as np

from sim.log.format import IO_MODE_CODES
from sim.log.replay import Replay
from sim.stats import Segment

__all__ = ["replay_summary"]

_MODE_NAMES = {code: name for name, code in IO_MODE_CODES.items()}


def _segments(replay: Replay) -> list[Segment]:
    rows = replay.log.ticks.reshape(replay.count, replay.log.fleet)[:, 0]
    segments: list[Segment] = []
    previous_t = None
    for row in rows:
        mode = _MODE_NAMES.get(int(row["io_mode"]), "unknown")
        t = float(row["t_s"])
        if not segments or segments[-1].io_mode != mode:
            if segments:
                segments[-1].t_end_s = t
            segments.append(Segment(mode, t))
        segment = segments[-1]
        segment.ticks += 1
        segment.missed_deadlines += int(row["missed"])
        segment.lateness.add(float(row["lateness_s"]))
        if previous_t is not None:
            segment.period.add(t - previous_t)
        previous_t = t
    if segments:
        segments[-1].t_end_s = float(rows[-1]["t_s"])
    return segments


def _ports(replay: Replay) -> list[dict]:
    frames = replay.log.frames
    ports = []
    for index, name in enumerate(replay.log.header["ports"]):
        mine = frames[frames["port"] == index]
        ports.append(
            {
                "name": name,
                "frames_in": int(np.count_nonzero(mine["direction"] == 0)),
                "frames_out": int(np.count_nonzero(mine["direction"] == 1)),
                "bytes_out": int(mine["size"].sum()),
            }
        )
    return ports


def replay_summary(replay: Replay, seconds: float) -> dict:
    """The summary of a finished replay that took ``seconds`` of wall-clock time."""
    log, flight = replay.log, replay.flight
    segments = _segments(replay)
    replayed = min(replay.index, replay.count)  # ticks replayed: all of them, or those before a stop
    recorded_s = float(replay.t_s[replayed - 1] - replay.t_s[0]) if replayed else 0.0  # their wall-clock span
    return {
        "duration_s": round(flight.sim_time_s, 6),
        "loop_hz": log.header["loop_hz"],
        "physics_dt_s": log.header["physics_dt_s"],
        "io_mode_final": segments[-1].io_mode if segments else None,
        "heli": log.header["heli_name"],
        "fleet": log.fleet,
        "stop_reason": "replay complete" if replay.done else "replay stopped",
        "segments": [s.to_dict() for s in segments],
        "ports": _ports(replay),
        "events": [{"t_s": e.get("t_s"), "kind": e.get("kind"), "detail": e.get("detail")} for e in log.events],
        "vehicles": flight.vehicle_summary(),
        "stick_to_servo_ms": {"p50": None, "p99": None, "max": None},
        "replay": {
            "log": log.path,
            "ticks": replay.index,
            "ticks_in_log": replay.count,
            "identical": replay.difference is None,
            "first_difference": None if replay.difference is None else replay.difference.to_dict(),
            "incomplete_last_tick_dropped": log.incomplete_tick,
            "log_status": None if log.status is None else log.status["status"],  # None: an older log, no status
            "log_incomplete": log.incomplete,  # why the log holds less than the flight, or None
            "log_ends_at_s": round(float(replay.t_s[-1]), 6) if replay.count else 0.0,  # its last tick (wall clock)
            "complete": replay.done,  # False: stopped (a signal, the view closed) before the log's end
            "interrupted": replay.interrupted,  # stopped in the middle of a tick (one of many physics steps)
            "seconds": round(seconds, 3),
            "speed_x_real_time": round(recorded_s / seconds, 1) if seconds > 0 and recorded_s > 0 else None,
        },
    }
