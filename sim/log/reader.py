"""Reads a flight log (``sim.log.format``) back, checking it is one: every problem is a
``LogError`` that names the file and what was expected.

A log cut short by SIGKILL or a power cut reads up to its last flush; a tick whose vehicles were
not all written is dropped (``FlightLog.incomplete_tick``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from sim.errors import LogError
from sim.log.format import (
    EVENTS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAME_DTYPE,
    FRAMES_FILE,
    HEADER_FILE,
    TICK_DTYPE,
    TICKS_FILE,
    read_npy_rows,
)

__all__ = ["FlightLog", "read_log"]


@dataclass
class FlightLog:
    """A log read back: its header, tick rows (T * fleet, tick-major), frames and events."""

    path: str
    header: dict
    ticks: np.ndarray
    frames: np.ndarray
    events: list[dict]
    incomplete_tick: bool = False  # the last tick's rows were cut short (and are not in ``ticks``)

    @property
    def fleet(self) -> int:
        return int(self.header["fleet"])

    @property
    def tick_count(self) -> int:
        return len(self.ticks) // self.fleet


def read_log(path: str) -> FlightLog:
    """The log at ``path``; ``LogError`` if it is missing, not a log, or damaged beyond its last flush."""
    expected = f"expected a heli-sim flight log (a directory with {HEADER_FILE}, {TICKS_FILE}, ...)"
    if not os.path.exists(path):
        raise LogError(f"{path}: no such log; {expected}")
    if not os.path.isdir(path):
        raise LogError(f"{path}: is a file, not a flight log; {expected}")
    header_path = os.path.join(path, HEADER_FILE)
    if not os.path.isfile(header_path):
        raise LogError(f"{path}: no {HEADER_FILE}, so not a flight log; {expected}")
    try:
        with open(header_path) as handle:
            header = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LogError(f"{header_path}: not a heli-sim log header ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise LogError(f'{header_path}: not a heli-sim log header (its "format" is not {FORMAT_NAME!r})')
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LogError(f"{header_path}: log format {version!r}; this heli-sim reads format {FORMAT_VERSION} and older")
    for key in ("fleet", "heli", "flight", "ports"):
        if key not in header:
            raise LogError(f"{header_path}: the header has no {key!r}; the log is damaged")
    ticks = _read_rows(os.path.join(path, TICKS_FILE), TICK_DTYPE)
    frames = _read_rows(os.path.join(path, FRAMES_FILE), FRAME_DTYPE)
    events = _read_events(os.path.join(path, EVENTS_FILE))
    fleet = int(header["fleet"])
    whole = len(ticks) - len(ticks) % fleet
    log = FlightLog(path, header, ticks[:whole], frames, events, incomplete_tick=whole != len(ticks))
    if len(log.ticks) and not (log.ticks["vehicle"].reshape(-1, fleet) == np.arange(fleet)).all():
        raise LogError(
            f"{path}/{TICKS_FILE}: rows are not grouped tick by tick for {fleet} vehicles; the log is damaged"
        )
    return log


def _read_rows(path: str, dtype: np.dtype) -> np.ndarray:
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise LogError(f"{path}: missing; a flight log has {name}")
    try:
        found, claimed, offset = read_npy_rows(path)
    except (ValueError, OSError, SyntaxError) as error:
        raise LogError(f"{path}: not an NPY array file ({error}); the log is damaged") from None
    if found != dtype:
        raise LogError(f"{path}: its columns are not those of a format-{FORMAT_VERSION} {name}; the log is damaged")
    held = (os.path.getsize(path) - offset) // dtype.itemsize
    if held < claimed:
        raise LogError(f"{path}: truncated: its header counts {claimed} rows, the file holds {held}")
    with open(path, "rb") as handle:
        handle.seek(offset)
        return np.fromfile(handle, dtype=dtype, count=claimed)


def _read_events(path: str) -> list[dict]:
    if not os.path.isfile(path):
        raise LogError(f"{path}: missing; a flight log has {os.path.basename(path)}")
    events = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith("\n"):
                break  # the last line of a log cut short: not yet flushed whole
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                raise LogError(f"{path}:{number}: not a JSON event line; the log is damaged") from None
            events.append(event)
    return events
