"""MSP (MultiWii Serial Protocol) v1 and v2: framing, an incremental decoder and the payloads heli-sim uses.

Pure: no ports, threads, clocks, logging or printing.  Facts from
Betaflight ``src/main/msp/msp_serial.c`` and ``msp_protocol.h``
(parser ``mspSerialProcessReceivedData``, encoder ``mspSerialEncode``).  Frames (multi-byte
fields little-endian)::

    v1        '$' 'M' dir  size u8  cmd u8  payload[size]  xor
    v1 jumbo  '$' 'M' dir  0xFF     cmd u8  size u16  payload[size]  xor        (size >= 255)
    v2        '$' 'X' dir  flag u8  cmd u16  size u16  payload[size]  crc8
    v2 in v1  '$' 'M' dir  size u8  0xFF  [flag u8  cmd u16  size2 u16  payload[size2]  crc8]  xor

``dir`` is ``<`` (request, to the flight controller), ``>`` (reply) or ``!`` (error reply).
``xor`` is the XOR of every byte from the size byte up to the checksum; ``crc8`` is
CRC-8/DVB-S2 (poly 0xD5, init 0, no reflection) over flag..payload.  A v1 command is 0..254:
255 (``MSP_V2_FRAME_ID``) marks a v2 frame tunnelled in a v1 payload (size = size2 + 6).

Conventions chosen here:

* A v1 payload of 255 bytes or more is sent as a jumbo frame, as Betaflight's encoder does
  (``JUMBO_FRAME_SIZE_LIMIT``), so v1 carries up to 65535 bytes; a jumbo header claiming
  fewer than 255 is rejected (not canonical).  Betaflight's parser accepts no jumbo frames
  (nor any payload over 192 bytes): keep requests short.  Tunnelled v2 goes only in a plain
  v1 frame (v2 payload <= 248 bytes); Betaflight's jumbo tunnel layout is not supported.
* ``MspMessage.version`` is 1 or 2; a tunnelled v2 frame is ``version=2, over_v1=True``, so
  ``encode`` reproduces it exactly.
* The decoder rejects frames whose payload exceeds ``max_payload`` (default 4096 bytes) as
  length errors, which bounds its buffer; pass up to 65535 to take anything.

``MspDecoder`` is a sliding-window parser built like ``hsf.HsfDecoder``: it delivers the
complete frame with a good checksum that *ends* first, so a fake ``$M<`` or ``$X<`` claiming a
long payload, or a truncated frame, cannot delay a good frame behind it, and the output does
not depend on how the stream is split into ``feed`` calls.  The price: a payload holding a
complete MSP frame loses to that inner frame.

Payloads (Betaflight ``src/main/msp/msp.c``, ``src/main/rx/msp.c``; all little-endian):

* MSP_SET_RAW_RC (200) request and MSP_RC (105) reply: N x u16 channel values in us, N <= 18.
* MSP_ATTITUDE (108) reply: i16 roll in 0.1 deg, i16 pitch in 0.1 deg, i16 yaw (heading) in
  whole degrees 0..359.  Signs are the flight controller's, passed through unchanged; in
  Betaflight positive pitch is nose *down* (its maintainers, betaflight/betaflight PR #13778).
* MSP_STATUS (101) reply: the reference does not document it; this is MultiWii's classic
  11-byte layout, which Betaflight keeps as its first 11 bytes: u16 cycle time (us), u16 I2C
  error count, u16 sensor bits, u32 flight-mode bits (first 32 boxes), u8 profile.  Later
  firmwares append fields (Betaflight: system load, gyro cycle time, ...); they are kept as
  raw ``extension`` bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import xor

from sim.protocols.rc import ChannelFrame, LineSettings
from sim.protocols.rc import PayloadError as _RcPayloadError

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "LINE",
    "MAX_PAYLOAD",
    "MAX_RC_CHANNELS",
    "MAX_V1_PLAIN_PAYLOAD",
    "MAX_V2_OVER_V1_PAYLOAD",
    "MSP_ATTITUDE",
    "MSP_RC",
    "MSP_SET_RAW_RC",
    "MSP_STATUS",
    "MSP_V2_FRAME_ID",
    "MspAttitude",
    "MspDecoder",
    "MspMessage",
    "MspStatus",
    "PayloadError",
    "attitude_payload",
    "crc8_dvb_s2",
    "encode",
    "parse_attitude",
    "parse_raw_rc",
    "parse_status",
    "raw_rc_payload",
    "rc_channels_from",
    "status_payload",
]

LINE = LineSettings(baudrate=115200)  # typical; any rate works (USB virtual COM ports ignore it); host-driven

MSP_STATUS = 101
MSP_RC = 105
MSP_ATTITUDE = 108
MSP_SET_RAW_RC = 200
MSP_V2_FRAME_ID = 255  # v1 command id of a tunnelled v2 frame

MAX_RC_CHANNELS = 18  # Betaflight MAX_SUPPORTED_RC_CHANNEL_COUNT
MAX_PAYLOAD = 0xFFFF  # bytes: v2, and v1 jumbo
MAX_V1_PLAIN_PAYLOAD = 254  # bytes; 255 in the size byte announces a jumbo frame
JUMBO = 255  # size byte of a jumbo frame, and its smallest payload
V2_IN_V1_OVERHEAD = 6  # v2 header (5) + v2 CRC (1) inside the v1 payload
MAX_V2_OVER_V1_PAYLOAD = MAX_V1_PLAIN_PAYLOAD - V2_IN_V1_OVERHEAD  # 248 bytes
DEFAULT_MAX_PAYLOAD = 4096  # bytes accepted by a decoder unless told otherwise

DIRECTIONS = "<>!"  # request, reply, error reply
_SYNC = 0x24  # '$'
_V1 = 0x4D  # 'M'
_V2 = 0x58  # 'X'
_DIRECTION_BYTES = frozenset(DIRECTIONS.encode())
V1_HEADER_LEN = 5  # '$' 'M' dir size cmd
JUMBO_HEADER_LEN = 7  # ... and the u16 size
V2_HEADER_LEN = 8  # '$' 'X' dir flag cmd(2) size(2)
TUNNEL_HEADER_LEN = V1_HEADER_LEN + V2_HEADER_LEN - 3  # v1 header, then the v2 one without '$X' dir
CHECK_LEN = 1  # the XOR or CRC byte
MIN_FRAME_LEN = V1_HEADER_LEN + CHECK_LEN  # a v1 frame with an empty payload

_V1_HEAD = struct.Struct("<BB")  # size, cmd
_U16 = struct.Struct("<H")
_V2_HEAD = struct.Struct("<BHH")  # flag, cmd, size
_ATTITUDE = struct.Struct("<hhh")
_STATUS = struct.Struct("<HHHIB")

# frame kinds, from the header
_PLAIN, _JUMBO, _TUNNEL, _NATIVE = range(4)
# what a candidate's header says
_NOT_A_FRAME, _NEEDS_BYTES, _BAD_LENGTH, _FRAME = range(4)


class PayloadError(_RcPayloadError):
    """A checked message whose payload does not fit its command (wrong length, too many channels)."""


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0xD5) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8_TABLE = _crc8_table()


def crc8_dvb_s2(data: bytes, crc: int = 0) -> int:
    """CRC-8/DVB-S2 (poly 0xD5, init 0, MSB first, no final xor) of ``data``, continuing from ``crc``."""
    table = _CRC8_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc


def _xor(data: bytes) -> int:
    return reduce(xor, data, 0)


@dataclass(frozen=True)
class MspMessage:
    """One checked MSP frame.

    ``version`` 1 or 2; ``direction`` ``"<"`` request, ``">"`` reply, ``"!"`` error reply;
    ``command`` 0..254 (v1) or 0..65535 (v2); ``flag`` the v2 flag byte (0 in v1);
    ``over_v1`` True for a v2 frame tunnelled in a v1 frame (command 255).
    """

    version: int
    direction: str
    command: int
    payload: bytes
    flag: int = 0
    over_v1: bool = False


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} = {value!r} is outside {low}..{high}")


def _v2_body(message: MspMessage) -> bytes:
    """flag, cmd, size, payload, CRC: the part of a v2 frame after ``$X<``."""
    body = _V2_HEAD.pack(message.flag, message.command, len(message.payload)) + message.payload
    return body + bytes((crc8_dvb_s2(body),))


def encode(message: MspMessage) -> bytes:
    """The bytes of one frame carrying ``message``; the decoder's exact inverse.

    ValueError on a field out of range: direction not one of ``<>!``; v1 command outside 0..254,
    a v1 flag other than 0, a v1 payload over 65535 bytes (255 and up go jumbo); v2 command
    outside 0..65535, flag outside 0..255, payload over 65535 bytes (248 when ``over_v1``).
    """
    if len(message.direction) != 1 or message.direction not in DIRECTIONS:
        raise ValueError(f"MSP direction must be one of '<', '>', '!', got {message.direction!r}")
    payload = bytes(message.payload)
    head = bytes((_SYNC, _V1 if message.version == 1 or message.over_v1 else _V2, ord(message.direction)))
    if message.version == 1:
        _check_range("MSP v1 command", message.command, 0, MSP_V2_FRAME_ID - 1)
        _check_range("MSP v1 flag", message.flag, 0, 0)
        if message.over_v1:
            raise ValueError("over_v1 is for version 2 messages")
        _check_range("MSP v1 payload length", len(payload), 0, MAX_PAYLOAD)
        if len(payload) < JUMBO:
            body = _V1_HEAD.pack(len(payload), message.command) + payload
        else:
            body = _V1_HEAD.pack(JUMBO, message.command) + _U16.pack(len(payload)) + payload
        return head + body + bytes((_xor(body),))
    if message.version == 2:
        _check_range("MSP v2 command", message.command, 0, 0xFFFF)
        _check_range("MSP v2 flag", message.flag, 0, 0xFF)
        limit = MAX_V2_OVER_V1_PAYLOAD if message.over_v1 else MAX_PAYLOAD
        _check_range("MSP v2 payload length", len(payload), 0, limit)
        inner = _v2_body(MspMessage(2, message.direction, message.command, payload, message.flag))
        if not message.over_v1:
            return head + inner
        body = _V1_HEAD.pack(len(inner), MSP_V2_FRAME_ID) + inner
        return head + body + bytes((_xor(body),))
    raise ValueError(f"MSP version must be 1 or 2, got {message.version!r}")


# ---------------------------------------------------------------- stream decoder


def _inspect(buffer: bytearray, start: int, end_of_data: int, max_payload: int) -> tuple[int, int, int]:
    """What the ``$`` at ``start`` begins: ``(verdict, frame end, frame kind)``.

    The verdict uses only header bytes (at most ``start + 7``): not a frame, needs more bytes,
    a bad length (payload over ``max_payload``, a short jumbo, a tunnel too short for a v2
    header, a jumbo tunnel), or a frame whose end and kind are given.
    """
    have = end_of_data - start
    if have < 2:
        return _NEEDS_BYTES, 0, 0
    version = buffer[start + 1]
    if version != _V1 and version != _V2:
        return _NOT_A_FRAME, 0, 0
    if have < 3:
        return _NEEDS_BYTES, 0, 0
    if buffer[start + 2] not in _DIRECTION_BYTES:
        return _NOT_A_FRAME, 0, 0
    if version == _V2:
        if have < V2_HEADER_LEN:
            return _NEEDS_BYTES, 0, 0
        (size,) = _U16.unpack_from(buffer, start + V2_HEADER_LEN - 2)
        if size > max_payload:
            return _BAD_LENGTH, 0, 0
        return _FRAME, start + V2_HEADER_LEN + size + CHECK_LEN, _NATIVE
    if have < V1_HEADER_LEN:
        return _NEEDS_BYTES, 0, 0
    size, command = _V1_HEAD.unpack_from(buffer, start + 3)
    if size == JUMBO:
        if command == MSP_V2_FRAME_ID:
            return _BAD_LENGTH, 0, 0
        if have < JUMBO_HEADER_LEN:
            return _NEEDS_BYTES, 0, 0
        (size,) = _U16.unpack_from(buffer, start + V1_HEADER_LEN)
        if size < JUMBO or size > max_payload:
            return _BAD_LENGTH, 0, 0
        return _FRAME, start + JUMBO_HEADER_LEN + size + CHECK_LEN, _JUMBO
    if command == MSP_V2_FRAME_ID:
        if size < V2_IN_V1_OVERHEAD or size - V2_IN_V1_OVERHEAD > max_payload:
            return _BAD_LENGTH, 0, 0
        return _FRAME, start + V1_HEADER_LEN + size + CHECK_LEN, _TUNNEL
    if size > max_payload:
        return _BAD_LENGTH, 0, 0
    return _FRAME, start + V1_HEADER_LEN + size + CHECK_LEN, _PLAIN


def _checked(buffer: bytearray, view: memoryview, start: int, end: int, kind: int) -> MspMessage | None:
    """The message of the complete frame ``buffer[start:end]`` of ``kind``, or None if a check fails."""
    direction = chr(buffer[start + 2])
    if kind == _NATIVE:
        if crc8_dvb_s2(view[start + 3 : end - 1]) != buffer[end - 1]:
            return None
        flag, command, _size = _V2_HEAD.unpack_from(buffer, start + 3)
        return MspMessage(2, direction, command, bytes(view[start + V2_HEADER_LEN : end - 1]), flag)
    if _xor(view[start + 3 : end - 1]) != buffer[end - 1]:
        return None
    if kind == _PLAIN:
        return MspMessage(1, direction, buffer[start + 4], bytes(view[start + V1_HEADER_LEN : end - 1]))
    if kind == _JUMBO:
        return MspMessage(1, direction, buffer[start + 4], bytes(view[start + JUMBO_HEADER_LEN : end - 1]))
    # tunnel: the v2 frame fills the v1 payload exactly and has a good CRC of its own
    flag, command, size = _V2_HEAD.unpack_from(buffer, start + V1_HEADER_LEN)
    if (
        size != buffer[start + 3] - V2_IN_V1_OVERHEAD
        or crc8_dvb_s2(view[start + V1_HEADER_LEN : end - 2]) != buffer[end - 2]
    ):
        return None
    return MspMessage(2, direction, command, bytes(view[start + TUNNEL_HEADER_LEN : end - 2]), flag, over_v1=True)


class MspDecoder:
    """Incremental sliding-window MSP v1/v2 parser; feed it bytes as they arrive, get ``MspMessage`` objects back.

    ``max_payload`` (bytes, 0..65535): larger frames are length errors.  The next message
    delivered is the one whose frame, with good checks, *ends* first; everything before it is
    skipped.  Keeps at most ``max_payload + 11`` bytes between calls.  Counters (ints, since
    creation): ``frames`` delivered; ``length_errors``, candidates (``$M``/``$X`` + direction)
    skipped whose header has an impossible size; ``checksum_errors``, other candidates skipped
    (bad XOR or CRC, or cut short by a frame that completed first); ``bytes_in`` fed;
    ``bytes_skipped``, bytes dropped while resyncing.  A candidate still waiting for bytes is
    counted once it is skipped.  Not thread-safe: one reader owns it.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        _check_range("max_payload", max_payload, 0, MAX_PAYLOAD)
        self.max_payload = max_payload
        self._buffer = bytearray()
        self.frames = 0
        self.checksum_errors = 0
        self.length_errors = 0
        self.bytes_in = 0
        self.bytes_skipped = 0

    @property
    def decode_errors(self) -> int:
        """Candidate frames rejected so far: ``checksum_errors + length_errors``."""
        return self.checksum_errors + self.length_errors

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[MspMessage]:
        """Messages completed by ``data`` (bytes-like), in stream order; never raises on any content."""
        buffer = self._buffer
        held = len(buffer)
        buffer += data
        end_of_data = len(buffer)
        self.bytes_in += end_of_data - held
        messages: list[MspMessage] = []
        pos = 0
        with memoryview(buffer) as view:
            while True:
                start, end, message = self._earliest(buffer, view, pos, end_of_data)
                skip_to = start if message is not None else end
                if skip_to > pos:
                    self._count_skipped(buffer, pos, skip_to, end_of_data)
                    pos = skip_to
                if message is None:
                    break
                messages.append(message)
                pos = end
        del buffer[:pos]
        self.frames += len(messages)
        return messages

    def _earliest(
        self, buffer: bytearray, view: memoryview, pos: int, end_of_data: int
    ) -> tuple[int, int, MspMessage | None]:
        """``(start, end, message)`` of the good frame at or after ``pos`` that ends first (the earlier
        start on a tie), or ``(-1, waiting, None)``: ``waiting`` is the first candidate still needing
        bytes (``end_of_data`` if none is)."""
        best: tuple[int, int, MspMessage | None] = (-1, end_of_data + 1, None)
        waiting = end_of_data
        start = buffer.find(_SYNC, pos)
        while start >= 0:
            if best[2] is not None and start + MIN_FRAME_LEN >= best[1]:
                break  # this and every later candidate ends after the best one
            verdict, end, kind = _inspect(buffer, start, end_of_data, self.max_payload)
            if verdict == _NEEDS_BYTES or (verdict == _FRAME and end > end_of_data):
                waiting = min(waiting, start)
            elif verdict == _FRAME and end < best[1]:
                message = _checked(buffer, view, start, end, kind)
                if message is not None:
                    best = (start, end, message)
            start = buffer.find(_SYNC, start + 1)
        return best if best[2] is not None else (-1, waiting, None)

    def _count_skipped(self, buffer: bytearray, pos: int, skip_to: int, end_of_data: int) -> None:
        """Account for the bytes in ``pos .. skip_to - 1`` and the rejected candidates among them."""
        self.bytes_skipped += skip_to - pos
        start = buffer.find(_SYNC, pos, skip_to)
        while start >= 0:
            verdict = _inspect(buffer, start, end_of_data, self.max_payload)[0]
            if verdict == _BAD_LENGTH:
                self.length_errors += 1
            elif verdict != _NOT_A_FRAME:
                self.checksum_errors += 1
            start = buffer.find(_SYNC, start + 1, skip_to)


# ---------------------------------------------------------------- payloads


def raw_rc_payload(channels_us: Sequence[float]) -> bytes:
    """MSP_SET_RAW_RC / MSP_RC payload: 1..18 channels, rounded to whole us (half to even), each 0..65535."""
    _check_range("MSP RC channel count", len(channels_us), 1, MAX_RC_CHANNELS)
    values = []
    for value in channels_us:
        if not math.isfinite(value):
            raise ValueError(f"MSP RC channel value {value!r} is not a finite number of microseconds")
        values.append(round(value))
        _check_range("MSP RC channel (us)", values[-1], 0, 0xFFFF)
    return struct.pack(f"<{len(values)}H", *values)


def parse_raw_rc(payload: bytes) -> ChannelFrame:
    """Channels (whole us) of an MSP_SET_RAW_RC request or MSP_RC reply; PayloadError unless 1..18 u16 values."""
    count, odd = divmod(len(payload), 2)
    if odd or not 1 <= count <= MAX_RC_CHANNELS:
        raise PayloadError(f"MSP RC payload is {len(payload)} bytes, expected 2..{2 * MAX_RC_CHANNELS} and even")
    return ChannelFrame(struct.unpack(f"<{count}H", payload))


def rc_channels_from(message: MspMessage) -> ChannelFrame | None:
    """The channels of an MSP_SET_RAW_RC request (v1 or v2), None for any other message.

    PayloadError if it is one but its payload is not 1..18 u16 values (Betaflight answers more
    than 18 with an error reply and ignores an odd last byte).
    """
    if message.command != MSP_SET_RAW_RC or message.direction != "<":
        return None
    return parse_raw_rc(message.payload)


@dataclass(frozen=True)
class MspAttitude:
    """MSP_ATTITUDE in degrees: roll and pitch at 0.1 deg resolution, yaw a whole-degree heading 0..359."""

    roll_deg: float
    pitch_deg: float
    yaw_deg: float


def attitude_payload(roll_deg: float, pitch_deg: float, yaw_deg: float) -> bytes:
    """MSP_ATTITUDE payload (6 bytes).  Roll and pitch are rounded to 0.1 deg (half to even) and must fit
    an i16 (+-3276.7 deg); yaw is rounded to a whole degree and wrapped to 0..359.  Signs pass through."""
    for name, value in (("roll_deg", roll_deg), ("pitch_deg", pitch_deg), ("yaw_deg", yaw_deg)):
        if not math.isfinite(value):
            raise ValueError(f"MSP attitude {name} = {value!r} is not finite")
    roll, pitch = round(roll_deg * 10), round(pitch_deg * 10)
    _check_range("MSP attitude roll (0.1 deg)", roll, -0x8000, 0x7FFF)
    _check_range("MSP attitude pitch (0.1 deg)", pitch, -0x8000, 0x7FFF)
    return _ATTITUDE.pack(roll, pitch, round(yaw_deg) % 360)


def parse_attitude(payload: bytes) -> MspAttitude:
    """Attitude of an MSP_ATTITUDE reply; PayloadError if shorter than 6 bytes (MultiWii 2.x sent 8:
    the extra i16 is ignored)."""
    if len(payload) < _ATTITUDE.size:
        raise PayloadError(f"MSP_ATTITUDE payload is {len(payload)} bytes, expected at least {_ATTITUDE.size}")
    roll, pitch, yaw = _ATTITUDE.unpack_from(payload)
    return MspAttitude(roll / 10, pitch / 10, float(yaw))


@dataclass(frozen=True)
class MspStatus:
    """MSP_STATUS, classic 11-byte layout, plus any bytes a firmware appends (raw, in ``extension``)."""

    cycle_time_us: int
    i2c_errors: int
    sensors: int  # bits: acc, baro, mag, gps, rangefinder, gyro (Betaflight)
    flight_mode_flags: int  # first 32 mode boxes
    profile: int
    extension: bytes = b""


def status_payload(
    cycle_time_us: int, i2c_errors: int, sensors: int, flight_mode_flags: int, profile: int, extension: bytes = b""
) -> bytes:
    """MSP_STATUS payload: the classic 11 bytes (u16, u16, u16, u32, u8), then ``extension``; ValueError if
    a field does not fit its width."""
    try:
        head = _STATUS.pack(cycle_time_us, i2c_errors, sensors, flight_mode_flags, profile)
    except struct.error as exc:
        raise ValueError(f"cannot pack MSP_STATUS: {exc}") from exc
    return head + bytes(extension)


def parse_status(payload: bytes) -> MspStatus:
    """Status of an MSP_STATUS reply; PayloadError if shorter than 11 bytes."""
    if len(payload) < _STATUS.size:
        raise PayloadError(f"MSP_STATUS payload is {len(payload)} bytes, expected at least {_STATUS.size}")
    return MspStatus(*_STATUS.unpack_from(payload), extension=bytes(payload[_STATUS.size :]))
