"""Reads a flight log (``sim.log.format``) back, trusting nothing in it: every problem is a
``LogError`` that names the file, the field and what was expected.

Only regular files are read (a FIFO, a device or a directory in their place is named, never
opened for a blocking read), JSON files under a size cap and a nesting limit, and every value is
checked (``sim.log.validate``) before a replay uses it.  A log cut short by SIGKILL or a power cut
reads up to its last flush; a tick whose vehicles were not all written is dropped
(``FlightLog.incomplete_tick``); ``status.json`` says whether the log is complete
(``FlightLog.incomplete``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from sim.config import FlightConfig, HeliConfig
from sim.errors import LogError
from sim.log import validate
from sim.log.format import (
    EVENT_LINE_MAX_BYTES,
    EVENTS_FILE,
    EVENTS_MAX_BYTES,
    FORMAT_VERSION,
    FRAME_DTYPE,
    FRAMES_FILE,
    HEADER_FILE,
    HEADER_MAX_BYTES,
    JSON_MAX_DEPTH,
    STATUS_BYTES,
    STATUS_FILE,
    TICK_DTYPE,
    TICKS_FILE,
    read_npy_rows,
)

__all__ = ["FlightLog", "read_log"]

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


@dataclass
class FlightLog:
    """A log read back: its header, tick rows (T * fleet, tick-major), frames and events, and the
    recorded helicopter and flight configuration (validated)."""

    path: str
    header: dict
    ticks: np.ndarray
    frames: np.ndarray
    events: list[dict]
    incomplete_tick: bool = False  # the last tick's rows were cut short (and are not in ``ticks``)
    status: dict | None = None  # status.json (None: written before heli-sim kept one)
    heli: HeliConfig | None = None
    config: FlightConfig | None = None

    @property
    def fleet(self) -> int:
        return int(self.header["fleet"])

    @property
    def tick_count(self) -> int:
        return len(self.ticks) // self.fleet

    @property
    def incomplete(self) -> str | None:
        """Why the log holds less than the flight (its writing stopped, or never finished); None
        when it is complete or, for a log without ``status.json``, not known to be incomplete."""
        if self.status is None or self.status["status"] == "complete":
            return None
        if self.status["status"] == "stopped":
            return f"its writing stopped during the flight: {self.status['reason']}"
        return "its writer never finished: the flight was killed, the machine stopped, or it is still flying"


def read_log(path: str) -> FlightLog:
    """The log at ``path``; ``LogError`` if it is missing, not a log, damaged beyond its last
    flush, or holds anything outside its format."""
    expected = f"expected a heli-sim flight log (a directory with {HEADER_FILE}, {TICKS_FILE}, ...)"
    if not os.path.exists(path):
        raise LogError(f"{path}: no such log; {expected}")
    if not os.path.isdir(path):
        raise LogError(f"{path}: is a file, not a flight log; {expected}")
    header_path = os.path.join(path, HEADER_FILE)
    if not os.path.lexists(header_path):
        raise LogError(f"{path}: no {HEADER_FILE}, so not a flight log; {expected}")
    header = _parse_json(_read_capped(header_path, HEADER_MAX_BYTES), header_path, "not a heli-sim log header")
    heli, config = validate.check_header(header, header_path)
    ticks_path, frames_path = os.path.join(path, TICKS_FILE), os.path.join(path, FRAMES_FILE)
    rows = _read_rows(ticks_path, TICK_DTYPE)
    frames = _read_rows(frames_path, FRAME_DTYPE)
    whole = len(rows) - len(rows) % config.flight.fleet
    ticks = rows[:whole]
    validate.check_ticks(ticks, config, ticks_path)
    validate.check_frames(frames, header["ports"], frames_path)
    events = _read_events(os.path.join(path, EVENTS_FILE))
    status = _read_status(os.path.join(path, STATUS_FILE))
    log = FlightLog(path, header, ticks, frames, events, whole != len(rows), status, heli, config)
    if status is not None and status["status"] == "complete":
        _check_complete(log, os.path.join(path, STATUS_FILE))
    return log


def _open_regular(path: str) -> BinaryIO:
    """``path`` open for reading if it is a regular file (a symlink to one is fine); a FIFO, a
    device or a directory is named, and opening it never blocks."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LogError(f"{path}: missing; a flight log has {name}") from None
    except OSError as error:
        raise LogError(f"{path}: cannot open it: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise LogError(f"{path}: is {kind}; a flight log's {name} is a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_capped(path: str, limit: int) -> bytes:
    """The whole of a small file, refused unread when larger than ``limit`` bytes."""
    with _open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise LogError(f"{path}: {max(size, len(data)):,} bytes; a flight log's {os.path.basename(path)} is at most "
                       f"{limit:,}")  # fmt: skip
    return data


def _json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in ``data`` (brackets inside strings do not count)."""
    if data.count(b"[") + data.count(b"{") <= JSON_MAX_DEPTH:
        return 0  # too few brackets to nest too deep: the common case, decided without a scan
    values = np.frombuffer(_JSON_STRING.sub(b'""', data), np.uint8)
    opens = (values == ord("[")) | (values == ord("{"))
    closes = (values == ord("]")) | (values == ord("}"))
    depth = np.cumsum(opens.astype(np.int64) - closes.astype(np.int64))
    return int(depth.max()) if len(depth) else 0


_INT_DIGITS = 40  # a longer integer is no count, seed or setting a log holds


class _LongInteger:
    """Where JSON had an integer of more digits than any field takes: kept as a value of no
    field's type, so the check of the field it sits in names it."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _parse_int(text: str) -> int | _LongInteger:
    return int(text) if len(text) <= _INT_DIGITS else _LongInteger(len(text.lstrip("-")))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a heli-sim log holds")


def _parse_json(data: bytes, where: str, what: str) -> Any:
    """One JSON value, nested at most ``JSON_MAX_DEPTH`` deep, no NaN or Infinity."""
    depth = _json_depth(data)
    if depth > JSON_MAX_DEPTH:
        raise LogError(
            f"{where}: {what} (arrays and objects nested {depth} deep; a log nests at most {JSON_MAX_DEPTH})"
        )
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant, parse_int=_parse_int)
    except UnicodeDecodeError:
        raise LogError(f"{where}: {what} (not UTF-8 text)") from None
    except (ValueError, RecursionError) as error:  # bad JSON, an integer of more than 4300 digits, NaN
        raise LogError(f"{where}: {what} ({validate.shorten(str(error), 120)})") from None


def _read_rows(path: str, dtype: np.dtype) -> np.ndarray:
    name = os.path.basename(path)
    with _open_regular(path) as handle:
        try:
            found, claimed, offset = read_npy_rows(handle)
        except (ValueError, OSError) as error:
            raise LogError(f"{path}: not an NPY array file ({validate.shorten(str(error), 120)}); the log is damaged") \
                from None  # fmt: skip
        if found != dtype:
            raise LogError(f"{path}: its columns are not those of a format-{FORMAT_VERSION} {name}; the log is damaged")
        held = (os.fstat(handle.fileno()).st_size - offset) // dtype.itemsize
        if held < claimed:
            raise LogError(f"{path}: truncated: its header counts {claimed} rows, the file holds {held}")
        available = _available_memory_bytes()
        if available is not None and claimed * dtype.itemsize > available:
            raise LogError(
                f"{path}: {claimed:,} rows ({claimed * dtype.itemsize / 2**30:.1f} GiB), more than the "
                f"{available / 2**30:.1f} GiB of memory available to read them into"
            )
        rows = np.fromfile(handle, dtype=dtype, count=claimed)
    if len(rows) != claimed:  # the file shrank while we read it
        raise LogError(f"{path}: truncated: its header counts {claimed} rows, the file holds {len(rows)}")
    return rows


def _available_memory_bytes() -> int | None:
    """The kernel's estimate of the memory available without swapping (None where unknown)."""
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_events(path: str) -> list[dict]:
    events = []
    with _open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > EVENTS_MAX_BYTES:
            raise LogError(f"{path}: {size:,} bytes; a flight log's {EVENTS_FILE} is at most {EVENTS_MAX_BYTES:,}")
        for number, line in enumerate(iter(lambda: handle.readline(EVENT_LINE_MAX_BYTES + 1), b""), start=1):
            where = f"{path}:{number}"
            if not line.endswith(b"\n"):
                if len(line) > EVENT_LINE_MAX_BYTES:
                    raise LogError(f"{where}: a line longer than {EVENT_LINE_MAX_BYTES:,} bytes; the log is damaged")
                break  # the last line of a log cut short: not yet flushed whole
            event = _parse_json(line, where, "not a JSON event line; the log is damaged")
            validate.check_events(event, where)
            events.append(event)
    return events


def _read_status(path: str) -> dict | None:
    if not os.path.lexists(path):
        return None  # a log from before status.json: whether it is complete is not known
    data = _read_capped(path, STATUS_BYTES)
    return validate.check_status(_parse_json(data, path, "not a log status"), path)


def _check_complete(log: FlightLog, where: str) -> None:
    """A log marked complete holds exactly the rows its status counts."""
    status = log.status or {}
    held = {"ticks": log.tick_count, "frames": len(log.frames), "events": len(log.events)}
    for key, count in held.items():
        if status[key] != count or log.incomplete_tick:
            raise LogError(
                f'{where}: "{key}" = {status[key]} but the log holds {count}: a complete log holds what its status '
                "counts; the log is damaged"
            )
