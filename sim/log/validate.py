"""Checks a flight log's contents against its format before anything uses them.

Every value a replay reads is checked for its type and range here, and the files are checked
against each other (fleet, row counts, step counts, simulated time): a crafted or damaged log is a
``LogError`` naming the file, the field (and the row) and what was expected, never a traceback, a
hang or a replay of something that is not a flight.  The recorded helicopter and flight tables go
through the same validation as the configuration files (``sim.config``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from heli.errors import ConfigError, HeliSimError
from sim.config import FlightConfig, HeliConfig, heli_from_table
from sim.dataclass_io import build
from sim.errors import LogError
from sim.fc.config import FRAME_STEP_RANGE_S
from sim.log.format import FORMAT_NAME, FORMAT_VERSION, IO_MODE_CODES, STATUSES, TICK_FLAGS
from sim.rc import CHANNEL_COUNT

__all__ = ["catchup_steps", "check_events", "check_frames", "check_header", "check_status", "check_ticks", "shorten"]

MAX_PORTS = 255  # frames.npy's port column is one byte; 255 stands for "not a known port"
UNKNOWN_PORT = 255
_MAX_TEXT = 4096  # characters of a header string (a path, a version, a port name)
_MESSAGE_CHARS = 500  # of a message quoting a configuration error
_EVENT_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PER_TICK = ("tick", "t_s", "sim_time_s", "lateness_s", "missed", "io_mode", "flags", "steps", "dt_control_s")
_TIME_SLACK = 1e-9
_CHANNEL_MAX_US = 65535  # a pilot frame's microseconds: the largest any protocol carries (u16)
_Bad = Callable[[int | None, str, str], None]  # (row or None, column, what was expected): raises for a row


def shorten(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters (the middle cut out)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-limit // 2 :]}"


def _value(value: Any) -> str:
    return shorten(repr(value), 80)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def catchup_steps(config: FlightConfig) -> int:
    """The most physics steps one tick can take: the loop's catch-up cap (``sim.loop``)."""
    settings = config.flight
    return max(1, round(settings.catchup_limit_s / settings.physics_dt_s))


# --- header.json


def _field(header: dict, key: str, where: str) -> Any:
    if key not in header:
        raise LogError(f"{where}: the header has no {key!r}; the log is damaged")
    return header[key]


def _check_text(header: dict, key: str, where: str) -> str:
    value = _field(header, key, where)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise LogError(f'{where}: "{key}" = {_value(value)}: expected a string of at most {_MAX_TEXT} characters')
    return value


def check_header(header: Any, where: str) -> tuple[HeliConfig, FlightConfig]:
    """The recorded helicopter and flight of a parsed ``header.json`` (``where``), every field checked."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise LogError(f'{where}: not a heli-sim log header (its "format" is not {FORMAT_NAME!r})')
    version = _field(header, "format_version", where)
    if not _is_int(version) or version < 1:
        raise LogError(
            f'{where}: "format_version" = {_value(version)}: expected a format number, 1 to {FORMAT_VERSION}'
        )
    if version > FORMAT_VERSION:
        raise LogError(f"{where}: log format {version}; this heli-sim reads format {FORMAT_VERSION} and older")
    for key in ("created_utc", "heli_sim_version", "heli_name", "heli_source"):
        _check_text(header, key, where)
    fleet = _field(header, "fleet", where)
    if not _is_int(fleet) or fleet < 1:
        raise LogError(f'{where}: "fleet" = {_value(fleet)}: expected a whole number of vehicles, at least 1')
    for key in ("loop_hz", "physics_dt_s"):
        value = _field(header, key, where)
        if not _is_number(value) or value <= 0:
            raise LogError(f'{where}: "{key}" = {_value(value)}: expected a finite number > 0')
    seed = _field(header, "seed", where)
    if not _is_int(seed):
        raise LogError(f'{where}: "seed" = {_value(seed)}: expected a whole number')
    ports = _field(header, "ports", where)
    if not isinstance(ports, list) or len(ports) > MAX_PORTS:
        raise LogError(f'{where}: "ports" = {_value(ports)}: expected a list of at most {MAX_PORTS} port names')
    for index, name in enumerate(ports):
        if not isinstance(name, str) or len(name) > _MAX_TEXT:
            raise LogError(f'{where}: "ports"[{index}] = {_value(name)}: expected a port name (a string)')
    codes = _field(header, "io_mode_codes", where)
    if codes != IO_MODE_CODES:
        raise LogError(f'{where}: "io_mode_codes" = {_value(codes)}: expected {IO_MODE_CODES} (format {version})')
    heli, config = _recorded_configuration(header, where)
    settings = config.flight
    agree = {"fleet": settings.fleet, "loop_hz": settings.loop_hz, "physics_dt_s": settings.physics_dt_s,
             "seed": settings.seed, "heli_name": heli.params.name}  # fmt: skip
    for key, recorded in agree.items():
        if header[key] != recorded:
            table = "heli.name" if key == "heli_name" else f"flight.flight.{key}"
            raise LogError(
                f'{where}: "{key}" = {_value(header[key])} but {table} = {_value(recorded)}: the header '
                "disagrees with itself; the log is damaged"
            )
    return heli, config


def _recorded_configuration(header: dict, where: str) -> tuple[HeliConfig, FlightConfig]:
    """The "heli" and "flight" tables, through the validation every configuration file gets."""
    tables = {key: _field(header, key, where) for key in ("heli", "flight")}
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise LogError(f'{where}: "{key}" = {_value(table)}: expected an object (the recorded {key} table)')
    try:
        heli = heli_from_table(tables["heli"], f"{where}: heli")
        config = build(FlightConfig, tables["flight"], source=where, path="flight")
    except ConfigError as error:  # its message names the file and the key path already
        raise LogError(f"{shorten(str(error))} (the recorded configuration does not load)") from None
    except (HeliSimError, ArithmeticError, ValueError, TypeError, RecursionError) as error:
        raise LogError(f"{where}: the recorded configuration does not load: {shorten(str(error))}") from None
    return heli, config


# --- ticks.npy


def _first(mask: np.ndarray | np.bool_) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def check_ticks(ticks: np.ndarray, config: FlightConfig, where: str) -> None:
    """Whole ticks of ``fleet`` rows, in order, every replay input in range, the step counts
    within the catch-up cap and adding up to the recorded simulated time."""
    fleet = config.flight.fleet
    if not len(ticks):
        return
    rows = ticks.reshape(-1, fleet)
    if not (rows["vehicle"] == np.arange(fleet)).all():
        raise LogError(f"{where}: rows are not grouped tick by tick for {fleet} vehicles; the log is damaged")
    first = rows[:, 0]

    def bad(row: int | None, column: str, expected: str) -> None:
        if row is not None:
            value = first[column][row].item()
            raise LogError(
                f'{where}: tick row {row} (tick {int(first["tick"][row])}): "{column}" = {value!r}: expected {expected}'
            )

    for column in ("t_s", "sim_time_s", "lateness_s", "dt_control_s"):
        bad(_first(~np.isfinite(first[column])), column, "a finite number")
    for column in _PER_TICK:
        if fleet > 1:
            differs = (rows[column] != first[column][:, None]).any(axis=1)
            bad(_first(differs), column, "the same value for every vehicle of a tick")
    tick = first["tick"]
    bad(_first(tick < 0), "tick", "a tick number >= 0")
    back = _first(np.diff(tick) <= 0) if len(tick) > 1 else None
    bad(None if back is None else back + 1, "tick", "tick numbers that increase")
    t_s = first["t_s"]
    bad(_first(t_s < 0), "t_s", "seconds >= 0 since the loop started")
    decreasing = _first(np.diff(t_s) < 0) if len(t_s) > 1 else None
    bad(None if decreasing is None else decreasing + 1, "t_s", "times that never go back")
    bad(_first(first["lateness_s"] < 0), "lateness_s", "seconds >= 0")
    bad(_first(first["missed"] < 0), "missed", "a count >= 0")
    bad(_first(~np.isin(first["io_mode"], list(IO_MODE_CODES.values()))), "io_mode", f"one of {IO_MODE_CODES}")
    flags = first["flags"].astype(np.int64)
    known = sum(TICK_FLAGS.values())  # every bit TICK_FLAGS names
    ran = (flags & TICK_FLAGS["controlled"]) != 0
    paused = (flags & TICK_FLAGS["paused"]) != 0
    bad(_first(((flags & ~known) != 0) | (ran == paused)), "flags", f"bits of {TICK_FLAGS}, controlled or paused")
    fresh = rows["fresh"].view(np.uint8)
    fresh_bad = _first((fresh > 1).any(axis=1))
    if fresh_bad is not None:
        raise LogError(f'{where}: tick row {fresh_bad}: "fresh" is not true or false; the log is damaged')
    _check_channels(rows, where)
    _check_steps(first, config, bad)
    _check_control_dt(first, ran, config, bad)


def _check_channels(rows: np.ndarray, where: str) -> None:
    """The pilot frames a replay feeds its controller: microseconds, finite, within 0..65535 (every
    protocol's range), for every vehicle."""
    for number in range(1, CHANNEL_COUNT + 1):
        column = f"ch{number}"
        values = rows[column]
        wrong = ~np.isfinite(values) | (values < 0) | (values > _CHANNEL_MAX_US)
        row = _first(wrong.any(axis=1))
        if row is not None:
            vehicle = int(np.flatnonzero(wrong[row])[0])
            value = values[row, vehicle].item()
            raise LogError(
                f'{where}: tick row {row} (tick {int(rows["tick"][row, 0])}), vehicle {vehicle}: "{column}" = '
                f"{value!r}: expected microseconds from 0 to {_CHANNEL_MAX_US}"
            )


def _check_steps(first: np.ndarray, config: FlightConfig, bad: _Bad) -> None:
    settings = config.flight
    steps = first["steps"].astype(np.int64)
    most = catchup_steps(config)
    bad(_first((steps < 0) | (steps > most)), "steps",
        f"0 to {most} physics steps (catchup_limit_s {settings.catchup_limit_s:g} s / physics_dt_s "
        f"{settings.physics_dt_s:g} s)")  # fmt: skip
    # the simulated time is the steps taken since the start (or the last reset) times dt
    reset = (first["flags"] & TICK_FLAGS["reset"]) != 0
    total = np.cumsum(steps)
    before_reset = np.where(reset, total - steps, 0)
    since_reset = total - np.maximum.accumulate(before_reset)
    expected = since_reset * settings.physics_dt_s
    sim_time = first["sim_time_s"]
    off = np.abs(sim_time - expected) > _TIME_SLACK * np.maximum(1.0, np.abs(expected))
    row = _first(off)
    if row is not None:
        bad(row, "sim_time_s", f"{expected[row].item()!r} s, the steps so far ({since_reset[row]}) times physics_dt_s")


def _check_control_dt(first: np.ndarray, ran: np.ndarray, config: FlightConfig, bad: _Bad) -> None:
    settings = config.flight
    dt_control = first["dt_control_s"]
    bad(_first(~ran & (dt_control != 0.0)), "dt_control_s", "0 in a tick where the controller did not run")
    # the loop's controller dt: the simulated time since its last run, at least one physics step (with
    # firmware in the loop: the frame's step, which may be shorter, at least that of its fastest rate)
    longest = first["sim_time_s"] + 1.0 / settings.loop_hz + settings.physics_dt_s + _TIME_SLACK
    shortest = FRAME_STEP_RANGE_S[0] if config.fc.enabled else settings.physics_dt_s
    wrong = ran & ((dt_control < shortest) | (dt_control > longest))
    bad(_first(wrong), "dt_control_s", "physics_dt_s up to the simulated time since the start plus one period")


# --- frames.npy


def check_frames(frames: np.ndarray, ports: list[str], where: str) -> None:
    """Every frame row names a recorded port (or 255), a direction, at most 16 values, a finite time."""
    checks = (
        ("t_s", ~np.isfinite(frames["t_s"]), "a finite number of seconds"),
        ("port", (frames["port"] >= len(ports)) & (frames["port"] != UNKNOWN_PORT),
         f"an index into the header's {len(ports)} ports (or {UNKNOWN_PORT})"),
        ("direction", frames["direction"] > 1, "0 (in) or 1 (out)"),
        ("count", frames["count"] > 16, "at most 16 values"),
        ("size", frames["size"] < 0, "bytes >= 0"),
        ("sequence", frames["sequence"] < -1, "a sequence number >= 0, or -1"),
    )  # fmt: skip
    for column, wrong, expected in checks:
        row = _first(wrong)
        if row is not None:
            raise LogError(f'{where}: row {row}: "{column}" = {frames[column][row].item()!r}: expected {expected}')


# --- events.jsonl and status.json


def check_events(event: Any, where: str) -> None:
    """One parsed line of ``events.jsonl``: an object with a numeric ``t_s``, a ``kind`` and a ``detail``."""
    if not isinstance(event, dict):
        raise LogError(f'{where}: {_value(event)}: expected an event object {{"t_s", "kind", "detail"}}')
    for key, valid, expected in (
        ("kind", lambda v: isinstance(v, str) and _EVENT_KIND.fullmatch(v), 'an event kind such as "mode_switch"'),
        ("t_s", _is_number, "a finite number of seconds"),
        ("detail", lambda v: isinstance(v, str), "a string"),
    ):
        if key not in event:
            raise LogError(f'{where}: the event has no "{key}"; expected {expected}')
        if not valid(event[key]):
            raise LogError(f'{where}: "{key}" = {_value(event[key])}: expected {expected}')


def check_status(status: Any, where: str) -> dict:
    """``status.json``: ``status`` (writing, complete, stopped), a ``reason``, counts >= 0."""
    if not isinstance(status, dict):
        raise LogError(f"{where}: {_value(status)}: expected a status object")
    if status.get("status") not in STATUSES:
        raise LogError(f'{where}: "status" = {_value(status.get("status"))}: expected one of {", ".join(STATUSES)}')
    if not isinstance(status.get("reason"), str):
        raise LogError(f'{where}: "reason" = {_value(status.get("reason"))}: expected a string')
    for key in ("ticks", "frames", "events", "dropped"):
        if not _is_int(status.get(key)) or status[key] < 0:
            raise LogError(f'{where}: "{key}" = {_value(status.get(key))}: expected a count >= 0')
    return status
