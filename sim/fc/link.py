"""A firmware's software-in-the-loop link: one UDP socket, lock-step frames in, sensor replies out.

A firmware built for simulation (ArduPilot SITL, and others of the same kind) sends one datagram
of servo outputs per physics step and waits for the physics' answer before it sends the next.
``LockstepLink`` owns the socket and the bookkeeping every such protocol shares; a protocol
module (``sim.fc.ardupilot``) supplies how a datagram decodes and how a reply encodes.

Bookkeeping, by the frame's own counter:

- ``count == last + 1``: the next frame.
- ``count == last``: a repeat (the firmware heard no reply and sent it again): counted, answered
  with the last reply again, never stepped twice.
- ``count > last + 1``: frames lost on the way: counted (``lost``), then flown as the next.
- ``count < last``: the firmware restarted (``restarts``): the caller resets the flight.
- A datagram that does not decode (wrong size, wrong magic) is counted (``malformed``) and skipped.
- Frames from another sender while the firmware flies (a second SITL started by mistake, a stray
  program) are counted (``foreign``) and skipped: the link answers one firmware, the first it
  heard, until the loop lets it go (``forget_peer``: that firmware was lost).

Faults (``sim.faults``, port ``fc``): ``packet_loss`` drops datagrams in either direction with the
given probability (drawn from the flight's seed); ``latency`` holds each reply back (the loop
waits, so a stop request still ends it at once).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim.errors import PortError
from sim.fc.config import FRAME_STEP_RANGE_S
from sim.ports.faults import LineFaults

__all__ = ["FirmwareFrame", "LinkStats", "LockstepLink"]

_COUNTER_SPAN = 2**32  # frame counters are uint32 (at 1200 frames/s they wrap after 41 days)
_MAX_DATAGRAM = 2048
_MIN_STEP_S, _MAX_STEP_S = FRAME_STEP_RANGE_S  # the largest frame of any firmware here is 72 bytes; more is malformed


@dataclass(frozen=True)
class FirmwareFrame:
    """One decoded frame: its counter, the physics step it asks for and the output pulses (us)."""

    count: int
    step_s: float
    pulses_us: tuple[int, ...]


@dataclass
class LinkStats:
    """What the link counted; ``to_dict`` is the run summary's ``fc`` entry (with the caller's keys)."""

    frames: int = 0  # frames flown (each stepped the physics once)
    repeated: int = 0
    lost: int = 0
    malformed: int = 0
    foreign: int = 0  # frames from a sender other than the firmware being flown
    restarts: int = 0
    replies_lost: int = 0  # dropped by a packet_loss fault
    frames_dropped: int = 0  # dropped by a packet_loss fault (the firmware re-sends them)
    frame_rate_hz: float = 0.0  # the rate the firmware asks for
    last_error: str = ""
    peer: str = ""

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "repeated": self.repeated,
            "lost": self.lost,
            "malformed": self.malformed,
            "foreign": self.foreign,
            "restarts": self.restarts,
            "frames_dropped_by_fault": self.frames_dropped,
            "replies_dropped_by_fault": self.replies_lost,
            "frame_rate_hz": self.frame_rate_hz,
            "peer": self.peer,
            **({"last_error": self.last_error} if self.last_error else {}),
        }


@dataclass
class LockstepLink:
    """The socket and the frame bookkeeping; ``decode`` raises ``ValueError`` for a bad datagram."""

    host: str
    port: int
    decode: Callable[[bytes], FirmwareFrame]
    stats: LinkStats = field(default_factory=LinkStats)
    faults: LineFaults = field(default_factory=LineFaults)
    sock: socket.socket | None = None
    sender: tuple | None = None
    last_count: int | None = None
    last_reply: bytes = b""

    def open(self) -> None:
        """Bind the UDP socket; ``PortError`` saying where and why if it cannot be."""
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError as error:
            where = f"fc udp:{self.host}:{self.port}"
            raise PortError(f"{where}: cannot resolve or open: {error.strerror or error}") from None
        try:
            sock.setblocking(False)
            sock.bind(address)
        except OSError as error:
            sock.close()
            hint = " (another heli-sim, or another simulator, is listening there)" if error.errno == 98 else ""
            raise PortError(f"fc udp:{self.host}:{self.port}: cannot listen: {error.strerror or error}{hint}") from None
        self.sock = sock
        self.port = sock.getsockname()[1]  # the one the system gave, if 0 was asked for

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def fileno(self) -> int:
        return -1 if self.sock is None else self.sock.fileno()

    def receive(self, timeout_s: float) -> tuple[str, FirmwareFrame | None]:
        """Wait up to ``timeout_s`` for a datagram: ("none", None) on timeout, ("frame", f) for the
        next frame to fly, ("repeat", f) for one already flown (re-answered here), ("restart", f)
        for the first frame of a restarted firmware; a malformed datagram is counted and skipped."""
        sock = self.sock
        if sock is None:
            raise RuntimeError("the firmware link is not open")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([sock], [], [], max(remaining, 0.0))
            if not readable:
                return "none", None
            try:
                data, sender = sock.recvfrom(_MAX_DATAGRAM)
            except BlockingIOError:
                continue
            except OSError as error:  # an ICMP port-unreachable from a reply to a firmware now gone
                self.stats.last_error = f"receive: {error.strerror or error}"
                continue
            if self.faults.loss_in and self.faults.rng.random() < self.faults.loss_in:
                self.stats.frames_dropped += 1
                continue
            if self.sender is not None and sender != self.sender:
                self.stats.foreign += 1
                self.stats.last_error = f"a datagram from {sender[0]}:{sender[1]}, not the firmware being flown"
                continue
            try:
                frame = self.decode(data)
                if not _MIN_STEP_S <= frame.step_s <= _MAX_STEP_S:
                    raise ValueError(
                        f"a frame of {1.0 / frame.step_s:g} Hz: expected {1.0 / _MAX_STEP_S:g}-{1.0 / _MIN_STEP_S:g} "
                        "physics steps a second"
                    )
            except ValueError as error:
                self.stats.malformed += 1
                self.stats.last_error = str(error)
                continue
            self.sender = sender
            self.stats.peer = f"{sender[0]}:{sender[1]}"
            return self._classify(frame), frame

    def _classify(self, frame: FirmwareFrame) -> str:
        last, count = self.last_count, frame.count
        self.stats.frame_rate_hz = round(1.0 / frame.step_s, 3)
        ahead = None if last is None else (count - last) % _COUNTER_SPAN  # the counter wraps at 2^32
        if ahead == 0:
            self.stats.repeated += 1
            self.send(self.last_reply)
            return "repeat"
        self.last_count = count
        if ahead is not None and ahead >= _COUNTER_SPAN // 2:  # it went back: a new firmware, counting afresh
            self.stats.restarts += 1
            return "restart"
        if ahead is not None and ahead > 1:
            self.stats.lost += ahead - 1
        return "frame"

    def forget_peer(self) -> None:
        """The firmware was lost: the next sender to send a frame is flown (its counter decides whether
        it restarted)."""
        self.sender = None

    def reply(self, data: bytes) -> None:
        """Answer the frame just flown (and keep the answer for a repeat)."""
        self.last_reply = data
        self.send(data)

    def send_to(self, data: bytes, port: int) -> None:
        """A datagram to another port of the firmware's host (its RC input), never a wait."""
        if self.sender is None or self.sock is None:
            return
        try:
            self.sock.sendto(data, (self.sender[0], port))
        except OSError as error:  # nobody listens there (yet): the firmware reads its RC elsewhere
            self.stats.last_error = f"rc to port {port}: {error.strerror or error}"

    def send(self, data: bytes) -> None:
        if self.sender is None or self.sock is None:
            return
        faults = self.faults
        if faults.loss_out and faults.rng.random() < faults.loss_out:
            self.stats.replies_lost += 1
            return
        try:
            self.sock.sendto(data, self.sender)
        except OSError as error:  # the firmware's socket is gone: it will be noticed as silence
            self.stats.last_error = f"reply: {error.strerror or error}"


def frame_pulses(frame: FirmwareFrame, width: int = 16) -> np.ndarray:
    """The frame's first ``width`` output pulses as a (1, width) float row (0 where it has fewer)."""
    row = np.zeros((1, width))
    pulses = frame.pulses_us[:width]
    row[0, : len(pulses)] = pulses
    return row
