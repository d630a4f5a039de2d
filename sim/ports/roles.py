"""The port roles: what one ``exchange`` does for each kind of port.

* ``rc-in``: the pilot's transmitter or receiver.  Sends what goes down the link (telemetry to
  the radio; the emulated transmitter's pilot flies by it), reads until a frame arrives or the
  read deadline passes, answers requests (MSP) as soon as they are read, and returns the newest
  sticks per vehicle.
* ``servo``: one per vehicle.  Writes the servo command and waits for the board's ack.
* ``telemetry``: writes vehicle states to a ground station, and answers what it asks (MAVLink:
  ``sim.protocols.mavlink_fc``).
* ``link``: the seed's slow system call: a request, then the reply after the device's latency.
* ``rc-out``: pushes the channels being flown to a transmitter module.

Every role reads whatever its far end sends, in every exchange, including the ones an I/O
thread makes with no new letter between ticks (``Port.take_waiting``): what it has no use for is
counted in ``frames_discarded``, so a far end that talks back is never left blocked on a full buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from sim.ports.codecs import FlightSnapshot, StickChannels
from sim.ports.mailbox import Letter
from sim.ports.port import Port
from sim.protocols.hsf import LinkReply, LinkRequest, ServoCommand
from sim.stats import LogHistogram

if TYPE_CHECKING:
    from sim.protocols.mavlink_fc import GroundStationLink

__all__ = [
    "ROLES",
    "Downlink",
    "LinkPort",
    "RcFrame",
    "RcInPort",
    "RcOutPort",
    "ServoOrder",
    "ServoPort",
    "TelemetryPort",
]


class RcFrame(NamedTuple):
    """Decoded sticks of one vehicle and when the frame's last byte was read (monotonic s)."""

    channels: StickChannels
    t_received: float
    seq: int | None


class ServoOrder(NamedTuple):
    """A servo command and when the stick frame it answers arrived (None: no new stick frame)."""

    command: ServoCommand
    stick_t_received: float | None


class Downlink(NamedTuple):
    """What goes back to the pilot's side: messages to send now, and the state to answer requests with."""

    messages: list
    snapshot: FlightSnapshot | None = None


class RcInPort(Port):
    role: ClassVar[str] = "rc-in"
    device: ClassVar[str] = "transmitter"
    waits_for_new_letter: ClassVar[bool] = False
    is_input: ClassVar[bool] = True

    def __init__(self, *args: Any, read_deadline_s: float = 0.1, vehicles: int | None = None, **kwargs: Any):
        """``vehicles``: the fleet's size; a stick frame for a vehicle outside it is a decode error
        (None: any vehicle index is taken)."""
        super().__init__(*args, **kwargs)
        self.read_deadline_s = read_deadline_s
        self.vehicles = vehicles
        # monotonic s, or None: when a vehicle's input goes stale.  A read that would end within
        # ``read_deadline_s`` before it, or after it, ends at it instead, so the loop gets control
        # in time to engage the failsafe (the loop sets it in blocking mode)
        self.give_up_at: float | None = None
        self._downlink_seq = 0
        self._snapshot: FlightSnapshot | None = None
        self.newest: dict[int, RcFrame] = {}  # per vehicle; belongs to the port, survives mode switches
        self.failsafe_flags = 0  # frames that arrived with the receiver's failsafe flag set
        self.stick_frames = 0
        self.link_statistics: dict | None = None  # the receiver's latest report (CRSF LINK_STATISTICS)
        self.gaps = LogHistogram()  # seconds between stick frames (of vehicle 0)
        self._first_t: float | None = None
        self._last_t: float | None = None

    async def _exchange(self, letter: Letter | None) -> dict[int, RcFrame] | None:
        await self.flush_tail()  # telemetry the radio has not taken yet
        if letter is not None and letter.seq != self._downlink_seq:
            self._downlink_seq = letter.seq
            downlink: Downlink = letter.value
            self._snapshot = downlink.snapshot
            await self.send_all(downlink.messages)
        codec = self.codec
        deadline = self._clock() + self.read_deadline_s
        give_up_at = self.give_up_at
        if give_up_at is not None and give_up_at < deadline + self.read_deadline_s:
            # the input goes stale before this read's deadline, or soon after it (before the loop's
            # next read could notice): the read ends right then, and the loop's check is on time
            deadline = give_up_at
        # whatever comes first ends the read: a stick frame, or a request (MSP) answered at once
        received = await self.receive(deadline, None, drain=True)
        got = False
        for seq, message, t in received:
            await self.send_all(codec.respond(message, self._snapshot))
            link = codec.link_statistics_of(message)
            if link is not None:
                self.link_statistics = link
            sticks = codec.channels_of(message)
            if sticks is None:
                continue
            if self.vehicles is not None and not 0 <= sticks.vehicle < self.vehicles:
                self.stats.rejected += 1  # no such vehicle in this flight: a decode error
                continue
            if seq is not None:
                self.stats.rx_sequence.see(seq)
            if sticks.failsafe:
                self.failsafe_flags += 1
            self.stick_frames += 1
            if sticks.vehicle == 0:
                if self._last_t is not None:
                    self.gaps.add(t - self._last_t)
                self._first_t = t if self._first_t is None else self._first_t
                self._last_t = t
            self.newest[sticks.vehicle] = RcFrame(sticks, t, seq)
            got = True
        return dict(self.newest) if got else None

    def summary(self) -> dict:
        """The port's entry plus link quality: stick frame rate, gaps between frames, failsafe flags."""
        span = (self._last_t - self._first_t) if self._first_t is not None and self._last_t is not None else 0.0
        vehicle0 = self.gaps.count + (1 if self._first_t is not None else 0)
        return {
            **super().summary(),
            "stick_frames": self.stick_frames,
            "frame_rate_hz": round((vehicle0 - 1) / span, 2) if span > 0 else None,
            "gap_ms": self.gaps.summary(1e3, 3),
            "failsafe_flags": self.failsafe_flags,
            "link_statistics": self.link_statistics,
            "line": self.line_description(),
        }

    def line_description(self) -> str:
        """What the port listens for, as a person checks a radio's settings: "CRSF at 420000 8N1"."""
        transport = self.transport
        settings = getattr(transport, "real", transport)
        baud = getattr(settings, "baudrate", None) or self.codec.line.baudrate
        bits = getattr(settings, "bytesize", 8)
        parity = getattr(settings, "parity", self.codec.line.parity)
        stop = getattr(settings, "stopbits", self.codec.line.stopbits)
        inverted = ", inverted" if self.codec.line.inverted else ""
        return f"{self.protocol.upper()} at {baud} {bits}{parity}{stop:g}{inverted}"


class ServoPort(Port):
    role: ClassVar[str] = "servo"
    device: ClassVar[str] = "servo"
    device_answers: ClassVar[bool] = True

    def __init__(self, *args: Any, stick_to_servo: LogHistogram | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stick_to_servo = stick_to_servo

    async def _exchange(self, letter: Letter | None) -> Any:
        if letter is None:
            await self.discard_waiting()  # an ack that came after its deadline
            return None
        order: ServoOrder = letter.value

        def stick_to_servo(t_written: float) -> None:  # last byte of the stick frame in -> command out
            if self.stick_to_servo is not None and order.stick_t_received is not None:
                self.stick_to_servo.add(t_written - order.stick_t_received)

        return await self.request(order.command, self.codec.is_servo_ack, on_sent=stick_to_servo)


class TelemetryPort(Port):
    role: ClassVar[str] = "telemetry"
    device: ClassVar[str] = "gcs"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # MAVLink: what a ground station asks is answered; None: what it sends is read and counted only
        self.ground: GroundStationLink | None = None

    async def _exchange(self, letter: Letter | None) -> None:
        ground = self.ground
        for _seq, message, _t in await self.take_waiting():  # commands, requests, heartbeats
            if ground is None or not ground.on_message(message):
                self.stats.frames_discarded += 1
        if ground is not None:
            await self.send_all(ground.take_outgoing())
        if letter is not None:
            await self.send_all(letter.value)


class LinkPort(Port):
    role: ClassVar[str] = "link"
    device: ClassVar[str] = "link"
    device_answers: ClassVar[bool] = True
    waits_for_new_letter: ClassVar[bool] = False

    async def _exchange(self, letter: Letter | None) -> LinkReply | None:
        request = LinkRequest(self.vehicle, self._clock(), b"")
        return await self.request(request, lambda m, seq: isinstance(m, LinkReply) and m.request_seq == seq)


class RcOutPort(Port):
    role: ClassVar[str] = "rc-out"
    device: ClassVar[str] = "gcs"  # a transmitter module's side: it reads and counts

    async def _exchange(self, letter: Letter | None) -> None:
        await self.discard_waiting()  # what a transmitter module sends back (its telemetry)
        if letter is not None:
            await self.send_all(letter.value)


# every port role: the one table the wiring builds ports from (adding a role: its class here, its
# protocols in sim.ports.codecs, what the flight sends it in sim.wiring's table)
ROLES: dict[str, type[Port]] = {cls.role: cls for cls in (RcInPort, ServoPort, TelemetryPort, LinkPort, RcOutPort)}
