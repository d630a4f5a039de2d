"""``heli-sim ports``: list the real serial ports and guess what is plugged into each; list the joysticks."""

from __future__ import annotations

import argparse
import dataclasses
import json

from heli.errors import ConfigError
from sim.joystick.device import JoystickInfo
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
        "ptys and socat pairs are never listed (see `heli-sim vports`). Then the joysticks SDL sees (USB "
        "joysticks and gamepads, radios in USB joystick mode) for --pilot joystick:N.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects (the serial ports)")
    parser.add_argument(
        "--joysticks", action="store_true", help="the joysticks only (with --json: a JSON list of them)"
    )
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


def joysticks_text(joysticks: list[JoystickInfo]) -> str:
    """A line per joystick, with the layout the auto preset gives it."""
    if not joysticks:
        return "no joysticks found (a radio shows up here in its USB joystick / HID mode)"
    lines = []
    for stick in joysticks:
        lines.append(
            f"joystick:{stick.index}  {stick.name!r} ({stick.axes} axes, {stick.buttons} buttons, {stick.hats} hats)"
        )
        lines.append(f"    preset: {stick.preset} (fly with --pilot joystick:{stick.index})")
    return "\n".join(lines)


def _joysticks() -> list[JoystickInfo] | str:
    """The joysticks, or why they could not be listed."""
    try:
        from sim.joystick.device import list_joysticks

        return list_joysticks()
    except Exception as error:  # no SDL joystick support here: the serial list still stands
        return f"joysticks could not be listed: {error}"


def run(args: argparse.Namespace) -> int:
    if args.joysticks:
        joysticks = _joysticks()
        if isinstance(joysticks, str):
            raise ConfigError(joysticks)
        print(
            json.dumps([dataclasses.asdict(j) for j in joysticks], indent=2) if args.json else joysticks_text(joysticks)
        )
        return 0
    ports = list_serial_ports()
    if args.json:
        print(to_json(ports))
        return 0
    joysticks = _joysticks()
    print(to_text(ports))
    print()
    print(joysticks if isinstance(joysticks, str) else joysticks_text(joysticks))
    return 0
