"""``heli-sim fly``: fly one or more simulated helicopters in real time.

Without a display (or with ``--headless``) it prints a status line while flying and a timing
summary at the end; ``--stats-json`` writes the summary for scripts.  SIGUSR1 toggles blocking
I/O, SIGUSR2 asyncio I/O; SIGINT and SIGTERM stop the flight cleanly (the summary is still written).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import weakref
from dataclasses import replace

import tomli_w

from heli.errors import ConfigError
from sim import stopping
from sim.cli import EXIT_BAD_INPUT, EXIT_FLIGHT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, check_output_path
from sim.cli.options import schema_type
from sim.cli.output import write_json_output
from sim.config import (
    IO_MODES,
    KERNELS,
    MIN_PHYSICS_DT_S,
    PILOT_KINDS,
    FlightConfig,
    FlightSettings,
    HeliConfig,
    PortSpec,
    apply_overrides,
    check_physics_step,
    flight_table,
    heli_table,
    load_heli,
)
from sim.dataclass_io import build, to_table
from sim.fc.config import DEFAULT_FRAME_STEP_S, FC_PROTOCOLS, FcConfig
from sim.fc.presets import fc_preset
from sim.loop import FlightLoop
from sim.outcome import flight_failures
from sim.ports.codecs import protocols_for
from sim.report import format_summary
from sim.session import ViewOptions, flight_session
from sim.view.link import has_display


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fly",
        description="Fly one or more simulated helicopters in real time. Headless, it prints a status line and a "
        "timing summary; --stats-json writes the summary as JSON. SIGUSR1 toggles blocking I/O (back to threaded or "
        "asyncio), SIGUSR2 toggles asyncio and threaded I/O; SIGINT and SIGTERM "
        "stop the flight cleanly (exit 130 and 143) with the summary written.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a flight file (TOML): [flight], [rc], [environment]; or a shipped one by name (heli-sim configs)",
    )
    parser.add_argument(
        "--heli",
        type=schema_type(FlightSettings, "heli"),
        metavar="NAME",
        help="xcell60, trex450, trex700, or a helicopter .toml path",
    )
    parser.add_argument(
        "--fleet",
        type=schema_type(FlightSettings, "fleet"),
        metavar="N",
        help="number of helicopters (the numpy batch axis)",
    )
    parser.add_argument(
        "--io",
        choices=IO_MODES,
        help="I/O mode at the start: threaded (a thread per port), blocking (inline), asyncio (one event loop); "
        "SIGUSR1 and SIGUSR2 switch it",
    )
    parser.add_argument(
        "--pilot",
        type=schema_type(FlightSettings, "pilot"),
        metavar="PILOT",
        help="; ".join(f"{kind.shape}: {kind.doc}" for kind in PILOT_KINDS.values()) + " (default: hover, or keyboard "
        "in a window)",
    )
    parser.add_argument("--headless", action="store_true", help="no view, even where there is a display")
    parser.add_argument(
        "--duration",
        type=schema_type(FlightSettings, "duration_s"),
        metavar="S",
        help="seconds to fly (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--loop-hz",
        type=schema_type(FlightSettings, "loop_hz"),
        metavar="HZ",
        help="controller loop rate (default 500)",
    )
    parser.add_argument(
        "--physics-dt",
        type=schema_type(FlightSettings, "physics_dt_s"),
        metavar="S",
        help=f"physics step (default 0.001, at least {MIN_PHYSICS_DT_S:g})",
    )
    parser.add_argument("--start", choices=("ground", "hover"), help="on the skids (default) or trimmed in hover")
    parser.add_argument(
        "--start-altitude",
        type=schema_type(FlightSettings, "start_altitude_m"),
        metavar="M",
        help="with --start hover: the height of the hover (default 5 m)",
    )
    parser.add_argument(
        "--workers",
        type=schema_type(FlightSettings, "workers"),
        nargs="?",
        const=os.cpu_count() or 1,
        metavar="N",
        help="step and control the fleet in N worker processes (alone: one per core); a worker needs more than 24 "
        "vehicles",
    )
    parser.add_argument(
        "--kernel",
        choices=KERNELS,
        help="numpy (default) or compiled: the physics and controller compiled by numba (pip install "
        "'heli-sim[fast]'; compiled on first use, about half a minute, then cached): the same flight on a fifth of "
        "the CPU for a fleet of hundreds or more; for a few vehicles no gain",
    )
    parser.add_argument(
        "--controller",
        type=schema_type(FlightSettings, "controller"),
        metavar="MODULE:FUNCTION",
        help="fly your own controller (docs/extending.md); default: built-in",
    )
    parser.add_argument(
        "--fc",
        type=_fc_option,
        metavar="FIRMWARE[:HOST]",
        help="real flight-controller firmware flies instead of heli-sim's controller: ardupilot-json (ArduPilot SITL "
        "started with --model JSON:HOST) listens on HOST (default 127.0.0.1) and --fc-port; the wiring, radio "
        "channels and sensors come from the flight file's [fc] table, or the shipped preset for the helicopter",
    )
    parser.add_argument(
        "--fc-port", type=schema_type(FcConfig, "port"), metavar="PORT", help="the UDP port to listen on (default 9002)"
    )
    ports = parser.add_argument_group(
        "ports",
        "each PORT is a device path, a pyserial URL (socket://, rfc2217://, loop://, spy://) or virtual "
        "(a pty pair with an emulated device on the far end); without any port option or [[ports]] table a "
        "flight has a virtual transmitter (rc-in), a virtual servo board per vehicle and a virtual ground station",
    )
    port = schema_type(PortSpec, "url")
    ports.add_argument(
        "--rc", type=port, metavar="PORT", help="rc-in: the pilot's sticks (none: the pilot runs in-process)"
    )
    ports.add_argument("--rc-out", type=port, metavar="PORT", help="rc-out: push the channels being flown to a module")
    ports.add_argument("--servo", type=port, nargs="+", metavar="PORT", help="servo: one per vehicle, in order")
    ports.add_argument(
        "--telemetry", type=port, metavar="PORT", help="telemetry to a ground station (none: no telemetry)"
    )
    ports.add_argument(
        "--link", type=port, nargs="+", metavar="PORT", help="link: a slow request/response device per vehicle"
    )
    ports.add_argument(
        "--link-latency",
        type=schema_type(PortSpec, "latency_ms"),
        metavar="MS",
        help="reply latency of virtual link devices",
    )
    ports.add_argument("--rc-protocol", choices=protocols_for("rc-in"), help="of the rc-in port")
    ports.add_argument("--rc-out-protocol", choices=protocols_for("rc-out"), help="of the rc-out port")
    ports.add_argument("--servo-protocol", choices=protocols_for("servo"), help="of the servo ports")
    ports.add_argument("--telemetry-protocol", choices=protocols_for("telemetry"), help="of the telemetry port")
    ports.add_argument(
        "--no-ports", action="store_true", help="start from no ports (the pilot in-process); other port options add"
    )
    parser.add_argument("--stats-json", metavar="FILE", help="write the run summary as JSON")
    parser.add_argument(
        "--log", metavar="DIR", help="record every tick, frame and event into this new flight log (a directory)"
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE",
        help="save a PNG of the view's last frame (renders off screen without a display)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    parser.add_argument("--quiet", action="store_true", help="no status line and no summary table")
    parser.set_defaults(run=run)


def _port(source: str, **table: object) -> dict:
    """A port's table, checked by the [[ports]] schema with the options that made it named as the source."""
    return to_table(build(PortSpec, table, source=source))


def _with_port_options(config: FlightConfig, args: argparse.Namespace) -> FlightConfig:
    """The config's ports (or the default set) with the command line's port options applied.

    Every port made or changed here goes through the ``[[ports]]`` schema, and the whole flight
    through the flight file's, so the command line can say nothing a flight file could not.
    """
    protocols = {
        "rc-in": args.rc_protocol,
        "rc-out": args.rc_out_protocol,
        "servo": args.servo_protocol,
        "telemetry": args.telemetry_protocol,
    }
    given = [args.rc, args.rc_out, args.servo, args.telemetry, args.link, args.link_latency, *protocols.values()]
    if all(option is None for option in given) and not args.no_ports:
        return config
    specs = [] if args.no_ports else [to_table(s) for s in config.port_specs()]

    def replace_role(role: str, new: list[dict]) -> None:
        nonlocal specs
        specs = [s for s in specs if s["role"] != role] + new

    if args.rc is not None:
        replace_role("rc-in", [] if args.rc == "none" else [_port("--rc", role="rc-in", url=args.rc)])
    if args.rc_out is not None:
        replace_role("rc-out", [_port("--rc-out", role="rc-out", url=args.rc_out)])
    if args.servo is not None:
        replace_role("servo", [_port("--servo", role="servo", url=u, vehicle=i) for i, u in enumerate(args.servo)])
    if args.telemetry is not None:
        telemetry = [] if args.telemetry == "none" else [_port("--telemetry", role="telemetry", url=args.telemetry)]
        replace_role("telemetry", telemetry)
    if args.link is not None:
        replace_role("link", [_port("--link", role="link", url=u, vehicle=i) for i, u in enumerate(args.link)])
    if args.link_latency is not None:
        if not any(s["role"] == "link" for s in specs):
            raise ConfigError(
                f"--link-latency {args.link_latency:g}: this flight has no link port (add --link virtual)"
            )
        specs = [{**s, "latency_ms": args.link_latency} if s["role"] == "link" else s for s in specs]
    for role, protocol in protocols.items():
        if protocol:
            option = f"--{role.removesuffix('-in')}-protocol"
            specs = [_port(option, **{**s, "protocol": protocol}) if s["role"] == role else s for s in specs]
    return build(FlightConfig, {**to_table(config), "ports": specs}, source="command line")


def _effective_config(args: argparse.Namespace) -> tuple[FlightConfig, bool]:
    """Defaults < the flight file < the command line, every value checked by its schema, and the
    physics step checked against the helicopter's fastest motions (``check_physics_step``); and
    whether ``--pilot`` or the file's ``[flight] pilot`` says who flies."""
    file_table = {} if args.config is None else flight_table(args.config)  # read once
    config = FlightConfig() if args.config is None else build(FlightConfig, file_table, source=args.config)
    config = apply_overrides(
        config,
        heli=args.heli,
        fleet=args.fleet,
        io=args.io,
        pilot=args.pilot,
        duration_s=args.duration,
        loop_hz=args.loop_hz,
        physics_dt_s=args.physics_dt,
        start=args.start,
        start_altitude_m=args.start_altitude,
        controller=args.controller,
        workers=args.workers,
        kernel=args.kernel,
    )
    if args.start_altitude is not None and config.flight.start != "hover":
        raise ConfigError(
            f"--start-altitude {args.start_altitude:g}: the flight starts on the ground; expected it with --start hover"
        )
    config = _with_fc_options(config, file_table, args)
    config = _with_port_options(config, args)
    check_physics_step(load_heli(config.flight.heli), config)
    return config, args.pilot is not None or "pilot" in file_table.get("flight", {})


def _fc_option(text: str) -> tuple[str, str]:
    """``--fc FIRMWARE[:HOST]``: (firmware, host or "")."""
    firmware, _, host = text.partition(":")
    if firmware not in FC_PROTOCOLS or not firmware:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a firmware ({', '.join(p for p in FC_PROTOCOLS if p)}), optionally with :HOST to "
            "listen on (ardupilot-json:0.0.0.0)"
        )
    return firmware, host


def _with_fc_options(config: FlightConfig, file_table: dict, args: argparse.Namespace) -> FlightConfig:
    """Firmware in the loop (``--fc``, or ``[fc] protocol`` in the flight file) on the helicopter's
    shipped preset: the preset's ``[fc]`` tables, then the flight file's ``[fc]`` keys over them, then
    ``--fc`` and ``--fc-port``; the physics step is the preset's (one per frame) unless the file or the
    command line sets one."""
    file_fc = file_table.get("fc", {}) if isinstance(file_table.get("fc"), dict) else {}
    firmware, host = args.fc if args.fc is not None else (config.fc.protocol, "")
    if not firmware:
        if args.fc_port is not None:
            raise ConfigError(f"--fc-port {args.fc_port}: no firmware flies this flight (add --fc ardupilot-json)")
        return config
    preset = fc_preset(config.flight.heli, firmware) or {}
    table = to_table(config)
    table["fc"] = {**_merged(preset.get("fc", {}), file_fc), "protocol": firmware, **({"host": host} if host else {})}
    if args.physics_dt is None and "physics_dt_s" not in file_table.get("flight", {}):  # one step per frame
        table["flight"]["physics_dt_s"] = preset.get("flight", {}).get("physics_dt_s", DEFAULT_FRAME_STEP_S)
    config = build(FlightConfig, table, source=args.config or "command line")
    return config if args.fc_port is None else replace(config, fc=_with_fc_port(config.fc, args.fc_port))


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s keys on top, tables merged key by key (a preset, then a flight file)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _with_fc_port(fc: FcConfig, port: int) -> FcConfig:
    """``--fc-port``: ArduPilot's instance N (``-I N``) moves its JSON port and its RC input alike, by 10 x N
    (9002 and 5501 for the first): an RC port left at its default follows."""
    offset = port - FcConfig.port
    follows = fc.rc_udp_port == FcConfig.rc_udp_port and offset >= 0 and offset % 10 == 0
    return replace(fc, port=port, rc_udp_port=FcConfig.rc_udp_port + offset if follows else fc.rc_udp_port)


_RC_RATE_WINDOW_S = 1.0
# per flight: (window start, stick frames then, the rate the last window measured)
_rc_rates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _recent_rc_rate_hz(loop: FlightLoop, rc_port, now: float | None = None) -> float:
    """Stick frames a second over the last second or so (a whole-flight average kept showing
    100 Hz while the radio was off); until the first second has passed, since the start.  ``now``:
    monotonic seconds (default: the clock)."""
    now, frames = time.monotonic() if now is None else now, rc_port.stick_frames
    if loop not in _rc_rates:
        _rc_rates[loop] = (now, frames, float(rc_port.summary()["frame_rate_hz"] or 0.0))
    started, then, rate = _rc_rates[loop]
    if now - started >= _RC_RATE_WINDOW_S:
        rate = (frames - then) / (now - started)
        _rc_rates[loop] = (now, frames, rate)
    return rate


def _status_line(loop: FlightLoop) -> None:
    flight = loop.flight
    seg = loop.segments[-1]
    late = seg.lateness.quantile(0.99)
    alt = flight.vehicles.altitude_m
    rpm = flight.vehicles.rotor_speed_rad_s[0] * 30.0 / 3.141592653589793
    rc_port = getattr(loop.io, "rc_port", None)
    rc = "" if rc_port is None else f"  rc {rc_port.protocol} {_recent_rc_rate_hz(loop, rc_port):5.0f} Hz"
    failed = [port.name for port in getattr(loop.io, "ports", []) if port.state == "failed"]
    rc += f"  FAILED: {', '.join(failed)}" if failed else ""  # ports that could not go on (exit status 3)
    diverged, taken_over = int(flight.diverged_in_flight.sum()), int(flight.taken_over_in_flight.sum())
    rc += f"  DIVERGED: {diverged}" if diverged else ""  # vehicles no longer integrated (exit status 3)
    rc += f"  TAKEN OVER: {taken_over}" if taken_over else ""  # a user's controller failed them (exit status 3)
    fc_status = getattr(loop, "fc_status", None)
    if fc_status is not None:  # firmware in the loop: its frames set the pace
        fc = fc_status()
        timing = (
            f"fc {fc['state']:<7} {fc['frame_rate_hz']:6.0f}/s  lost {fc['lost']:>4}  repeated {fc['repeated']:>4}  "
            f"behind {fc['behind_s']:6.2f} s"
        )
    else:
        timing = f"lateness p99 {0 if late is None else late * 1e6:6.0f} us  missed {seg.missed_deadlines:>5}"
    sys.stderr.write(
        f"\r t {flight.sim_time_s:7.1f} s  {loop.io_mode:<8} ticks {loop.ticks:>7}  {timing}  "
        f"alt {alt.min():6.2f} m  rotor {rpm:5.0f} rpm{rc} "
    )
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    config, pilot_named = _effective_config(args)
    heli = load_heli(config.flight.heli)
    if args.print_config:
        _print_config(config, heli)
        return EXIT_OK
    check_output_path(args.stats_json, "--stats-json")
    check_output_path(args.screenshot, "--screenshot")
    check_output_path(args.log, "--log", new_directory=True)
    config, view = _with_view(args, config, pilot_named)
    flying: list[FlightLoop] = []

    def on_stop(signum: int) -> None:  # from the signal handler (sim.stopping): sets values only
        for loop in flying:
            loop.request_stop(signal.Signals(signum).name)

    def on_toggle(signum: int, _frame: object) -> None:
        for loop in flying:
            if signum == signal.SIGUSR2:
                loop.toggle_asyncio_mode()
            else:
                loop.toggle_io_mode()

    # from before the ports open until the summary is out: SIGINT and SIGTERM are requests, so a signal
    # at any moment ends the flight in order (a second one cannot cut the shutdown short); one before
    # the flight starts ends the session as it opens, with no summary (sim.stopping)
    toggles = {sig: signal.signal(sig, on_toggle) for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    try:
        with stopping.handling_stops(on_stop):
            return _fly(args, config, heli, view, flying)
    finally:
        for sig, handler in toggles.items():
            signal.signal(sig, handler)


def _print_config(config: FlightConfig, heli: HeliConfig) -> None:
    """The flight part (it loads back with --config), then the helicopter's values as comments."""
    helicopter = tomli_w.dumps(heli_table(heli))
    print(config.to_toml())
    print(f"# helicopter {heli.params.name!r} as loaded from {heli.source}:")
    print("\n".join(f"# {line}".rstrip() for line in helicopter.splitlines()))


def _with_view(
    args: argparse.Namespace, config: FlightConfig, pilot_named: bool
) -> tuple[FlightConfig, ViewOptions | None]:
    """Whether the view opens (a display, or --screenshot), and the default pilot's one rule: in a window
    on a desktop the person at the keyboard flies (make fly), unless the command line or the flight file
    names a pilot."""
    show_view = not args.headless and (has_display() or args.screenshot is not None)
    if args.headless and args.screenshot:
        raise ConfigError("--screenshot needs the view: drop --headless (without a display it renders off screen)")
    if show_view and has_display() and not pilot_named:
        config = _with_port_options(apply_overrides(config, pilot="keyboard"), args)
    return config, ViewOptions(screenshot=args.screenshot) if show_view else None


def _announce(loop: FlightLoop, config: FlightConfig, heli: HeliConfig) -> None:
    """The line that says what flies, how, and how to toggle its I/O (stderr)."""
    until = f"for {config.flight.duration_s:g} s" if config.flight.duration_s else "until Ctrl-C"
    pace = f"{config.flight.loop_hz:g} Hz"
    if config.fc.enabled:  # firmware in the loop: its frames set the pace
        from sim.fc.loop import LockstepLoop  # (imported already by the session that made it)

        if isinstance(loop, LockstepLoop):
            pace = f"lock-step with {loop.firmware.title}, waiting for it on {loop.address}"
    shards = loop.flight.shards
    if shards is not None:  # where the fleet is stepped, when not here
        pace += f", {len(shards.ranges)} worker process{'es' if len(shards.ranges) > 1 else ''}"
    kernels = ", compiled kernels" if config.flight.kernel == "compiled" else ""
    print(
        f"heli-sim: flying {heli.params.name} x{config.flight.fleet}, pilot {loop.rc_source}, "
        f"{pace}{kernels}, I/O {config.flight.io}, {until} "
        f"(pid {os.getpid()}, SIGUSR1 toggles blocking I/O, SIGUSR2 asyncio)",
        file=sys.stderr,
        flush=True,
    )


def _saved_since(path: str, since: float) -> bool:
    """Whether a file was written at ``path`` at or after ``since`` (seconds since the epoch)."""
    try:
        return os.stat(path).st_mtime >= since - 1.0  # (file systems keep modification times coarsely)
    except OSError:
        return False


def _fly(
    args: argparse.Namespace, config: FlightConfig, heli: HeliConfig, view: ViewOptions | None, flying: list[FlightLoop]
) -> int:
    """Open the session, fly, print and write the summary; the exit status.  Within ``handling_stops``."""
    show_status = sys.stderr.isatty() and not args.quiet
    started = time.time()  # (a screenshot saved after this is this flight's)
    session = flight_session(
        config, heli, on_progress=_status_line if show_status else None, view=view, log_path=args.log
    )
    with session as loop:
        flying.append(loop)  # first: a signal from now on stops the loop itself
        stopping.check()  # a signal came while the session was opening: the flight never started
        if not args.quiet:
            _announce(loop, config, heli)
        loop.run()
    if show_status:
        sys.stderr.write("\n")
    summary = loop.summary()
    failures = flight_failures(summary)
    if view is not None and view.screenshot and not _saved_since(view.screenshot, started):
        ended = (
            " (the view ended before the flight did)"
            if any(e["kind"] == "view_lost" for e in summary["events"])
            else ""
        )
        failures.append(f"no screenshot saved to {view.screenshot}{ended}")
    summary["failures"] = failures
    if not args.quiet:
        print(format_summary(summary), flush=True)
    if failures:
        print(f"heli-sim fly: the flight failed: {'; '.join(failures)}", file=sys.stderr)
    # after the table: a --stats-json that cannot be written (disk full, folder gone) loses nothing else
    written = write_json_output(args.stats_json, summary, "--stats-json", "fly")
    signum = stopping.requested()
    if signum is not None:  # the user's stop decides the status; the failures are in the summary and the line above
        return EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM
    if not written:
        return EXIT_BAD_INPUT
    return EXIT_FLIGHT_FAILED if failures else EXIT_OK
