"""A sweep's rows: to CSV or Parquet, as a short table on the terminal, and its progress.

A row is the flight's number, the values of the swept parameters (in the sweep file's order),
then the ``METRICS``.  CSV is written with the standard library (empty cells for missing values);
Parquet needs pyarrow (``pip install 'heli-sim[parquet]'``).  pandas and polars open either.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sim.cli.output import write_output
from sim.errors import ConfigError
from sim.sweep.metrics import METRICS

__all__ = ["FORMATS", "Progress", "check_format", "columns", "encode_rows", "table_lines", "write_rows"]

FORMATS = (".csv", ".parquet")
_SHOWN_ROWS = 20


def columns(parameters: tuple[str, ...]) -> list[str]:
    return ["flight", *parameters, *METRICS]


def check_format(path: str | Path) -> None:
    """Refuse, before anything flies, an output this machine cannot write (``ConfigError``)."""
    suffix = Path(path).suffix
    if suffix not in FORMATS:
        raise ConfigError(f"--out {str(path)!r}: expected a name ending in {' or '.join(FORMATS)}")
    if suffix == ".parquet":
        _pyarrow(path)


def _pyarrow(path: str | Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"--out {path}: writing Parquet needs pyarrow: pip install 'heli-sim[parquet]' "
                          "(or write .csv)") from None  # fmt: skip
    return pa, pq


def encode_rows(path: str | Path, parameters: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    """``rows`` (dicts with every column) as the bytes of a CSV or Parquet file, by ``path``'s suffix."""
    names = columns(parameters)
    if Path(path).suffix == ".parquet":
        pa, pq = _pyarrow(path)
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in names}), sink)
        return sink.getvalue().to_pybytes()
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(names)
    for row in rows:
        writer.writerow(_cell(row.get(name)) for name in names)
    return text.getvalue().encode()


def write_rows(path: str | Path, parameters: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """``rows`` to ``path`` whole (a regular file through a temporary one renamed over it; a device or a
    FIFO directly); ``OutputError`` (one line) if it cannot be written."""
    write_output(str(path), encode_rows(path, parameters, rows), "--out")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value) if value not in ("", None) else "-"


def table_lines(name: str, parameters: tuple[str, ...], rows: list[dict[str, Any]]) -> list[str]:
    """A short table: a summary line, then up to ``_SHOWN_ROWS`` flights (the parameters and the
    main metrics)."""
    crashed = sum(1 for row in rows if row["crashed"])
    lines = [f"sweep {name!r}: {len(rows)} flights, {crashed} crashed"]
    shown = ["flight", *parameters, "crash_reason", "max_tilt_deg", "rate_error_rms_deg_s", "max_drift_m",
             "landing_sink_m_s", "rpm_droop_pct", "failsafe_s"]  # fmt: skip
    headers = shown  # the files' column names
    cells = [[_text(row[key]) for key in shown] for row in rows[:_SHOWN_ROWS]]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    if len(rows) > _SHOWN_ROWS:
        lines.append(f"... and {len(rows) - _SHOWN_ROWS} more flights in the file")
    return lines


class Progress:
    """Flights done of the total, on stderr: a bar redrawn in place on a terminal, a line per
    tenth otherwise (a log, CI)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.started = time.monotonic()
        self._tty = stream.isatty()
        self._next_tenth = 1

    def add(self, flights: int) -> None:
        self.done += flights
        elapsed = time.monotonic() - self.started
        text = f"{self.done}/{self.total} flights, {elapsed:.1f} s"
        if self._tty:
            filled = round(30 * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {text}")
            if self.done >= self.total:
                self.stream.write("\n")
        elif self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // self.total + 1
            self.stream.write(f"sweep: {text}\n")
        self.stream.flush()
