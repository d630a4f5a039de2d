"""The four device emulators and the loop that runs one against a far end.

Each device reacts to decoded messages (``on_message``) and may have messages due at given
times (replies after a latency, stick frames at a rate); ``run_device`` reads with a timeout up
to the next due time, so replies leave on time without busy-waiting.  With ``pace_baud`` set,
outgoing bytes are released at 10 bits per baud, the wire timing a pty does not have.
At the end the device reports its counters (``summary``), including sequence gaps and
repeats of what it received: the far end's proof that nothing was lost or sent twice.

Nothing the simulator sends stops a device: a frame its codec cannot accept, or a message it
cannot act on (a vehicle state with non-finite values, for a vehicle it does not fly), is
counted in ``decode_errors`` and skipped; any other exception while handling a message or
sending one is counted in ``errors`` (the first one's text in ``first_error``), and the device
goes on.  Both are in its summary, which the simulator reports under the port's ``far_end``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from heli.state import STATE_SIZE, StateIndex, VehicleState
from sim.devices.far_end import FarEnd, Hangup
from sim.ports.codecs import Codec, HsfCodec
from sim.ports.port import SequenceCheck
from sim.protocols.hsf import LinkReply, LinkRequest, ServoAck, ServoCommand, VehicleStateMsg

__all__ = ["Device", "GroundStation", "Link", "ServoBoard", "SteadySticks", "Transmitter", "run_device"]

_IDLE_WAIT_S = 0.05


class Device:
    """A far-end device: reacts to messages, sends what is due."""

    kind = ""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self.rx = SequenceCheck()
        self.frames_in = 0
        self.frames_out = 0
        self.rejected = 0  # messages decoded but of no use to the device (decode errors)
        self.stream_decode_errors = 0  # the decoder's count (framing, checksum, payload), set by run_device
        self.errors = 0  # exceptions while handling or sending a message; the device went on
        self.first_error: str | None = None

    def schedule(self, t: float, message: Any) -> None:
        heapq.heappush(self._due, (t, next(self._order), message))

    def next_due(self) -> float:
        return self._due[0][0] if self._due else math.inf

    def pop_due(self, now: float) -> list[Any]:
        out = []
        while self._due and self._due[0][0] <= now:
            out.append(heapq.heappop(self._due)[2])
        return out

    def on_message(self, seq: int | None, message: Any, now: float) -> None:
        """React to one decoded message (the default: count it)."""

    def see(self, seq: int | None) -> None:
        if seq is not None:
            self.rx.see(seq)

    def tick(self, now: float) -> None:
        """Called once per loop pass: schedule periodic messages."""

    def note_error(self, error: Exception) -> None:
        """An exception while handling or sending a message: counted, the first one kept; the device goes on."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = repr(error)

    def summary(self) -> dict:
        return {
            "device": self.kind,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "rx_sequence_gaps": self.rx.gaps,
            "rx_sequence_repeats": self.rx.repeats,
            "decode_errors": self.stream_decode_errors + self.rejected,
            "errors": self.errors,
            **({"first_error": self.first_error} if self.first_error is not None else {}),
        }


class ServoBoard(Device):
    """Takes servo commands; acks each after ``latency_s``."""

    kind = "servo"

    def __init__(self, latency_s: float, codec: Codec):
        super().__init__()
        self.latency_s = latency_s
        self.codec = codec

    def on_message(self, seq: int | None, message: Any, now: float) -> None:
        if isinstance(message, ServoCommand) and seq is not None:  # HSF: ack each command with its sequence number
            self.see(seq)
            self.schedule(now + self.latency_s, ServoAck(message.vehicle, seq))
            return
        for reply in self.codec.respond(message, None):  # Maestro: answer queries (Get Errors)
            self.schedule(now + self.latency_s, reply)


class Link(Device):
    """The seed's slow device: every request is answered after ``latency_s``."""

    kind = "link"

    def __init__(self, latency_s: float):
        super().__init__()
        self.latency_s = latency_s

    def on_message(self, seq: int | None, message: Any, now: float) -> None:
        if isinstance(message, LinkRequest) and seq is not None:  # (HSF: a frame has its sequence number)
            self.see(seq)
            self.schedule(now + self.latency_s, LinkReply(message.vehicle, seq, message.t_sent_s))


class GroundStation(Device):
    """Takes telemetry; keeps the newest state of each vehicle."""

    kind = "gcs"

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[int, VehicleStateMsg] = {}
        self.types: dict[str, int] = {}

    def on_message(self, seq: int | None, message: Any, now: float) -> None:
        self.see(seq)
        if isinstance(message, VehicleStateMsg):
            self.states[message.vehicle] = message
        kind = message.get_type() if hasattr(message, "get_type") else type(message).__name__
        self.types[kind] = self.types.get(kind, 0) + 1

    def summary(self) -> dict:
        return {**super().summary(), "vehicles_seen": sorted(self.states), "message_types": self.types}


def vehicles_from_states(states: dict[int, VehicleStateMsg], count: int) -> VehicleState:
    """A ``VehicleState`` carrying what telemetry says (position, velocity, attitude, rates, rotor)."""
    packed = np.zeros((count, STATE_SIZE))
    packed[:, StateIndex.ATTITUDE] = (1.0, 0.0, 0.0, 0.0)
    for vehicle, msg in states.items():
        if 0 <= vehicle < count:
            packed[vehicle, StateIndex.POSITION] = msg.position_ned_m
            packed[vehicle, StateIndex.VELOCITY] = msg.velocity_ned_m_s
            packed[vehicle, StateIndex.ATTITUDE] = msg.attitude_quat
            packed[vehicle, StateIndex.RATES] = msg.body_rates_rad_s
            packed[vehicle, StateIndex.ROTOR_SPEED] = msg.rotor_speed_rad_s
    return VehicleState(packed)


class SteadySticks:
    """The same frames every time: a transmitter nobody holds (sticks centred, collective low,
    disarmed), or any frames held."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray:
        return self.frames


class Transmitter(Device):
    """Sends a stick frame per vehicle at ``rate_hz`` from a pilot, in its codec's protocol.

    ``make_pilot(start)`` builds the pilot once the first vehicle states have come down the
    link (closed-loop pilots fly by them); until then it sends nothing, as a transmitter that is
    not ready yet (the flight controller meanwhile holds, or stays disarmed: failsafe).
    """

    kind = "transmitter"

    def __init__(
        self,
        rate_hz: float,
        count: int,
        make_pilot: Callable[[VehicleState], Any] | None,
        pilot: Any = None,
        codec: Codec | None = None,
    ):
        super().__init__()
        self.codec = codec or HsfCodec()
        self.period_s = 1.0 / rate_hz
        self.count = count
        self._make_pilot = make_pilot
        self.pilot = pilot
        self.states: dict[int, VehicleStateMsg] = {}
        self._state_t = 0.0
        self._next_frame_t: float | None = None
        self._started_t: float | None = None

    def on_message(self, seq: int | None, message: Any, now: float) -> None:
        if isinstance(message, VehicleStateMsg):
            self.see(seq)
            if not (message.vehicle < self.count and _finite(message)):
                self.rejected += 1  # not a vehicle this transmitter flies, or not a state to fly by
                return
            self.states[message.vehicle] = message
            self._state_t = now
            if self.pilot is None and self._make_pilot is not None and len(self.states) >= self.count:
                self.pilot = self._make_pilot(vehicles_from_states(self.states, self.count))

    def sim_time(self, now: float) -> float:
        """The flight's time: from the vehicle states when they come, else this transmitter's own clock."""
        if not self.states:
            return now - (self._started_t if self._started_t is not None else now)
        newest = max(msg.sim_time_s for msg in self.states.values())
        return newest + (now - self._state_t)

    def tick(self, now: float) -> None:
        if self._next_frame_t is None:
            self._next_frame_t = now
            self._started_t = now
        if now < self._next_frame_t:
            return
        # absolute deadlines: the frame rate does not drift; after a stall, skip, do not burst
        behind = math.floor((now - self._next_frame_t) / self.period_s)
        self._next_frame_t += (behind + 1) * self.period_s
        if self.pilot is None:
            return
        frames = self.pilot.channels(self.sim_time(now), vehicles_from_states(self.states, self.count))
        if frames is None:  # the pilot has no sticks now (a joystick unplugged): send nothing, as a radio off
            return
        for vehicle in range(min(self.count, self.codec.vehicle_ids or 1)):  # no vehicle ids: vehicle 0's sticks
            self.schedule(now, self.codec.stick_message(vehicle, tuple(float(v) for v in frames[vehicle])))

    def next_due(self) -> float:
        frame_t = self._next_frame_t if self._next_frame_t is not None else 0.0
        return min(super().next_due(), frame_t)


def _finite(state: VehicleStateMsg) -> bool:
    """True if every number of a vehicle state is finite (a pilot cannot fly by NaN or inf)."""
    numbers = (
        state.sim_time_s,
        *state.position_ned_m,
        *state.velocity_ned_m_s,
        *state.attitude_quat,
        *state.body_rates_rad_s,
        state.rotor_speed_rad_s,
    )
    return all(math.isfinite(x) for x in numbers)


def run_device(
    end: FarEnd, device: Device, stopped: Callable[[], bool], codec: Codec | None = None, pace_baud: float = 0.0
) -> str:
    """Serve ``device`` on ``end`` until ``stopped()`` or the other side hangs up; returns why it ended."""
    codec = codec or HsfCodec()
    decoder = codec.new_decoder()
    seq = 0
    release_t = 0.0  # when the wire is free again (baud pacing)
    try:
        while not stopped():
            now = time.monotonic()
            try:
                device.tick(now)
            except Exception as error:  # a pilot or stick frame gone wrong: counted, the device goes on
                device.note_error(error)
            for message in device.pop_due(now):
                try:
                    data = codec.encode(message, seq)
                except Exception as error:  # a message its protocol cannot carry: counted, not sent
                    device.note_error(error)
                    continue
                seq = (seq + 1) % 65536
                if pace_baud > 0:
                    release_t = max(release_t, now) + len(data) * 10.0 / pace_baud
                    wait = release_t - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)  # the emulated wire is busy; this process has nothing else to do
                if end.write(data):
                    device.frames_out += 1
            timeout = min(_IDLE_WAIT_S, max(0.0, device.next_due() - time.monotonic()))
            data = end.read(timeout)
            if not data:
                continue
            now = time.monotonic()
            for seq_in, message in decoder.feed(data):
                device.frames_in += 1
                try:
                    device.on_message(seq_in, message, now)
                except Exception as error:  # a bug in a device: counted, the device goes on
                    device.note_error(error)
    except Hangup as why:
        return f"hangup: {why}"
    finally:
        device.stream_decode_errors = decoder.decode_errors
    return "stopped"
