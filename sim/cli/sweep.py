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
import time
from pathlib import Path
from typing import Any

from sim import stopping
from sim.cli.options import schema_type
from sim.cli.output import check_output_path
from sim.config import FlightSettings
from sim.errors import ConfigError
from sim.sweep.output import FORMATS, Progress, table_lines, write_rows
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


def run(args: argparse.Namespace) -> int:
    out = args.out or f"{Path(args.sweep).stem}.csv"
    if Path(out).suffix not in FORMATS:
        raise ConfigError(f"--out {out!r}: expected a name ending in {' or '.join(FORMATS)}")
    check_output_path(out, "--out")
    if args.plot:
        from sim.plots import check_available

        check_available()
        check_output_path(args.plot, "--plot")
    if args.backend == "local" and args.ray_address:
        raise ConfigError("--ray-address is for --backend ray")
    plan = read_sweep(args.sweep)
    if args.plot:
        from sim.sweep.metrics import METRICS

        if args.plot_metric not in METRICS:
            raise ConfigError(f"--plot-metric {args.plot_metric!r}: expected one of {', '.join(METRICS)}")
        if not plan.parameters:
            raise ConfigError(f"--plot: {args.sweep} varies no parameter to plot against")
    workers = args.workers or os.cpu_count() or 1
    rows: dict[int, dict[str, Any]] = {}
    progress = None if args.quiet else Progress(plan.flights)
    if not args.quiet:
        batches = f"{len(plan.batches)} batch{'es' if len(plan.batches) != 1 else ''}"
        where = f"{workers} worker process{'es' if workers != 1 else ''}"
        if args.backend == "ray":
            where = f"Ray at {args.ray_address}" if args.ray_address else f"a Ray instance started here, {workers} CPUs"
        print(f"heli-sim sweep: {plan.flights} flights in {batches} (progress counts finished batches), on {where}",
              file=sys.stderr, flush=True)  # fmt: skip

    last_write = [time.monotonic()]

    def done(batch: Batch, results: list[tuple[int, dict[str, Any]]]) -> None:
        for index, metrics in results:
            rows[index] = {"flight": index, **plan.values[index], **metrics}
        if progress is not None:
            progress.add(len(batch.flights))
        if time.monotonic() - last_write[0] >= _SAVE_EVERY_S and len(rows) < plan.flights:
            write_rows(out, plan.parameters, [rows[i] for i in sorted(rows)])  # what is flown is on disk
            last_write[0] = time.monotonic()

    from sim.sweep.backends import run_batches

    try:
        run_batches(plan.batches, args.backend, workers, done, args.ray_address)
    except BaseException as error:  # a stop (Ray may wrap it) or a failure: keep the rows flown
        ordered = [rows[i] for i in sorted(rows)]
        write_rows(out, plan.parameters, ordered)
        how = "stopped" if stopping.stop_in(error) is not None else "failed"
        print(f"\nheli-sim sweep: {how}; {len(ordered)} of {plan.flights} flights written to {out}",
              file=sys.stderr, flush=True)  # fmt: skip
        raise
    ordered = [rows[i] for i in range(plan.flights)]
    write_rows(out, plan.parameters, ordered)
    if not args.quiet:
        print("\n".join(table_lines(plan.name, plan.parameters, ordered)))
        print(f"rows: {out}")
    if args.plot:
        from sim.plots import plot_sweep

        plot_sweep(plan.name, plan.parameters, plan.grid, ordered, args.plot_metric, args.plot)
        if not args.quiet:
            print(f"plot: {args.plot}")
    return 0
