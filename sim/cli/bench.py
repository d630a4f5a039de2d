"""``heli-sim bench``: measure and print the project's performance figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from heli.errors import ConfigError
from sim.bench import BENCHMARKS, machine_info
from sim.cli import check_output_path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="run benchmarks and print the figures",
        description="Measure the project's performance figures (medians of repeats in one run) and print them.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", metavar="FILE", help="also write {machine, results} as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier figures)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}: expected one of {', '.join(BENCHMARKS)}")
    check_output_path(args.json, "--json")
    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, numpy {machine['numpy']}")
    results = []
    for name in names:
        for result in BENCHMARKS[name](quick=args.quick):
            results.append(result)
            metric = f"{result.metric} [{result.protocol}]" if result.protocol else result.metric
            print(f"  {result.bench:<9} {metric:<44} {result.value:>14,.2f} {result.unit}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "results": [r.to_dict() for r in results]}, indent=2) + "\n"
        )
    return 0
