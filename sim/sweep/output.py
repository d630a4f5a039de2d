"""A sweep's rows: to CSV or Parquet, as a short table on the terminal, and its progress.

A row is the flight's number, the values of the swept parameters (in the sweep file's order),
then the ``METRICS``.  CSV is written with the standard library (empty cells for missing values);
Parquet needs pyarrow (``pip install 'heli-sim[parquet]'``).  pandas and polars open either.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sim.errors import ConfigError
from sim.sweep.metrics import METRICS

__all__ = ["FORMATS", "Progress", "columns", "table_lines", "write_rows"]

FORMATS = (".csv", ".parquet")
_SHOWN_ROWS = 20


def columns(parameters: tuple[str, ...]) -> list[str]:
    return ["flight", *parameters, *METRICS]


def write_rows(path: str | Path, parameters: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """``rows`` (dicts with every column) to ``path``, CSV or Parquet by its suffix; written whole
    to a temporary file beside it, then renamed over it."""
    path = Path(path)
    names = columns(parameters)
    partial = path.with_name(path.name + ".partial")
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(f"{path}: writing Parquet needs pyarrow: pip install 'heli-sim[parquet]' "
                              "(or write .csv)") from None  # fmt: skip
        pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in names}), partial)
    else:
        with open(partial, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(names)
            for row in rows:
                writer.writerow(_cell(row.get(name)) for name in names)
    partial.replace(path)


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
