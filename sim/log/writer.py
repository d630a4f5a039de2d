"""Writes a flight log (``sim.log.format``) from its own thread, fed through a bounded queue.

The loop and the I/O threads only enqueue (``record_tick``, ``record_frame``, ``record_event``:
a tuple each, never a file operation); the ``log-writer`` thread turns them into rows and
appends them, and every ``FLUSH_INTERVAL_S`` makes them durable (``fsync``, then the row count
in the NPY headers).  ``close`` writes everything still queued and joins the thread: after a
clean stop, SIGINT or SIGTERM the log is complete; after SIGKILL or a power cut it holds
everything up to the last flush.

Overflow policy: the queue holds ``QUEUE_CAPACITY`` records (seconds of a busy flight); if the
writer falls that far behind (a disk that stalls), new records are dropped and counted in
``dropped``, which the run summary reports, and the loop never waits for the disk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shutil
import threading
import time
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from heli.errors import ConfigError
from sim.log.format import (
    CHANNEL_COLUMNS,
    COMMAND_COLUMNS,
    EVENTS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_DTYPE,
    FRAME_VALUES,
    FRAMES_FILE,
    HEADER_FILE,
    IO_MODE_CODES,
    STATE_COLUMNS,
    TICK_DTYPE,
    TICKS_FILE,
    NpyAppender,
)

__all__ = ["FLUSH_INTERVAL_S", "FlightLogWriter", "frame_values"]

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25  # at most this much of a flight is lost to a SIGKILL or a power cut (target 0.5 s)
QUEUE_CAPACITY = 200_000
_STOP_TIMEOUT_S = 5.0
_TICK, _FRAME, _EVENT = 0, 1, 2


def frame_values(message: Any) -> tuple[float, ...]:
    """Up to 16 numbers that say what a frame carried: sticks, servo positions, attitude, ..."""
    channels = getattr(message, "channels_us", None)
    if channels is not None:
        return tuple(channels[:FRAME_VALUES])
    if is_dataclass(message):
        numbers: list[float] = []
        for item in fields(message):
            value = getattr(message, item.name)
            if isinstance(value, bool | int | float):
                numbers.append(float(value))
            elif isinstance(value, tuple) and all(isinstance(v, int | float) for v in value):
                numbers.extend(float(v) for v in value)
            if len(numbers) >= FRAME_VALUES:
                break
        return tuple(numbers[:FRAME_VALUES])
    return ()


class FlightLogWriter:
    """One flight's log directory; ``start``, record from any thread, ``close`` (owner: the session)."""

    def __init__(self, path: str, header: dict, port_names: list[str], t0: float):
        self.path = path
        self.t0 = t0  # monotonic time of the loop's start: the log's time zero
        self.port_index = {name: i for i, name in enumerate(port_names)}
        self.dropped = 0
        self.ticks_written = 0
        self.frames_written = 0
        self.events_written = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_CAPACITY)
        self._stop = threading.Event()
        try:
            os.mkdir(path)
        except FileNotFoundError:
            parent = os.path.dirname(os.path.abspath(path))
            raise ConfigError(
                f"--log {path}: no such directory {parent}; expected a new name in an existing one"
            ) from None
        except FileExistsError:
            raise ConfigError(
                f"--log {path}: already exists; choose a new name (a log is never written over)"
            ) from None
        except OSError as error:
            raise ConfigError(f"--log {path}: cannot create it: {error.strerror}") from None
        full_header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **header,
            "ports": list(port_names),
            "io_mode_codes": IO_MODE_CODES,
        }
        with open(os.path.join(path, HEADER_FILE), "w") as handle:
            json.dump(full_header, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._ticks = NpyAppender(os.path.join(path, TICKS_FILE), TICK_DTYPE)
        self._frames = NpyAppender(os.path.join(path, FRAMES_FILE), FRAME_DTYPE)
        self._events = open(os.path.join(path, EVENTS_FILE), "w")  # noqa: SIM115 - closed in close()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    # --- any thread
    def record_tick(self, row: tuple) -> None:
        """(tick, t_monotonic, sim_time_s, lateness_s, missed, io_mode, flags, steps, dt_control_s,
        fresh (N,), frames (N, 16), command (N, 5), state (N, 24)); arrays not modified later."""
        self._put((_TICK, row))

    def record_frame(self, port: str, direction: int, message: Any, seq: int | None, size: int, t: float) -> None:
        self._put((_FRAME, (port, direction, message, seq, size, t)))

    def record_event(self, t_s: float, kind: str, detail: str) -> None:
        self._put((_EVENT, (t_s, kind, detail)))

    def _put(self, item: tuple) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    # --- the owner
    def start(self) -> None:
        self._thread.start()

    def close(self) -> bool:
        """Write what is queued, make it durable, join the thread; False if it did not finish in time."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT_S)
        finished = not self._thread.is_alive()
        if not finished:
            log.error("the log writer did not finish in %.0f s; %s may be incomplete", _STOP_TIMEOUT_S, self.path)
            return False
        if not self._thread.ident:  # never started: write what was recorded here
            self._drain()
        self._ticks.close()
        self._frames.close()
        self._events.close()
        return finished

    def discard(self) -> None:
        """Close and delete the log (a flight that never started has nothing to keep)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def summary(self) -> dict:
        return {
            "path": self.path,
            "ticks": self.ticks_written,
            "frames": self.frames_written,
            "events": self.events_written,
            "dropped": self.dropped,
        }

    # --- the log-writer thread
    def _run(self) -> None:
        next_flush = time.monotonic() + FLUSH_INTERVAL_S
        while not self._stop.is_set():
            self._stop.wait(max(0.0, min(0.05, next_flush - time.monotonic())))
            self._drain()
            if time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + FLUSH_INTERVAL_S
        self._drain()
        self._flush()

    def _drain(self) -> None:
        ticks, frames, events = [], [], []
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                break
            (ticks if kind == _TICK else frames if kind == _FRAME else events).append(item)
        if ticks:
            self._ticks.append(self._tick_rows(ticks))
        if frames:
            self._frames.append(self._frame_rows(frames))
        for t_s, kind, detail in events:
            self._events.write(json.dumps({"t_s": round(t_s, 6), "kind": kind, "detail": detail}) + "\n")
        self.events_written += len(events)

    def _flush(self) -> None:
        self._ticks.commit()
        self._frames.commit()
        self._events.flush()
        os.fsync(self._events.fileno())

    def _tick_rows(self, ticks: list[tuple]) -> np.ndarray:
        """Rows for a batch of ticks, a column at a time (the writer holds the GIL briefly)."""
        counts = np.array([len(t[9]) for t in ticks])
        rows = np.zeros(int(counts.sum()), TICK_DTYPE)

        def per_tick(index: int) -> np.ndarray:
            return np.repeat(np.array([t[index] for t in ticks]), counts)

        rows["tick"], rows["sim_time_s"], rows["lateness_s"] = per_tick(0), per_tick(2), per_tick(3)
        rows["t_s"], rows["missed"] = per_tick(1) - self.t0, per_tick(4)
        rows["io_mode"] = np.repeat([IO_MODE_CODES.get(t[5], 255) for t in ticks], counts)
        rows["flags"], rows["steps"], rows["dt_control_s"] = per_tick(6), per_tick(7), per_tick(8)
        rows["vehicle"] = np.concatenate([np.arange(n) for n in counts])
        rows["fresh"] = np.concatenate([t[9] for t in ticks])
        for columns, index in ((CHANNEL_COLUMNS, 10), (COMMAND_COLUMNS, 11), (STATE_COLUMNS, 12)):
            values = np.concatenate([t[index] for t in ticks])
            for i, name in enumerate(columns):
                rows[name] = values[:, i]
        self.ticks_written += len(ticks)
        return rows

    def _frame_rows(self, frames: list[tuple]) -> np.ndarray:
        rows = np.zeros(len(frames), FRAME_DTYPE)
        for row, (port, direction, message, seq, size, t) in zip(rows, frames, strict=True):
            values = frame_values(message)
            row["t_s"] = t - self.t0
            row["port"] = self.port_index.get(port, 255)
            row["direction"] = direction
            row["type"] = type(message).__name__.encode()[:24]
            row["sequence"] = -1 if seq is None else seq
            row["size"] = size
            row["count"] = len(values)
            for i, value in enumerate(values):
                row[f"v{i}"] = value if math.isfinite(value) else math.nan
        self.frames_written += len(frames)
        return rows
