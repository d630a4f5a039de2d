"""Protocols on ports: one adapter per protocol module, so every port role can speak any of them.

A ``Codec`` is made per port (some keep state: MAVLink's message rates, a sequence counter).  It
gives the port a fresh stream decoder (``new_decoder``) whose ``feed`` yields ``(seq, message)``
pairs (``seq`` None where the protocol has no sequence numbers), encodes outgoing messages
(``encode``), and answers the role questions: which decoded messages carry stick channels
(``channels_of``), what the simulator, as a flight controller, replies to a request
(``respond``, MSP), and what counts as the servo board's acknowledgement (``is_servo_ack``).

A frame with good framing and checksum whose payload the simulator cannot use (an HSF type it
does not know, an MSP_SET_RAW_RC with 20 channels, ...) never reaches a role: the decoder's
``accept`` step raises ``PayloadError`` for it, and ``StreamDecoder`` counts it in
``decode_errors`` and skips it.  So every role question (``channels_of``, ``respond``,
``link_statistics_of``, ``is_servo_ack``) is asked only about messages that fit, and none raises.

Which protocols a role accepts, and its default, are in ``ROLE_PROTOCOLS``; how many vehicles a
protocol's frames can address, in each codec's ``vehicle_ids`` (``check_vehicle_ids`` refuses a
flight whose fleet a port's protocol cannot address).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from heli.errors import ConfigError
from sim.protocols import hsf
from sim.protocols.rc import ChannelFrame, LineSettings, PayloadError

__all__ = [
    "FLIGHT_WIDE_ROLES",
    "PROTOCOLS",
    "ROLE_PROTOCOLS",
    "Codec",
    "FlightSnapshot",
    "StickChannels",
    "StreamDecoder",
    "check_vehicle_ids",
    "crsf_telemetry",
    "default_protocol",
    "make_codec",
    "protocols_for",
    "vehicle_ids",
]

# role -> (its protocol on a real device, on a virtual port); which protocols a role can speak, each
# codec says (``Codec.roles``)
_ROLE_DEFAULTS: dict[str, tuple[str, str]] = {
    "rc-in": ("crsf", "hsf"),
    "rc-out": ("crsf", "hsf"),
    "servo": ("maestro", "hsf"),
    "telemetry": ("mavlink", "hsf"),
    "link": ("hsf", "hsf"),
}


def default_protocol(role: str, url: str) -> str:
    real, virtual = _ROLE_DEFAULTS[role]
    return virtual if url == "virtual" else real


@dataclass(frozen=True)
class FlightSnapshot:
    """What a flight controller reports about vehicle 0: for CRSF telemetry and MSP replies.

    The fields after ``battery_voltage_v`` have defaults (a vehicle at rest, outputs centred, no
    name) so a snapshot made without them still answers every MSP request.
    """

    attitude_rad: tuple[float, float, float]  # roll, pitch, yaw
    altitude_m: float
    climb_m_s: float
    armed: bool
    mode: str
    channels_us: tuple[float, ...]
    battery_voltage_v: float = 0.0  # 0: no battery (a nitro engine)
    battery_current_a: float = 0.0  # drawn from the battery now (sim.battery)
    battery_consumed_mah: float = 0.0  # since the flight started
    body_rates_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)  # p, q, r: body x forward, y right, z down
    servo_positions: tuple[float, ...] = ()  # the controller's servo outputs, full throw = +-1: swash 0-2, tail
    throttle: float = 0.0  # the controller's throttle output, 0..1
    craft_name: str = ""  # the helicopter's name (its config's ``name``)
    position_ned_m: tuple[float, float, float] = (0.0, 0.0, 0.0)  # from home
    velocity_ned_m_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    home: tuple[float, float, float] | None = None  # latitude deg, longitude deg, altitude m MSL; None: no GPS


@dataclass(frozen=True)
class StickChannels:
    """Stick channels a decoded message carries, for which vehicle, and the receiver's failsafe flag."""

    vehicle: int
    channels_us: tuple[float, ...]
    failsafe: bool = False


class StreamDecoder:
    """Adapts a protocol decoder: ``feed(data)`` -> list of (seq or None, message).

    ``decode(data)`` gives what the protocol's decoder delivers (frames with good framing and
    checks); ``accept(item)``, if given, turns each into the message the roles get, or raises
    ``PayloadError`` for one whose payload the simulator cannot use: that frame is counted in
    ``rejected`` (part of ``decode_errors``) and skipped.  ``feed`` never raises on any content.
    """

    def __init__(
        self,
        decode: Callable[[bytes], list[tuple[int | None, Any]]],
        errors: Callable[[], int],
        accept: Callable[[Any], Any] | None = None,
    ):
        self._decode = decode
        self._errors = errors
        self._accept = accept
        self.rejected = 0  # frames with good checks whose payload did not fit

    def feed(self, data: bytes) -> list[tuple[int | None, Any]]:
        decoded = self._decode(data)
        accept = self._accept
        if accept is None:
            return decoded
        out = []
        for seq, item in decoded:
            try:
                out.append((seq, accept(item)))
            except PayloadError:
                self.rejected += 1
        return out

    @property
    def decode_errors(self) -> int:
        """Frames rejected so far: the protocol decoder's (framing, checksum) plus ``rejected``."""
        return self._errors() + self.rejected


class Codec:
    """Base adapter; subclasses fill in what their protocol has."""

    name: ClassVar[str] = ""
    roles: ClassVar[tuple[str, ...]] = ()  # the port roles this protocol can serve
    line: LineSettings = LineSettings(baudrate=115200)
    # how many vehicles one stream tells apart by an index on the wire (HSF: 65536); None: the
    # protocol has no vehicle index, so its rc-in, rc-out and telemetry frames are vehicle 0's
    # and a servo or link port speaking it is its own vehicle's
    vehicle_ids: ClassVar[int | None] = None

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
    roles = ("rc-in", "rc-out", "servo", "telemetry", "link")
    vehicle_ids = hsf.VEHICLE_IDS

    def new_decoder(self) -> StreamDecoder:
        decoder = hsf.HsfDecoder()
        return StreamDecoder(
            lambda data: [(frame.seq, frame) for frame in decoder.feed(data)], lambda: decoder.decode_errors, hsf.unpack
        )

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
    roles = ("telemetry",)
    line = LineSettings(baudrate=57600)

    def __init__(self) -> None:
        from sim.protocols.mavlink import TelemetryEncoder

        self.encoder = TelemetryEncoder()

    def new_decoder(self) -> StreamDecoder:
        from sim.protocols.mavlink import MavlinkDecoder

        decoder = MavlinkDecoder()
        return StreamDecoder(lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors)

    def encode(self, message: Any, seq: int) -> bytes:
        """A ``TelemetrySample``: the messages due at its time; anything else is a pymavlink message
        (a reply to a ground station), packed as it is."""
        from sim.protocols.mavlink import TelemetrySample

        if isinstance(message, TelemetrySample):
            return self.encoder.encode(message, self.encoder.due(message.time_s))
        return self.encoder.pack(message)

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
    roles = ("rc-in", "rc-out")

    def __init__(self) -> None:
        from sim.protocols import sbus

        super().__init__(sbus)


class IbusCodec(_OneWayRcCodec):
    name = "ibus"
    roles = ("rc-in",)

    def __init__(self) -> None:
        from sim.protocols import ibus

        super().__init__(ibus)


class CrsfCodec(Codec):
    """CRSF / ExpressLRS: sticks in, telemetry (attitude, altitude, vario, mode, battery) out."""

    name = "crsf"
    roles = ("rc-in", "rc-out")

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
    """MSP v1/v2.  The simulator is the flight controller: it takes MSP_SET_RAW_RC and answers the
    identification and state requests of ``respond``; an MSP client (the emulated transmitter) sends
    the requests.
    """

    name = "msp"
    roles = ("rc-in",)

    def __init__(self, side: str) -> None:
        from sim.protocols import msp

        self._msp = msp
        self.side = side
        self.line = msp.LINE
        self._identification = _msp_identification() if side == "host" else {}
        self._state_replies = _msp_state_replies(msp)

    def new_decoder(self) -> StreamDecoder:
        decoder = self._msp.MspDecoder()
        accept = self._accept if self.side == "host" else None
        return StreamDecoder(
            lambda data: [(None, m) for m in decoder.feed(data)], lambda: decoder.decode_errors, accept
        )

    def _accept(self, message: Any) -> Any:
        """``message``, or ``PayloadError`` for an MSP_SET_RAW_RC whose payload is not 1..18 channels."""
        self._msp.rc_channels_from(message)
        return message

    def encode(self, message: Any, seq: int) -> bytes:
        return self._msp.encode(message)

    def stick_message(self, vehicle: int, channels_us: tuple[float, ...]) -> Any:
        msp = self._msp
        return msp.MspMessage(2, "<", msp.MSP_SET_RAW_RC, msp.raw_rc_payload(channels_us))

    def channels_of(self, message: Any) -> StickChannels | None:
        if self.side != "host":
            return None
        try:
            frame = self._msp.rc_channels_from(message)
        except PayloadError:  # never one the decoder delivered: it counted and skipped it
            return None
        return None if frame is None else StickChannels(0, tuple(float(c) for c in frame.channels_us))

    def respond(self, message: Any, snapshot: Any) -> list[Any]:
        """The reply to a request, in the request's MSP version, at once.

        MSP_SET_RAW_RC gets an empty ack.  Identification (API version, FC variant and version,
        board, build) is fixed when the codec is made and needs no snapshot; MSP_NAME is the
        snapshot's craft name, empty before the first snapshot.  State replies (MSP_STATUS,
        MSP_STATUS_EX, MSP_RAW_IMU, MSP_SERVO, MSP_MOTOR, MSP_RC, MSP_ATTITUDE, MSP_ALTITUDE,
        MSP_ANALOG) are built from ``snapshot``; until the flight's first snapshot, and for any
        other command, the reply is an error reply (``!``, empty), as Betaflight answers a command
        it does not support.  A snapshot value that cannot be sent (not finite) gets an error reply
        too, never an exception.
        """
        msp = self._msp
        if self.side != "host" or message.direction != "<":
            return []
        command, version = message.command, message.version

        def reply(payload: bytes) -> list[Any]:
            return [msp.MspMessage(version, ">", command, payload)]

        if command == msp.MSP_SET_RAW_RC:
            return reply(b"")
        if command in self._identification:
            return reply(self._identification[command])
        if command == msp.MSP_NAME:
            return reply(msp.name_payload(_craft_name(snapshot.craft_name if snapshot is not None else "")))
        build = self._state_replies.get(command)
        if snapshot is not None and build is not None:
            try:
                return reply(build(msp, snapshot))
            except ValueError:  # a value that is not finite (a diverged vehicle): nothing true to send
                pass
        return [msp.MspMessage(version, "!", command, b"")]  # not supported (or no state yet): an error reply


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
    roles = ("servo",)
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
            replies: list[tuple[int | None, Any]] = []
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


# ---------------------------------------------------------------- MSP: what heli-sim answers as a flight controller

_MSP_SENSORS_ACC_GYRO = 0x01 | 0x20  # Betaflight sensor bits: accelerometer, gyro
_MSP_CYCLE_TIME_US = 2000  # MSP_STATUS and MSP_STATUS_EX cycle time
# MSP_API_VERSION: protocol 0 and API 1.46, the API of Betaflight 4.5, its last 4.x release (the
# calendar-versioned releases after it append fields under 1.47).  MSP clients branch on the API
# version to know which fields a reply has; the replies here follow Betaflight 4.5's layouts
# (MSP_BOARD_INFO and MSP_STATUS_EX end where 1.46 ends them), so 1.46 tells a client the truth.
# yamspy reads it but accepts any.
_MSP_API = (0, 1, 46)
# MSP_FC_VARIANT: heli-sim is not Betaflight and does not claim "BTFL" (the MSP guidelines at the
# top of Betaflight's msp_protocol.h: a firmware with replies of its own has its own identifier).
# yamspy needs no "BTFL": it treats every identifier but "INAV" as Betaflight-like and parses the
# replies with Betaflight's layouts, which are the ones sent here.  (Betaflight Configurator expects
# "BTFL" and does not offer its full interface to another identifier.)
_MSP_FC_VARIANT = "HELI"
_MSP_GIT_REVISION = "0000000"  # heli-sim does not build its revision in: seven zeros say "unknown"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _msp_identification() -> dict[int, bytes]:
    """The identification replies, command -> payload, fixed for the codec's life.

    FC version: heli-sim's own version.  Build date and time: when the codec was made (UTC), in C's
    ``__DATE__``/``__TIME__`` form that Betaflight sends, since heli-sim has no build step: the
    simulated flight controller is "built" when the simulator starts.
    """
    from sim import __version__
    from sim.protocols import msp

    stamp = time.gmtime()
    build_date = f"{_MONTHS[stamp.tm_mon - 1]} {stamp.tm_mday:2d} {stamp.tm_year:4d}"
    board = msp.MspBoardInfo(
        board_id="HSIM",  # 4 upper-case characters, as Betaflight's board ids
        hardware_revision=0,
        board_type=0,  # a flight controller, no OSD chip
        capabilities=0,  # no USB VCP, soft serial, flash boot loader or receiver bind
        target_name="HELI-SIM",
        board_name="HELI-SIM",
        manufacturer_id="",  # none
        mcu_type=0,  # Betaflight's MCU type id for its own simulator build (SITL)
        configuration_state=1,  # configured
        gyro_sample_rate_hz=0,  # the gyro is the flight model, not a sampled sensor
    )
    return {
        msp.MSP_API_VERSION: msp.api_version_payload(*_MSP_API),
        msp.MSP_FC_VARIANT: msp.fc_variant_payload(_MSP_FC_VARIANT),
        msp.MSP_FC_VERSION: msp.fc_version_payload(*_version_numbers(__version__)),
        msp.MSP_BOARD_INFO: msp.board_info_payload(board),
        msp.MSP_BUILD_INFO: msp.build_info_payload(build_date, time.strftime("%H:%M:%S", stamp), _MSP_GIT_REVISION),
    }


def _version_numbers(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version string like "0.1.0" or "1.2.3rc1", each 0..255 (0 where absent)."""
    numbers = []
    for part in [*version.split("."), "0", "0"][:3]:
        digits = "".join(itertools.takewhile(str.isdigit, part))
        numbers.append(min(int(digits or 0), 255))
    return numbers[0], numbers[1], numbers[2]


def _craft_name(name: str) -> str:
    """``name`` as an MSP craft name: ASCII (others become "?"), at most Betaflight's 16 characters."""
    from sim.protocols.msp import MAX_NAME_LENGTH

    return name.encode("ascii", "replace").decode("ascii")[:MAX_NAME_LENGTH]


def _msp_status(msp: Any, snapshot: FlightSnapshot) -> bytes:
    return msp.status_payload(_MSP_CYCLE_TIME_US, 0, _MSP_SENSORS_ACC_GYRO, 1 if snapshot.armed else 0, 0)


def _msp_status_ex(msp: Any, snapshot: FlightSnapshot) -> bytes:
    """Betaflight's extended status: one PID and one rate profile, no arming-disable reasons defined
    (heli-sim arms by its arm channel alone), no system load or CPU temperature to report."""
    flags = 1 if snapshot.armed else 0  # bit 0: the ARM box, as in MSP_STATUS
    return msp.status_ex_payload(msp.MspStatusEx(_MSP_CYCLE_TIME_US, 0, _MSP_SENSORS_ACC_GYRO, flags, 0))


def _msp_raw_imu(msp: Any, snapshot: FlightSnapshot) -> bytes:
    """Gyro and accelerometer in Betaflight's sensor axes (x forward, y left, z up), from heli-sim's
    body axes (x forward, y right, z down): y and z change sign.

    The accelerometer reads the specific force of steady flight, gravity's reaction alone, from the
    attitude: the snapshot carries no linear acceleration.  A level craft reads (0, 0, +1 g).
    """
    roll, pitch, _yaw = snapshot.attitude_rad
    p, q, r = snapshot.body_rates_rad_s
    up_x = math.sin(pitch)  # the unit "up" vector in body axes (x forward, y left, z up)
    up_y = math.sin(roll) * math.cos(pitch)
    up_z = math.cos(roll) * math.cos(pitch)
    gyro = (math.degrees(p), -math.degrees(q), -math.degrees(r))
    return msp.raw_imu_payload((up_x, up_y, up_z), gyro)


def _msp_servo(msp: Any, snapshot: FlightSnapshot) -> bytes:
    """The controller's servo outputs in us: 1500 +- 500 per full throw (as on the Maestro servo port),
    swash servos 0-2 then the tail; the slots after them centred (1500)."""
    servos = [1500.0 + 500.0 * max(-1.0, min(1.0, s)) for s in snapshot.servo_positions[: msp.OUTPUT_COUNT]]
    return msp.servo_payload(servos + [1500.0] * (msp.OUTPUT_COUNT - len(servos)))


def _msp_motor(msp: Any, snapshot: FlightSnapshot) -> bytes:
    """The one motor (the drive: an ESC or a throttle servo) at 1000 + 1000 x throttle; the seven
    outputs after it have no motor: 0, as Betaflight sends for a motor it does not drive."""
    motor = 1000.0 + 1000.0 * max(0.0, min(1.0, snapshot.throttle))
    return msp.motor_payload([motor] + [0.0] * (msp.OUTPUT_COUNT - 1))


def _msp_rc(msp: Any, snapshot: FlightSnapshot) -> bytes:
    return msp.raw_rc_payload(snapshot.channels_us[: msp.MAX_RC_CHANNELS])


def _msp_attitude(msp: Any, snapshot: FlightSnapshot) -> bytes:
    roll, pitch, yaw = (math.degrees(a) for a in snapshot.attitude_rad)
    # Betaflight's MSP_ATTITUDE: positive pitch is nose down (heli-sim's Euler pitch: nose up)
    return msp.attitude_payload(roll, -pitch, yaw % 360.0)


def _msp_altitude(msp: Any, snapshot: FlightSnapshot) -> bytes:
    return msp.altitude_payload(snapshot.altitude_m, snapshot.climb_m_s)


def _msp_analog(msp: Any, snapshot: FlightSnapshot) -> bytes:
    """The battery (0 V for a nitro engine): voltage, the charge drawn and the current from the motor
    model (``sim.battery``); there is no RSSI source (0, what Betaflight reports without one)."""
    return msp.analog_payload(
        snapshot.battery_voltage_v, snapshot.battery_consumed_mah, current_a=snapshot.battery_current_a
    )


def _msp_state_replies(msp: Any) -> dict[int, Callable[[Any, FlightSnapshot], bytes]]:
    """Command -> the function building its reply from a snapshot."""
    return {
        msp.MSP_STATUS: _msp_status,
        msp.MSP_STATUS_EX: _msp_status_ex,
        msp.MSP_RAW_IMU: _msp_raw_imu,
        msp.MSP_SERVO: _msp_servo,
        msp.MSP_MOTOR: _msp_motor,
        msp.MSP_RC: _msp_rc,
        msp.MSP_ATTITUDE: _msp_attitude,
        msp.MSP_ALTITUDE: _msp_altitude,
        msp.MSP_ANALOG: _msp_analog,
    }


# every protocol heli-sim speaks: the one table the configuration, the command line's choices and the
# benchmarks read (adding a protocol: its codec here, with its roles)
_CODECS: dict[str, type[Codec]] = {
    codec.name: codec for codec in (CrsfCodec, SbusCodec, IbusCodec, MspCodec, MaestroCodec, MavlinkCodec, HsfCodec)
}
PROTOCOLS = tuple(_CODECS)


def protocols_for(role: str) -> tuple[str, ...]:
    """The protocols a port of ``role`` can speak: its default on a real device first, heli-sim's own
    (hsf) last."""
    real, _virtual = _ROLE_DEFAULTS[role]
    spoken = [name for name, codec in _CODECS.items() if role in codec.roles]
    return tuple(sorted(spoken, key=lambda name: (name != real, name == "hsf")))


# role -> (protocols it can speak, default on a real device, default on a virtual port)
ROLE_PROTOCOLS: dict[str, tuple[tuple[str, ...], str, str]] = {
    role: (protocols_for(role), real, virtual) for role, (real, virtual) in _ROLE_DEFAULTS.items()
}
_SIDED = (MspCodec, MaestroCodec)  # codecs that differ between the simulator's side and the device's


FLIGHT_WIDE_ROLES = ("rc-in", "rc-out", "telemetry")  # one port for the whole fleet; servo and link: one per vehicle


def vehicle_ids(protocol: str) -> int | None:
    """How many vehicles ``protocol``'s frames can address (None: it carries no vehicle index)."""
    return _codec_class(protocol).vehicle_ids


def check_vehicle_ids(specs: Iterable[Any], fleet: int) -> None:
    """``ConfigError`` naming the first port whose protocol cannot address the vehicles it serves.

    ``specs`` are ``sim.config.PortSpec``s: a flight-wide port (rc-in, rc-out, telemetry) serves
    vehicles 0..fleet-1, a servo or link port its own ``vehicle``.  A protocol without a vehicle
    index addresses no one in particular (its frames are vehicle 0's, or its port's own vehicle's).
    """
    limits: dict[str, int | None] = {}
    for spec in specs:
        protocol = spec.wire_protocol
        if protocol not in limits:
            limits[protocol] = vehicle_ids(protocol)
        limit = limits[protocol]
        # a servo or link port for a vehicle beyond the fleet is refused elsewhere, with its own message
        highest = fleet - 1 if spec.role in FLIGHT_WIDE_ROLES else min(spec.vehicle, fleet - 1)
        if limit is not None and highest >= limit:
            raise ConfigError(
                f"flight.fleet = {fleet}: port {spec.label} speaks {protocol}, whose vehicle index reaches "
                f"{limit} vehicles (0..{limit - 1}); fly at most {limit}, or give it another protocol or no ports"
            )


def make_codec(protocol: str, side: str = "host") -> Codec:
    """A fresh codec for ``protocol`` on the simulator's side ("host") or the far end's ("device").

    ``ConfigError`` (a ``ValueError``) for a protocol heli-sim does not speak.
    """
    cls = _codec_class(protocol)
    return cls(side) if issubclass(cls, _SIDED) else cls()


def _codec_class(protocol: str) -> type[Codec]:
    if protocol not in _CODECS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(sorted(_CODECS))}")
    return _CODECS[protocol]


def crsf_telemetry(snapshot: FlightSnapshot) -> list[Any]:
    """CRSF telemetry frames for the radio: attitude, altitude and vario, flight mode, battery (an
    electric helicopter), GPS (from the home position)."""
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
    if snapshot.battery_voltage_v > 0:  # an engine has none: no battery frame, as a nitro model's FC sends
        # the motor model's current and the charge used; no capacity is modelled: 100 % left
        current = min(snapshot.battery_current_a, 6553.5)
        frames.append(
            crsf.Battery(snapshot.battery_voltage_v, current, min(round(snapshot.battery_consumed_mah), 0xFFFFFF), 100)
        )
    if snapshot.home is not None:
        frames.append(_crsf_gps(crsf, snapshot, snapshot.home))
    return frames


def _crsf_gps(crsf: Any, snapshot: FlightSnapshot, home: tuple[float, float, float]) -> Any:
    """The GPS frame: the position from ``home``, speed and course over the ground, a good fix."""
    from sim.protocols.geo import ned_to_geodetic

    latitude, longitude, altitude = ned_to_geodetic(*snapshot.position_ned_m, *home)
    vn, ve, _ = snapshot.velocity_ned_m_s
    speed = math.hypot(vn, ve)
    course = math.degrees(math.atan2(ve, vn)) % 360.0 if speed > 0 else 0.0
    altitude = min(max(altitude, -1000.0), 64535.0)
    return crsf.Gps(latitude, longitude, min(speed, 6553.5 / 3.6), course, altitude, 12)
