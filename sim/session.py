"""One flight from start to end: the ``Flight``, its I/O, the loop, opened and closed in order.

``with flight_session(config, heli) as loop: loop.run()`` is how the CLI, the benchmarks and the
tests fly: the ports (and their device emulators) are open and ready before the loop starts,
and closed on the way out however the flight ends: threads joined, emulators ended, ports shut.

Under ``sim.stopping.handling_stops`` (the CLI), SIGINT and SIGTERM raise ``Stopped`` while the
flight is being built; from the moment the first thing is opened they are requests: the
emulators' and the view's start-up give up (``Stopped``, and what was opened is closed), a flying
loop stops at its next tick, and the closing steps wait on budgets counted from the signal, so
the whole shutdown takes well under a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version

from heli.errors import ConfigError
from sim import stopping
from sim.config import FC_PORT, FlightConfig, HeliConfig, heli_table
from sim.cpu_helper import CpuHelper
from sim.dataclass_io import to_table
from sim.faults import FaultInjector
from sim.flight import Flight
from sim.log.writer import FlightLogWriter
from sim.loop import Clock, FlightLoop, LoopOptions, MonotonicClock
from sim.ports.virtual import HandoffEndpoint, VirtualEndpoint
from sim.rc import takeover_collective_stick
from sim.view.shared import start_resource_tracker
from sim.wiring import FlightIO, InProcessIO, PortIO

__all__ = ["ViewOptions", "flight_session"]

_REAP_BUDGET_S = 0.8  # stopping on a signal: killed emulators are waited for until this long after it


@dataclass(frozen=True)
class ViewOptions:
    """Open the pygame view: its window size, and a PNG of its last frame to save."""

    size: tuple[int, int] = (1280, 720)
    screenshot: str | None = None
    caption: tuple[str, ...] = ()  # a title and a paragraph drawn over the scene (the tour)


@contextmanager
def flight_session(
    config: FlightConfig,
    heli: HeliConfig,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[FlightLoop], None] | None = None,
    before_tick: Callable[[FlightLoop], None] | None = None,
    view: ViewOptions | None = None,
    log_path: str | None = None,
) -> Iterator[FlightLoop]:
    """A ready-to-run loop for ``config``; ``PortError`` if a port cannot be opened.

    With ``view``, the view process is started once the ports are open and closed (after
    saving its screenshot) before them.  With ``log_path``, every tick, frame and event goes
    into a flight log there (``sim.log``), complete once the session has closed.
    """
    settings = config.flight
    if settings.pilot == "keyboard" and view is None:
        raise ConfigError(
            "--pilot keyboard needs the view (it is the transmitter): a display, without --headless; "
            "without one, fly with --pilot joystick (a USB joystick or a radio in joystick mode), hover or script:FILE"
        )
    if settings.pilot_is_joystick:
        _check_joystick(config)
    flight = Flight(heli, config)
    workers = settings.workers
    io: FlightIO = PortIO(flight, config, settings.io) if config.port_specs() else InProcessIO(flight)
    options = LoopOptions(
        loop_hz=settings.loop_hz,
        io_mode=settings.io,
        duration_s=settings.duration_s,
        catchup_limit_s=settings.catchup_limit_s,
        on_progress=on_progress,
        before_tick=before_tick,
        io=io,
        cpu_helper=CpuHelper(),
    )
    link = None
    if config.fc.enabled:  # real firmware flies: its frames drive time (sim.fc.loop), over its link
        from sim.fc.loop import firmware_link

        link = firmware_link(config.fc)
    faults = options["faults"] = FaultInjector(
        config.faults,
        {**getattr(io, "line_faults", {}), **({FC_PORT: link.faults} if link is not None else {})},
        getattr(io, "endpoints", {}),
        {port.name: port.role for port in getattr(io, "ports", [])},
        seed=settings.seed,
    )
    if link is not None:
        from sim.fc.loop import LockstepLoop

        loop: FlightLoop = LockstepLoop(flight, clock or MonotonicClock(), fc=config.fc, link=link, **options)
    else:
        loop = FlightLoop(flight, clock or MonotonicClock(), **options)
    stopping.owning()  # from here SIGINT / SIGTERM are requests: what opens below closes in order
    if view is not None:
        start_resource_tracker()  # while no thread of this session starts processes (sim.view.shared)
    # closed in reverse order: view, CPU helper, faults, ports, log; each even if one before it failed
    with ExitStack() as closing:
        if log_path is not None:
            try:
                loop.recorder = _open_log(log_path, loop, io, config, heli)
            except OSError as error:  # out of file descriptors or memory: the CLI says so in one line
                error.add_note("creating the flight log")
                raise
            closing.callback(_close_log, loop)
        closing.callback(_reap_emulators, io)  # after the ports: those killed on a signal, together
        closing.callback(flight.stop_workers)
        closing.callback(io.close)
        if link is not None:
            closing.callback(link.close)
        closing.callback(faults.close)  # a stopped far end is let go, so it can be shut down in order
        closing.callback(loop.cpu_helper.close)
        closing.callback(_close_view, loop, io)
        try:
            if workers:
                loop.record("workers", flight.start_workers(workers), t_s=0.0)
            io.open()
            if link is not None:
                link.open()
            loop.rc_source = _rc_source(io, config)
            if view is not None:
                _open_view(loop, io, config, view)
            yield loop
        except BaseException:
            if loop.recorder is not None and loop.ticks == 0:  # nothing flew: leave no empty log behind
                loop.recorder.discard()
                loop.recorder = None
            raise


def _reap_emulators(io: FlightIO) -> None:
    """Reap the device emulators killed as the flight stopped on a signal (``sim.ports.virtual``),
    all together, until ``_REAP_BUDGET_S`` after the signal at most."""
    deadline = time.monotonic() + (stopping.time_left(_REAP_BUDGET_S) or 0.0)
    for endpoint in getattr(io, "endpoints", {}).values():
        if isinstance(endpoint, VirtualEndpoint):
            endpoint.reap(deadline)


def _close_view(loop: FlightLoop, io: FlightIO) -> None:
    if loop.view is not None:
        for port in getattr(io, "ports", []):  # the view is the far end of the keyboard's rc-in: it leaves now
            if isinstance(getattr(io, "endpoints", {}).get(port.name), HandoffEndpoint):
                port.far_end_leaving = True
        loop.view.close(finished=True)


def _close_log(loop: FlightLoop) -> None:
    if loop.recorder is not None:
        loop.recorder.close()  # last: the ports' final frames and every event are in
        loop.take_recorder_notices()  # a log that could not be finished is an event of the flight


def _open_log(path: str, loop: FlightLoop, io: FlightIO, config: FlightConfig, heli: HeliConfig) -> FlightLogWriter:
    ports = getattr(io, "ports", [])
    header = {
        "heli_sim_version": version("heli-sim"),
        "seed": config.flight.seed,
        "loop_hz": config.flight.loop_hz,
        "physics_dt_s": config.flight.physics_dt_s,
        "fleet": config.flight.fleet,
        "heli_name": heli.params.name,
        "heli_source": heli.source,
        "heli": heli_table(heli),
        "flight": to_table(config),
    }
    writer = FlightLogWriter(path, header, [port.name for port in ports], t0=loop.clock.now())
    for port in ports:
        port.recorder = writer
    writer.start()
    return writer


def _check_joystick(config: FlightConfig) -> None:
    """A joystick pilot's joystick is connected, and its emulated transmitter has an rc-in port to
    send on: said in one line before anything starts (``ConfigError``)."""
    from sim.joystick.device import check_connected
    from sim.joystick.pilot import joystick_index

    pilot = config.flight.pilot
    rc = next((spec for spec in config.port_specs() if spec.role == "rc-in"), None)
    if rc is None or rc.url != "virtual":
        where = "has no rc-in port" if rc is None else f"reads its rc-in port from {rc.url}"
        raise ConfigError(
            f"--pilot {pilot}: the joystick plays an emulated transmitter on a virtual rc-in port, and this "
            f'flight {where}; add [[ports]] role = "rc-in" (url virtual)'
        )
    check_connected(joystick_index(pilot), config.joystick)


def _rc_source(io: FlightIO, config: FlightConfig) -> str:
    """Who really holds the sticks, in a few words: the header, the view and the summary say it."""
    rc_port = getattr(io, "rc_port", None)
    pilot = config.flight.pilot
    if rc_port is None:
        return f"{pilot} (in-process pilot)"
    if rc_port.url != "virtual":
        return f"the radio on {rc_port.url} ({rc_port.protocol})"
    if pilot == "keyboard":
        return "keyboard / joystick (crsf)"
    return f"{pilot} (emulated transmitter on a virtual {rc_port.name}, {rc_port.protocol})"


def _hover_takeover(loop: FlightLoop, config: FlightConfig) -> dict[str, object]:
    """What the view's transmitter needs to take over a hovering helicopter without upsetting it: whether
    the flight starts in hover, the keyboard's collective stick (-1..1 as it sends it, 1000-2000 us)
    that gives the hover trim's collective through the flight's calibration, and that collective."""
    flight = loop.flight
    hover_deg = flight.trim.collective_deg
    return {
        "start_hover": config.flight.start == "hover",
        "hover_collective": takeover_collective_stick(hover_deg, flight.heli.controller.collective_max_deg, config.rc),
        "hover_collective_deg": hover_deg,
    }


def _open_view(loop: FlightLoop, io: FlightIO, config: FlightConfig, view: ViewOptions) -> None:
    from sim.view.link import ViewLink

    rc_fd = io.view_rc_fd() if isinstance(io, PortIO) else None
    rc_port = getattr(io, "rc_port", None)
    if rc_fd is not None:
        loop.rc_source = "keyboard / joystick (crsf)"
    elif rc_port is not None and rc_port.url != "virtual":
        loop.rc_source = f"{rc_port.url} ({rc_port.protocol})"
    cmap = config.rc
    loop.view = ViewLink(
        size=view.size,
        screenshot=view.screenshot,
        caption=view.caption,
        rc_fd=rc_fd,
        joystick={
            "channel_map": list(cmap.numbers()),
            "joystick": asdict(config.joystick),
            **_hover_takeover(loop, config),
        },
    )
    loop.record("view_opened", f"pid {loop.view.process.pid}", t_s=0.0)
    loop.view.wait_shown(loop)
