"""One flight from start to end: the ``Flight``, its I/O, the loop, opened and closed in order.

``with flight_session(config, heli) as loop: loop.run()`` is how the CLI, the benchmarks and the
tests fly: the ports (and their device emulators) are open and ready before the loop starts,
and closed on the way out however the flight ends: threads joined, emulators ended, ports shut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from heli.errors import ConfigError
from sim.config import FlightConfig, HeliConfig
from sim.flight import Flight
from sim.loop import Clock, FlightLoop, MonotonicClock
from sim.wiring import FlightIO, InProcessIO, PortIO

__all__ = ["ViewOptions", "flight_session"]


@dataclass(frozen=True)
class ViewOptions:
    """Open the pygame view: its window size, and a PNG of its last frame to save."""

    size: tuple[int, int] = (1280, 720)
    screenshot: str | None = None


@contextmanager
def flight_session(
    config: FlightConfig,
    heli: HeliConfig,
    *,
    clock: Clock | None = None,
    on_progress: Callable[[FlightLoop], None] | None = None,
    before_tick: Callable[[FlightLoop], None] | None = None,
    view: ViewOptions | None = None,
) -> Iterator[FlightLoop]:
    """A ready-to-run loop for ``config``; ``PortError`` if a port cannot be opened.

    With ``view``, the view process is started once the ports are open and closed (after
    saving its screenshot) before them.
    """
    settings = config.flight
    if settings.pilot == "keyboard" and view is None:
        raise ConfigError("--pilot keyboard needs the view (it is the transmitter); drop --headless")
    flight = Flight(heli, config)
    io: FlightIO = PortIO(flight, config, settings.io) if config.port_specs() else InProcessIO(flight)
    loop = FlightLoop(
        flight,
        clock or MonotonicClock(),
        loop_hz=settings.loop_hz,
        io_mode=settings.io,
        duration_s=settings.duration_s,
        catchup_limit_s=settings.catchup_limit_s,
        on_progress=on_progress,
        before_tick=before_tick,
        io=io,
    )
    try:
        io.open()
        if view is not None:
            _open_view(loop, io, config, view)
        yield loop
    finally:
        if loop.view is not None:
            loop.view.close(finished=True)
        loop.cpu_helper.close()
        io.close()


def _open_view(loop: FlightLoop, io: FlightIO, config: FlightConfig, view: ViewOptions) -> None:
    from sim.view.link import ViewLink

    rc_fd = io.view_rc_fd() if isinstance(io, PortIO) else None
    rc_port = getattr(io, "rc_port", None)
    if rc_fd is not None:
        loop.rc_source = "keyboard / joystick (crsf)"
    elif rc_port is not None:
        loop.rc_source = f"{rc_port.url} ({rc_port.protocol})"
    cmap = config.rc
    loop.view = ViewLink(
        size=view.size,
        screenshot=view.screenshot,
        rc_fd=rc_fd,
        joystick={
            "channel_map": [cmap.roll, cmap.pitch, cmap.collective, cmap.yaw, cmap.arm, cmap.mode],
            "joystick": asdict(config.joystick),
        },
    )
    loop.record("view_opened", f"pid {loop.view.process.pid}", t_s=0.0)
    loop.view.wait_shown(loop)
