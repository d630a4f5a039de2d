"""``heli-sim device KIND``: run one far-end emulator on a port until Ctrl-C or hang-up."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from heli.dynamics import FlightModel
from heli.errors import ConfigError
from heli.trim import solve_hover_trim
from sim.cli.options import channel_map_type, device_pilot_type, schema_type
from sim.config import (
    JOYSTICK_PRESETS,
    ChannelMap,
    FaultSpec,
    FlightSettings,
    JoystickMap,
    PortSpec,
    is_joystick_pilot,
    load_flight,
    load_heli,
)
from sim.dataclass_io import build, field_meta, show
from sim.devices.emulators import Device, GroundStation, Link, ServoBoard, SteadySticks, Transmitter, run_device
from sim.devices.far_end import FarEnd, FdFarEnd, SerialFarEnd
from sim.pilots import make_pilot
from sim.ports.codecs import make_codec
from sim.ports.transport import SerialSettings, describe_names
from sim.rc import neutral_channels
from sim.stopping import status_for

KINDS = ("transmitter", "servo", "gcs", "link")
DEVICE_PROTOCOLS = tuple(p for p in field_meta(PortSpec, "protocol")["choices"] if p)
_MAX_FD = 1 << 20  # the kernel's largest file descriptor limit (fs.nr_open)
_EMULATOR_NICENESS = 10


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "device",
        description="Run one device emulator on the far end of a port until Ctrl-C, SIGTERM or hang-up; "
        "it prints its counters as one JSON line when it ends.",
    )
    parser.add_argument("kind", choices=KINDS, help="which device")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--port", type=schema_type(PortSpec, "url"), metavar="PORT", help=describe_names().replace("virtual, ", "")
    )
    where.add_argument("--fd", type=_descriptor, metavar="N", help=argparse.SUPPRESS)  # a pty master from the simulator
    parser.add_argument(
        "--latency-ms",
        type=schema_type(PortSpec, "latency_ms"),
        default=None,
        help="reply latency (servo: 1, link: 100; -1: that default)",
    )
    parser.add_argument(
        "--protocol", choices=DEVICE_PROTOCOLS, default="hsf", help="what the device speaks (default hsf)"
    )
    parser.add_argument(
        "--baud",
        type=schema_type(FaultSpec, "baud"),
        default=None,
        help="line rate (default: the protocol's, CRSF 420000 8N1, SBUS 100000 8E2, others 115200 8N1)",
    )
    parser.add_argument("--pace", action="store_true", help="release bytes at 10 bits per baud, as a real wire")
    parser.add_argument(
        "--rate-hz",
        type=schema_type(FlightSettings, "pilot_hz"),
        default=150.0,
        help="transmitter frame rate (default 150)",
    )
    parser.add_argument(
        "--pilot",
        type=device_pilot_type,
        default="hover",
        help="transmitter: hover, joystick[:N], script:FILE or neutral",
    )
    parser.add_argument(
        "--heli",
        type=schema_type(FlightSettings, "heli"),
        default="xcell60",
        help="transmitter: the helicopter the pilot flies",
    )
    parser.add_argument(
        "--fleet",
        type=schema_type(FlightSettings, "fleet"),
        default=1,
        help="transmitter: vehicles to send frames for",
    )
    parser.add_argument(
        "--joystick-preset",
        choices=JOYSTICK_PRESETS,
        help="transmitter with --pilot joystick: the joystick's layout (default auto: by its name)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="transmitter with --pilot joystick: a flight file whose [joystick] table to use",
    )
    parser.add_argument("--joystick-map", default="{}", help=argparse.SUPPRESS)  # the flight's [joystick], as JSON
    parser.add_argument("--airborne", action="store_true", help="transmitter: the flight starts in the air")
    parser.add_argument(
        "--hover-collective",
        type=_stick_value,
        metavar="STICK",
        help="transmitter with a joystick: the collective stick (-1..1) that hovers; with --airborne the joystick "
        "takes over sending a hover (armed, angle, this collective) until the pilot moves a stick or a switch",
    )
    parser.add_argument(
        "--channel-map",
        type=channel_map_type,
        default=ChannelMap(),
        help="roll,pitch,collective,yaw,arm,mode[,throttle_hold] channels (default 1,2,3,4,5,6,7)",
    )
    parser.set_defaults(run=run)


def _descriptor(text: str) -> int:
    """``--fd N``: an open file descriptor number (internal: the simulator passes its pty master)."""
    try:
        fd = int(text)
    except ValueError:
        fd = -1
    if not 0 <= fd < _MAX_FD:
        raise argparse.ArgumentTypeError(f"{show(text)}: expected an open file descriptor number, 0 to {_MAX_FD - 1}")
    return fd


def _stick_value(text: str) -> float:
    """A stick position: a finite number from -1 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not -1.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{show(text)}: expected a stick position from -1 to 1")
    return value


def _transmitter(args: argparse.Namespace, codec, report: Callable[[str, str], None]) -> Transmitter:
    cmap = args.channel_map
    if is_joystick_pilot(args.pilot):  # open loop, ready now; imports pygame
        from sim.joystick.pilot import JoystickPilot, joystick_index

        if args.config:
            mapping = load_flight(args.config).joystick
        else:
            mapping = build(JoystickMap, json.loads(args.joystick_map), source="--joystick-map", path="joystick")
        if args.joystick_preset:
            mapping = replace(mapping, preset=args.joystick_preset)
        takeover = None
        if args.airborne and args.hover_collective is not None:
            from sim.joystick.sticks import HoverTakeover

            takeover = HoverTakeover(args.hover_collective)
        pilot = JoystickPilot(joystick_index(args.pilot), mapping, cmap, args.fleet, report, takeover=takeover)
        return Transmitter(args.rate_hz, args.fleet, None, pilot, codec=codec)
    if args.pilot == "neutral":
        return Transmitter(
            args.rate_hz, args.fleet, None, SteadySticks(neutral_channels(args.fleet, cmap)), codec=codec
        )
    heli = load_heli(args.heli)
    model = FlightModel.build(heli.params)
    trim = solve_hover_trim(model)

    def pilot_for(start):
        return make_pilot(args.pilot, heli, model, trim, cmap, start, airborne=args.airborne)

    if args.pilot.startswith("script:"):  # open loop: ready now
        from sim.devices.emulators import vehicles_from_states

        return Transmitter(args.rate_hz, args.fleet, None, pilot_for(vehicles_from_states({}, args.fleet)), codec=codec)
    if args.protocol != "hsf":
        raise ConfigError(f"the {args.pilot} pilot flies by vehicle states, which only hsf carries; use script:FILE")
    return Transmitter(args.rate_hz, args.fleet, pilot_for, codec=codec)


def run(args: argparse.Namespace) -> int:
    codec = make_codec(args.protocol, side="device")

    def report(kind: str, detail: str) -> None:
        """Something the flight should hear of (a joystick unplugged): a JSON line to the simulator
        that started us, which records it as an event; a line on stderr when run by hand."""
        if args.fd is not None:
            print(json.dumps({"event": kind, "detail": detail, "t": time.monotonic()}), flush=True)
        else:
            print(f"heli-sim device {args.kind}: {kind}: {detail}", file=sys.stderr, flush=True)

    device: Device
    if args.kind == "transmitter":
        device = _transmitter(args, codec, report)
    elif args.kind == "servo":
        device = ServoBoard((1.0 if args.latency_ms is None or args.latency_ms < 0 else args.latency_ms) / 1e3, codec)
    elif args.kind == "link":
        device = Link((100.0 if args.latency_ms is None or args.latency_ms < 0 else args.latency_ms) / 1e3)
    else:
        device = GroundStation()
    if args.fd is not None:
        # started by a simulator for a virtual port: a real device would have its own CPU, so yield
        # this machine's cores to the loop it serves
        os.nice(_EMULATOR_NICENESS)
    line = codec.line  # the protocol's line settings: CRSF 420000 8N1, SBUS 100000 8E2 inverted, ...
    settings = SerialSettings(baudrate=args.baud or line.baudrate, parity=line.parity, stopbits=line.stopbits)
    end: FarEnd = FdFarEnd(args.fd) if args.fd is not None else SerialFarEnd(args.port, settings)
    stop: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if args.port is not None:
        print(f"heli-sim device {args.kind}: serving {args.port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    else:
        print("ready", flush=True)  # the simulator that started us waits for this line
    try:
        ended = run_device(end, device, lambda: bool(stop), codec, pace_baud=settings.baudrate if args.pace else 0.0)
    finally:
        end.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps({**device.summary(), "ended": ended, "write_drops": end.drops}), flush=True)
    return status_for(stop[0]) if stop else 0  # a signal ends it with 130 or 143, as every heli-sim command
