"""What the view draws: a ``Snapshot`` of the flight, and its fixed layout in shared memory.

The simulator writes one snapshot per tick into a ``SnapshotBuffer`` (shared memory guarded by
a sequence lock: the writer makes the counter odd, writes, makes it even; a reader copies and
retries if the counter was odd or moved), and the view process reads the newest one whenever it
draws a frame.  The layout is a flat float64 array of fixed size (``sim.view.shared.BlockLayout``), so publishing is
a handful of numpy slice assignments and reading a single copy; text (port names, events) goes
in a fixed-size UTF-8 area.

Nothing here imports pygame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "HISTORY",
    "LATENESS_BINS_MS",
    "MAX_PORTS",
    "MAX_VEHICLES",
    "PortView",
    "Snapshot",
    "VehicleView",
]

MAX_VEHICLES = 64  # drawn; a larger fleet shows its first 64
MAX_PORTS = 16
HISTORY = 2048  # ticks of period and lateness kept for the strip chart (4 s at 500 Hz)
# lateness histogram bin edges, ms: 0.01 ms .. 10 s, 4 bins per decade, plus under/overflow
LATENESS_BINS_MS = tuple(10.0 ** (k / 4.0) for k in range(-8, 17))
IO_MODES = ("threaded", "blocking", "asyncio")  # the loop's I/O modes, by their index on the wire


@dataclass(frozen=True)
class VehicleView:
    """One helicopter as the view needs it (SI units, NED, body FRD)."""

    position_ned_m: tuple[float, float, float]
    velocity_ned_m_s: tuple[float, float, float]
    attitude_quat: tuple[float, float, float, float]  # w, x, y, z body -> NED
    flapping_rad: tuple[float, float]  # a1 (+ aft), b1 (+ right): the rotor disc's tilt on the shaft
    rotor_speed_rpm: float
    collective_deg: float
    throttle: float  # 0..1
    crashed: bool
    armed: bool
    failsafe: bool
    mode: str  # "rate", "angle", "rescue", "failsafe: level", ...
    governor: str  # "off", "spool-up", "active"
    wind_ned_m_s: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the air it meets: steady, turbulence, gusts
    throttle_hold: bool = False  # the pilot's arm switch on and throttle hold on: the motor stopped


@dataclass(frozen=True)
class PortView:
    """One row of the ports panel."""

    name: str
    role: str
    protocol: str
    direction: str  # "in", "out" or "in/out"
    frames_per_s: float
    bytes_per_s: float
    errors: int
    io_wait_ms: float  # p50 of the time spent in the port's blocking calls
    state: str  # "ok", "backpressured", "timed out", "disconnected", "closed"
    fault: str = ""  # the faults injected on this port now ("" when none)


@dataclass
class Snapshot:
    """Everything the view draws about the flight at one tick."""

    sim_time_s: float = 0.0
    last_tick_monotonic: float = 0.0  # time.monotonic() of the last tick: the view shows "no tick for N ms"
    tick: int = 0
    loop_hz: float = 500.0
    io_mode: str = "threaded"
    paused: bool = False
    cpu_helper: str = "off"  # "off", "thread" or "process"
    heli_name: str = ""
    rc_source: str = ""  # "keyboard", "joystick", "transmitter (crsf)", "in-process pilot", ...
    sticks_us: tuple[float, ...] = (1500.0,) * 16  # vehicle 0's channels, in the flight's channel order
    sticks_fresh: bool = False
    vehicles: list[VehicleView] = field(default_factory=list)
    # the last HISTORY ticks, oldest first: period and lateness in ms, and the I/O mode index
    period_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lateness_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    history_mode: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # per I/O mode: ticks, missed deadlines, and lateness histogram counts over LATENESS_BINS_MS
    ticks_by_mode: dict[str, int] = field(default_factory=dict)
    missed_by_mode: dict[str, int] = field(default_factory=dict)
    lateness_hist: dict[str, np.ndarray] = field(default_factory=dict)
    ports: list[PortView] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # the last few, newest last
    loop_fault: str = ""  # a fault injected in the loop now ("" when none)
    caption: list[str] = field(default_factory=list)  # the tour's title and paragraph, over the scene
    python: str = ""  # the simulator's interpreter: "Python 3.11.7 (GIL)" or "... (free-threaded: no GIL)"
    finished: bool = False  # the flight has ended: the view saves its screenshot (if asked) and closes
    fc: dict = field(default_factory=dict)  # firmware in the loop: its link (sim.fc.loop.fc_status); {} without

    @property
    def deadline_ms(self) -> float:
        return 1000.0 / self.loop_hz

    def stalled_ms(self, now_monotonic: float) -> float:
        """How long the loop has gone without a tick (0 while it keeps its rate)."""
        since = (now_monotonic - self.last_tick_monotonic) * 1000.0
        return since if since > 3.0 * self.deadline_ms else 0.0


def lateness_bin(lateness_ms: float) -> int:
    """Index into a histogram of len(LATENESS_BINS_MS) + 1 counts."""
    if not lateness_ms > LATENESS_BINS_MS[0]:
        return 0
    index = math.floor(4.0 * math.log10(lateness_ms)) + 9
    return max(0, min(len(LATENESS_BINS_MS), index))
