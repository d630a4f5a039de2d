"""``heli-sim bench``: measure and print the project's performance figures."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from heli.errors import ConfigError
from sim.bench import BENCHMARKS, ON_REQUEST, machine_info
from sim.cli import EXIT_BAD_INPUT, EXIT_OK, check_output_path
from sim.cli.options import schema_type
from sim.cli.output import write_json_output
from sim.config import FlightSettings
from sim.dataclass_io import show


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        description="Measure the project's performance figures (medians of repeats in one run) and print them.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all but {', '.join(ON_REQUEST)})",
    )
    parser.add_argument("--json", metavar="FILE", help="also write {machine, results} as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    parser.add_argument(
        "--duration",
        type=schema_type(FlightSettings, "duration_s"),
        metavar="S",
        help="soak: how long to fly (default 600 s)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the figures as PNG (io, step; with several, FILE gets -NAME before its suffix); "
        "needs matplotlib: pip install 'heli-sim[plot]'",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = args.names or [name for name in BENCHMARKS if name not in ON_REQUEST]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark {show(unknown[0])}: expected one of {', '.join(BENCHMARKS)}")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration {args.duration:g}: expected a positive number of seconds")
    check_output_path(args.json, "--json")
    plots = _plot_paths(args.plot, names)
    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, numpy {machine['numpy']}")
    results = []
    written = True  # every output file named on the command line
    for name in names:
        options: dict = {"duration_s": args.duration, "announce": _to_stderr} if name == "soak" else {}
        figures: dict = {}
        if name in plots:
            options["figures"] = figures
        rows = BENCHMARKS[name](quick=args.quick, **options)
        results.extend(rows)
        print(f"\n{name}:")
        print_table(rows)
        if name in plots:
            from sim.plots import plot

            try:
                print(f"  figure: {plot(name, rows, figures, plots[name])}")
            except OSError as error:  # the figures are printed above: only the picture is lost
                reason = error.strerror or error
                print(f"heli-sim bench: error: --plot {plots[name]}: cannot write it: {reason}", file=sys.stderr)
                written = False
    data = {"machine": machine, "results": [r.to_dict() for r in results]}
    written = write_json_output(args.json, data, "--json", "bench") and written
    interrupted = [int(r.value) for r in results if r.metric == "interrupted_by_signal"]
    if interrupted:
        return 128 + interrupted[0]  # 130 Ctrl-C, 143 SIGTERM, as for fly
    return EXIT_OK if written else EXIT_BAD_INPUT


def print_table(rows: list) -> None:
    """One benchmark's figures as a table a person reads: the metric (the ``--json`` key), then the value
    in its unit, rounded as a person writes it ("2.74 M/s", "17.7 us", "10,000 vehicles", "0.51x")."""
    labels = [f"{r.metric} [{r.protocol}]" if r.protocol else r.metric for r in rows]
    cells = [_cell(format_value(r.value, r.unit)) for r in rows]
    width = max((len(label) for label in labels), default=0)
    number_width = max((len(number) for number, _ in cells), default=0)
    for label, (number, unit) in zip(labels, cells, strict=True):
        print(f"  {label:<{width}}  {number:>{number_width}} {unit}".rstrip())


def _cell(text: str) -> tuple[str, str]:
    """(number, unit) of a formatted value, so that the numbers line up: "2.74 M/s", "0.51x"."""
    if " " not in text and text.endswith("x"):
        return text[:-1], "x"
    number, _, unit = text.partition(" ")
    return number, unit


def format_value(value: float, unit: str) -> str:
    """``value`` in ``unit`` as a person writes it: whole numbers with separators, rates in k or M a second,
    times and other measures to three significant figures, ratios as 1.23x."""
    if not math.isfinite(value):
        return f"n/a {unit}".rstrip()  # not measured (a NaN), or beyond measure
    if unit == "x":
        return f"{value:.2f}x"
    magnitude = abs(value)
    if unit == "1/s":
        if round(magnitude / 1e3, 1) >= 1000.0:  # what k/s would round to 1000.0 reads as M/s
            return f"{value / 1e6:.2f} M/s"
        if magnitude >= 1e4:
            return f"{value / 1e3:.1f} k/s"
        return f"{value:,.1f} /s"
    if magnitude >= 1e15:
        return f"{value:.3g} {unit}".rstrip()
    if float(value).is_integer():
        return f"{int(value):,} {unit}".rstrip()
    if magnitude >= 999.5:  # three significant figures would round to 1000: whole numbers from here
        return f"{value:,.0f} {unit}".rstrip()
    if magnitude < 0.001:
        return f"{value:.2e} {unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _plot_paths(plot_file: str | None, names: list[str]) -> dict[str, str]:
    """Benchmark name -> PNG path for ``--plot`` (checked before anything runs)."""
    if plot_file is None:
        return {}
    from sim.plots import PLOTTERS, check_available

    drawable = [name for name in names if name in PLOTTERS]
    if not drawable:
        raise ConfigError(f"--plot: none of {', '.join(names)} has a figure; expected one of {', '.join(PLOTTERS)}")
    check_available()
    check_output_path(plot_file, "--plot")
    if len(drawable) == 1:
        return {drawable[0]: plot_file}
    path = Path(plot_file)
    return {name: str(path.with_name(f"{path.stem}-{name}{path.suffix or '.png'}")) for name in drawable}
