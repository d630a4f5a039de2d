"""``heli-sim tour``: the lesson, step by step, with numbers measured on this machine.

As text in the terminal, and, where there is a display (or with ``--screenshot``), in the view:
each flight of a step is shown while it is measured, and a result card (``sim.view.card``)
follows each step.  The user advances with a key, in the window (Enter; R measures the step
again; Esc ends the tour) or in the terminal (Enter; r then Enter measures it again).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from heli.errors import ConfigError
from sim.bench.tour import STEPS
from sim.cli import EXIT_BAD_INPUT, check_output_path
from sim.cli.options import folder_type
from sim.cli.output import write_json_output
from sim.dataclass_io import show
from sim.runtime import python_line
from sim.session import ViewOptions
from sim.view.link import has_display, view_environment

_WIDTH = 96


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tour",
        description="A guided tour in four steps, each measured live on this machine: CPU-bound work in threads "
        "and processes; slow serial devices served inline, by threads and by an asyncio event loop; a CPU-bound helper "
        "thread vs process; a fleet of helicopters stepped by threads vs processes. With a display, each flight is "
        "shown in the view and a result card follows each step.",
    )
    keys = ", ".join(f"{i} or {s.key}" for i, s in enumerate(STEPS, 1))
    parser.add_argument("--step", action="append", metavar="STEP", help=f"run only this step again ({keys})")
    parser.add_argument("--quick", action="store_true", help="shorter measurements (noisier)")
    parser.add_argument("--json", metavar="FILE", help="also write every step's figures and verdict as JSON")
    parser.add_argument("--no-pause", action="store_true", help="do not wait for a key between steps")
    parser.add_argument("--headless", action="store_true", help="text only, even where there is a display")
    parser.add_argument(
        "--screenshot",
        type=folder_type,
        metavar="DIR",
        help="show each flight in the view (off screen without a display) and save its last frame, and each "
        "step's result card (STEP-result.png), in DIR",
    )
    parser.set_defaults(run=run)


def _chosen(wanted: list[str] | None) -> list:
    if not wanted:
        return list(STEPS)
    chosen = []
    for item in wanted:
        step = next((s for i, s in enumerate(STEPS, 1) if item in (s.key, str(i))), None)
        if step is None:
            raise ConfigError(
                f"--step {show(item)}: expected one of {', '.join(s.key for s in STEPS)} or 1-{len(STEPS)}"
            )
        chosen.append(step)
    return chosen


def _shower(args: argparse.Namespace):
    """None (text only), or a function giving the ``ViewOptions`` for one flight of a step."""

    if args.headless and args.screenshot:
        raise ConfigError("--screenshot needs the view: drop --headless (without a display it renders off screen)")
    if args.headless or not (has_display() or args.screenshot):
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


def _ask_in_terminal(last: bool) -> str:
    answer = input(f"\n[Enter] {'finish' if last else 'next step'}, [r Enter] measure it again, Ctrl-C to stop ")
    return "again" if answer.strip().lower() == "r" else "next"


def _card(args: argparse.Namespace, card: dict, wait: bool) -> str:
    """Show the step's result card in a window; the user's choice: next, again or stop."""
    command = [sys.executable, "-P", "-m", "sim.view.card", "--size", "1280x720"]  # -P: not from the working directory
    if args.screenshot:
        command += ["--screenshot", str(Path(args.screenshot).resolve() / f"{card['key']}-result.png")]
    if wait:
        command.append("--wait")
    # its own process group, as the flight view: Ctrl-C reaches the tour, which closes the card
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=view_environment(),
                               process_group=0)  # fmt: skip
    try:
        out, _ = process.communicate(json.dumps(card).encode(), timeout=None if wait else 60.0)  # a person: no deadline
    except BaseException:
        process.kill()
        process.wait(5.0)
        raise
    choice = out.decode().strip()
    if process.returncode != 0 or choice not in ("next", "again", "stop"):
        print(f"heli-sim tour: the result card could not be shown (status {process.returncode}); going on")
        return "next"
    return choice


def run(args: argparse.Namespace) -> int:
    steps = _chosen(args.step)
    check_output_path(args.json, "--json")
    show = _shower(args)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_pause
    in_window = show is not None and has_display() and not args.no_pause  # the card waits for a key
    print(f"heli-sim tour on {python_line()}: {len(steps)} step(s), measured now, on this machine.")
    report = []
    for number, step in enumerate(steps, 1):
        choice = "again"
        while choice == "again":
            print(f"\n== {number}. {step.title}")
            print(textwrap.fill(step.caption, _WIDTH))
            print("measuring...", flush=True)
            outcome = step.run(args.quick, None if show is None else functools.partial(show, step))
            for line in outcome.lines:
                print(f"  {line}")
            mark = "as the lesson says" if outcome.as_the_lesson_says else "NOT as the lesson says, on this machine"
            print(textwrap.fill(f"-> {outcome.verdict} ({mark}).", _WIDTH))
            result = {"step": step.key, "title": step.title, "figures": outcome.figures,
                      "verdict": outcome.verdict, "as_the_lesson_says": outcome.as_the_lesson_says}  # fmt: skip
            choice = "next"
            if show is not None:
                card = {**result, "key": step.key, "step": f"{number} of {len(steps)}", "caption": step.caption,
                        "lines": outcome.lines, "python": python_line()}  # fmt: skip
                choice = _card(args, card, in_window)
            elif interactive:
                choice = _ask_in_terminal(number == len(steps))
        report.append(result)
        if choice == "stop":
            print("\nheli-sim tour: ended from the view.")
            break
    again = steps[-1].key if steps else STEPS[0].key
    print("\nThreads are for waiting (blocking I/O); processes are for computing. Run one step again: "
          f"heli-sim tour --step {again}")  # fmt: skip
    if not write_json_output(args.json, {"python": python_line(), "steps": report}, "--json", "tour"):
        return EXIT_BAD_INPUT
    return 0
