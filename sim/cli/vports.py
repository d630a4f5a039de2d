"""``heli-sim vports``: make virtual serial port pairs (ptys) and keep them alive until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from sim.cli.options import folder_type
from sim.dataclass_io import show
from sim.errors import UsageError
from sim.ports.bridge import PtyBridge
from sim.stopping import status_for

MAX_PAIRS = 64


def _pair_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_PAIRS:
        raise argparse.ArgumentTypeError(f"{show(text)}: expected a whole number of pairs from 1 to {MAX_PAIRS}")
    return count


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "vports",
        description="Make N virtual serial port pairs (pty pairs, like socat): bytes written to one path of a "
        "pair are read from the other.  Open them at any baud rate (it is ignored).  Runs until Ctrl-C or "
        "SIGTERM (exit status 130 or 143, as every heli-sim command), then removes the pairs and their links.",
    )
    parser.add_argument("count", nargs="?", type=_pair_count, default=1, metavar="N", help="pairs (default 1)")
    parser.add_argument(
        "--link-dir",
        type=folder_type,
        metavar="DIR",
        help="also make stable symlinks DIR/vport{i}a and DIR/vport{i}b to the two ends (removed on exit)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.link_dir is not None and not Path(args.link_dir).is_dir():
        raise UsageError(f"--link-dir {args.link_dir}: not an existing folder")
    with PtyBridge(args.count, link_dir=args.link_dir) as bridge:
        ended_by: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            ended_by.append(signum)
            bridge.stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for pair in bridge.paths:
                print(f"pair {pair.index}: {pair.a} <-> {pair.b}")
                if pair.a_link and pair.b_link:
                    print(f"        {pair.a_link} <-> {pair.b_link}")
            print("running; Ctrl-C (or SIGTERM) ends it and removes the pairs", flush=True)
            bridge.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for pair, stats in zip(bridge.paths, bridge.stats, strict=True):
            print(
                f"pair {pair.index} ended: A->B {stats.a_to_b.forwarded} bytes, B->A {stats.b_to_a.forwarded} bytes; "
                f"dropped {stats.a_to_b.dropped + stats.b_to_a.dropped} "
                f"(far end not reading {stats.a_to_b.dropped_overflow + stats.b_to_a.dropped_overflow}, "
                f"not open {stats.a_to_b.dropped_unattached + stats.b_to_a.dropped_unattached})"
            )
    return status_for(ended_by[0]) if ended_by else 0
