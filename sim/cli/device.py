"""``heli-sim device KIND``: run one far-end emulator on a port until Ctrl-C or hang-up."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from heli.dynamics import FlightModel
from heli.errors import ConfigError
from heli.trim import solve_hover_trim
from sim.config import ChannelMap, load_heli
from sim.devices.emulators import GroundStation, Link, NeutralPilot, ServoBoard, Transmitter, run_device
from sim.devices.far_end import FarEnd, FdFarEnd, SerialFarEnd
from sim.pilots import make_pilot
from sim.ports.codecs import make_codec
from sim.ports.transport import SerialSettings, describe_names
from sim.rc import neutral_channels

KINDS = ("transmitter", "servo", "gcs", "link")
_EMULATOR_NICENESS = 10


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "device",
        help="run a far-end device emulator (transmitter, servo, gcs, link) on a port",
        description="Run one device emulator on the far end of a port until Ctrl-C, SIGTERM or hang-up; "
        "it prints its counters as one JSON line when it ends.",
    )
    parser.add_argument("kind", choices=KINDS, help="which device")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help=describe_names().replace("virtual, ", ""))
    where.add_argument("--fd", type=int, metavar="N", help=argparse.SUPPRESS)  # a pty master from the simulator
    parser.add_argument("--latency-ms", type=float, default=None, help="reply latency (servo: 1, link: 100)")
    parser.add_argument("--protocol", default="hsf", help="what the device speaks (default hsf)")
    parser.add_argument("--baud", type=int, default=115200, help="line rate (default 115200)")
    parser.add_argument("--pace", action="store_true", help="release bytes at 10 bits per baud, as a real wire")
    parser.add_argument("--rate-hz", type=float, default=150.0, help="transmitter frame rate (default 150)")
    parser.add_argument("--pilot", default="hover", help="transmitter: hover, script:FILE or neutral")
    parser.add_argument("--heli", default="xcell60", help="transmitter: the helicopter the pilot flies")
    parser.add_argument("--fleet", type=int, default=1, help="transmitter: vehicles to send frames for")
    parser.add_argument("--airborne", action="store_true", help="transmitter: the flight starts in the air")
    parser.add_argument("--channel-map", default="1,2,3,4,5,6", help="roll,pitch,collective,yaw,arm,mode channels")
    parser.set_defaults(run=run)


def _channel_map(text: str) -> ChannelMap:
    try:
        numbers = [int(x) for x in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != 6:
        raise ConfigError(f"--channel-map {text!r}: expected six channel numbers, e.g. 1,2,3,4,5,6")
    return ChannelMap(*numbers)


def _transmitter(args: argparse.Namespace, codec) -> Transmitter:
    if args.fleet < 1:
        raise ConfigError(f"--fleet {args.fleet}: expected 1 or more")
    cmap = _channel_map(args.channel_map)
    if args.pilot == "neutral":
        return Transmitter(
            args.rate_hz, args.fleet, None, NeutralPilot(neutral_channels(args.fleet, cmap)), codec=codec
        )
    heli = load_heli(args.heli)
    model = FlightModel.build(heli.params)
    trim = solve_hover_trim(model)

    def build(start):
        return make_pilot(args.pilot, heli, model, trim, cmap, start, airborne=args.airborne)

    if args.pilot.startswith("script:"):  # open loop: ready now
        from sim.devices.emulators import vehicles_from_states

        return Transmitter(args.rate_hz, args.fleet, None, build(vehicles_from_states({}, args.fleet)), codec=codec)
    if args.protocol != "hsf":
        raise ConfigError(f"the {args.pilot} pilot flies by vehicle states, which only hsf carries; use script:FILE")
    return Transmitter(args.rate_hz, args.fleet, build, codec=codec)


def run(args: argparse.Namespace) -> int:
    codec = make_codec(args.protocol, side="device")
    if args.kind == "transmitter":
        device = _transmitter(args, codec)
    elif args.kind == "servo":
        device = ServoBoard((1.0 if args.latency_ms is None else args.latency_ms) / 1e3, codec)
    elif args.kind == "link":
        device = Link((100.0 if args.latency_ms is None else args.latency_ms) / 1e3)
    else:
        device = GroundStation()
    if args.fd is not None:
        # started by a simulator for a virtual port: a real device would have its own CPU, so yield
        # this machine's cores to the loop it serves
        os.nice(_EMULATOR_NICENESS)
    end: FarEnd = FdFarEnd(args.fd) if args.fd is not None else SerialFarEnd(args.port, SerialSettings(args.baud))
    stop: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if args.port is not None:
        print(f"heli-sim device {args.kind}: serving {args.port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    else:
        print("ready", flush=True)  # the simulator that started us waits for this line
    try:
        ended = run_device(end, device, lambda: bool(stop), codec, pace_baud=args.baud if args.pace else 0.0)
    finally:
        end.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps({**device.summary(), "ended": ended, "write_drops": end.drops}), flush=True)
    return 0
