"""HSF ("heli-sim frame"): the simulator's own serial framing, its messages and an incremental decoder.

The default on virtual serial ports (it carries a vehicle index and the vehicle states the hover
pilot flies by, which the RC protocols cannot); real devices speak their own.  Pure: no ports, threads,
clocks, logging or printing.  Frame layout (all multi-byte fields little-endian)::

    offset 0-1  sync     0xA5 0x5A
    offset 2    type     u8 (message type, below)
    offset 3-4  seq      u16 little-endian, the sender's frame counter (wraps at 65536)
    offset 5    length   u8, payload length, 0..240
    offset 6..  payload  `length` bytes
    last 2      crc      u16 little-endian, CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
                         no final xor) over type, seq, length and payload (offsets 2 .. 5+length)

A frame is 8 + length bytes, at most ``MAX_FRAME_LEN`` = 248.  Messages (payloads, little-endian):

    0x01 RcChannels       vehicle u16, count u8 (1..16), count x u16 channel values in microseconds
    0x02 ServoCommand     vehicle u16, 4 x i16 servo positions in 1/10000 of full throw (-32767..32767),
                          u16 throttle in 1/10000 (0..10000)
    0x03 ServoAck         vehicle u16, acked_seq u16
    0x04 VehicleStateMsg  vehicle u16, sim_time_s f64, position_ned_m 3 x f32, velocity_ned_m_s 3 x f32,
                          attitude_quat 4 x f32 (w, x, y, z), body_rates_rad_s 3 x f32,
                          rotor_speed_rad_s f32, flags u8 (bit0 crashed, bit1 armed, others ignored)
    0x05 LinkRequest      vehicle u16, t_sent_s f64, opaque data (0..200 bytes)
    0x06 LinkReply        vehicle u16, request_seq u16, t_sent_s f64 (echo of the request's)

The vehicle index is a u16: HSF addresses ``VEHICLE_IDS`` = 65536 vehicles (0..65535), so a
flight whose HSF ports carry a larger fleet is refused when its configuration loads.

``unpack`` is strict: a payload must have exactly the length its type implies (a longer one is a
``PayloadError``, not silently truncated).  ``HsfDecoder`` is a sliding-window parser: a bad
length or CRC costs one byte, after which it searches for the next sync.  It delivers the
complete good-CRC frame that *ends* first, so a good frame after garbage, a fake header or a
truncated frame comes out as soon as its last byte arrives (no clock needed), and the output
does not depend on how the stream is split into ``feed`` calls.  The price: a payload that
contains a complete HSF frame loses to that inner frame.
"""

from __future__ import annotations

import binascii
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sim.protocols.rc import (
    PayloadError,  # (one for every codec: a checked frame whose payload does not fit)
    check_range,
)

__all__ = [
    "CRC_INIT",
    "MAX_FRAME_LEN",
    "MAX_PAYLOAD",
    "SYNC",
    "VEHICLE_IDS",
    "Frame",
    "HsfDecoder",
    "LinkReply",
    "LinkRequest",
    "Message",
    "PayloadError",
    "RcChannels",
    "ServoAck",
    "ServoCommand",
    "VehicleStateMsg",
    "encode",
    "encode_frame",
    "pack",
    "unpack",
]

SYNC = b"\xa5\x5a"
MAX_PAYLOAD = 240  # bytes
HEADER_LEN = 6  # sync, type, seq, length
CRC_LEN = 2
MAX_FRAME_LEN = HEADER_LEN + MAX_PAYLOAD + CRC_LEN  # 248 bytes
CRC_INIT = 0xFFFF  # CRC-16/CCITT-FALSE via binascii.crc_hqx

MAX_CHANNELS = 16
MAX_LINK_DATA = 200  # bytes of opaque LinkRequest data
SERVO_SCALE = 10000  # wire units per full throw (servo) or per full throttle
SERVO_LIMIT = 32767  # wire units, symmetric
THROTTLE_LIMIT = 10000  # wire units
MAX_VEHICLE = 0xFFFF  # the vehicle index is a u16
VEHICLE_IDS = MAX_VEHICLE + 1  # vehicles HSF can address

_HEAD = struct.Struct("<BHB")  # type, seq, length (after the sync)
_SEQ = struct.Struct("<H")
_CRC = struct.Struct("<H")
_RC_HEAD = struct.Struct("<HB")
_SERVO_COMMAND = struct.Struct("<H4hH")
_SERVO_ACK = struct.Struct("<HH")
_VEHICLE_STATE = struct.Struct("<Hd3f3f4f3ffB")
_LINK_REQUEST_HEAD = struct.Struct("<Hd")
_LINK_REPLY = struct.Struct("<HHd")

_FLAG_CRASHED = 0x01
_FLAG_ARMED = 0x02


@dataclass(frozen=True)
class Frame:
    """One checked frame: message type (u8), sender's counter (u16) and the raw payload."""

    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class RcChannels:
    """Stick channels of one vehicle, as pulse widths in microseconds (1..16 channels)."""

    TYPE: ClassVar[int] = 0x01
    vehicle: int
    channels_us: tuple[int, ...]


@dataclass(frozen=True)
class ServoCommand:
    """Servo positions in full-throw units (-1..1 typical) and throttle (0..1); 1e-4 resolution."""

    TYPE: ClassVar[int] = 0x02
    vehicle: int
    servo: tuple[float, float, float, float]
    throttle: float


@dataclass(frozen=True)
class ServoAck:
    """Acknowledges the ServoCommand frame with sequence number ``acked_seq``."""

    TYPE: ClassVar[int] = 0x03
    vehicle: int
    acked_seq: int


@dataclass(frozen=True)
class VehicleStateMsg:
    """Snapshot of one vehicle; float fields other than ``sim_time_s`` travel as f32."""

    TYPE: ClassVar[int] = 0x04
    vehicle: int
    sim_time_s: float
    position_ned_m: tuple[float, float, float]
    velocity_ned_m_s: tuple[float, float, float]
    attitude_quat: tuple[float, float, float, float]  # w, x, y, z
    body_rates_rad_s: tuple[float, float, float]
    rotor_speed_rad_s: float
    crashed: bool
    armed: bool


@dataclass(frozen=True)
class LinkRequest:
    """Link probe: the peer answers with a LinkReply echoing ``t_sent_s`` (round-trip time)."""

    TYPE: ClassVar[int] = 0x05
    vehicle: int
    t_sent_s: float
    data: bytes = b""


@dataclass(frozen=True)
class LinkReply:
    """Answer to the LinkRequest frame ``request_seq``; ``t_sent_s`` is the request's, echoed."""

    TYPE: ClassVar[int] = 0x06
    vehicle: int
    request_seq: int
    t_sent_s: float


Message = RcChannels | ServoCommand | ServoAck | VehicleStateMsg | LinkRequest | LinkReply


def encode_frame(type: int, seq: int, payload: bytes) -> bytes:
    """Bytes of one frame; ValueError if ``type`` is not a u8, ``seq`` not a u16 or payload > 240 bytes."""
    check_range("type", type, 0, 0xFF)
    check_range("seq", seq, 0, 0xFFFF)
    check_range("payload length", len(payload), 0, MAX_PAYLOAD)
    body = _HEAD.pack(type, seq, len(payload)) + bytes(payload)
    return SYNC + body + _CRC.pack(binascii.crc_hqx(body, CRC_INIT))


# ---------------------------------------------------------------- packing: message -> payload


def _servo_units(name: str, value: float, low: int, high: int) -> int:
    """``value`` in 1/10000 units, rounded half to even, then clipped to low..high."""
    if math.isnan(value):
        raise ValueError(f"{name} is NaN")
    return round(min(max(value * SERVO_SCALE, low), high))


def _pack_rc_channels(message: RcChannels) -> bytes:
    count = len(message.channels_us)
    check_range("RcChannels channel count", count, 1, MAX_CHANNELS)
    for value in message.channels_us:
        check_range("RcChannels channel (us)", value, 0, 0xFFFF)
    return _RC_HEAD.pack(message.vehicle, count) + struct.pack(f"<{count}H", *message.channels_us)


def _pack_servo_command(message: ServoCommand) -> bytes:
    if len(message.servo) != 4:
        raise ValueError(f"ServoCommand needs 4 servo positions, got {len(message.servo)}")
    servo = [_servo_units("servo position", value, -SERVO_LIMIT, SERVO_LIMIT) for value in message.servo]
    throttle = _servo_units("throttle", message.throttle, 0, THROTTLE_LIMIT)
    return _SERVO_COMMAND.pack(message.vehicle, *servo, throttle)


def _pack_servo_ack(message: ServoAck) -> bytes:
    check_range("ServoAck acked_seq", message.acked_seq, 0, 0xFFFF)
    return _SERVO_ACK.pack(message.vehicle, message.acked_seq)


def _pack_vehicle_state(message: VehicleStateMsg) -> bytes:
    flags = (_FLAG_CRASHED if message.crashed else 0) | (_FLAG_ARMED if message.armed else 0)
    return _VEHICLE_STATE.pack(
        message.vehicle,
        message.sim_time_s,
        *message.position_ned_m,
        *message.velocity_ned_m_s,
        *message.attitude_quat,
        *message.body_rates_rad_s,
        message.rotor_speed_rad_s,
        flags,
    )


def _pack_link_request(message: LinkRequest) -> bytes:
    check_range("LinkRequest data length", len(message.data), 0, MAX_LINK_DATA)
    return _LINK_REQUEST_HEAD.pack(message.vehicle, message.t_sent_s) + bytes(message.data)


def _pack_link_reply(message: LinkReply) -> bytes:
    check_range("LinkReply request_seq", message.request_seq, 0, 0xFFFF)
    return _LINK_REPLY.pack(message.vehicle, message.request_seq, message.t_sent_s)


# each packer takes the messages of its own type
_PACKERS: dict[type, Callable[..., bytes]] = {
    RcChannels: _pack_rc_channels,
    ServoCommand: _pack_servo_command,
    ServoAck: _pack_servo_ack,
    VehicleStateMsg: _pack_vehicle_state,
    LinkRequest: _pack_link_request,
    LinkReply: _pack_link_reply,
}


def pack(message: Message) -> tuple[int, bytes]:
    """(type, payload) of a message; ValueError if a field is out of range or has the wrong count."""
    packer = _PACKERS.get(type(message))
    if packer is None:
        raise TypeError(f"not an HSF message: {type(message).__name__}")
    check_range(f"{type(message).__name__} vehicle", message.vehicle, 0, MAX_VEHICLE)
    try:
        payload = packer(message)
    except (struct.error, OverflowError) as exc:  # e.g. a float beyond the f32 range, a wrong tuple size
        raise ValueError(f"cannot pack {type(message).__name__}: {exc}") from exc
    return message.TYPE, payload


def encode(message: Message, seq: int) -> bytes:
    """Bytes of one frame carrying ``message`` with sequence number ``seq`` (0..65535)."""
    type_id, payload = pack(message)
    return encode_frame(type_id, seq, payload)


# ---------------------------------------------------------------- unpacking: frame -> message


def _expect_length(name: str, payload: bytes, expected: int) -> None:
    if len(payload) != expected:
        raise PayloadError(f"{name} payload is {len(payload)} bytes, expected {expected}")


def _unpack_rc_channels(payload: bytes) -> RcChannels:
    if len(payload) < _RC_HEAD.size:
        raise PayloadError(f"RcChannels payload is {len(payload)} bytes, expected at least {_RC_HEAD.size}")
    vehicle, count = _RC_HEAD.unpack_from(payload)
    if not 1 <= count <= MAX_CHANNELS:
        raise PayloadError(f"RcChannels channel count {count} is outside 1..{MAX_CHANNELS}")
    _expect_length("RcChannels", payload, _RC_HEAD.size + 2 * count)
    return RcChannels(vehicle, struct.unpack_from(f"<{count}H", payload, _RC_HEAD.size))


def _unpack_servo_command(payload: bytes) -> ServoCommand:
    _expect_length("ServoCommand", payload, _SERVO_COMMAND.size)
    vehicle, s0, s1, s2, s3, throttle = _SERVO_COMMAND.unpack(payload)
    servo = (s0 / SERVO_SCALE, s1 / SERVO_SCALE, s2 / SERVO_SCALE, s3 / SERVO_SCALE)
    return ServoCommand(vehicle, servo, throttle / SERVO_SCALE)


def _unpack_servo_ack(payload: bytes) -> ServoAck:
    _expect_length("ServoAck", payload, _SERVO_ACK.size)
    return ServoAck(*_SERVO_ACK.unpack(payload))


def _unpack_vehicle_state(payload: bytes) -> VehicleStateMsg:
    _expect_length("VehicleStateMsg", payload, _VEHICLE_STATE.size)
    v = _VEHICLE_STATE.unpack(payload)
    flags = v[16]
    return VehicleStateMsg(
        vehicle=v[0],
        sim_time_s=v[1],
        position_ned_m=v[2:5],
        velocity_ned_m_s=v[5:8],
        attitude_quat=v[8:12],
        body_rates_rad_s=v[12:15],
        rotor_speed_rad_s=v[15],
        crashed=bool(flags & _FLAG_CRASHED),
        armed=bool(flags & _FLAG_ARMED),
    )


def _unpack_link_request(payload: bytes) -> LinkRequest:
    head = _LINK_REQUEST_HEAD.size
    if not head <= len(payload) <= head + MAX_LINK_DATA:
        raise PayloadError(f"LinkRequest payload is {len(payload)} bytes, expected {head}..{head + MAX_LINK_DATA}")
    vehicle, t_sent_s = _LINK_REQUEST_HEAD.unpack_from(payload)
    return LinkRequest(vehicle, t_sent_s, bytes(payload[head:]))


def _unpack_link_reply(payload: bytes) -> LinkReply:
    _expect_length("LinkReply", payload, _LINK_REPLY.size)
    return LinkReply(*_LINK_REPLY.unpack(payload))


_UNPACKERS: dict[int, Callable[[bytes], Message]] = {
    RcChannels.TYPE: _unpack_rc_channels,
    ServoCommand.TYPE: _unpack_servo_command,
    ServoAck.TYPE: _unpack_servo_ack,
    VehicleStateMsg.TYPE: _unpack_vehicle_state,
    LinkRequest.TYPE: _unpack_link_request,
    LinkReply.TYPE: _unpack_link_reply,
}


def unpack(frame: Frame) -> Message:
    """The message a checked frame carries; PayloadError on an unknown type or a wrong payload length."""
    unpacker = _UNPACKERS.get(frame.type)
    if unpacker is None:
        raise PayloadError(f"unknown HSF message type 0x{frame.type:02x}")
    return unpacker(frame.payload)


# ---------------------------------------------------------------- stream decoder


def _earliest_frame(view: memoryview, buffer: bytearray, pos: int, end_of_data: int) -> tuple[int, int]:
    """Where the next frame is, among the candidates (syncs) at or after ``pos``.

    Returns ``(start, end)`` of the complete frame with a good CRC that ends first (the earlier
    start on a tie), or ``(-1, waiting)`` when there is none yet, ``waiting`` being the start of
    the first candidate that still needs bytes (``end_of_data`` if none does).
    """
    best_start, best_end = -1, end_of_data + 1
    waiting = end_of_data
    start = buffer.find(SYNC, pos)
    while start >= 0:
        if start + HEADER_LEN + CRC_LEN >= best_end:
            # this and every later candidate end at or after best_end; without a best, they need bytes
            waiting = min(waiting, start)
            break
        length = buffer[start + 5]
        if length <= MAX_PAYLOAD:
            end = start + HEADER_LEN + length + CRC_LEN
            if end > end_of_data:
                waiting = min(waiting, start)
            elif end < best_end:
                (crc,) = _CRC.unpack_from(buffer, end - CRC_LEN)
                if binascii.crc_hqx(view[start + 2 : end - CRC_LEN], CRC_INIT) == crc:
                    best_start, best_end = start, end
        start = buffer.find(SYNC, start + 1)
    if best_start >= 0:
        return best_start, best_end
    if end_of_data > pos and buffer[end_of_data - 1] == SYNC[0]:
        waiting = min(waiting, end_of_data - 1)  # the sync's second byte may come in the next chunk
    return -1, waiting


class HsfDecoder:
    """Incremental sliding-window HSF parser; feed it bytes as they arrive, get checked frames back.

    The next frame delivered is the complete frame with a good CRC that *ends* first, so a
    frame is delivered as soon as its last byte arrives, even when a fake or truncated header
    before it claims more bytes; everything before it is skipped.  Decisions depend only on the
    bytes up to a frame's end, so the output does not depend on how the stream is split into
    ``feed`` calls.  A payload that itself contains a complete HSF frame therefore loses to
    that inner frame: don't tunnel HSF frames through ``LinkRequest.data``.

    Keeps at most ``MAX_FRAME_LEN - 1`` bytes between calls.  Counters (ints, since creation):
    ``frames`` delivered; ``length_errors``, syncs skipped whose length byte is > 240;
    ``crc_errors``, other syncs skipped (bad CRC, or cut short by a frame that completed
    first); ``bytes_in`` fed; ``bytes_skipped``, bytes dropped while resyncing.  A sync still
    waiting for bytes is counted once it is skipped.  Not thread-safe: one reader owns it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames = 0
        self.crc_errors = 0
        self.length_errors = 0
        self.bytes_in = 0
        self.bytes_skipped = 0

    @property
    def decode_errors(self) -> int:
        """Candidate frames rejected so far: ``crc_errors + length_errors``."""
        return self.crc_errors + self.length_errors

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the rest of a frame (or a sync's second byte)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (bytes-like), in stream order; never raises on any content."""
        buffer = self._buffer
        held = len(buffer)
        buffer += data
        end_of_data = len(buffer)
        self.bytes_in += end_of_data - held
        frames: list[Frame] = []
        pos = 0
        with memoryview(buffer) as view:
            while True:
                start, end = _earliest_frame(view, buffer, pos, end_of_data)
                skip_to = start if start >= 0 else end
                if skip_to > pos:
                    self._count_skipped(buffer, pos, skip_to)
                    pos = skip_to
                if start < 0:
                    break
                frames.append(
                    Frame(
                        buffer[start + 2],
                        _SEQ.unpack_from(buffer, start + 3)[0],
                        bytes(view[start + HEADER_LEN : end - CRC_LEN]),
                    )
                )
                pos = end
        del buffer[:pos]
        self.frames += len(frames)
        return frames

    def _count_skipped(self, buffer: bytearray, pos: int, skip_to: int) -> None:
        """Account for the bytes in ``pos .. skip_to - 1`` and the rejected syncs among them."""
        self.bytes_skipped += skip_to - pos
        start = buffer.find(SYNC, pos, skip_to + 1)
        while start >= 0:
            if buffer[start + 5] > MAX_PAYLOAD:
                self.length_errors += 1
            else:
                self.crc_errors += 1
            start = buffer.find(SYNC, start + 1, skip_to + 1)
