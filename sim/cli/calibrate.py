"""``heli-sim calibrate``: record a transmitter's stick extremes and centres; write the ``[rc]`` table."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace

import tomli_w

from heli.errors import ConfigError
from heli.params import quantity
from sim.calibrate import Calibrator
from sim.cli import check_output_path
from sim.cli.options import channel_map_type, device_pilot_type, schema_type
from sim.cli.output import write_output
from sim.config import JOYSTICK_PRESETS, STICKS, ChannelMap, JoystickLayout, JoystickMap, PortSpec, load_flight
from sim.dataclass_io import build, show, to_table
from sim.pilots import ScriptPilot
from sim.ports.codecs import protocols_for
from sim.ports.events import EventLog
from sim.rc import CENTRE_US, CHANNEL_COUNT, HALF_RANGE_US
from sim.wiring import build_port

_SHOW_EVERY_S = 0.1
_JOYSTICK_POLL_S = 0.01
_CHANNEL_NUMBER = re.compile(r"channel (\d+)")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "calibrate",
        description="Watch a transmitter's channels: move every stick to both ends, then let the sticks centre. "
        "At the end the [rc] table (channel map, min/centre/max of each stick) is printed or written; "
        "with --joystick, the [joystick] table (raw low/centre/high of each stick's axis).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--rc",
        type=schema_type(PortSpec, "url"),
        metavar="PORT",
        help="the receiver or radio (or virtual)",
    )
    source.add_argument(
        "--joystick",
        type=_joystick_number,
        nargs="?",
        const=0,
        metavar="N",
        help="a USB joystick or a radio in joystick mode (default 0, `heli-sim ports` lists them); "
        "prints the [joystick] table",
    )
    parser.add_argument(
        "--joystick-preset", choices=JOYSTICK_PRESETS, help="with --joystick: its layout (default: --config's, or auto)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="with --joystick: a flight file whose [joystick] layout to use"
    )
    parser.add_argument("--rc-protocol", choices=protocols_for("rc-in"), help="default by port")
    parser.add_argument(
        "--seconds", type=schema_type(Watch, "seconds"), default=20.0, help="how long to watch (default 20)"
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write the table ([rc], or [joystick] with --joystick) here, not to stdout"
    )
    parser.add_argument(
        "--reverse", type=_stick_names, default=(), metavar="STICKS", help="comma list of reversed sticks"
    )
    parser.add_argument(
        "--channel-map",
        type=channel_map_type,
        default=ChannelMap(),
        help="roll,pitch,collective,yaw,arm,mode[,throttle_hold] channels (default 1,2,3,4,5,6,7)",
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


def _joystick_number(text: str) -> int:
    """``--joystick N``: SDL's device index, 0 to 99."""
    if not (text.isdigit() and int(text) < 100):
        raise argparse.ArgumentTypeError(f"{show(text)}: expected a joystick number from 0 to 99")
    return int(text)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.output, "--output")
    _only_table(args.output, "joystick" if args.joystick is not None else "rc")
    if args.joystick is not None:
        return _run_joystick(args)
    calibrator = _watch_radio(args)
    _write_rc_table(args, calibrator)
    return 0


def _watch_radio(args: argparse.Namespace) -> Calibrator:
    """Read the radio on ``--rc`` (its emulator started on a virtual port) for ``--seconds``; what it saw.
    ``ConfigError`` if no stick frame came."""
    channel_map = args.channel_map
    spec = PortSpec(role="rc-in", url=args.rc, protocol=args.rc_protocol or "")
    numbers = ",".join(str(number) for number in channel_map.numbers())
    if args.pilot.startswith("script:"):  # checked here, in one line, before its emulator starts
        ScriptPilot(args.pilot.removeprefix("script:"), channel_map, 1)
    port, endpoint = build_port(spec, EventLog(), ["--pilot", args.pilot, "--channel-map", numbers])
    calibrator = Calibrator(channel_map)
    port.open()
    try:
        if endpoint is not None:
            endpoint.wait_ready(time.monotonic() + 30.0)

        def sample() -> tuple[float, tuple[float, ...]] | None:
            frames = port.exchange(None) or {}
            return (frames[0].t_received, frames[0].channels.channels_us) if 0 in frames else None

        _watch(sample, calibrator, args.seconds)
    finally:
        port.close()
    if calibrator.frames == 0:
        raise ConfigError(f"{args.rc}: no stick frames arrived in {args.seconds:g} s (protocol {port.protocol})")
    return calibrator


def _write_rc_table(args: argparse.Namespace, calibrator: Calibrator) -> None:
    """The measured ``[rc]`` table, checked to load back as a flight file's, to ``--output`` or stdout."""
    calibrated, notes = calibrator.result(args.reverse)
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


def _watch(
    sample: Callable[[], tuple[float, tuple[float, ...]] | None], calibrator: Calibrator, seconds: float
) -> None:
    """Feed ``calibrator`` from ``sample`` for ``seconds`` (Ctrl-C ends it early): live bars on a
    terminal, and what the pilot has done so far, in words, on stderr."""
    interactive = sys.stdout.isatty()
    print(
        "move every stick to both ends, then let the self-centring sticks (roll, pitch, yaw) come to rest; the "
        "collective's centre is the middle of its travel (Ctrl-C ends early)",
        file=sys.stderr,
    )
    deadline = time.monotonic() + seconds
    next_show = 0.0
    try:
        while (now := time.monotonic()) < deadline:
            seen = sample()
            if seen is not None:
                calibrator.see(*seen)
            for line in calibrator.news():
                print(f"heli-sim calibrate: {line}", file=sys.stderr, flush=True)
            if interactive and now >= next_show and calibrator.latest:
                next_show = now + _SHOW_EVERY_S
                lines = calibrator.bars()
                sys.stdout.write("\n".join(lines) + f"\n\x1b[{len(lines)}A")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the watching early; what was seen is still written
    if interactive and calibrator.latest:
        sys.stdout.write(f"\x1b[{len(calibrator.latest)}B")


def _run_joystick(args: argparse.Namespace) -> int:
    """Calibrate a joystick's stick axes: the same watching as a radio's, the ``[joystick]`` table out."""
    from sim.joystick.device import JoystickDevice, start_pygame

    if args.rc_protocol or args.pilot != "neutral" or args.channel_map != ChannelMap():
        raise ConfigError(
            "--rc-protocol, --pilot and --channel-map go with --rc; a joystick's layout comes from "
            "--config FILE ([joystick]) or --joystick-preset"
        )
    mapping = load_flight(args.config).joystick if args.config else JoystickMap()
    if args.joystick_preset:
        mapping = replace(mapping, preset=args.joystick_preset)
    pygame = start_pygame(events=True)
    try:
        device = JoystickDevice(pygame, mapping, args.joystick)
        assert device.sticks is not None  # required: opened (or NoJoystick was raised)
        layout = device.sticks.layout
        if not device.raw()[0]:
            raise ConfigError(f"joystick {args.joystick} {device.name!r} has no axes: nothing to calibrate")
        calibrator = Calibrator(_axes_as_channels(layout))
        print(f"heli-sim calibrate: {device.opened}", file=sys.stderr, flush=True)
        device.poll()  # SDL updates axis values as it pumps its events
        axes, _buttons = device.raw()  # where the sticks are as it starts: the first sample
        calibrator.see(time.monotonic(), _axes_as_microseconds(axes))

        def sample() -> tuple[float, tuple[float, ...]] | None:
            time.sleep(_JOYSTICK_POLL_S)  # SDL has no blocking read: poll at a radio's frame rate, plugged or not
            for kind, detail in device.poll():
                print(f"heli-sim calibrate: {kind}: {detail}", file=sys.stderr, flush=True)
            axes, _buttons = device.raw()
            if not axes:
                return None
            return time.monotonic(), _axes_as_microseconds(axes)

        _watch(sample, calibrator, args.seconds)
        device.close()
    finally:
        pygame.quit()
    if calibrator.frames == 0:
        raise ConfigError(f"joystick {args.joystick}: no samples came (unplugged all along, or ended before the first)")
    calibrated, notes = calibrator.result()
    for note in notes:  # the calibrator counts channels from 1; axis k was channel k + 1
        print("heli-sim calibrate: " + _CHANNEL_NUMBER.sub(_axis_number, note), file=sys.stderr)
    # the table as the flight file had it (its own changes kept), with the preset it resolved to, the
    # measured ranges and the whole list of inverted axes (--reverse flips the layout's)
    table: dict = {**to_table(mapping), "preset": layout.preset}
    flipped = set(layout.inverted) ^ set(args.reverse)
    table["inverted"] = [stick for stick in STICKS if stick in flipped]
    for stick in STICKS:
        table[f"{stick}_range"] = [round((us - CENTRE_US) / HALF_RANGE_US, 4) for us in calibrated.calibration(stick)]
    build(JoystickMap, table, source="the measured calibration", path="joystick")  # loads back, or says why
    text = tomli_w.dumps({"joystick": table})
    if args.output:
        write_output(args.output, text, "--output")
        print(f"heli-sim calibrate: {calibrator.frames} samples; [joystick] written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _axes_as_microseconds(axes: list[float]) -> tuple[float, ...]:
    """A joystick's axes (-1..1) read as channels (1000..2000 us), axis k as channel k + 1."""
    return tuple(CENTRE_US + HALF_RANGE_US * value for value in axes[:CHANNEL_COUNT])


def _axis_number(match: re.Match) -> str:
    return f"axis {int(match[1]) - 1}"


def _only_table(path: str | None, table: str) -> None:
    """``--output`` names a file that holds nothing but the ``[table]`` being written (or nothing at all):
    a flight file with more in it is refused, not overwritten (``ConfigError``, before any watching)."""
    if not path or not os.path.isfile(path):
        return
    try:
        with open(path, "rb") as file:
            held = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        held = {"(not TOML)": None}
    others = sorted(set(held) - {table})
    if others:
        raise ConfigError(
            f"--output {path}: it holds {', '.join(f'[{name}]' for name in others)} as well, and calibrate writes "
            f"only [{table}]: name a new file and copy the table into your flight file"
        )


def _axes_as_channels(layout: JoystickLayout) -> ChannelMap:
    """The joystick's axes read as channels (axis k is channel k + 1), the sticks where the layout puts them."""
    sticks = layout.stick_axes
    if max(sticks.values()) >= CHANNEL_COUNT:
        raise ConfigError(f"calibrate reads axes 0 to {CHANNEL_COUNT - 1}; this layout puts {sticks}")
    used = {axis + 1 for axis in sticks.values()}
    switches = [axis + 1 for axis in (layout.arm_axis, layout.mode_axis) if axis is not None and axis + 1 not in used]
    spare = [channel for channel in range(1, CHANNEL_COUNT + 1) if channel not in used and channel not in switches]
    arm, mode = (switches + spare)[:2]
    return ChannelMap(
        roll=sticks["roll"] + 1,
        pitch=sticks["pitch"] + 1,
        collective=sticks["collective"] + 1,
        yaw=sticks["yaw"] + 1,
        arm=arm,
        mode=mode,
    )
