"""``heli-sim calibrate``: record a transmitter's stick extremes and centres; write the ``[rc]`` table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from heli.errors import ConfigError
from sim.calibrate import Calibrator
from sim.cli import check_output_path
from sim.config import STICKS, ChannelMap, PortSpec
from sim.ports.events import EventLog
from sim.wiring import build_port

_SHOW_EVERY_S = 0.1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "calibrate",
        help="record stick extremes and centres from a transmitter; write the [rc] table",
        description="Watch a transmitter's channels: move every stick to both ends, then let the sticks centre. "
        "At the end the [rc] table (channel map, min/centre/max of each stick) is printed or written.",
    )
    parser.add_argument("--rc", required=True, metavar="PORT", help="the receiver or radio (or virtual)")
    parser.add_argument("--rc-protocol", choices=("crsf", "sbus", "ibus", "msp", "hsf"), help="default by port")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to watch (default 20)")
    parser.add_argument("--output", metavar="FILE", help="write the [rc] table here instead of printing it")
    parser.add_argument("--reverse", default="", metavar="STICKS", help="comma list of reversed sticks")
    parser.add_argument("--channel-map", default="1,2,3,4,5,6", help="roll,pitch,collective,yaw,arm,mode channels")
    parser.add_argument("--pilot", default="neutral", help="a virtual transmitter's pilot (script:FILE)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise ConfigError(f"--seconds {args.seconds}: expected a duration > 0")
    check_output_path(args.output, "--output")
    numbers = [x for x in args.channel_map.split(",") if x]
    if len(numbers) != 6 or not all(x.isdigit() for x in numbers):
        raise ConfigError(f"--channel-map {args.channel_map!r}: expected six channel numbers, e.g. 1,2,3,4,5,6")
    channel_map = ChannelMap(*(int(x) for x in numbers))
    reversed_sticks = tuple(s for s in args.reverse.split(",") if s)
    for stick in reversed_sticks:
        if stick not in STICKS:
            raise ConfigError(f"--reverse {args.reverse!r}: expected names from {', '.join(STICKS)}")
    spec = PortSpec(role="rc-in", url=args.rc, protocol=args.rc_protocol or "")
    port, endpoint = build_port(spec, EventLog(), ["--pilot", args.pilot, "--channel-map", args.channel_map])
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
    text = Calibrator.to_toml(calibrated)
    if args.output:
        Path(args.output).write_text(text)
        print(f"heli-sim calibrate: {calibrator.frames} frames; [rc] written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0
