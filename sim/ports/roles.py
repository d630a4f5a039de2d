"""The port roles: what one ``exchange`` does for each kind of port.

* ``rc-in``: the pilot's transmitter or receiver.  Sends the latest vehicle states down the link
  (telemetry to the radio, which the emulated transmitter's pilot flies by), then reads until an
  ``RcChannels`` frame arrives or the read deadline passes.  Returns the newest frame per vehicle.
* ``servo``: one per vehicle.  Writes the servo command and waits for the board's ack.
* ``telemetry``: writes vehicle states to a ground station; nothing comes back.
* ``link``: the seed's slow system call: a request, then the reply after the device's latency.
* ``rc-out``: pushes the channels being flown to a transmitter module.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from sim.ports.mailbox import Letter
from sim.ports.port import Port
from sim.protocols.hsf import LinkReply, LinkRequest, RcChannels, ServoAck, ServoCommand
from sim.stats import LogHistogram

__all__ = ["ROLES", "LinkPort", "RcFrame", "RcInPort", "RcOutPort", "ServoOrder", "ServoPort", "TelemetryPort"]


class RcFrame(NamedTuple):
    """A decoded stick frame: the channels and when its last byte was read (monotonic s)."""

    channels: RcChannels
    t_received: float
    seq: int


class ServoOrder(NamedTuple):
    """A servo command and when the stick frame it answers arrived (None: no stick frame)."""

    command: ServoCommand
    stick_t_received: float | None


class RcInPort(Port):
    role: ClassVar[str] = "rc-in"
    waits_for_new_letter: ClassVar[bool] = False
    is_input: ClassVar[bool] = True

    def __init__(self, *args: Any, read_deadline_s: float = 0.1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.read_deadline_s = read_deadline_s
        self._downlink_seq = 0
        self.newest: dict[int, RcFrame] = {}  # per vehicle; belongs to the port, survives mode switches

    def _exchange(self, letter: Letter | None) -> dict[int, RcFrame] | None:
        if letter is not None and letter.seq != self._downlink_seq:
            self._downlink_seq = letter.seq
            for state in letter.value:
                self.send(state)
        deadline = self._clock() + self.read_deadline_s
        received = self.receive(deadline, lambda f, m: isinstance(m, RcChannels), drain=True)
        got = False
        for frame, message, t in received:
            if isinstance(message, RcChannels):
                self.stats.rx_sequence.see(frame.seq)
                self.newest[message.vehicle] = RcFrame(message, t, frame.seq)
                got = True
        return dict(self.newest) if got else None


class ServoPort(Port):
    role: ClassVar[str] = "servo"

    def __init__(self, *args: Any, stick_to_servo: LogHistogram | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stick_to_servo = stick_to_servo

    def _exchange(self, letter: Letter | None) -> ServoAck | None:
        if letter is None:
            return None
        order: ServoOrder = letter.value

        def stick_to_servo(t_written: float) -> None:  # last byte of the stick frame in -> command out
            if self.stick_to_servo is not None and order.stick_t_received is not None:
                self.stick_to_servo.add(t_written - order.stick_t_received)

        return self.request(
            order.command, lambda m, seq: isinstance(m, ServoAck) and m.acked_seq == seq, on_sent=stick_to_servo
        )


class TelemetryPort(Port):
    role: ClassVar[str] = "telemetry"

    def _exchange(self, letter: Letter | None) -> None:
        if letter is not None:
            for state in letter.value:
                self.send(state)


class LinkPort(Port):
    role: ClassVar[str] = "link"
    waits_for_new_letter: ClassVar[bool] = False

    def _exchange(self, letter: Letter | None) -> LinkReply | None:
        request = LinkRequest(self.vehicle, self._clock(), b"")
        return self.request(request, lambda m, seq: isinstance(m, LinkReply) and m.request_seq == seq)


class RcOutPort(Port):
    role: ClassVar[str] = "rc-out"

    def _exchange(self, letter: Letter | None) -> None:
        if letter is not None:
            for channels in letter.value:
                self.send(channels)


ROLES: dict[str, type[Port]] = {cls.role: cls for cls in (RcInPort, ServoPort, TelemetryPort, LinkPort, RcOutPort)}
