"""Writes a flight log (``sim.log.format``) from its own thread, fed through a bounded queue.

The loop and the I/O threads only enqueue (``record_tick``, ``record_frame``, ``record_event``:
a tuple each, never a file operation); the ``log-writer`` thread turns them into rows and
appends them, and every ``FLUSH_INTERVAL_S`` makes them durable (``fsync``, then the row count
in the NPY headers).  ``close`` writes everything still queued, joins the thread and marks the
log ``complete`` in ``status.json``: after a clean stop, SIGINT or SIGTERM the log is complete;
after SIGKILL or a power cut it holds everything up to the last flush and says ``writing``.

Overflow policy: the queue holds ``QUEUE_CAPACITY`` records (seconds of a busy flight); if the
writer falls that far behind (a disk that stalls), new records are dropped and counted in
``dropped``, which the run summary reports, and the loop never waits for the disk.

Failure policy: any error while writing (``ENOSPC``, ``EIO``, ...: any ``OSError``) stops the
writer, not the flight.  The log keeps every row counted so far, ``status.json`` says
``stopped`` and why (rewritten in place: it needs no free space), later records are counted in
``not_written``, and a ``log_stopped`` notice waits in ``take_notices`` for the loop to record
as an event (the writer thread never touches the loop).  ``close`` never raises.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import shutil
import threading
import time
from dataclasses import fields, is_dataclass
from typing import Any, TextIO

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
    STATUS_FILE,
    TICK_DTYPE,
    TICKS_FILE,
    NpyAppender,
    status_bytes,
)

__all__ = ["FLUSH_INTERVAL_S", "FlightLogWriter", "frame_values"]

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25  # at most this much of a flight is lost to a SIGKILL or a power cut (target 0.5 s)
QUEUE_CAPACITY = 200_000
_STOP_TIMEOUT_S = 5.0
_REASON_CHARS = 400  # of a stop's reason in status.json (ASCII: it fits STATUS_BYTES with the counts)
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
        self.dropped = 0  # records dropped because the queue was full
        self.not_written = 0  # records handed over after writing stopped
        self.ticks_written = 0  # ticks made durable (counted in ticks.npy's header)
        self.frames_written = 0
        self.events_written = 0
        self.status = "writing"  # then "complete", or "stopped" (see stopped_reason)
        self.stopped_reason: str | None = None
        self._queue: queue.Queue = queue.Queue(QUEUE_CAPACITY)
        self._notices: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._closed = False
        self._writing = HEADER_FILE  # the file being written: named when writing fails
        self._appended: tuple[int, float, int] = (0, 0.0, 0)  # ticks, last tick's t (s), events, appended
        self._durable_t_s = 0.0  # the last durable tick's time since the loop started (wall clock)
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
        self._status_fd = -1
        self._ticks: NpyAppender | None = None
        self._frames: NpyAppender | None = None
        self._events: TextIO | None = None
        try:
            self._create(full_header)
        except OSError as error:  # a full or read-only disk at the start: nothing to keep
            self._close_files()
            shutil.rmtree(path, ignore_errors=True)
            raise ConfigError(f"--log {path}: cannot write {self._writing}: {error.strerror or error}") from None
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)

    def _create(self, header: dict) -> None:
        with open(os.path.join(self.path, HEADER_FILE), "w") as handle:
            json.dump(header, handle, indent=1)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._writing = STATUS_FILE
        self._status_fd = os.open(os.path.join(self.path, STATUS_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._write_status()
        self._writing = TICKS_FILE
        self._ticks = NpyAppender(os.path.join(self.path, TICKS_FILE), TICK_DTYPE)
        self._writing = FRAMES_FILE
        self._frames = NpyAppender(os.path.join(self.path, FRAMES_FILE), FRAME_DTYPE)
        self._writing = EVENTS_FILE
        self._events = open(os.path.join(self.path, EVENTS_FILE), "w")  # noqa: SIM115 - closed in close()
        directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the new names survive a power cut too
        finally:
            os.close(directory)

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
        if self.stopped_reason is not None or self._closed:
            self.not_written += 1
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def take_notices(self) -> list[tuple[str, str]]:
        """(kind, detail) of what happened to the log since the last call (``log_stopped``): the
        owner records them as events.  Never blocks."""
        notices = []
        while True:
            try:
                notices.append(self._notices.get_nowait())
            except queue.Empty:
                return notices

    # --- the owner
    def start(self) -> None:
        self._thread.start()

    def close(self) -> bool:
        """Write what is queued, make it durable, join the thread, mark the log complete; False
        (and a ``log_stopped`` notice) if the log is not complete.  Never raises; a second call
        does nothing."""
        if self._closed:
            return self.status == "complete"
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT_S)
        if self._thread.is_alive():  # stuck in a write or an fsync: its files stay its own
            reason = f"the log writer did not finish within {_STOP_TIMEOUT_S:.0f} s"
            log.error("%s; %s may be incomplete", reason, self.path)
            self.stopped_reason = reason
            self._notices.put(("log_stopped", f"{self.path}: {reason}; the log may be incomplete"))
            return False
        if not self._thread.ident:  # never started: write what was recorded here
            self._write_all()
        self.not_written += self._queue.qsize()  # left behind by a writer that stopped
        if self.stopped_reason is None:
            self._writing = STATUS_FILE
            try:
                self._write_status("complete")
                self.status = "complete"
            except OSError as error:
                self._stopped(f"cannot mark the log complete: {error.strerror or error}")
        self._close_files()
        return self.status == "complete"

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
            "status": self.status,
            **({"stopped": self.stopped_reason, "not_written": self.not_written} if self.stopped_reason else {}),
        }

    def _close_files(self) -> None:
        for appender in (self._ticks, self._frames):
            if appender is not None:
                appender.abandon()  # everything worth keeping is committed already
        if self._events is not None:
            with contextlib.suppress(OSError):
                self._events.close()
        if self._status_fd >= 0:
            os.close(self._status_fd)
            self._status_fd = -1

    def _write_status(self, status: str = "writing", reason: str = "") -> None:
        """Rewrite status.json in place (the same ``STATUS_BYTES``: no new space needed)."""
        record = {
            "status": status,
            "reason": reason.encode("ascii", "replace").decode()[:_REASON_CHARS],
            "ticks": self.ticks_written,
            "frames": self.frames_written,
            "events": self.events_written,
            "dropped": self.dropped,
        }
        os.pwrite(self._status_fd, status_bytes(record), 0)
        os.fsync(self._status_fd)

    def _stopped(self, reason: str) -> None:
        """Writing failed: keep what is counted, say so in status.json (if the disk lets us) and to the owner."""
        self.stopped_reason = reason
        self.status = "stopped"
        try:
            self._write_status("stopped", reason)
        except OSError as error:  # status.json still says "writing": a reader takes the log as cut short
            log.warning("%s: cannot mark the log stopped: %s", self.path, error.strerror or error)
        self._notices.put(
            ("log_stopped", f"{self.path}: {reason}; the log holds the flight's first {self._durable_t_s:.3f} s")
        )

    # --- the log-writer thread
    def _run(self) -> None:
        next_flush = time.monotonic() + FLUSH_INTERVAL_S
        while not self._stop.is_set():
            self._stop.wait(max(0.0, min(0.05, next_flush - time.monotonic())))
            if not self._write_all(flush=time.monotonic() >= next_flush):
                return
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + FLUSH_INTERVAL_S
        self._write_all()

    def _write_all(self, flush: bool = True) -> bool:
        """Append what is queued (and make it durable); False once writing has failed."""
        if self.stopped_reason is not None:
            return False
        try:
            self._drain()
            if flush:
                self._flush()
        except OSError as error:
            self._stopped(f"{error.strerror or error} while writing {self._writing}")
        except Exception as error:  # a bug: the log stops, the flight flies on, and both are said
            log.error("the log writer failed", exc_info=error)
            self._stopped(f"internal error while writing {self._writing}: {error!r}")
        return self.stopped_reason is None

    def _drain(self) -> None:
        ticks_file, frames_file, events_file = self._files()
        ticks: list[tuple] = []
        frames: list[tuple] = []
        events: list[tuple[float, str, str]] = []
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                break
            (ticks if kind == _TICK else frames if kind == _FRAME else events).append(item)
        if ticks:
            self._writing = TICKS_FILE
            ticks_file.append(self._tick_rows(ticks))
        if frames:
            self._writing = FRAMES_FILE
            frames_file.append(self._frame_rows(frames))
        if events:
            self._writing = EVENTS_FILE
            for t_s, kind, detail in events:
                events_file.write(json.dumps({"t_s": round(t_s, 6), "kind": kind, "detail": detail}) + "\n")
        ticks_appended, t_s, events_appended = self._appended
        if ticks:
            ticks_appended, t_s = ticks_appended + len(ticks), float(ticks[-1][1]) - self.t0
        self._appended = (ticks_appended, t_s, events_appended + len(events))

    def _flush(self) -> None:
        ticks_file, frames_file, events_file = self._files()
        ticks, t_s, events = self._appended
        self._writing = TICKS_FILE
        ticks_file.commit()
        self.ticks_written, self._durable_t_s = ticks, t_s
        self._writing = FRAMES_FILE
        frames_file.commit()
        self.frames_written = frames_file.rows
        self._writing = EVENTS_FILE
        events_file.flush()
        os.fsync(events_file.fileno())
        self.events_written = events
        self._writing = STATUS_FILE
        self._write_status()  # the counts made durable, for a reader after SIGKILL or a power cut

    def _files(self) -> tuple[NpyAppender, NpyAppender, TextIO]:
        """ticks.npy, frames.npy and events.jsonl: ``__init__`` opened them (or raised)."""
        if self._ticks is None or self._frames is None or self._events is None:
            raise RuntimeError(f"{self.path}: the log's files were not opened")
        return self._ticks, self._frames, self._events

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
        return rows
