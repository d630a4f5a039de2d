"""``heli-sim``: the command line.  Each subcommand is a thin ``run(args) -> int`` in its module.

Bad input of any kind (an unknown option or value, a bad config key, unit or range) ends with
one line on stderr naming the problem and what was expected, and exit status 2, no traceback.
Exit statuses: 0 done, 1 an unexpected internal error, 2 bad input, 3 a flight that ran but
failed (a port failed, a vehicle diverged, a user controller failed, the log stopped early:
``sim.outcome``), 130 stopped by SIGINT, 143 stopped by SIGTERM (``sim.stopping``: at any
moment, no traceback), 141 the reader of its output went away (a pipe into ``head``).  Running
out of memory, file descriptors or processes is one line and 2 (``sim.entry.out_of_resources``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from heli.errors import HeliSimError
from sim import __version__, stopping
from sim.cli.output import check_output_path  # here too: the subcommands import it from sim.cli
from sim.entry import out_of_resources

__all__ = ["EXIT_BAD_INPUT", "EXIT_FLIGHT_FAILED", "EXIT_OK", "check_output_path", "main"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_FLIGHT_FAILED = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_SIGPIPE = 141  # the reader of stdout went away (`heli-sim configs | head -2`), as the shell says it
_MAX_MESSAGE_CHARS = 400
VERBOSE_HELP = "log events to stderr as they happen"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what, where, what was expected) and exit 2."""

    def error(self, message: str) -> NoReturn:
        if len(message) > _MAX_MESSAGE_CHARS:  # argparse quotes a bad value whole, and one may be 128 KiB
            message = f"{message[: _MAX_MESSAGE_CHARS // 2]} ... {message[-_MAX_MESSAGE_CHARS // 4 :]}"
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# the subcommands, in the order --help lists them: (module in sim.cli, one-line help).  Only the
# module of the command being run is imported, so a command starts without loading the others
# (a device emulator does not load the benchmarks, nor `--version` numpy)
COMMANDS: dict[str, tuple[str, str]] = {
    "fly": ("fly", "fly simulated helicopters in real time"),
    "replay": ("replay", "replay a flight log and check the trajectory is the same"),
    "export": ("export", "export a flight log as CSV (PlotJuggler, pandas) or a MAVLink .tlog (MAVExplorer)"),
    "trim": ("trim", "solve the hover trim of a helicopter"),
    "margins": ("margins", "gain and phase margins of the controller's loops, servo delay included"),
    "calibrate": ("calibrate", "record stick extremes and centres from a transmitter; write the [rc] table"),
    "device": ("device", "run a far-end device emulator (transmitter, servo, gcs, link) on a port"),
    "ports": ("ports", "list serial ports and guess the device on each"),
    "vports": ("vports", "make virtual serial port pairs for testing"),
    "sweep": ("sweep", "fly many headless flights faster than real time (grids, random draws) and tabulate them"),
    "configs": ("configs", "list the shipped helicopters, flight files, pilot scripts and sweeps by name"),
    "bench": ("bench", "run benchmarks and print the figures"),
    "tour": ("tour", "the lesson step by step, measured here: threads for waiting, processes for computing"),
}


class _HelpFromTable:
    """What a subcommand module's ``add_parser`` is given: its one-line help comes from ``COMMANDS``."""

    def __init__(self, commands: argparse._SubParsersAction):
        self._commands = commands

    def add_parser(
        self, name: str, *, description: str | None = None, add_help: bool = True
    ) -> argparse.ArgumentParser:
        parser = self._commands.add_parser(name, help=COMMANDS[name][1], description=description, add_help=add_help)
        if add_help:  # -v after the command too (heli-sim fly -v), as people type it
            parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        return parser


def _command_in(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (the first word that is one), or None."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``heli-sim`` parser; with ``argv``, only the command it names gets its full options
    (the others are listed by name and help); without, every command does."""
    import importlib

    parser = OneLineParser(
        prog="heli-sim",
        description="RC helicopter flight-controller simulator: fly, trim, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"heli-sim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    wanted = None if argv is None else _command_in(argv)
    for name, (module_name, _help) in COMMANDS.items():
        if argv is None or name == wanted:
            importlib.import_module(f"sim.cli.{module_name}").add_parser(_HelpFromTable(commands))
        else:
            _HelpFromTable(commands).add_parser(name, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``heli-sim`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        # on a terminal, clear the line first: a flight's live status line is there, without a newline
        format=("\r\x1b[K" if sys.stderr.isatty() else "") + "heli-sim: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.run(args)
    except HeliSimError as error:
        print(f"heli-sim {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except stopping.Stopped as stop:  # SIGINT / SIGTERM before anything had to be closed in order
        return stop.status
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except BrokenPipeError:  # e.g. `heli-sim trim --heli xcell60 | head -3`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SIGPIPE
    except (MemoryError, OSError, RuntimeError, ImportError) as error:  # out of memory, descriptors, processes
        line = out_of_resources(error)
        if line is None:
            raise
        print(f"heli-sim {args.command}: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
