"""``heli-sim sweep SWEEP.toml``: many headless flights, faster than real time, one row each.

Reads the sweep file (``sim.sweep.plan``), flies its batches on the chosen backend, shows the
progress, writes the rows (CSV or Parquet) and prints a short table.  The rows flown so far are
written as the sweep goes (at most once a second), and a stop (Ctrl-C, SIGTERM) or a failure
writes those of every flight already flown and says how many there are.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim import stopping
from sim.cli import EXIT_BAD_INPUT, EXIT_FLIGHT_FAILED
from sim.cli.options import schema_type
from sim.cli.output import OutputError, check_output_path
from sim.config import FlightSettings
from sim.errors import ConfigError
from sim.sweep.output import Progress, check_format, encode_rows, table_lines, write_rows
from sim.sweep.plan import Batch, read_sweep

__all__ = ["add_parser", "run"]

_SAVE_EVERY_S = 1.0  # the rows flown so far are written at most this often (a crash or a stop loses none older)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sweep",
        description="Fly a sweep file's flights headless, as fast as the kernels go (flights that differ only in "
        "controller gains fly together as one batch), on local worker processes or a Ray cluster, and write one row "
        "per flight: the swept values, then the metrics (crashed and why, max tilt, rate tracking error, drift, "
        "landing sink, rpm droop, failsafe time).",
    )
    parser.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file (see README, 'Sweeps')")
    parser.add_argument("--out", metavar="FILE", help="rows to FILE.csv or FILE.parquet (default: SWEEP.csv here)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local worker processes (default) or Ray (pip install 'heli-sim[cluster]')")  # fmt: skip
    parser.add_argument(
        "--workers", type=schema_type(FlightSettings, "workers"), metavar="N",
        help="worker processes (default: one per core; Ray: the CPUs of the instance it starts)",
    )  # fmt: skip
    parser.add_argument("--ray-address", metavar="ADDRESS", help="a running Ray cluster (default: start one here)")
    parser.add_argument("--plot", metavar="FILE.png", help="a metric against the first swept parameter (matplotlib)")
    parser.add_argument("--plot-metric", default="max_tilt_deg", metavar="METRIC",
                        help="the metric --plot draws (default max_tilt_deg)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress, no table")
    parser.set_defaults(run=run)


_PLOT_FORMATS = (".png", ".pdf", ".svg")


def run(args: argparse.Namespace) -> int:
    out = args.out or f"{Path(args.sweep).stem}.csv"
    check_format(out)
    check_output_path(out, "--out")
    from sim.sweep.metrics import METRICS

    if args.plot_metric not in METRICS:
        raise ConfigError(f"--plot-metric {args.plot_metric!r}: expected one of {', '.join(METRICS)}")
    if args.plot:
        from sim.plots import check_available

        if Path(args.plot).suffix not in _PLOT_FORMATS:
            raise ConfigError(f"--plot {args.plot!r}: expected a name ending in {', '.join(_PLOT_FORMATS)}")
        check_available()
        check_output_path(args.plot, "--plot")
    if args.backend == "local" and args.ray_address:
        raise ConfigError("--ray-address is for --backend ray")
    if args.ray_address:
        from sim.sweep.backends import check_ray_address

        check_ray_address(args.ray_address)
    plan = read_sweep(args.sweep)
    if args.plot and not plan.parameters:
        raise ConfigError(f"--plot: {args.sweep} varies no parameter to plot against")
    workers = min(args.workers or os.cpu_count() or 1, len(plan.batches))
    rows: dict[int, dict[str, Any]] = {}
    progress = None if args.quiet else Progress(plan.flights)
    saver = _Saver(out, plan.parameters)

    def done(batch: Batch, results: list[tuple[int, dict[str, Any]]]) -> None:
        for index, metrics in results:
            rows[index] = {"flight": index, **plan.values[index], **metrics}
        if progress is not None:
            progress.add(len(batch.flights))
        if len(rows) < plan.flights:
            saver.now_and_then([rows[i] for i in sorted(rows)])

    from sim.sweep.backends import BatchFailed, run_batches

    try:  # from the header on, a stop or a failure says how many flights were written
        if not args.quiet:
            batches = f"{len(plan.batches)} batch{'es' if len(plan.batches) != 1 else ''}"
            where = f"{workers} worker process{'es' if workers != 1 else ''}" if workers > 1 else "this process"
            if args.backend == "ray":
                where = f"Ray at {args.ray_address}" if args.ray_address else "a Ray instance started here (a few s)"
            print(f"heli-sim sweep: {plan.flights} flights in {batches} (progress counts finished batches), on {where}",
                  file=sys.stderr, flush=True)  # fmt: skip
        run_batches(plan.batches, args.backend, workers, done, args.ray_address)
        ordered = [rows[i] for i in range(plan.flights)]
        saver.finally_(ordered)
    except BaseException as error:  # a stop (Ray may wrap it), a failure: keep the rows flown
        how = "stopped" if stopping.stop_in(error) is not None else "failed"
        flown = [rows[i] for i in sorted(rows)]
        where = saver.finally_(flown) if flown else f"none flown: {out} left as it was"
        print(f"\nheli-sim sweep: {how}; {len(flown)} of {plan.flights} flights written ({where})",
              file=sys.stderr, flush=True)  # fmt: skip
        if isinstance(error, BatchFailed):  # flights that could not be flown: the sweep failed, not its input
            print(f"heli-sim sweep: error: {error}", file=sys.stderr, flush=True)
            return EXIT_FLIGHT_FAILED
        raise
    if not args.quiet:
        print("\n".join(table_lines(plan.name, plan.parameters, ordered)))
        print(f"rows: {saver.written_to}")
    if args.plot:
        from sim.plots import plot_sweep

        plot_sweep(plan.name, plan.parameters, plan.grid, ordered, args.plot_metric, args.plot)
        if not args.quiet:
            print(f"plot: {args.plot}")
    return EXIT_BAD_INPUT if saver.written_to != out else 0


class _Saver:
    """The rows to ``--out``: now and then as the sweep goes (a regular file only, at most once a
    second; a failure there is said once and the sweep goes on), and at the end, where a failure
    puts them in a file of the temporary folder instead, so that no flight flown is lost."""

    def __init__(self, out: str, parameters: tuple[str, ...]):
        self.out, self.parameters = out, parameters
        self.written_to = out
        self._last = time.monotonic()
        self._refreshable = not os.path.exists(out) or os.path.isfile(out)  # not a FIFO or /dev/stdout
        self._warned = False

    def now_and_then(self, rows: list[dict[str, Any]]) -> None:
        if not self._refreshable or time.monotonic() - self._last < _SAVE_EVERY_S:
            return
        self._last = time.monotonic()
        try:
            write_rows(self.out, self.parameters, rows)
        except OutputError as error:
            if not self._warned:
                print(f"heli-sim sweep: warning: {error}; trying again at the end", file=sys.stderr, flush=True)
                self._warned = True

    def finally_(self, rows: list[dict[str, Any]]) -> str:
        """Write ``rows`` whole; where they went."""
        try:
            write_rows(self.out, self.parameters, rows)
            return self.out
        except OutputError as error:
            fd, spare = tempfile.mkstemp(prefix="heli-sim-sweep-", suffix=Path(self.out).suffix)
            with os.fdopen(fd, "wb") as file:
                file.write(encode_rows(spare, self.parameters, rows))
            print(f"heli-sim sweep: error: {error}; the rows are in {spare}", file=sys.stderr, flush=True)
            self.written_to = spare
            return spare
