"""``heli-sim tour``: the lesson, step by step, with numbers measured on this machine (as text)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import textwrap
from pathlib import Path

from heli.errors import ConfigError
from sim.cli import check_output_path
from sim.runtime import python_line
from sim.session import ViewOptions
from sim.tour import STEPS

_WIDTH = 96


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tour",
        help="the lesson step by step, measured here: threads for waiting, processes for computing",
        description="A guided tour in three steps, each measured live on this machine: CPU-bound work in threads "
        "and processes; slow serial devices served inline and by threads; a CPU-bound helper thread vs process.",
    )
    keys = ", ".join(f"{i} or {s.key}" for i, s in enumerate(STEPS, 1))
    parser.add_argument("--step", action="append", metavar="STEP", help=f"run only this step again ({keys})")
    parser.add_argument("--quick", action="store_true", help="shorter measurements (noisier)")
    parser.add_argument("--json", metavar="FILE", help="also write every step's figures and verdict as JSON")
    parser.add_argument("--no-pause", action="store_true", help="do not wait for Enter between steps")
    parser.add_argument("--headless", action="store_true", help="text only, even where there is a display")
    parser.add_argument(
        "--screenshot",
        metavar="DIR",
        help="show each flight in the view (off screen without a display) and save its last frame in DIR",
    )
    parser.set_defaults(run=run)


def _chosen(wanted: list[str] | None) -> list:
    if not wanted:
        return list(STEPS)
    chosen = []
    for item in wanted:
        step = next((s for i, s in enumerate(STEPS, 1) if item in (s.key, str(i))), None)
        if step is None:
            raise ConfigError(f"--step {item!r}: expected one of {', '.join(s.key for s in STEPS)} or 1-{len(STEPS)}")
        chosen.append(step)
    return chosen


def _shower(args: argparse.Namespace):
    """None (text only), or a function giving the ``ViewOptions`` for one flight of a step."""
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if args.headless and args.screenshot:
        raise ConfigError("--screenshot needs the view: drop --headless (without a display it renders off screen)")
    if args.headless or not (has_display or args.screenshot):
        return None
    if args.screenshot and not Path(args.screenshot).is_dir():
        raise ConfigError(f"--screenshot {args.screenshot}: not a folder; expected an existing folder for the PNGs")

    def show(step, label: str) -> ViewOptions:
        shot = None
        if args.screenshot:
            name = re.sub(r"[^a-z0-9]+", "-", f"{step.key} {label}".lower()).strip("-")
            shot = str(Path(args.screenshot) / f"{name}.png")
        return ViewOptions(screenshot=shot, caption=(step.title, step.caption, f"now: {label}"))

    return show


def run(args: argparse.Namespace) -> int:
    steps = _chosen(args.step)
    check_output_path(args.json, "--json")
    show = _shower(args)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_pause
    print(f"heli-sim tour on {python_line()}: {len(steps)} step(s), measured now, on this machine.")
    report = []
    for number, step in enumerate(steps, 1):
        print(f"\n== {number}. {step.title}")
        print(textwrap.fill(step.caption, _WIDTH))
        print("measuring...", flush=True)
        outcome = step.run(args.quick, None if show is None else functools.partial(show, step))
        for line in outcome.lines:
            print(f"  {line}")
        mark = "as the lesson says" if outcome.as_the_lesson_says else "NOT as the lesson says, on this machine"
        print(textwrap.fill(f"-> {outcome.verdict} ({mark}).", _WIDTH))
        report.append({"step": step.key, "title": step.title, "figures": outcome.figures,
                       "verdict": outcome.verdict, "as_the_lesson_says": outcome.as_the_lesson_says})  # fmt: skip
        if interactive and number < len(steps):
            input("\n[Enter] next step, Ctrl-C to stop ")
    print("\nThreads are for waiting (blocking I/O); processes are for computing. Run one step again: "
          "heli-sim tour --step 2")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"python": python_line(), "steps": report}, indent=2) + "\n")
    return 0
