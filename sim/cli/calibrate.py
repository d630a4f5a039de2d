"""``heli-sim calibrate``: record a transmitter's stick extremes and centres; write the ``[rc]`` table."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from heli.errors import ConfigError
from heli.params import quantity
from sim.calibrate import Calibrator
from sim.cli import check_output_path
from sim.cli.options import channel_map_type, device_pilot_type, schema_type
from sim.cli.output import write_output
from sim.config import STICKS, ChannelMap, PortSpec
from sim.dataclass_io import build, show, to_table
from sim.pilots import ScriptPilot
from sim.ports.events import EventLog
from sim.wiring import build_port

_SHOW_EVERY_S = 0.1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "calibrate",
        description="Watch a transmitter's channels: move every stick to both ends, then let the sticks centre. "
        "At the end the [rc] table (channel map, min/centre/max of each stick) is printed or written.",
    )
    parser.add_argument(
        "--rc",
        required=True,
        type=schema_type(PortSpec, "url"),
        metavar="PORT",
        help="the receiver or radio (or virtual)",
    )
    parser.add_argument("--rc-protocol", choices=("crsf", "sbus", "ibus", "msp", "hsf"), help="default by port")
    parser.add_argument(
        "--seconds", type=schema_type(Watch, "seconds"), default=20.0, help="how long to watch (default 20)"
    )
    parser.add_argument("--output", metavar="FILE", help="write the [rc] table here instead of printing it")
    parser.add_argument(
        "--reverse", type=_stick_names, default=(), metavar="STICKS", help="comma list of reversed sticks"
    )
    parser.add_argument(
        "--channel-map",
        type=channel_map_type,
        default=ChannelMap(),
        help="roll,pitch,collective,yaw,arm,mode channels (default 1,2,3,4,5,6)",
    )
    parser.add_argument(
        "--pilot",
        type=device_pilot_type,
        default="neutral",
        help="a virtual transmitter's pilot (script:FILE)",
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Watch:
    """How long ``calibrate`` watches the sticks."""

    seconds: float = quantity("s", gt=0.0, le=3600.0, default=20.0, why="an hour is time enough to move every stick")


def _stick_names(text: str) -> tuple[str, ...]:
    """``--reverse roll,yaw``: stick names, checked as the ``[rc]`` table's ``reversed`` list."""
    names = tuple(s for s in text.split(",") if s)
    if len(names) > len(STICKS) or any(name not in STICKS for name in names):
        raise argparse.ArgumentTypeError(f"{show(text)}: expected names from {', '.join(STICKS)}, comma separated")
    return names


def run(args: argparse.Namespace) -> int:
    check_output_path(args.output, "--output")
    channel_map = args.channel_map
    reversed_sticks = args.reverse
    spec = PortSpec(role="rc-in", url=args.rc, protocol=args.rc_protocol or "")
    numbers = ",".join(str(getattr(channel_map, f)) for f in ("roll", "pitch", "collective", "yaw", "arm", "mode"))
    if args.pilot.startswith("script:"):  # checked here, in one line, before its emulator starts
        ScriptPilot(args.pilot.removeprefix("script:"), channel_map, 1)
    port, endpoint = build_port(spec, EventLog(), ["--pilot", args.pilot, "--channel-map", numbers])
    calibrator = Calibrator(channel_map)
    interactive = sys.stdout.isatty()
    port.open()
    try:
        if endpoint is not None:
            endpoint.wait_ready(time.monotonic() + 30.0)
        print("move every stick to both ends, then let the sticks centre (Ctrl-C ends early)", file=sys.stderr)
        deadline = time.monotonic() + args.seconds
        next_show = 0.0
        try:
            while (now := time.monotonic()) < deadline:
                frames = port.exchange(None) or {}
                if 0 in frames:
                    calibrator.see(frames[0].t_received, frames[0].channels.channels_us)
                if interactive and now >= next_show and calibrator.latest:
                    next_show = now + _SHOW_EVERY_S
                    lines = calibrator.bars()
                    sys.stdout.write("\n".join(lines) + f"\n\x1b[{len(lines)}A")
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the watching early; what was seen is still written
    finally:
        port.close()
    if interactive and calibrator.latest:
        sys.stdout.write(f"\x1b[{len(calibrator.latest)}B")
    if calibrator.frames == 0:
        raise ConfigError(f"{args.rc}: no stick frames arrived in {args.seconds:g} s (protocol {port.protocol})")
    calibrated, notes = calibrator.result(reversed_sticks)
    for note in notes:
        print(f"heli-sim calibrate: {note}", file=sys.stderr)
    # what is written must load back as a flight file's [rc] table: a radio sending pulses beyond the
    # schema's range is named here, not when the file is used
    build(ChannelMap, to_table(calibrated), source="the measured calibration", path="rc")
    text = Calibrator.to_toml(calibrated)
    if args.output:
        write_output(args.output, text, "--output")  # OutputError: one line, status 2
        print(f"heli-sim calibrate: {calibrator.frames} frames; [rc] written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0
