"""``heli-sim margins``: the gain and phase margins of a helicopter's controller loops in hover."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass

from heli.control import ControllerConstants
from heli.dynamics import FlightModel
from heli.margins import applied_delay_periods, loop_margins
from heli.params import quantity
from heli.trim import solve_hover_trim
from sim.cli.options import add_heli_argument, schema_type
from sim.config import load_heli


@dataclass(frozen=True)
class MarginsRequest:
    """Where the margins are read."""

    loop_hz: float = quantity(
        "Hz", ge=50.0, le=8000.0, default=500.0, doc="controller rate", why="flight controllers run 50-8000 Hz"
    )
    delay_ms: float = quantity(
        "ms", ge=0.0, le=200.0, default=0.0, doc="servo transport delay",
        why="flight controllers' servo outputs lag 30-50 ms; 200 ms is a broken link",
    )  # fmt: skip


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "margins",
        description="Gain and phase margins of the flight controller's rate, angle and governor loops in hover, "
        "from the flight model linearised over one controller period (each loop broken at its actuator).",
    )
    add_heli_argument(parser)
    parser.add_argument(
        "--loop-hz", type=schema_type(MarginsRequest, "loop_hz"), default=500.0, metavar="HZ", help="default 500"
    )
    parser.add_argument(
        "--delay-ms",
        type=schema_type(MarginsRequest, "delay_ms"),
        default=0.0,
        metavar="MS",
        help="servo transport delay (default 0; real flight controllers add 30-50)",
    )
    parser.add_argument("--json", action="store_true", help="a list of loops as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    heli = load_heli(args.heli)
    model = FlightModel.build(heli.params)
    trim = solve_hover_trim(model)
    constants = ControllerConstants.build(heli.controller, model, math.radians(trim.collective_deg))
    margins = loop_margins(model, trim, constants, args.loop_hz, args.delay_ms / 1000.0)
    periods = applied_delay_periods(args.delay_ms / 1000.0, args.loop_hz)
    applied_ms = periods * 1000.0 / args.loop_hz
    if args.json:
        print(json.dumps([{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                           for k, v in asdict(m).items()} for m in margins], indent=2))  # fmt: skip
        return 0
    delay = f"servo delay {applied_ms:g} ms ({periods} controller periods)"
    if abs(applied_ms - args.delay_ms) > 1e-9:
        delay += f", the nearest whole number of periods to the {args.delay_ms:g} ms asked"
    print(f"loop margins of {heli.params.name} in hover, controller at {args.loop_hz:g} Hz, {delay}")
    print(f"  {'loop':<22} {'gain margin':>12} {'phase margin':>13} {'crossover':>10}")
    for m in margins:
        gain = "no limit" if not math.isfinite(m.gain_margin_db) else f"{m.gain_margin_db:.1f} dB"
        phase = "-" if not math.isfinite(m.phase_margin_deg) else f"{m.phase_margin_deg:.0f} deg"
        crossover = "-" if not math.isfinite(m.crossover_hz) else f"{m.crossover_hz:.2f} Hz"
        print(f"  {m.axis + ' ' + m.loop:<22} {gain:>12} {phase:>13} {crossover:>10}")
    unstable = [m for m in margins if m.gain_margin_db < 0.0 or m.phase_margin_deg < 0.0]
    if unstable:
        print(f"  unstable: {', '.join(m.axis + ' ' + m.loop for m in unstable)}")
    return 0
