"""``heli-sim export LOG --format csv|tlog``: a flight log as a file other tools open.

``csv``: one table, a row per tick and vehicle (``sim.log.export_csv``), for PlotJuggler and
pandas.  ``tlog``: vehicle 0's MAVLink telemetry (``sim.log.export_tlog``), for MAVExplorer, UAV
Log Viewer and Mission Planner.  Unless ``--no-replay``, the log is replayed first to recover the
built-in controller's state at every tick (``sim.log.export_controller``): the CSV's ``ctl_*``
columns, the tlog's armed flag and flight mode.

The output (default: next to the log, named after it, ``flight.hslog`` -> ``flight.csv``) is
never written over unless ``--force``, and is written whole or not at all (a temporary file
renamed at the end: an error or Ctrl-C leaves nothing).  A log cut short (its flight was killed,
its disk filled) exports what it holds, and a line on stderr says so; the status is still 0.

Exit status: 0 written; 2 a log that cannot be read, an output that exists (without ``--force``)
or cannot be written, a bad option (one line); 130/143 stopped by SIGINT/SIGTERM (nothing written).
"""

from __future__ import annotations

import argparse
import os
import sys

from heli.errors import ConfigError
from sim import stopping
from sim.cli import EXIT_OK, check_output_path
from sim.cli.output import OutputError
from sim.log.export_controller import ControllerTrace, replay_controller
from sim.log.export_csv import csv_columns, write_csv
from sim.log.export_output import output_problem, replacing
from sim.log.export_timeline import flight_start_unix_s, simulated_time_s
from sim.log.reader import FlightLog, read_log

FORMATS = ("csv", "tlog")
_LOG_SUFFIX = ".hslog"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        description="Export a flight log (written by 'fly --log') as CSV (a row per tick and vehicle: PlotJuggler, "
        "pandas) or as a MAVLink telemetry log of vehicle 0 (.tlog: MAVExplorer, UAV Log Viewer, Mission Planner).",
    )
    parser.add_argument("log", metavar="LOG", help="a flight log directory written by 'heli-sim fly --log'")
    parser.add_argument("--format", required=True, choices=FORMATS, help="csv: a table; tlog: MAVLink telemetry")
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="the file to write (default: next to the log, named after it: flight.hslog -> flight.csv, flight.tlog)",
    )
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
    parser.add_argument(
        "--no-replay",
        action="store_true",
        help="do not replay the log for the controller's state: no ctl_* columns; the tlog's armed flag and mode "
        "come from the pilot's switches (faster for a long log)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line saying what was written")
    parser.set_defaults(run=run)


def default_output(log_path: str, file_format: str) -> str:
    """Next to the log, its name with ``.hslog`` (if any) replaced by ``.csv`` or ``.tlog``."""
    folder, name = os.path.split(os.path.normpath(log_path))
    stem = name.removesuffix(_LOG_SUFFIX) if name not in ("", ".", "..", os.sep) else ""
    return os.path.join(folder, f"{stem or 'flight'}.{file_format}")


def run(args: argparse.Namespace) -> int:
    output = args.output if args.output is not None else default_output(args.log, args.format)
    check_output_path(output, "--output")
    problem = output_problem(output, args.force)
    if os.path.realpath(os.path.dirname(os.path.abspath(output))) == os.path.realpath(args.log):
        problem = "is inside the log; name a file outside it"
    if problem is not None:
        raise ConfigError(f"--output {output}: {problem}")
    log = read_log(args.log)
    notes = []
    # from here a signal raises Stopped where the export is (the temporary file is removed on the
    # way out) and a second one changes nothing: the clean-up is never cut short
    with stopping.handling_stops():
        trace = ControllerTrace(None) if args.no_replay else replay_controller(log)
        if trace.note is not None:
            notes.append(trace.note)
        try:
            with replacing(output) as temporary:
                written = _write(args.format, log, trace, temporary, notes)
        except OSError as error:  # a full disk, the folder gone, ...
            raise OutputError(f"--output {output}: cannot write it: {error.strerror or error}") from None
    if log.incomplete is not None or log.incomplete_tick:
        notes.append(_incomplete(log))
    for note in notes:
        print(f"heli-sim export: {note}", file=sys.stderr)
    if not args.quiet:
        print(f"heli-sim export: wrote {output}: {written}")
    return EXIT_OK


def _write(file_format: str, log: FlightLog, trace: ControllerTrace, path: str, notes: list[str]) -> str:
    """Write the export to ``path``; what was written, for the closing line (and notes to ``notes``)."""
    if file_format == "csv":
        with open(path, "w", newline="", encoding="utf-8") as stream:
            rows = write_csv(log, trace, stream)
        return f"{rows} rows x {len(csv_columns(trace))} columns"
    from sim.log.export_tlog import write_tlog  # pymavlink: loaded only for a tlog

    start_s, start_note = flight_start_unix_s(log)
    if start_note is not None:
        notes.append(start_note)
    if log.fleet > 1:
        notes.append(f"the tlog holds vehicle 0 of {log.fleet}: one MAVLink system")
    counts = write_tlog(log, trace, path, start_s)
    each = ", ".join(f"{name} {count}" for name, count in counts.items())
    return f"{sum(counts.values())} MAVLink messages of vehicle 0 ({each})"


def _incomplete(log: FlightLog) -> str:
    times = simulated_time_s(log)
    why = log.incomplete or "its last tick was cut short"
    ends = f", the flight's first {times[-1]:.3f} s" if len(times) else ""
    return f"the log is incomplete ({why}): it holds {log.tick_count} ticks{ends}; exported those"
