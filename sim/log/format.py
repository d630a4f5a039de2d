"""The flight log on disk: a directory of plain files that numpy and pandas open in one line.

``flight.hslog/``
  ``header.json``   format and heli-sim version, creation time, seed, the whole flight and
                    helicopter configuration, port names, column notes (written first, once)
  ``ticks.npy``     one row per vehicle per tick: timing, the replay inputs (pilot frames,
                    freshness, controller dt, physics steps, reset and pause flags), the
                    controller's command and the vehicle state after the tick's physics
  ``frames.npy``    one row per frame a port decoded or sent: time, port, direction, type,
                    sequence number, size, up to 16 values (sticks, servo positions, ...)
  ``events.jsonl``  one JSON object per line: time, kind, detail (mode switches, failsafe, ...)
  ``status.json``   whether the log is whole: ``writing`` while the flight runs (and after a
                    SIGKILL or a power cut), ``complete`` once closed in order, ``stopped`` (with
                    the reason) when writing failed (a full disk); a fixed-size file rewritten in
                    place, so marking a log stopped needs no free space

``np.load("flight.hslog/ticks.npy")`` gives a structured array; ``pandas.DataFrame(np.load(...))``
a table; ``pandas.read_json("flight.hslog/events.jsonl", lines=True)`` the events.

The ``.npy`` files grow while the flight runs.  ``NpyAppender`` writes the standard NPY header
with room to spare, appends rows, and rewrites the row count in place after each flush, once
the rows are on disk: after a crash or power loss the file holds every flushed row and a header
that claims no more than that.

A reader trusts nothing in a log (``sim.log.validate``): the limits below bound what it reads.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import BinaryIO

import numpy as np

from heli.state import CommandIndex, StateIndex

__all__ = [
    "CHANNEL_COLUMNS",
    "COMMAND_COLUMNS",
    "EVENTS_FILE",
    "EVENTS_MAX_BYTES",
    "EVENT_LINE_MAX_BYTES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FRAMES_FILE",
    "FRAME_DTYPE",
    "FRAME_VALUES",
    "HEADER_FILE",
    "HEADER_MAX_BYTES",
    "IO_MODE_CODES",
    "JSON_MAX_DEPTH",
    "STATE_COLUMNS",
    "STATUSES",
    "STATUS_BYTES",
    "STATUS_FILE",
    "TICKS_FILE",
    "TICK_DTYPE",
    "TICK_FLAGS",
    "NpyAppender",
    "read_npy_rows",
    "status_bytes",
]

FORMAT_NAME = "heli-sim flight log"
FORMAT_VERSION = 1
HEADER_FILE = "header.json"
TICKS_FILE = "ticks.npy"
FRAMES_FILE = "frames.npy"
EVENTS_FILE = "events.jsonl"
STATUS_FILE = "status.json"

STATUSES = ("writing", "complete", "stopped")  # status.json's "status"
STATUS_BYTES = 1024  # status.json's fixed size (JSON padded with spaces): rewritten in place, never grown
HEADER_MAX_BYTES = 1 << 20  # a header is ~5 KiB; a bigger one is not read
EVENTS_MAX_BYTES = 64 << 20  # ~600,000 events
EVENT_LINE_MAX_BYTES = 64 << 10
JSON_MAX_DEPTH = 16  # nesting of arrays and objects in header.json and events.jsonl (the header uses 4)

IO_MODE_CODES = {"threaded": 0, "blocking": 1, "asyncio": 2}
# bits of the ``flags`` column; controller_too_slow: the user's controller was judged slower than its tick this
# tick (sim.controllers) and the built-in one took over: a clock-made judgement a replay applies
TICK_FLAGS = {"reset": 1, "controlled": 2, "paused": 4, "controller_too_slow": 8}

# the layouts' names for their columns in logs and exports, units in the names (north_m, ..., crash_code)
STATE_COLUMNS = StateIndex.EXPORTED
COMMAND_COLUMNS = CommandIndex.EXPORTED  # cmd_servo_0 ... cmd_throttle
CHANNEL_COLUMNS = tuple(f"ch{i}" for i in range(1, 17))

TICK_DTYPE = np.dtype(
    [
        ("tick", "<i8"),  # the loop's tick number (from 0)
        ("vehicle", "<i4"),
        ("t_s", "<f8"),  # wall-clock seconds since the loop started (monotonic clock)
        ("sim_time_s", "<f8"),  # simulated time after this tick's physics
        ("lateness_s", "<f8"),  # how late the loop woke for this tick's deadline
        ("missed", "<i4"),  # deadlines that passed while the loop was late (ticks skipped)
        ("io_mode", "u1"),  # IO_MODE_CODES
        ("flags", "u1"),  # TICK_FLAGS bits
        ("steps", "<i4"),  # physics steps taken this tick
        ("dt_control_s", "<f8"),  # the controller's dt this tick (0 when it did not run)
        ("fresh", "?"),  # pilot input fresh (False: the controller's failsafe is in charge)
        *((name, "<f8") for name in CHANNEL_COLUMNS),  # pilot frame, microseconds
        *((name, "<f8") for name in COMMAND_COLUMNS),  # the controller's command this tick
        *((name, "<f8") for name in STATE_COLUMNS),  # the vehicle after this tick's physics
    ]
)

FRAME_VALUES = 16
FRAME_DTYPE = np.dtype(
    [
        ("t_s", "<f8"),  # seconds since the loop started (monotonic), when read or written
        ("port", "u1"),  # index into the header's "ports"
        ("direction", "u1"),  # 0 in (decoded), 1 out (sent)
        ("type", "S24"),  # the message type, e.g. b"RcChannels"
        ("sequence", "<i4"),  # the protocol's sequence number, -1 where it has none
        ("size", "<i4"),  # bytes on the wire (outgoing; 0 for decoded frames)
        ("count", "u1"),  # how many of v0.. are used
        *((f"v{i}", "<f4") for i in range(FRAME_VALUES)),  # sticks us, servo positions, ...
    ]
)

_HEADER_BYTES = 4096  # room for the NPY header (the tick dtype's description is ~2 KiB): the count grows in place
_MAGIC = b"\x93NUMPY\x01\x00"


def _npy_header(dtype: np.dtype, rows: int) -> bytes:
    """A version 1.0 NPY header of exactly ``_HEADER_BYTES`` for ``rows`` rows of ``dtype``."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (rows,)})
    body_len = _HEADER_BYTES - len(_MAGIC) - 2
    body = text.encode("latin1").ljust(body_len - 1) + b"\n"
    if len(body) != body_len:
        raise ValueError(f"NPY header for {dtype} does not fit in {_HEADER_BYTES} bytes")
    return _MAGIC + body_len.to_bytes(2, "little") + body


class NpyAppender:
    """A growing one-dimensional ``.npy`` file of ``dtype`` rows (one writer)."""

    def __init__(self, path: str, dtype: np.dtype):
        self.path = path
        self.dtype = dtype
        self.rows = 0  # rows on disk and counted in the header
        self._pending = 0  # rows written since the last commit
        self._file = open(path, "wb")  # noqa: SIM115 - held open for the flight, closed in close()
        try:
            self._file.write(_npy_header(dtype, 0))
            self._file.flush()
        except BaseException:
            self.abandon()
            raise

    def append(self, rows: np.ndarray) -> None:
        """Write rows (not yet counted in the header: ``commit`` does that)."""
        if rows.dtype != self.dtype:
            rows = rows.astype(self.dtype)
        self._file.write(rows.tobytes())
        self._pending += len(rows)

    def commit(self, sync: bool = True) -> None:
        """Make the appended rows durable, then count them in the header."""
        pending = self._pending
        if not pending:
            return
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        self.rows += pending
        self._pending = 0
        end = self._file.tell()
        self._file.seek(0)
        self._file.write(_npy_header(self.dtype, self.rows))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        self._file.seek(end)

    def close(self) -> None:
        self.commit()
        self._file.close()

    def abandon(self) -> None:
        """Close without counting anything more (after a write failed): rows past the header's
        count may reach the file, and every reader ignores them."""
        with contextlib.suppress(OSError):  # the buffer's last bytes did not reach the disk: not counted anyway
            self._file.close()


def read_npy_rows(handle: BinaryIO) -> tuple[np.dtype, int, int]:
    """(dtype, rows the header claims, data offset) of the ``.npy`` file open in ``handle`` (at its
    start); ``ValueError`` if it is not a one-dimensional array file."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"NPY version {version[0]}.{version[1]}; expected 1.0 (or 2.0)")
    except ValueError:
        raise
    except Exception as error:  # whatever numpy's header parser raises on bytes that are not a header
        raise ValueError(f"its NPY header does not parse ({type(error).__name__})") from None
    if fortran or len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 0:
        raise ValueError(f"expected a one-dimensional array, got shape {shape}")
    return dtype, shape[0], handle.tell()


def status_bytes(status: dict) -> bytes:
    """``status`` as the exact ``STATUS_BYTES`` of ``status.json`` (JSON, padded with spaces)."""
    text = json.dumps(status).encode()
    if len(text) >= STATUS_BYTES:
        raise ValueError(f"a status of {len(text)} bytes does not fit in {STATUS_BYTES}")
    return text.ljust(STATUS_BYTES - 1) + b"\n"
