"""``heli-sim ports``: list the real serial ports and guess what is plugged into each."""

from __future__ import annotations

import argparse
import dataclasses
import json

from sim.ports.listing import PortInfo, list_serial_ports

NO_PORTS = (
    "no serial ports found. Virtual ports (ptys, socat pairs) are never listed by the OS: "
    "make a pair with `heli-sim vports`, then pass its paths explicitly."
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ports",
        description="List the serial ports the OS reports (USB adapters, flight controllers, on-board UARTs) "
        "with VID:PID, description, manufacturer, serial number, a guess of the device and its known pitfall. "
        "ptys and socat pairs are never listed (see `heli-sim vports`).",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.set_defaults(run=run)


def to_json(ports: list[PortInfo]) -> str:
    """A JSON list of objects with keys path, vid_pid, description, manufacturer, serial_number, guess, hint."""
    return json.dumps([dataclasses.asdict(port) for port in ports], indent=2)


def to_text(ports: list[PortInfo]) -> str:
    """A block of lines per port, or the no-ports explanation."""
    if not ports:
        return NO_PORTS
    lines = []
    for port in ports:
        details = ", ".join(
            part
            for part in (
                port.vid_pid,
                port.description,
                port.manufacturer,
                f"serial {port.serial_number}" if port.serial_number else "",
            )
            if part
        )
        lines.append(f"{port.path}" + (f"  ({details})" if details else ""))
        lines.append(f"    likely: {port.guess}")
        if port.hint:
            lines.append(f"    hint:   {port.hint}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    ports = list_serial_ports()
    print(to_json(ports) if args.json else to_text(ports))
    return 0
