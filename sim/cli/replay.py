"""``heli-sim replay LOG``: fly a recorded flight again from its log and check it is the same.

Headless (no display, or ``--headless``) it runs as fast as the CPU allows; with the view it runs
at the recorded pace.  Every file of the log is checked before the replay starts, and no code is
imported because a log names it: a flight flown with your own controller replays only with
``--controller MODULE:FUNCTION`` (named again, by you).

Exit status: 0 the replayed trajectory equals the logged one bit for bit; 1 it does not (the first
difference is printed); 2 a log that cannot be read or is not what its format says (one line
naming the file and the field), a log that needs ``--controller``, or a ``--stats-json`` that
could not be written (after the summary table); 3 the replay is identical but the log is
incomplete (its writing stopped during the flight, e.g. a full disk, or never finished: SIGKILL, a
power cut), and a line says how far it goes; 130/143 stopped by SIGINT/SIGTERM (the summary is
still written).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time

from heli.errors import ConfigError
from sim import stopping
from sim.cli import (
    EXIT_BAD_INPUT,
    EXIT_FLIGHT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    check_output_path,
)
from sim.cli.output import write_json_output
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.log.summary import replay_summary
from sim.report import format_summary
from sim.session import ViewOptions
from sim.view.link import has_display


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        description="Replay a flight log (written by 'fly --log') through the same model; the replayed "
        "trajectory must equal the logged one bit for bit (exit 1 if it does not). Exit 2: a log that is not "
        "what its format says, or that needs --controller; 3: identical, but the log was cut short.",
    )
    parser.add_argument("log", metavar="LOG", help="a flight log directory written by 'heli-sim fly --log'")
    parser.add_argument("--headless", action="store_true", help="no view, as fast as possible")
    parser.add_argument("--stats-json", metavar="FILE", help="write the replay's run summary as JSON")
    parser.add_argument("--screenshot", metavar="FILE", help="open the view (off screen without a display), save a PNG")
    parser.add_argument("--quiet", action="store_true", help="no summary table")
    parser.add_argument(
        "--controller",
        metavar="MODULE:FUNCTION",
        help="the controller of your own that the log was flown with: a replay imports no code unless you name it",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.stats_json, "--stats-json")
    check_output_path(args.screenshot, "--screenshot")
    if args.headless and args.screenshot:
        raise ConfigError("--screenshot needs the view: drop --headless (without a display it renders off screen)")
    log = read_log(args.log)
    replay = Replay(log, controller=args.controller)

    show_view = not args.headless and (has_display() or args.screenshot is not None)
    # from here to the summary, SIGINT and SIGTERM are requests: the replay stops at its next look
    # (a long catch-up is stepped in parts) and the summary of what was replayed is still printed
    with stopping.handling_stops():
        stopping.owning()
        return _replay(args, replay, show_view)


def _replay(args: argparse.Namespace, replay: Replay, show_view: bool) -> int:
    """Replay, print and write the summary; the exit status.  Within ``handling_stops``."""
    if not args.quiet:  # from this line on, a signal stops the replay and the summary is printed
        log = replay.log
        print(
            f"heli-sim: replaying {log.path}: {replay.count} ticks, {log.header['heli_name']} x{log.fleet} "
            f"(pid {os.getpid()})",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    if show_view:
        from sim.log.replay_view import run_in_view

        run_in_view(replay, ViewOptions(screenshot=args.screenshot), _stop_requested)
    else:
        replay.run(stop_requested=_stop_requested)
    summary = replay_summary(replay, time.monotonic() - started)
    result = summary["replay"]
    if not args.quiet:
        print(format_summary(summary))
        print(_verdict(result))
        if result["log_incomplete"] is not None:
            print(f"replay: {_incomplete(result)}")
    # after the table: a --stats-json that cannot be written loses nothing else
    written = write_json_output(args.stats_json, summary, "--stats-json", "replay")
    signum = stopping.requested()
    if signum is not None:
        return stopping.status_for(signum)  # 130 or 143
    if not written:
        return EXIT_BAD_INPUT
    if result["first_difference"] is not None:
        print(f"heli-sim replay: {_verdict(result)}", file=sys.stderr)
        return EXIT_INTERNAL
    if result["log_incomplete"] is not None:
        print(f"heli-sim replay: {_incomplete(result)}", file=sys.stderr)
        return EXIT_FLIGHT_FAILED
    return EXIT_OK


def _stop_requested() -> bool:
    return stopping.requested() is not None


def _incomplete(replay: dict) -> str:
    return (
        f"the log is incomplete ({replay['log_incomplete']}): it holds {replay['ticks_in_log']} ticks, the "
        f"flight's first {replay['log_ends_at_s']:.3f} s, and those replayed identically"
    )


def _verdict(replay: dict) -> str:
    difference = replay["first_difference"]
    if difference is None:
        speed = replay["speed_x_real_time"]
        pace = f", {speed:g}x real time" if speed else ""
        if not replay["complete"]:
            return (
                f"replay: stopped after {replay['ticks']} of {replay['ticks_in_log']} ticks, identical to the log "
                f"so far{pace}"
            )
        return f"replay: {replay['ticks']} ticks, identical to the log{pace}"
    logged, replayed = repr(difference["logged"]), repr(difference["replayed"])
    if logged == replayed:  # two NaNs (or zeros) that differ in their bits
        logged, replayed = _with_bits(difference["logged"]), _with_bits(difference["replayed"])
    return (
        f"replay: differs from the log at tick {difference['tick']}, vehicle {difference['vehicle']}, "
        f"{difference['column']}: logged {logged}, replayed {replayed}"
    )


def _with_bits(value: float) -> str:
    return f"{value!r} (bits {struct.unpack('<Q', struct.pack('<d', value))[0]:#018x})"
