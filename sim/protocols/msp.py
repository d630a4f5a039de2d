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

Identification replies (Betaflight ``mspCommonProcessOutCommand``; text is ASCII, not
NUL-terminated; a "pstring" is a u8 length then that many bytes):

* MSP_API_VERSION (1): u8 MSP protocol version (0), u8 API major, u8 API minor.
* MSP_FC_VARIANT (2): 4 characters naming the firmware ("BTFL" is Betaflight, "INAV" iNav).
* MSP_FC_VERSION (3): u8 major, u8 minor, u8 patch (Betaflight's calendar versions of 2025 on
  append a pstring, not sent here).
* MSP_BOARD_INFO (4): 4-character board id, u16 hardware revision, u8 board type (0: a flight
  controller); then, in Betaflight 4.5 (API 1.46): u8 target capabilities, pstring target name,
  pstring board name, pstring manufacturer id, 32-byte signature, u8 MCU type id, u8
  configuration state, u16 gyro sample rate (Hz), u32 configuration-problem bits, u8 SPI and u8
  I2C device counts.  ``parse_board_info`` takes the legacy 7 bytes or any longer prefix of this.
* MSP_BUILD_INFO (5): build date (11 characters, C's ``__DATE__`` form ``"Mar  4 2024"``), time
  (8, ``"12:33:47"``), short git revision (7); API 1.46 appends u16 build-option ids, kept raw.
* MSP_NAME (10): the craft name, its bytes only (empty: none set; Betaflight allows 16).

State replies (Betaflight ``mspProcessOutCommand``):

* MSP_STATUS_EX (150): the 11 classic MSP_STATUS bytes, u16 system load (%), u8 PID-profile
  count, u8 rate-profile index, u8 count N of further flight-mode-flag bytes and the N bytes,
  u8 arming-disable-flag count, u32 arming-disable flags, u8 configuration-state flags, u16 CPU
  temperature (deg C, API 1.46).  Anything after that is kept raw.
* MSP_RAW_IMU (102): 3 x i16 accelerometer, 3 x i16 gyro, 3 x i16 magnetometer, in Betaflight's
  sensor axes (x forward, y left, z up: positive roll is right wing down, positive pitch nose
  down, positive yaw nose left; a level craft at rest reads +1 g on z).  Gyro in whole deg/s
  (``gyroRateDps``).  Accelerometer in ``ACC_LSB_PER_G`` (512) counts per g: the unit MSP
  clients divide by (Betaflight Configurator's ``MSP_RAW_IMU`` handler, MultiWii); note that
  Betaflight 4.x itself sends its sensor's raw counts (``acc_1G``, 2048 per g on its usual
  +-16 g IMUs).  Magnetometer raw, 0 without one.
* MSP_SERVO (103): 8 x u16 servo outputs (us).  MSP_MOTOR (104): 8 x u16 motor outputs
  (1000..2000 for a running motor, 0 for an output with no motor).
* MSP_ALTITUDE (109): i32 altitude (cm), i16 vertical speed (cm/s, up positive).
* MSP_ANALOG (110): u8 battery voltage (0.1 V), u16 charge drawn (mAh), u16 RSSI (0..1023), i16
  current (0.01 A), u16 battery voltage (0.01 V).

The packers of these replies take physical units and saturate each field to its range, as
Betaflight's ``constrain`` calls do (ValueError only for a value that is not finite, or text
that does not fit); their parsers raise PayloadError for a payload too short for its layout.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Any

from sim.protocols.crc import crc8_dvb_s2
from sim.protocols.rc import (
    ChannelFrame,
    LineSettings,
    PayloadError,  # (one for every codec: a checked frame whose payload does not fit)
    check_range,
)

__all__ = [
    "ACC_LSB_PER_G",
    "DEFAULT_MAX_PAYLOAD",
    "LINE",
    "MAX_NAME_LENGTH",
    "MAX_PAYLOAD",
    "MAX_RC_CHANNELS",
    "MAX_V1_PLAIN_PAYLOAD",
    "MAX_V2_OVER_V1_PAYLOAD",
    "MSP_ALTITUDE",
    "MSP_ANALOG",
    "MSP_API_VERSION",
    "MSP_ATTITUDE",
    "MSP_BOARD_INFO",
    "MSP_BUILD_INFO",
    "MSP_FC_VARIANT",
    "MSP_FC_VERSION",
    "MSP_MOTOR",
    "MSP_NAME",
    "MSP_RAW_IMU",
    "MSP_RC",
    "MSP_SERVO",
    "MSP_SET_RAW_RC",
    "MSP_STATUS",
    "MSP_STATUS_EX",
    "MSP_V2_FRAME_ID",
    "OUTPUT_COUNT",
    "SIGNATURE_LENGTH",
    "MspAltitude",
    "MspAnalog",
    "MspApiVersion",
    "MspAttitude",
    "MspBoardInfo",
    "MspBuildInfo",
    "MspDecoder",
    "MspMessage",
    "MspRawImu",
    "MspStatus",
    "MspStatusEx",
    "PayloadError",
    "altitude_payload",
    "analog_payload",
    "api_version_payload",
    "attitude_payload",
    "board_info_payload",
    "build_info_payload",
    "crc8_dvb_s2",
    "encode",
    "fc_variant_payload",
    "fc_version_payload",
    "motor_payload",
    "name_payload",
    "parse_altitude",
    "parse_analog",
    "parse_api_version",
    "parse_attitude",
    "parse_board_info",
    "parse_build_info",
    "parse_fc_variant",
    "parse_fc_version",
    "parse_motor",
    "parse_name",
    "parse_raw_imu",
    "parse_raw_rc",
    "parse_servo",
    "parse_status",
    "parse_status_ex",
    "raw_imu_payload",
    "raw_rc_payload",
    "rc_channels_from",
    "servo_payload",
    "status_ex_payload",
    "status_payload",
]

LINE = LineSettings(baudrate=115200)  # typical; any rate works (USB virtual COM ports ignore it); host-driven

MSP_API_VERSION = 1
MSP_FC_VARIANT = 2
MSP_FC_VERSION = 3
MSP_BOARD_INFO = 4
MSP_BUILD_INFO = 5
MSP_NAME = 10
MSP_STATUS = 101
MSP_RAW_IMU = 102
MSP_SERVO = 103
MSP_MOTOR = 104
MSP_RC = 105
MSP_ATTITUDE = 108
MSP_ALTITUDE = 109
MSP_ANALOG = 110
MSP_STATUS_EX = 150
MSP_SET_RAW_RC = 200
MSP_V2_FRAME_ID = 255  # v1 command id of a tunnelled v2 frame

MAX_RC_CHANNELS = 18  # Betaflight MAX_SUPPORTED_RC_CHANNEL_COUNT
ACC_LSB_PER_G = 512  # MSP_RAW_IMU accelerometer counts per g: what MSP clients divide by (module doc)
OUTPUT_COUNT = 8  # MSP_SERVO and MSP_MOTOR values (Betaflight MAX_SUPPORTED_SERVOS; 8 motors in MSP_MOTOR)
SIGNATURE_LENGTH = 32  # bytes of MSP_BOARD_INFO's signature
MAX_NAME_LENGTH = 16  # Betaflight's craft name (MAX_NAME_LENGTH)
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
_API_VERSION = struct.Struct("<BBB")
_FC_VERSION = struct.Struct("<BBB")
_BOARD_HEAD = struct.Struct("<4sHB")  # board id, hardware revision, board type: the legacy 7 bytes
_BOARD_TAIL = struct.Struct("<BBHIBB")  # MCU type .. I2C device count, after the signature
_BOARD_RATE_PROBLEMS = struct.Struct("<HI")  # gyro sample rate, configuration problems
_BOARD_DEVICES = struct.Struct("<BB")  # SPI and I2C device counts
_U8 = struct.Struct("<B")
_BUILD_INFO = struct.Struct("<11s8s7s")
_STATUS_EX_MID = struct.Struct("<HBB")  # system load, PID-profile count, rate-profile index
_STATUS_EX_TAIL = struct.Struct("<BIBH")  # arming-disable count and flags, config state, CPU temperature
_ALTITUDE = struct.Struct("<ih")
_RAW_IMU = struct.Struct("<9h")
_ANALOG = struct.Struct("<BHHhH")
_OUTPUTS = struct.Struct(f"<{OUTPUT_COUNT}H")
_I16_RANGE = (-0x8000, 0x7FFF)
_U16_RANGE = (0, 0xFFFF)
_I32_RANGE = (-0x80000000, 0x7FFFFFFF)

# frame kinds, from the header
_PLAIN, _JUMBO, _TUNNEL, _NATIVE = range(4)
# what a candidate's header says
_NOT_A_FRAME, _NEEDS_BYTES, _BAD_LENGTH, _FRAME = range(4)


def _xor(data: bytes | bytearray | memoryview) -> int:
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
        check_range("MSP v1 command", message.command, 0, MSP_V2_FRAME_ID - 1)
        check_range("MSP v1 flag", message.flag, 0, 0)
        if message.over_v1:
            raise ValueError("over_v1 is for version 2 messages")
        check_range("MSP v1 payload length", len(payload), 0, MAX_PAYLOAD)
        if len(payload) < JUMBO:
            body = _V1_HEAD.pack(len(payload), message.command) + payload
        else:
            body = _V1_HEAD.pack(JUMBO, message.command) + _U16.pack(len(payload)) + payload
        return head + body + bytes((_xor(body),))
    if message.version == 2:
        check_range("MSP v2 command", message.command, 0, 0xFFFF)
        check_range("MSP v2 flag", message.flag, 0, 0xFF)
        limit = MAX_V2_OVER_V1_PAYLOAD if message.over_v1 else MAX_PAYLOAD
        check_range("MSP v2 payload length", len(payload), 0, limit)
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
        check_range("max_payload", max_payload, 0, MAX_PAYLOAD)
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
    check_range("MSP RC channel count", len(channels_us), 1, MAX_RC_CHANNELS)
    values = []
    for value in channels_us:
        if not math.isfinite(value):
            raise ValueError(f"MSP RC channel value {value!r} is not a finite number of microseconds")
        values.append(round(value))
        check_range("MSP RC channel (us)", values[-1], 0, 0xFFFF)
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
    check_range("MSP attitude roll (0.1 deg)", roll, -0x8000, 0x7FFF)
    check_range("MSP attitude pitch (0.1 deg)", pitch, -0x8000, 0x7FFF)
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
    cycle_time_us, i2c_errors, sensors, flight_mode_flags, profile = _STATUS.unpack_from(payload)
    return MspStatus(
        cycle_time_us, i2c_errors, sensors, flight_mode_flags, profile, extension=bytes(payload[_STATUS.size :])
    )


# ---------------------------------------------------------------- identification and state replies


def _pack(layout: struct.Struct, what: str, *values: object) -> bytes:
    """``layout.pack(*values)``; ValueError naming ``what`` if a value does not fit its field."""
    try:
        return layout.pack(*values)
    except struct.error as exc:
        raise ValueError(f"cannot pack {what}: {exc}") from exc


def _saturated(name: str, value: float, scale: float, bounds: tuple[int, int]) -> int:
    """``value * scale`` clamped to ``bounds`` and rounded (half to even); ValueError if ``value`` is not finite."""
    if not math.isfinite(value):
        raise ValueError(f"MSP {name} = {value!r} is not finite")
    low, high = bounds
    return round(min(max(value * scale, low), high))


def _ascii(name: str, text: str, *, length: int | None = None, max_length: int = 255) -> bytes:
    """``text`` as ASCII bytes; ValueError unless it is ASCII of exactly ``length`` (or at most ``max_length``)
    characters."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"MSP {name} {text!r} is not ASCII") from exc
    if length is not None and len(data) != length:
        raise ValueError(f"MSP {name} {text!r} must be {length} characters")
    if len(data) > max_length:
        raise ValueError(f"MSP {name} {text!r} is longer than {max_length} characters")
    return data


def _pstring(name: str, text: str) -> bytes:
    """A u8 length, then ``text`` in ASCII (at most 255 characters)."""
    data = _ascii(name, text)
    return bytes((len(data),)) + data


class _Reader:
    """Reads a payload front to back; PayloadError naming ``what`` when it runs short."""

    def __init__(self, payload: bytes, what: str) -> None:
        self._data = bytes(payload)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int) -> bytes:
        if size > self.remaining:
            raise PayloadError(f"{self._what} payload is {len(self._data)} bytes, too short for its layout")
        self._pos += size
        return self._data[self._pos - size : self._pos]

    def unpack(self, layout: struct.Struct) -> tuple:
        return layout.unpack(self.take(layout.size))

    def text(self, size: int) -> str:
        return self.take(size).decode("latin-1")  # any byte reads as a character: parsing never fails on text

    def pstring(self) -> str:
        return self.text(self.take(1)[0])

    def rest(self) -> bytes:
        return self.take(self.remaining)


@dataclass(frozen=True)
class MspApiVersion:
    """MSP_API_VERSION: the MSP protocol version (0 for v1/v2 framing) and the API version major.minor."""

    protocol: int
    major: int
    minor: int


def api_version_payload(protocol: int, major: int, minor: int) -> bytes:
    """MSP_API_VERSION payload: three u8; ValueError if one does not fit."""
    return _pack(_API_VERSION, "MSP_API_VERSION", protocol, major, minor)


def parse_api_version(payload: bytes) -> MspApiVersion:
    """The versions of an MSP_API_VERSION reply; PayloadError if shorter than 3 bytes."""
    return MspApiVersion(*_Reader(payload, "MSP_API_VERSION").unpack(_API_VERSION))


def fc_variant_payload(identifier: str) -> bytes:
    """MSP_FC_VARIANT payload: the firmware's 4-character ASCII identifier (ValueError otherwise)."""
    return _ascii("flight controller identifier", identifier, length=4)


def parse_fc_variant(payload: bytes) -> str:
    """The 4-character identifier of an MSP_FC_VARIANT reply; PayloadError if shorter than 4 bytes."""
    return _Reader(payload, "MSP_FC_VARIANT").text(4)


def fc_version_payload(major: int, minor: int, patch: int) -> bytes:
    """MSP_FC_VERSION payload: three u8; ValueError if one does not fit."""
    return _pack(_FC_VERSION, "MSP_FC_VERSION", major, minor, patch)


def parse_fc_version(payload: bytes) -> tuple[int, int, int]:
    """(major, minor, patch) of an MSP_FC_VERSION reply (a version string after them is ignored);
    PayloadError if shorter than 3 bytes."""
    major, minor, patch = _Reader(payload, "MSP_FC_VERSION").unpack(_FC_VERSION)
    return major, minor, patch


@dataclass(frozen=True)
class MspBoardInfo:
    """MSP_BOARD_INFO, Betaflight 4.5's layout (module doc); the defaults are what a firmware without
    the later fields would mean."""

    board_id: str  # 4 characters
    hardware_revision: int = 0
    board_type: int = 0  # 0: a flight controller; 2: one with a MAX7456 OSD
    capabilities: int = 0  # bits: 0 USB VCP, 1 soft serial, 3 flash boot loader, 6 receiver bind
    target_name: str = ""
    board_name: str = ""
    manufacturer_id: str = ""
    signature: bytes = bytes(SIGNATURE_LENGTH)
    mcu_type: int = 255  # Betaflight's MCU type id: 0 the simulator, 255 unknown
    configuration_state: int = 0  # 0 not configured, 1 configured
    gyro_sample_rate_hz: int = 0
    configuration_problems: int = 0  # bits: 0 accelerometer needs calibration, 1 motor protocol disabled
    spi_devices: int = 0
    i2c_devices: int = 0


def board_info_payload(info: MspBoardInfo) -> bytes:
    """MSP_BOARD_INFO payload, every field of Betaflight 4.5's layout; ValueError if a field does not fit
    (text not ASCII, a board id not 4 characters, a signature not 32 bytes, a number out of its range)."""
    if len(info.signature) != SIGNATURE_LENGTH:
        raise ValueError(f"MSP board signature must be {SIGNATURE_LENGTH} bytes, got {len(info.signature)}")
    board_id = _ascii("board id", info.board_id, length=4)
    return b"".join(
        (
            _pack(_BOARD_HEAD, "MSP_BOARD_INFO", board_id, info.hardware_revision, info.board_type),
            _pack(_U8, "MSP_BOARD_INFO capabilities", info.capabilities),
            _pstring("target name", info.target_name),
            _pstring("board name", info.board_name),
            _pstring("manufacturer id", info.manufacturer_id),
            bytes(info.signature),
            _pack(
                _BOARD_TAIL,
                "MSP_BOARD_INFO",
                info.mcu_type,
                info.configuration_state,
                info.gyro_sample_rate_hz,
                info.configuration_problems,
                info.spi_devices,
                info.i2c_devices,
            ),
        )
    )


def parse_board_info(payload: bytes) -> MspBoardInfo:
    """The board of an MSP_BOARD_INFO reply: the legacy 7 bytes, then each later group of fields that is
    present (capabilities and target name; board name .. MCU type; configuration state; gyro rate and
    problems; device counts), trailing bytes ignored.  PayloadError if it stops inside a group."""
    reader = _Reader(payload, "MSP_BOARD_INFO")
    board_id, revision, board_type = reader.unpack(_BOARD_HEAD)
    fields: dict[str, Any] = {}
    if reader.remaining:
        fields.update(capabilities=reader.take(1)[0], target_name=reader.pstring())
    if reader.remaining:
        fields.update(board_name=reader.pstring(), manufacturer_id=reader.pstring())
        fields.update(signature=reader.take(SIGNATURE_LENGTH), mcu_type=reader.take(1)[0])
    if reader.remaining:
        fields.update(configuration_state=reader.take(1)[0])
    if reader.remaining:
        rate, problems = reader.unpack(_BOARD_RATE_PROBLEMS)
        fields.update(gyro_sample_rate_hz=rate, configuration_problems=problems)
    if reader.remaining:
        spi, i2c = reader.unpack(_BOARD_DEVICES)
        fields.update(spi_devices=spi, i2c_devices=i2c)
    return MspBoardInfo(board_id.decode("latin-1"), revision, board_type, **fields)


@dataclass(frozen=True)
class MspBuildInfo:
    """MSP_BUILD_INFO: build date ("Mmm dd yyyy"), time ("hh:mm:ss"), short git revision, and what
    API 1.46 appends (u16 build-option ids), raw."""

    build_date: str
    build_time: str
    git_revision: str
    extension: bytes = b""


def build_info_payload(build_date: str, build_time: str, git_revision: str, extension: bytes = b"") -> bytes:
    """MSP_BUILD_INFO payload; ValueError unless the three texts are ASCII of 11, 8 and 7 characters."""
    return (
        _ascii("build date", build_date, length=11)
        + _ascii("build time", build_time, length=8)
        + _ascii("git revision", git_revision, length=7)
        + bytes(extension)
    )


def parse_build_info(payload: bytes) -> MspBuildInfo:
    """The build of an MSP_BUILD_INFO reply; PayloadError if shorter than 26 bytes."""
    reader = _Reader(payload, "MSP_BUILD_INFO")
    date, time_of_day, revision = (text.decode("latin-1") for text in reader.unpack(_BUILD_INFO))
    return MspBuildInfo(date, time_of_day, revision, reader.rest())


def name_payload(name: str) -> bytes:
    """MSP_NAME payload: the craft name's ASCII bytes, at most 16 (ValueError otherwise); empty: no name."""
    return _ascii("craft name", name, max_length=MAX_NAME_LENGTH)


def parse_name(payload: bytes) -> str:
    """The craft name of an MSP_NAME reply (every byte a character)."""
    return bytes(payload).decode("latin-1")


@dataclass(frozen=True)
class MspStatusEx:
    """MSP_STATUS_EX, Betaflight's layout at API 1.46 (module doc); bytes after it in ``extension``."""

    cycle_time_us: int
    i2c_errors: int
    sensors: int  # bits: acc, baro, mag, gps, rangefinder, gyro (Betaflight)
    flight_mode_flags: int  # first 32 mode boxes
    profile: int  # PID profile index
    system_load_percent: int = 0
    profile_count: int = 1  # PID profiles
    rate_profile: int = 0
    more_flight_mode_flags: bytes = b""  # boxes 32 and up, 8 a byte, at most 15 bytes
    arming_disable_count: int = 0  # how many arming-disable reasons the firmware defines
    arming_disable_flags: int = 0
    config_state: int = 0  # bit 0: reboot required
    cpu_temperature_c: int = 0
    extension: bytes = b""


def status_ex_payload(status: MspStatusEx) -> bytes:
    """MSP_STATUS_EX payload; ValueError if a field does not fit its width (more than 15 extra
    flight-mode-flag bytes among them)."""
    extra = bytes(status.more_flight_mode_flags)
    if len(extra) > 15:
        raise ValueError(f"MSP_STATUS_EX carries at most 15 more flight-mode-flag bytes, got {len(extra)}")
    head = status_payload(
        status.cycle_time_us, status.i2c_errors, status.sensors, status.flight_mode_flags, status.profile
    )
    middle = _pack(
        _STATUS_EX_MID, "MSP_STATUS_EX", status.system_load_percent, status.profile_count, status.rate_profile
    )
    tail = _pack(
        _STATUS_EX_TAIL,
        "MSP_STATUS_EX",
        status.arming_disable_count,
        status.arming_disable_flags,
        status.config_state,
        status.cpu_temperature_c,
    )
    return head + middle + bytes((len(extra),)) + extra + tail + bytes(status.extension)


def parse_status_ex(payload: bytes) -> MspStatusEx:
    """Status of an MSP_STATUS_EX reply; PayloadError if it ends before the CPU temperature."""
    reader = _Reader(payload, "MSP_STATUS_EX")
    cycle_time_us, i2c_errors, sensors, flight_mode_flags, profile = reader.unpack(_STATUS)
    load, profiles, rate_profile = reader.unpack(_STATUS_EX_MID)
    extra = reader.take(reader.take(1)[0] & 0x0F)  # Betaflight: the count is in the low 4 bits
    arming_count, arming_flags, config_state, cpu_temp = reader.unpack(_STATUS_EX_TAIL)
    return MspStatusEx(
        cycle_time_us, i2c_errors, sensors, flight_mode_flags, profile, load, profiles, rate_profile, extra,
        arming_count, arming_flags, config_state, cpu_temp, reader.rest(),
    )  # fmt: skip


@dataclass(frozen=True)
class MspAltitude:
    """MSP_ALTITUDE: altitude (m, 0.01 m resolution) and vertical speed (m/s up, 0.01 m/s resolution)."""

    altitude_m: float
    climb_m_s: float


def altitude_payload(altitude_m: float, climb_m_s: float) -> bytes:
    """MSP_ALTITUDE payload (6 bytes): i32 cm and i16 cm/s, each saturated to its field."""
    altitude = _saturated("altitude (cm)", altitude_m, 100.0, _I32_RANGE)
    return _ALTITUDE.pack(altitude, _saturated("vertical speed (cm/s)", climb_m_s, 100.0, _I16_RANGE))


def parse_altitude(payload: bytes) -> MspAltitude:
    """Altitude of an MSP_ALTITUDE reply; PayloadError if shorter than 6 bytes."""
    altitude_cm, climb_cm_s = _Reader(payload, "MSP_ALTITUDE").unpack(_ALTITUDE)
    return MspAltitude(altitude_cm / 100.0, climb_cm_s / 100.0)


@dataclass(frozen=True)
class MspRawImu:
    """MSP_RAW_IMU in Betaflight's sensor axes (module doc): specific force in g (1/512 g resolution),
    rates in whole deg/s, magnetometer raw."""

    acc_g: tuple[float, float, float]
    gyro_deg_s: tuple[int, int, int]
    mag: tuple[int, int, int]


def raw_imu_payload(
    acc_g: Sequence[float], gyro_deg_s: Sequence[float], mag: Sequence[float] = (0.0, 0.0, 0.0)
) -> bytes:
    """MSP_RAW_IMU payload (18 bytes) from three values each, in Betaflight's sensor axes: specific force
    (g, sent as ``ACC_LSB_PER_G`` counts per g), rates (deg/s), magnetometer (raw); each saturated to an
    i16.  ValueError unless each sequence has three finite values."""
    groups = (("accelerometer", acc_g, ACC_LSB_PER_G), ("gyro", gyro_deg_s, 1.0), ("magnetometer", mag, 1.0))
    values: list[int] = []
    for name, group, scale in groups:
        if len(group) != 3:
            raise ValueError(f"MSP_RAW_IMU {name}: expected 3 values, got {len(group)}")
        values.extend(_saturated(name, value, scale, _I16_RANGE) for value in group)
    return _RAW_IMU.pack(*values)


def parse_raw_imu(payload: bytes) -> MspRawImu:
    """Readings of an MSP_RAW_IMU reply, the accelerometer in g; PayloadError if shorter than 18 bytes."""
    values = _Reader(payload, "MSP_RAW_IMU").unpack(_RAW_IMU)
    acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z, mag_x, mag_y, mag_z = values
    acc = (acc_x / ACC_LSB_PER_G, acc_y / ACC_LSB_PER_G, acc_z / ACC_LSB_PER_G)
    return MspRawImu(acc, (gyro_x, gyro_y, gyro_z), (mag_x, mag_y, mag_z))


@dataclass(frozen=True)
class MspAnalog:
    """MSP_ANALOG: battery voltage (from the 0.01 V field), charge drawn, RSSI (0..1023), current, and
    the 0.1 V legacy voltage field."""

    voltage_v: float
    mah_drawn: int
    rssi: int
    current_a: float
    legacy_voltage_v: float


def analog_payload(voltage_v: float, mah_drawn: float = 0, rssi: float = 0, current_a: float = 0.0) -> bytes:
    """MSP_ANALOG payload (9 bytes, Betaflight's layout); each field saturated to its range (RSSI 0..1023)."""
    return _ANALOG.pack(
        _saturated("battery voltage (0.1 V)", voltage_v, 10.0, (0, 0xFF)),
        _saturated("charge drawn (mAh)", mah_drawn, 1.0, _U16_RANGE),
        _saturated("RSSI", rssi, 1.0, (0, 1023)),
        _saturated("current (0.01 A)", current_a, 100.0, _I16_RANGE),
        _saturated("battery voltage (0.01 V)", voltage_v, 100.0, _U16_RANGE),
    )


def parse_analog(payload: bytes) -> MspAnalog:
    """Readings of an MSP_ANALOG reply; PayloadError if shorter than Betaflight's 9 bytes."""
    legacy, mah, rssi, current, voltage = _Reader(payload, "MSP_ANALOG").unpack(_ANALOG)
    return MspAnalog(voltage / 100.0, mah, rssi, current / 100.0, legacy / 10.0)


def _outputs_payload(what: str, values_us: Sequence[float]) -> bytes:
    if len(values_us) != OUTPUT_COUNT:
        raise ValueError(f"{what}: expected {OUTPUT_COUNT} values, got {len(values_us)}")
    return _OUTPUTS.pack(*(_saturated(what, value, 1.0, _U16_RANGE) for value in values_us))


def _parse_outputs(what: str, payload: bytes) -> tuple[int, ...]:
    count, odd = divmod(len(payload), 2)
    if odd:
        raise PayloadError(f"{what} payload is {len(payload)} bytes, expected an even number")
    return struct.unpack(f"<{count}H", payload)


def servo_payload(values_us: Sequence[float]) -> bytes:
    """MSP_SERVO payload: 8 servo outputs in us, rounded and saturated to a u16 (ValueError unless 8 finite)."""
    return _outputs_payload("MSP_SERVO", values_us)


def parse_servo(payload: bytes) -> tuple[int, ...]:
    """The servo outputs (us) of an MSP_SERVO reply, however many; PayloadError on an odd length."""
    return _parse_outputs("MSP_SERVO", payload)


def motor_payload(values: Sequence[float]) -> bytes:
    """MSP_MOTOR payload: 8 motor outputs (1000..2000 running, 0 no motor), rounded and saturated to a u16."""
    return _outputs_payload("MSP_MOTOR", values)


def parse_motor(payload: bytes) -> tuple[int, ...]:
    """The motor outputs of an MSP_MOTOR reply, however many; PayloadError on an odd length."""
    return _parse_outputs("MSP_MOTOR", payload)
