"""Faults on the wire: a transport wrapper that loses, corrupts, delays, paces or cuts bytes.

Every port's transport is wrapped in a ``FaultyTransport`` that reads its ``LineFaults``; with
no fault active it passes every call straight through.  What each fault does, as the hardware
it stands for would:

- ``loss_rate`` / ``corrupt_rate`` (per direction): each byte is dropped, or has one random bit
  flipped, with that probability (noise on the line: frames fail their checks and are counted
  and skipped by the decoder);
- ``silent_in``: nothing arrives (a receiver that lost its transmitter);
- ``latency_s``: received bytes are handed over that much later (a slow device);
- ``pace_baud``: writes take as long as the bytes need at that baud rate, 10 bits a byte
  (a slow UART: the write call blocks);
- ``unplugged``: every call fails as a vanished USB device does, and reopening fails until
  the device is plugged back (``FaultyOpener``).

Random numbers come from a seeded generator per port: a fault run is repeatable.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import serial

from sim.errors import PortError

__all__ = ["FaultyOpener", "FaultyTransport", "LineFaults", "Transport"]


@dataclass
class LineFaults:
    """The faults on one port's line now (changed by the fault injector, read by the I/O)."""

    loss_in: float = 0.0
    loss_out: float = 0.0
    corrupt_in: float = 0.0
    corrupt_out: float = 0.0
    silent_in: bool = False
    latency_s: float = 0.0
    pace_baud: int = 0
    unplugged: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def touches_input(self) -> bool:
        return bool(self.loss_in or self.corrupt_in or self.silent_in or self.latency_s or self.unplugged)

    @property
    def touches_output(self) -> bool:
        return bool(self.loss_out or self.corrupt_out or self.pace_baud or self.unplugged)

    def spoil(self, data: bytes, loss: float, corrupt: float) -> bytes:
        """``data`` with bytes dropped and bits flipped at the given rates."""
        if not data or not (loss or corrupt):
            return data
        with self.lock:  # one generator, two I/O directions
            raw = np.frombuffer(data, dtype=np.uint8).copy()
            if corrupt:
                hit = self.rng.random(len(raw)) < corrupt
                raw[hit] ^= (1 << self.rng.integers(0, 8, int(hit.sum()))).astype(np.uint8)
            if loss:
                raw = raw[self.rng.random(len(raw)) >= loss]
        return raw.tobytes()


_UNPLUGGED = "device unplugged (fault injection)"


class FaultyTransport:
    """A serial transport with ``LineFaults`` applied; everything else is the real transport's."""

    def __init__(self, real: serial.Serial, faults: LineFaults):
        self._real = real
        self._faults = faults
        self._held: deque[tuple[float, bytes]] = deque()  # (release time, bytes) under latency
        self._ready = bytearray()  # released, not yet read

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    @property
    def real(self) -> serial.Serial:
        """The transport under the faults (what an event loop watches in asyncio mode)."""
        return self._real

    # --- reading
    @property
    def in_waiting(self) -> int:
        if not self._faults.touches_input and not self._held and not self._ready:
            return self._real.in_waiting
        self.check_plugged()
        self._pull()
        return len(self._ready)

    def read(self, size: int = 1) -> bytes:
        faults = self._faults
        if not faults.touches_input and not self._held and not self._ready:
            return self._real.read(size)
        self.check_plugged()
        end = time.monotonic() + (self._real.timeout or 0.0)
        while True:
            self._pull()
            if self._ready:
                out = bytes(self._ready[:size])
                del self._ready[:size]
                return out
            now = time.monotonic()
            if now >= end:
                return b""
            if self._held:  # bytes on their way: wait for the first to be due (never past the read's end)
                time.sleep(max(0.0, min(self._held[0][0], end) - now))
            else:
                self.arrive(self._real.read(1))  # blocks at most the transport's read timeout

    def _pull(self) -> None:
        """Take what the real transport has (without waiting) and release what is due."""
        waiting = self._real.in_waiting
        if waiting:
            self.arrive(self._real.read(waiting))
        self._release_due()

    def _release_due(self) -> None:
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            self._ready += self._held.popleft()[1]

    # --- for an event loop that reads the real transport itself (sim.ports.aio)
    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes that have arrived and are due, without touching the real transport."""
        self._release_due()
        out = bytes(self._ready[:size])
        del self._ready[:size]
        return out

    @property
    def ready(self) -> int:
        """How many bytes ``take`` would give now."""
        self._release_due()
        return len(self._ready)

    def next_release(self) -> float | None:
        """When the next bytes held back by latency are due (monotonic s), or None."""
        return self._held[0][0] if self._held else None

    def arrive(self, data: bytes) -> None:
        """Bytes read from the real transport: the input faults act on them, then they wait to be read."""
        faults = self._faults
        if not data or faults.silent_in:
            return
        data = faults.spoil(data, faults.loss_in, faults.corrupt_in)
        if faults.latency_s:
            self._held.append((time.monotonic() + faults.latency_s, data))
        else:
            self._ready += data

    # --- writing
    def write(self, data: bytes) -> int | None:
        if not self._faults.touches_output:
            return self._real.write(data)
        pace_s, spoiled = self.outgoing(data)
        if pace_s:
            time.sleep(pace_s)  # the line takes this long (bounded: one frame)
        if spoiled:
            self._real.write(spoiled)
        return len(data)

    def outgoing(self, data: bytes) -> tuple[float, bytes]:
        """How long the line takes to carry ``data`` (0: no pacing) and what of it reaches the far end."""
        faults = self._faults
        if not faults.touches_output:
            return 0.0, data
        self.check_plugged()
        pace_s = len(data) * 10.0 / faults.pace_baud if faults.pace_baud else 0.0
        return pace_s, faults.spoil(bytes(data), faults.loss_out, faults.corrupt_out)

    def check_plugged(self) -> None:
        """``SerialException`` while the device is unplugged, as a vanished USB device gives."""
        if self._faults.unplugged:
            raise serial.SerialException(_UNPLUGGED)


class FaultyOpener:
    """Opens the real transport wrapped in the port's faults; refuses while the device is unplugged."""

    def __init__(self, opener: Callable[[], serial.Serial], faults: LineFaults, name: str):
        self._opener = opener
        self.faults = faults
        self._name = name

    def __call__(self) -> FaultyTransport:
        if self.faults.unplugged:
            raise PortError(f"{self._name}: {_UNPLUGGED}")
        return FaultyTransport(self._opener(), self.faults)


# What a port reads and writes: a pyserial transport (a device or a URL), or the faults around one
Transport = serial.Serial | FaultyTransport
