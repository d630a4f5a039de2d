"""The view's transmitter: keyboard and joystick become stick positions, then CRSF frames.

Keyboard: arrows roll and pitch, A/D yaw (all spring back to centre when released), W/S move the
collective (it stays where it is left, as a real collective stick does, at ``_COLLECTIVE_PER_S``:
from centre to the hover collective of an X-Cell in about 1.5 s), E arms or disarms, H switches
throttle hold on and off, M cycles the flight mode (rate, angle, rescue).  A joystick, when present, holds the sticks
and switches instead, read through ``sim.joystick`` (the same layouts and calibration as the headless joystick pilot).
``CrsfSender`` is an owned thread that writes a CRSF RC frame every 1/150 s into the simulator's
RC port (the far end of its pty), so the keyboard takes the same serial path as a real radio, and,
as a radio does, reads the telemetry that comes back down the link (the view shows it): a
transmitter that never read would leave the simulator's writes to a full buffer.  Paused (the
joystick unplugged), it sends nothing, as a radio switched off: the flight's failsafe takes over.

No pygame here: the view passes in which keys are held and the joystick's reading.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from dataclasses import dataclass, field

from sim.joystick.sticks import MODE_NAMES, MODES_US, JoystickReading, channels_us
from sim.protocols import crsf
from sim.protocols.crsf import LINE, encode_channels
from sim.protocols.rc import ChannelFrame

__all__ = ["MODE_NAMES", "CrsfSender", "StickState"]

_SPRING_PER_S = 4.0  # full deflection back to centre in a quarter second
_KEY_RATE_PER_S = 3.0  # how fast a held key deflects a stick
_COLLECTIVE_PER_S = 0.3  # W/S: the full range in under seven seconds, fine enough to hold a hover


@dataclass
class StickState:
    """Sticks in -1..1 (roll right, pitch forward, yaw right, collective up positive), arm, mode."""

    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    collective: float = 0.0
    armed: bool = False
    mode: int = 1  # angle
    hold: bool = False  # throttle hold
    channel_map: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # roll, pitch, collective, yaw, arm, mode, throttle hold
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take_over_hover(self, hover_collective: float) -> None:
        """Armed, angle mode, sticks centred and the collective at ``hover_collective`` (-1..1): how a
        pilot takes over a helicopter already hovering, so that it hovers on until a stick moves."""
        with self._lock:
            self.roll = self.pitch = self.yaw = 0.0
            self.collective = max(-1.0, min(1.0, hover_collective))
            self.armed, self.mode, self.hold = True, 1, False

    def from_keys(self, held: set[str], dt: float) -> None:
        """Update from the held keys ("left", "right", "up", "down", "a", "d", "w", "s") over ``dt`` s."""
        with self._lock:
            self.roll = _drive(self.roll, ("right" in held) - ("left" in held), dt)
            self.pitch = _drive(self.pitch, ("up" in held) - ("down" in held), dt)
            self.yaw = _drive(self.yaw, ("d" in held) - ("a" in held), dt)
            change = (("w" in held) - ("s" in held)) * _COLLECTIVE_PER_S * dt
            self.collective = max(-1.0, min(1.0, self.collective + change))

    def from_joystick(self, reading: JoystickReading) -> None:
        """Take the joystick's sticks and switches (its switches are levels: they hold arm and mode)."""
        with self._lock:
            self.roll, self.pitch, self.collective, self.yaw = (
                reading.roll, reading.pitch, reading.collective, reading.yaw,
            )  # fmt: skip
            self.armed, self.mode, self.hold = reading.armed, reading.mode, reading.hold

    def toggle_arm(self) -> None:
        with self._lock:
            self.armed = not self.armed

    def toggle_hold(self) -> None:
        with self._lock:
            self.hold = not self.hold

    def next_mode(self) -> None:
        with self._lock:
            self.mode = (self.mode + 1) % len(MODES_US)

    @property
    def mode_name(self) -> str:
        return MODE_NAMES[self.mode]

    def channels_us(self) -> tuple[float, ...]:
        """16 channels in microseconds, in the flight's channel order."""
        with self._lock:
            return channels_us(
                self.roll, self.pitch, self.collective, self.yaw, self.armed, self.mode, self.channel_map, self.hold
            )


def _drive(value: float, direction: int, dt: float) -> float:
    """A spring-centred stick: deflect while a key is held, return to centre when released."""
    if direction:
        return max(-1.0, min(1.0, value + direction * _KEY_RATE_PER_S * dt))
    step = _SPRING_PER_S * dt
    return 0.0 if abs(value) <= step else value - step * (1.0 if value > 0 else -1.0)


class CrsfSender:
    """Thread ``crsf-out``: a CRSF RC frame from ``sticks`` every 1/150 s into ``fd``, until stopped."""

    def __init__(self, fd: int, sticks: StickState, rate_hz: float = LINE.frame_rate_hz):
        self.fd = fd
        self.sticks = sticks
        self.period_s = 1.0 / rate_hz
        self.frames = 0
        self.dropped = 0
        self.telemetry_frames = 0  # CRSF frames read back from the simulator (telemetry)
        self.latest: dict[type, object] = {}  # the newest telemetry frame of each kind
        self._decoder = crsf.CrsfDecoder()
        self.paused = False  # True: no frames (the joystick is unplugged), telemetry still read
        self._stop = threading.Event()
        os.set_blocking(fd, False)  # a full pty (the simulator not reading) drops frames, never blocks
        self._thread = threading.Thread(target=self._run, name="crsf-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> bool:
        self._stop.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def telemetry_line(self) -> str:
        """What a radio's telemetry screen would show, in one line ("" before any came)."""
        latest = dict(self.latest)
        if not latest:
            return ""
        parts = []
        if isinstance(mode := latest.get(crsf.FlightMode), crsf.FlightMode):
            parts.append(mode.mode)
        if isinstance(altitude := latest.get(crsf.BaroAltitude), crsf.BaroAltitude):
            parts.append(f"alt {altitude.altitude_m:.1f} m")
        if isinstance(vario := latest.get(crsf.Vario), crsf.Vario):
            parts.append(f"vario {vario.vertical_speed_m_s:+.1f} m/s")
        if isinstance(battery := latest.get(crsf.Battery), crsf.Battery):
            parts.append(f"{battery.voltage_v:.1f} V")
        return f"radio telemetry: {' · '.join(parts)} ({self.telemetry_frames} frames)"

    def _read_telemetry(self) -> bool:
        """Read what the simulator sent back (never waits); False once its end has closed."""
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return True
            except OSError as error:
                if error.errno == errno.EIO:
                    return False
                raise
            if not data:
                return False
            for message in self._decoder.feed(data):
                self.telemetry_frames += 1
                self.latest[type(message)] = message

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            if not self._read_telemetry():
                return  # the simulator's end is closed: nothing more to send
            if not self.paused and not self._send(encode_channels(ChannelFrame(self.sticks.channels_us()))):
                return
            next_t += self.period_s
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def _send(self, frame: bytes) -> bool:
        """Write one frame (a full port drops it, never waits); False once the simulator's end has closed."""
        try:
            os.write(self.fd, frame)
            self.frames += 1
        except BlockingIOError:
            self.dropped += 1
        except OSError as error:
            if error.errno == errno.EIO:
                return False
            raise
        return True
