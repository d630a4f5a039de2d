"""``heli-sim configs``: the helicopters, flight files, pilot scripts and sweeps heli-sim ships, by the
names the commands take (``--heli xcell60``, ``--config seed-demo``, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from sim.shipped import KINDS, configs_dir, shipped_files


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "configs",
        description="List the configuration files heli-sim ships, by kind, with the name each command takes "
        "(--heli NAME, --config NAME, --pilot script:NAME, heli-sim sweep NAME) and the first line of each. "
        "The names work from any folder and after a plain pip install; so does configs/NAME.toml as the "
        "README writes it. A file of your own at that path comes first.",
    )
    parser.add_argument("--json", action="store_true", help="a JSON list of objects with keys name, kind, summary")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    files = shipped_files()
    if args.json:
        print(json.dumps([dataclasses.asdict(f) for f in files], indent=2))
        return 0
    width = max(len(f.name) for f in files)
    for kind, usage in KINDS.items():
        print(f"{kind}s ({usage}):")
        for shipped in (f for f in files if f.kind == kind):
            print(f"  {shipped.name:<{width}}  {shipped.summary}")
        print()
    print(f"(from {configs_dir()}; copy one to start your own)")
    return 0
