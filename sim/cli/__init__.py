"""``heli-sim``: the command line.  Each subcommand is a thin ``run(args) -> int`` in its module.

Bad input of any kind (an unknown option or value, a bad config key, unit or range) ends with
one line on stderr naming the problem and what was expected, and exit status 2, no traceback.
Exit statuses: 0 done, 1 an unexpected internal error, 2 bad input, 3 a flight that ran but
failed (a port failed, a vehicle diverged, a user controller failed, the log stopped early:
``sim.outcome``), 130 stopped by SIGINT, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from heli.errors import ConfigError, HeliSimError
from sim import __version__

__all__ = ["EXIT_BAD_INPUT", "EXIT_FLIGHT_FAILED", "EXIT_OK", "check_output_path", "main"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_FLIGHT_FAILED = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what, where, what was expected) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def check_output_path(path: str | None, option: str) -> None:
    """Refuse an output file that cannot be written, before any work is done (ConfigError)."""
    if path is None:
        return
    if Path(path).is_dir():
        raise ConfigError(f"{option} {path}: is a folder, expected a file name")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path}: folder {parent} is not writable")


def build_parser() -> argparse.ArgumentParser:
    from sim.cli import bench, calibrate, device, fly, ports, replay, tour, trim, vports

    parser = OneLineParser(
        prog="heli-sim",
        description="RC helicopter flight-controller simulator: fly, trim, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"heli-sim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log events to stderr as they happen")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    for module in (fly, replay, trim, calibrate, device, ports, vports, bench, tour):
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``heli-sim`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="heli-sim: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.run(args)
    except HeliSimError as error:
        print(f"heli-sim {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except BrokenPipeError:  # e.g. `heli-sim trim --heli xcell60 | head -3`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INTERNAL
