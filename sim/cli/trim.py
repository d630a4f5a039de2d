"""``heli-sim trim``: solve and print the steady hover (or level flight at ``--speed``) of a helicopter."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from heli.dynamics import FlightModel
from heli.params import MAX_AIRSPEED_M_S, quantity
from heli.trim import solve_trim
from sim.cli.options import add_heli_argument, schema_type
from sim.config import load_heli

_ROWS = {
    "collective_deg": ("collective", "deg"),
    "lateral_cyclic_deg": ("lateral cyclic", "deg"),
    "longitudinal_cyclic_deg": ("longitudinal cyclic", "deg"),
    "tail_pitch_deg": ("tail pitch", "deg"),
    "roll_deg": ("roll", "deg"),
    "pitch_deg": ("pitch", "deg"),
    "rotor_speed_rpm": ("rotor speed", "rpm"),
    "induced_velocity_m_s": ("induced velocity", "m/s"),
    "main_rotor_thrust_n": ("main rotor thrust", "N"),
    "main_rotor_torque_nm": ("main rotor torque", "N m"),
    "main_rotor_power_w": ("main rotor power", "W"),
    "tail_thrust_n": ("tail rotor thrust", "N"),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "trim",
        description="Solve the steady hover (controls, attitude, rotor figures) of a helicopter, out of ground effect; "
        "with --speed, steady level flight straight ahead at that airspeed.",
    )
    add_heli_argument(parser)
    parser.add_argument(
        "--speed",
        type=schema_type(TrimRequest, "speed_m_s"),
        default=0.0,
        metavar="M/S",
        help="level flight at this airspeed (default 0: the hover)",
    )
    parser.add_argument("--json", action="store_true", help="print the contract's keys as JSON")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class TrimRequest:
    """What ``trim`` solves for."""

    speed_m_s: float = quantity(
        "m/s", ge=0.0, le=MAX_AIRSPEED_M_S, default=0.0, doc="level flight airspeed; 0 the hover",
        why="RC helicopters cruise at 5-30 m/s; much beyond 40 m/s the blade tips near their retreating stall",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    heli = load_heli(args.heli)
    trim = solve_trim(FlightModel.build(heli.params), args.speed)
    values = trim.contract()
    if args.json:
        print(json.dumps({**values, "speed_m_s": args.speed} if args.speed else values, indent=2))
        return 0
    what = "hover trim" if not args.speed else f"trim in level flight at {args.speed:g} m/s"
    print(f"{what} of {heli.params.name} ({heli.params.description}), out of ground effect")
    for key, value in values.items():
        label, unit = _ROWS[key]
        print(f"  {label:<22} {value:10.3f} {unit}")
    print(f"  {'throttle':<22} {trim.throttle:10.3f} (0..1)")
    return 0
