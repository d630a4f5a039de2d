"""Protocols on ports: one adapter per protocol module, so every port role can speak any of them.

A ``Codec`` is made per port (some keep state: MAVLink's message rates, a sequence counter).  It
gives the port a fresh stream decoder (``new_decoder``) whose ``feed`` yields ``(seq, message)``
pairs (``seq`` None where the protocol has no sequence numbers), encodes outgoing messages
(``encode``), and answers the role questions: which decoded messages carry stick channels
(``channels_of``), what the simulator, as a flight controller, replies to a request
(``respond``, MSP), and what counts as the servo board's acknowledgement (``is_servo_ack``).

Which protocols a role accepts, and its default, are in ``ROLE_PROTOCOLS``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from heli.errors import ConfigError
from sim.protocols import hsf
from sim.protocols.rc import ChannelFrame, LineSettings

__all__ = [
    "ROLE_PROTOCOLS",
    "Codec",
    "FlightSnapshot",
    "StickChannels",
    "crsf_telemetry",
    "default_protocol",
    "make_codec",
]

# role -> (protocols it can speak, default on a real device, default on a virtual port)
ROLE_PROTOCOLS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "rc-in": (("hsf", "crsf", "sbus", "ibus", "msp"), "crsf", "hsf"),
    "rc-out": (("hsf", "crsf", "sbus"), "crsf", "hsf"),
    "servo": (("hsf", "maestro"), "maestro", "hsf"),
    "telemetry": (("hsf", "mavlink"), "mavlink", "hsf"),
    "link": (("hsf",), "hsf", "hsf"),
}


def default_protocol(role: str, url: str) -> str:
    _protocols, real, virtual = ROLE_PROTOCOLS[role]
    return virtual if url == "virtual" else real


@dataclass(frozen=True)
class FlightSnapshot:
    """What a flight controller reports about vehicle 0: for CRSF telemetry and MSP replies."""

    attitude_rad: tuple[float, float, float]  # roll, pitch, yaw
    altitude_m: float
    climb_m_s: float
    armed: bool
    mode: str
    channels_us: tuple[float, ...]
    battery_voltage_v: float = 0.0  # 0: no battery (a nitro engine)


@dataclass(frozen=True)
class StickChannels:
    """Stick channels a decoded message carries, for which vehicle, and the receiver's failsafe flag."""

    vehicle: int
    channels_us: tuple[float, ...]
    failsafe: bool = False


class StreamDecoder:
    """Adapts a protocol decoder: ``feed`` -> list of (seq or None, message)."""

    def __init__(self, feed: Callable[[bytes], list[tuple[int | None, Any]]], errors: Callable[[], int]):
        self.feed = feed
        self._errors = errors

    @property
    def decode_errors(self) -> int:
        return self._errors()


class Codec:
    """Base adapter; subclasses fill in what their protocol has."""

    name: ClassVar[str] = ""
    line: LineSettings = LineSettings(baudrate=115200)

    def new_decoder(self) -> StreamDecoder:
        raise NotImplementedError

    def encode(self, message: Any, seq: int) -> bytes:
        raise NotImplementedError

    def channels_of(self, message: Any) -> StickChannels | None:
        return None

    def stick_message(self, vehicle: int, channels_us: tuple[float, ...]) -> Any:
        """What a transmitter sends for these sticks (vehicle 0 only, on one-vehicle protocols)."""
        return ChannelFrame(channels_us)

    def respond(self, message: Any, snapshot: Any) -> list[Any]:
        return []

    def link_statistics_of(self, message: Any) -> dict | None:
        """The radio link's own report (RSSI, link quality), where the protocol carries one."""
        return None

    def is_servo_ack(self, message: Any, seq: int) -> bool:
        return False


class HsfCodec(Codec):
    """heli-sim's own framing: sequence numbers, vehicle indices, acks with the acked sequence."""

    name = "hsf"

    def new_decoder(self) -> StreamDecoder:
        decoder = hsf.HsfDecoder()
        payload_errors = [0]

        def feed(data: bytes) -> list[tuple[int | None, Any]]:
            out = []
            for frame in decoder.feed(data):
                try:
                    out.append((frame.seq, hsf.unpack(frame)))
                except hsf.PayloadError:
                    payload_errors[0] += 1
            return out

        return StreamDecoder(feed, lambda: decoder.decode_errors + payload_errors[0])

    def encode(self, message: Any, seq: int) -> bytes:
        if isinstance(message, ChannelFrame):  # channels without a vehicle: vehicle 0
            message = hsf.RcChannels(0, tuple(round(c) for c in message.channels_us))
        return hsf.encode(message, seq)

    def channels_of(self, message: Any) -> StickChannels | None:
        if isinstance(message, hsf.RcChannels):
            return StickChannels(message.vehicle, tuple(float(c) for c in message.channels_us))
        return None

    def is_servo_ack(self, message: Any, seq: int) -> bool:
        return isinstance(message, hsf.ServoAck) and message.acked_seq == seq

    def stick_message(self, vehicle: int, channels_us: tuple[float, ...]) -> Any:
        return hsf.RcChannels(vehicle, tuple(round(c) for c in channels_us))


class MavlinkCodec(Codec):
    """MAVLink v2 telemetry (pymavlink); encoding a ``TelemetrySample`` sends what is due."""

    name = "mavlink"
    line = LineSettings(baudrate=57600)

    def __init__(self) -> None:
        from sim.protocols.mavlink import TelemetryEncoder

        self._encoder = TelemetryEncoder()

    def new_decoder(self) -> StreamDecoder:
        from sim.protocols.mavlink import MavlinkDecoder

        decoder = MavlinkDecoder()
        return StreamDecoder(lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors)

    def encode(self, message: Any, seq: int) -> bytes:
        return self._encoder.encode(message, self._encoder.due(message.time_s))

    def channels_of(self, message: Any) -> StickChannels | None:
        return None


class _OneWayRcCodec(Codec):
    """A receiver protocol that carries only sticks (and, for SBUS, flags): SBUS and iBUS."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self.line = module.LINE

    def new_decoder(self) -> StreamDecoder:
        decoder = self._module.SbusDecoder() if self.name == "sbus" else self._module.IbusDecoder()
        return StreamDecoder(lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors)

    def encode(self, message: Any, seq: int) -> bytes:
        return self._module.encode_channels(message)

    def channels_of(self, message: Any) -> StickChannels | None:
        if isinstance(message, ChannelFrame):
            return StickChannels(0, tuple(float(c) for c in message.channels_us), message.failsafe)
        return None


class SbusCodec(_OneWayRcCodec):
    name = "sbus"

    def __init__(self) -> None:
        from sim.protocols import sbus

        super().__init__(sbus)


class IbusCodec(_OneWayRcCodec):
    name = "ibus"

    def __init__(self) -> None:
        from sim.protocols import ibus

        super().__init__(ibus)


class CrsfCodec(Codec):
    """CRSF / ExpressLRS: sticks in, telemetry (attitude, altitude, vario, mode, battery) out."""

    name = "crsf"

    def __init__(self) -> None:
        from sim.protocols import crsf

        self._crsf = crsf
        self.line = crsf.LINE

    def new_decoder(self) -> StreamDecoder:
        decoder = self._crsf.CrsfDecoder()
        return StreamDecoder(lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors)

    def encode(self, message: Any, seq: int) -> bytes:
        if isinstance(message, ChannelFrame):
            return self._crsf.encode_channels(message)
        return self._crsf.encode(message)

    def channels_of(self, message: Any) -> StickChannels | None:
        if isinstance(message, ChannelFrame):
            return StickChannels(0, tuple(float(c) for c in message.channels_us))
        return None

    def link_statistics_of(self, message: Any) -> dict | None:
        if isinstance(message, self._crsf.LinkStatistics):
            return dataclasses.asdict(message)
        return None


class MspCodec(Codec):
    """MSP v1/v2.  The simulator is the flight controller: it takes MSP_SET_RAW_RC and answers
    MSP_RC, MSP_ATTITUDE and MSP_STATUS; an MSP client (the emulated transmitter) sends the requests.
    """

    name = "msp"

    def __init__(self, side: str) -> None:
        from sim.protocols import msp

        self._msp = msp
        self.side = side
        self.line = msp.LINE

    def new_decoder(self) -> StreamDecoder:
        decoder = self._msp.MspDecoder()
        return StreamDecoder(lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors)

    def encode(self, message: Any, seq: int) -> bytes:
        return self._msp.encode(message)

    def stick_message(self, vehicle: int, channels_us: tuple[float, ...]) -> Any:
        msp = self._msp
        return msp.MspMessage(2, "<", msp.MSP_SET_RAW_RC, msp.raw_rc_payload(channels_us))

    def channels_of(self, message: Any) -> StickChannels | None:
        if self.side != "host":
            return None
        frame = self._msp.rc_channels_from(message)
        return None if frame is None else StickChannels(0, tuple(float(c) for c in frame.channels_us))

    def respond(self, message: Any, snapshot: Any) -> list[Any]:
        msp = self._msp
        if self.side != "host" or message.direction != "<":
            return []
        command, version = message.command, message.version

        def reply(payload: bytes) -> list[Any]:
            return [msp.MspMessage(version, ">", command, payload)]

        if command == msp.MSP_SET_RAW_RC:
            return reply(b"")
        if snapshot is not None and command == msp.MSP_RC:
            return reply(msp.raw_rc_payload(snapshot.channels_us))
        if snapshot is not None and command == msp.MSP_ATTITUDE:
            roll, pitch, yaw = (math.degrees(a) for a in snapshot.attitude_rad)
            # Betaflight's MSP_ATTITUDE: positive pitch is nose down (heli-sim's Euler pitch: nose up)
            return reply(msp.attitude_payload(roll, -pitch, yaw % 360.0))
        if snapshot is not None and command == msp.MSP_STATUS:
            return reply(msp.status_payload(2000, 0, _MSP_SENSORS_ACC_GYRO, 1 if snapshot.armed else 0, 0))
        return [msp.MspMessage(version, "!", command, b"")]  # not supported: an error reply


@dataclass(frozen=True)
class MaestroAck:
    """The servo board's answer to Get Errors: its error register (0: all well)."""

    errors: int


class MaestroCodec(Codec):
    """Pololu Maestro compact protocol on the servo port.

    A servo command becomes Set Target on channels 0-3 (swash servos, tail) and 4 (throttle, an
    ESC), pulses 1500 us +- 500 us per full throw (throttle 1000-2000 us), then Get Errors: the
    board's two-byte answer is the acknowledgement the simulator times.
    """

    name = "maestro"
    line = LineSettings(baudrate=115200, frame_rate_hz=50.0)

    def __init__(self, side: str) -> None:
        from sim.protocols import maestro

        self._maestro = maestro
        self.side = side

    def new_decoder(self) -> StreamDecoder:
        if self.side == "device":
            decoder = self._maestro.MaestroCommandDecoder()
            return StreamDecoder(lambda data: [(None, c) for c in decoder.feed(data)], lambda: decoder.decode_errors)
        pending = bytearray()

        def feed(data: bytes) -> list[tuple[int | None, Any]]:
            pending.extend(data)
            replies = []
            while len(pending) >= 2:  # the simulator only asks Get Errors: two bytes each
                replies.append((None, MaestroAck(self._maestro.parse_errors_reply(bytes(pending[:2])))))
                del pending[:2]
            return replies

        return StreamDecoder(feed, lambda: 0)

    def encode(self, message: Any, seq: int) -> bytes:
        maestro = self._maestro
        if isinstance(message, MaestroAck):  # the board's reply (device side)
            return maestro.encode_errors_reply(message.errors)
        pulses = [1500.0 + 500.0 * max(-1.0, min(1.0, s)) for s in message.servo]
        pulses.append(1000.0 + 1000.0 * max(0.0, min(1.0, message.throttle)))
        data = b"".join(maestro.encode_set_target(channel, us) for channel, us in enumerate(pulses))
        return data + maestro.encode_get_errors()

    def respond(self, message: Any, snapshot: Any) -> list[Any]:
        if self.side == "device" and isinstance(message, self._maestro.GetErrors):
            return [MaestroAck(0)]
        return []

    def is_servo_ack(self, message: Any, seq: int) -> bool:
        return isinstance(message, MaestroAck)


_MSP_SENSORS_ACC_GYRO = 0x01 | 0x20  # Betaflight sensor bits: accelerometer, gyro

_CODECS: dict[str, Callable[[str], Codec]] = {
    "hsf": lambda side: HsfCodec(),
    "mavlink": lambda side: MavlinkCodec(),
    "crsf": lambda side: CrsfCodec(),
    "sbus": lambda side: SbusCodec(),
    "ibus": lambda side: IbusCodec(),
    "msp": MspCodec,
    "maestro": MaestroCodec,
}


def make_codec(protocol: str, side: str = "host") -> Codec:
    """A fresh codec for ``protocol`` on the simulator's side ("host") or the far end's ("device").

    ``ConfigError`` (a ``ValueError``) for a protocol heli-sim does not speak.
    """
    if protocol not in _CODECS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(sorted(_CODECS))}")
    return _CODECS[protocol](side)


def crsf_telemetry(snapshot: FlightSnapshot) -> list[Any]:
    """CRSF telemetry frames for the radio: attitude, altitude and vario, flight mode, battery."""
    from sim.protocols import crsf

    roll, pitch, yaw = snapshot.attitude_rad
    yaw = (yaw + math.pi) % (2.0 * math.pi) - math.pi  # the wire holds +-3.2767 rad
    mode = snapshot.mode.upper() if snapshot.armed else f"{snapshot.mode.upper()} (DISARMED)"
    frames: list[Any] = [
        crsf.Attitude(pitch_rad=pitch, roll_rad=roll, yaw_rad=yaw),
        crsf.BaroAltitude(altitude_m=snapshot.altitude_m, vertical_speed_m_s=snapshot.climb_m_s),
        crsf.Vario(vertical_speed_m_s=snapshot.climb_m_s),
        crsf.FlightMode(mode=mode[:59]),
    ]
    if snapshot.battery_voltage_v > 0:
        frames.append(crsf.Battery(snapshot.battery_voltage_v, 0.0, 0, 100))  # the drain is not modelled
    return frames
