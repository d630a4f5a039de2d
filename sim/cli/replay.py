"""``heli-sim replay LOG``: fly a recorded flight again from its log and check it is the same.

Headless (no display, or ``--headless``) it runs as fast as the CPU allows; with the view it runs
at the recorded pace.  Exit status 0 when the replayed trajectory equals the logged one float
for float, 1 when it does not (the first difference is printed), 2 for a log that cannot be
read, 130/143 when stopped by SIGINT/SIGTERM (the summary is still written).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from heli.errors import ConfigError
from sim.cli import EXIT_INTERNAL, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, check_output_path
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.log.summary import replay_summary
from sim.report import format_summary
from sim.session import ViewOptions
from sim.view.link import has_display


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay a flight log and check the trajectory is the same",
        description="Replay a flight log (written by 'fly --log') through the same model; the replayed "
        "trajectory must equal the logged one float for float (exit 1 if it does not).",
    )
    parser.add_argument("log", metavar="LOG", help="a flight log directory written by 'heli-sim fly --log'")
    parser.add_argument("--headless", action="store_true", help="no view, as fast as possible")
    parser.add_argument("--stats-json", metavar="FILE", help="write the replay's run summary as JSON")
    parser.add_argument("--screenshot", metavar="FILE", help="open the view (off screen without a display), save a PNG")
    parser.add_argument("--quiet", action="store_true", help="no summary table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.stats_json, "--stats-json")
    check_output_path(args.screenshot, "--screenshot")
    if args.headless and args.screenshot:
        raise ConfigError("--screenshot needs the view: drop --headless (without a display it renders off screen)")
    log = read_log(args.log)
    replay = Replay(log)

    show_view = not args.headless and (has_display() or args.screenshot is not None)

    stopped_by: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stopped_by.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    started = time.monotonic()
    try:
        if show_view:
            from sim.log.replay_view import run_in_view

            run_in_view(replay, ViewOptions(screenshot=args.screenshot), lambda: bool(stopped_by))
        else:
            while not replay.done and not stopped_by:
                replay.step()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = replay_summary(replay, time.monotonic() - started)
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(summary, indent=2) + "\n")
    if not args.quiet:
        print(format_summary(summary))
        print(_verdict(summary["replay"]))
    if stopped_by:
        return EXIT_SIGINT if stopped_by[0] == signal.SIGINT else EXIT_SIGTERM
    if summary["replay"]["first_difference"] is not None:
        print(f"heli-sim replay: {_verdict(summary['replay'])}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def _verdict(replay: dict) -> str:
    difference = replay["first_difference"]
    if difference is None:
        speed = replay["speed_x_real_time"]
        pace = f", {speed:g}x real time" if speed else ""
        return f"replay: {replay['ticks']} ticks, identical to the log{pace}"
    return (
        f"replay: differs from the log at tick {difference['tick']}, vehicle {difference['vehicle']}, "
        f"{difference['column']}: logged {difference['logged']!r}, replayed {difference['replayed']!r}"
    )
