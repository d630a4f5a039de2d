"""CRSF (TBS Crossfire / ExpressLRS): RC channel and telemetry frames, their encoders and an incremental decoder.

Pure: no ports, threads, clocks, logging or printing.  Facts from the
TBS CRSF specification (``tbs-fpv/tbs-crsf-spec`` ``crsf.md``), Betaflight ``src/main/rx/crsf.c``
and ExpressLRS ``src/include/crsf_protocol.h``.  Line: 420000 baud 8N1, not inverted
(the ExpressLRS receiver default).  Frame layout (multi-byte telemetry fields big-endian)::

    offset 0    address  sync / destination: 0xC8 flight controller, 0xEA radio, 0xEE TX module, 0x00 broadcast
    offset 1    length   u8, type + payload + CRC = frame size - 2; valid 2..62 (frames of 4..64 bytes)
    offset 2    type     u8 (below)
    offset 3..  payload  length - 2 bytes (types >= 0x28 start it with destination and origin addresses)
    last        crc      CRC-8/DVB-S2 (poly 0xD5, init 0, MSB first, no final xor) over type and payload

Messages (``feed`` returns them; ``encode`` is their exact inverse)::

    0x16 CrsfChannels    exactly 22 bytes: 16 x 11-bit channel ticks, one little-endian 176-bit integer,
                         channel n in bits 11n..11n+10 (TBS CRSF spec, frame 0x16).  A ``ChannelFrame`` that also
                         keeps the ``payload`` and so the raw ``ticks`` (for calibration; re-encoding is
                         bit-exact)
    0x14 LinkStatistics  10 x u8/i8: uplink RSSI ant. 1, 2 (dBm * -1), LQ %, SNR dB (i8), active antenna,
                         RF mode, uplink TX power index, downlink RSSI (dBm * -1), LQ %, SNR dB (i8)
    0x1E Attitude        pitch, roll, yaw: i16 in rad * 10000
    0x08 Battery         voltage u16 in 0.1 V, current u16 in 0.1 A, capacity used u24 mAh, remaining u8 %
    0x21 FlightMode      NUL-terminated UTF-8 text
    0x09 BaroAltitude    altitude u16: bit 15 clear -> dm + 10000 (-1000.0..2276.7 m), set -> whole metres;
                         then an optional vertical speed: a 3-byte payload has the TBS i8 log packing
                         (|v| = (e^(0.026 |p|) - 1) * 100 cm/s), a 4-byte one ExpressLRS' i16 cm/s.  ``encode``
                         writes 2 bytes, or the linear 4-byte form.  The layouts are
                         from tbs-fpv/tbs-crsf-spec crsf.md "0x09" and ExpressLRS ``crsf_sensor_baro_vario_s``
    0x07 Vario           vertical speed i16 in cm/s (TBS CRSF spec, frame 0x07)
    other                UnknownFrame(type, payload), so other traffic is skipped without losing sync

Conventions chosen here:

* Addresses: the decoder accepts frames starting with 0xC8, 0xEA, 0xEE or 0x00 - what a flight
  controller, a radio, a TX module and a broadcast use (the TBS spec says a receiver should
  expect 0xC8, 0x00 or a device address; Betaflight's own unit-test capture starts with 0x00).
  Other device addresses are not syncs: every extra sync byte adds false starts.  Messages do
  not carry the address; ``encode(..., address=)`` sets it, within the same four.
* Channel ticks <-> microseconds: the ExpressLRS integer ``CRSF_to_US`` mapping,
  ``us = ((t - 172) * 2048 / 1639 + 1977) / 2`` in C integer arithmetic (division truncates
  toward zero), so ticks 172/191/992/1792/1811 are 988/1000/1500/2000/2012 us exactly
  (ExpressLRS' ``CRSF_to_US``; Betaflight's float map differs by under 1 us).  Decoded
  channels are whole microseconds (ints).  Encoding takes the nearest tick of the linear map
  (``US_to_CRSF``, halves round up) clamped to 0..2047: every whole microsecond 988..2012 comes
  back exactly, a fractional one within 0.72 us.  The mapping is many-to-one (1639 ticks onto
  1024 us: 991 and 992 are both 1500 us), so ``CrsfChannels`` keeps the payload it was decoded
  from, and ``encode_channels`` reuses a channel's tick while it still maps to that channel's
  microseconds: a decoded frame re-encodes to the same bytes.
* Payload length: a good-CRC 0x16 frame whose payload is not exactly 22 bytes is consumed but not
  delivered, and counted in ``length_errors`` (its layout is unknown, so it is not guessed at).
  Telemetry frames follow the TBS rule "frames may be longer than expected": extra trailing
  bytes are ignored, a payload shorter than its fields is counted the same way.
* ``CrsfDecoder`` is a sliding-window parser: a bad length or CRC costs one byte, after which it
  searches for the next sync.  It delivers the complete good-CRC frame that *ends* first, so a
  good frame after garbage, a fake header or a truncated frame comes out as soon as its last byte
  arrives (no clock needed), and the output does not depend on how the stream is split into
  ``feed`` calls.  The price, with a CRC-8 and a one-byte sync: a good-CRC window that ends
  earlier wins even inside or across real frames.  ``00 L`` and L zero bytes always passes (the
  CRC of zeros is 0), so a payload holding ``00 02 00 00`` (``Attitude(0.0002, 0.0, ...)``)
  reads as an empty type-0x00 frame; and in a clean stream of random RC frames a window
  straddling two frames passes by chance about once in 25000 frames (measured: 8 in 200000),
  costing that RC frame (an ``UnknownFrame`` comes instead; a fake ``CrsfChannels`` would need
  type, length and CRC all to match).  Link loss is not a frame: CRSF goes silent (TBS CRSF spec;
  ExpressLRS stops sending on failsafe), the caller times out.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from sim.protocols.crc import CRC8_DVB_S2_TABLE, crc8_dvb_s2
from sim.protocols.rc import CENTRE_US, ChannelFrame, LineSettings, check_range

__all__ = [
    "ADDRESSES",
    "ADDRESS_BROADCAST",
    "ADDRESS_FLIGHT_CONTROLLER",
    "ADDRESS_RADIO",
    "ADDRESS_TX_MODULE",
    "CHANNELS",
    "LINE",
    "MAX_FRAME_LEN",
    "MAX_PAYLOAD",
    "TYPE_RC_CHANNELS",
    "Attitude",
    "BaroAltitude",
    "Battery",
    "CrsfChannels",
    "CrsfDecoder",
    "CrsfMessage",
    "FlightMode",
    "Gps",
    "LinkStatistics",
    "UnknownFrame",
    "Vario",
    "crc8_dvb_s2",
    "encode",
    "encode_channels",
    "encode_frame",
    "pack_channels",
    "ticks_to_us",
    "unpack_channels",
    "us_to_ticks",
]

LINE = LineSettings(baudrate=420000, frame_rate_hz=150.0)  # 8N1, not inverted; Crossfire 150 Hz, ELRS up to 1000

ADDRESS_BROADCAST = 0x00
ADDRESS_FLIGHT_CONTROLLER = 0xC8  # also the "serial sync byte"
ADDRESS_RADIO = 0xEA
ADDRESS_TX_MODULE = 0xEE
ADDRESSES = frozenset({ADDRESS_BROADCAST, ADDRESS_FLIGHT_CONTROLLER, ADDRESS_RADIO, ADDRESS_TX_MODULE})

MIN_LENGTH = 2  # length byte: type + CRC, no payload
MAX_LENGTH = 62  # length byte
MIN_FRAME_LEN = MIN_LENGTH + 2  # bytes
MAX_FRAME_LEN = MAX_LENGTH + 2  # 64 bytes
MAX_PAYLOAD = MAX_LENGTH - 2  # 60 bytes

TYPE_RC_CHANNELS = 0x16
CHANNELS = 16
RC_PAYLOAD_LEN = 22  # 16 x 11 bits
TICK_MAX = 0x7FF  # 11 bits

# ExpressLRS CRSF_to_US: ticks 172..1811 <-> 988..2012 us
_TICK_LOW, _TICK_SPAN = 172, 1639
_US_LOW, _US_SPAN = 988, 1024

_CRC_TABLE = CRC8_DVB_S2_TABLE


def _parity_masks() -> tuple[int, ...]:
    """Eight masks with ``crc bit o == parity(int.from_bytes(data, "big") & mask[o])`` for any length <= 64.

    The CRC is linear (init 0, no final xor): a byte ``k`` places from the end contributes
    ``T^(k+1)(byte)``, T being one table step, whatever the message length.  Checking a frame
    this way takes 8 big-integer ANDs and popcounts instead of a Python loop over its bytes.
    """
    masks = [0] * 8
    images = [_CRC_TABLE[1 << bit] for bit in range(8)]  # T(bit j) for the last byte
    for k in range(MAX_FRAME_LEN):
        for bit, image in enumerate(images):
            for out in range(8):
                if image >> out & 1:
                    masks[out] |= 1 << (8 * k + bit)
        images = [_CRC_TABLE[image] for image in images]
    return tuple(masks)


_M0, _M1, _M2, _M3, _M4, _M5, _M6, _M7 = _parity_masks()


def _crc_ok(body: bytes | bytearray) -> bool:
    """True if ``body`` (type, payload and its CRC byte) has a good CRC: the CRC over all of it is 0."""
    v = int.from_bytes(body, "big")
    return not (
        (v & _M0).bit_count() & 1
        or (v & _M1).bit_count() & 1
        or (v & _M2).bit_count() & 1
        or (v & _M3).bit_count() & 1
        or (v & _M4).bit_count() & 1
        or (v & _M5).bit_count() & 1
        or (v & _M6).bit_count() & 1
        or (v & _M7).bit_count() & 1
    )


# ---------------------------------------------------------------- channels: ticks <-> microseconds


def _c_div(num: int, den: int) -> int:
    """Integer division truncating toward zero, as C does (``den`` > 0)."""
    return num // den if num >= 0 else -(-num // den)


def ticks_to_us(ticks: int) -> int:
    """Microseconds of an 11-bit channel value (0..2047), ExpressLRS ``CRSF_to_US``: 172 -> 988, 992 -> 1500."""
    return (_c_div((ticks - _TICK_LOW) * 2 * _US_SPAN, _TICK_SPAN) + 2 * _US_LOW + 1) // 2


def us_to_ticks(us: float) -> int:
    """The nearest channel tick to ``us`` (halves up), clamped to 0..2047; ValueError for NaN."""
    if math.isnan(us):
        raise ValueError("channel value is NaN")
    if math.isinf(us):
        return TICK_MAX if us > 0 else 0
    ticks = math.floor((us - _US_LOW) * _TICK_SPAN / _US_SPAN + 0.5) + _TICK_LOW
    return min(max(ticks, 0), TICK_MAX)


_US_OF_TICK = tuple(ticks_to_us(t) for t in range(TICK_MAX + 1))
_TICKS = tuple(range(TICK_MAX + 1))  # the identity table for unpack_channels


def pack_channels(ticks: Sequence[int]) -> bytes:
    """22 bytes holding 16 ticks (0..2047) LSB first, 11 bits each (CRSF 0x16; SBUS bytes 1..22 too)."""
    if len(ticks) != CHANNELS:
        raise ValueError(f"need {CHANNELS} channel ticks, got {len(ticks)}")
    packed = 0
    for index, tick in enumerate(ticks):
        if not 0 <= tick <= TICK_MAX:
            raise ValueError(f"channel tick {tick!r} is outside 0..{TICK_MAX}")
        packed |= tick << (11 * index)
    return packed.to_bytes(RC_PAYLOAD_LEN, "little")


def unpack_channels(data: bytes | bytearray, table: Sequence[float] = _US_OF_TICK) -> tuple:
    """The 16 channels of 22 packed bytes, each mapped through ``table`` (default: ticks -> us).

    Pass an identity table, ``tuple(range(2048))``, for the raw ticks.  Unrolled: it runs once per RC frame.
    """
    m = int.from_bytes(data, "little")
    t = table
    return (
        t[m & 0x7FF], t[m >> 11 & 0x7FF], t[m >> 22 & 0x7FF], t[m >> 33 & 0x7FF],
        t[m >> 44 & 0x7FF], t[m >> 55 & 0x7FF], t[m >> 66 & 0x7FF], t[m >> 77 & 0x7FF],
        t[m >> 88 & 0x7FF], t[m >> 99 & 0x7FF], t[m >> 110 & 0x7FF], t[m >> 121 & 0x7FF],
        t[m >> 132 & 0x7FF], t[m >> 143 & 0x7FF], t[m >> 154 & 0x7FF], t[m >> 165 & 0x7FF],
    )  # fmt: skip


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class CrsfChannels(ChannelFrame):
    """RC channels (0x16): ``channels_us`` in whole microseconds, and the 22 ``payload`` bytes they came from.

    ``ticks`` gives the 16 raw 11-bit values (what a per-channel calibration wants).  CRSF has no
    failsafe or frame-lost flag: both stay False (link loss is silence).
    """

    payload: bytes = b""

    @property
    def ticks(self) -> tuple[int, ...]:
        """The 16 channel values as sent, 0..2047 (empty if ``payload`` is not 22 bytes)."""
        return unpack_channels(self.payload, _TICKS) if len(self.payload) == RC_PAYLOAD_LEN else ()


@dataclass(frozen=True)
class LinkStatistics:
    """Radio link quality (0x14).  RSSI in dBm (<= 0; the wire carries dBm * -1), SNR in dB."""

    TYPE: ClassVar[int] = 0x14
    uplink_rssi_ant1_dbm: int
    uplink_rssi_ant2_dbm: int
    uplink_link_quality_pct: int
    uplink_snr_db: int
    active_antenna: int
    rf_mode: int  # RF profile / packet-rate index
    uplink_tx_power: int  # index: 0, 10, 25, 100, 500, 1000, 2000, 250, 50 mW (TBS spec)
    downlink_rssi_dbm: int
    downlink_link_quality_pct: int
    downlink_snr_db: int


@dataclass(frozen=True)
class Attitude:
    """Attitude (0x1E) in radians, 1e-4 rad resolution (range +-3.2767 rad)."""

    TYPE: ClassVar[int] = 0x1E
    pitch_rad: float
    roll_rad: float
    yaw_rad: float


@dataclass(frozen=True)
class Battery:
    """Battery sensor (0x08): 0.1 V and 0.1 A resolution (0..6553.5), capacity used, charge left."""

    TYPE: ClassVar[int] = 0x08
    voltage_v: float
    current_a: float
    capacity_mah: int  # 0..16777215
    remaining_pct: int  # 0..255 on the wire, 0..100 in practice


@dataclass(frozen=True)
class FlightMode:
    """Flight mode text (0x21), at most 59 UTF-8 bytes, no NUL."""

    TYPE: ClassVar[int] = 0x21
    mode: str


@dataclass(frozen=True)
class BaroAltitude:
    """Barometric altitude (0x09): -1000.0..2276.7 m in 0.1 m, whole metres above; optional vertical speed."""

    TYPE: ClassVar[int] = 0x09
    altitude_m: float
    vertical_speed_m_s: float | None = None  # 0.01 m/s resolution when encoded


@dataclass(frozen=True)
class Vario:
    """Vertical speed (0x07), 0.01 m/s resolution (range +-327.67 m/s)."""

    TYPE: ClassVar[int] = 0x07
    vertical_speed_m_s: float


@dataclass(frozen=True)
class Gps:
    """GPS (0x02): position in 1e-7 degrees, ground speed in 0.1 km/h, course in 0.01 degrees,
    altitude in whole metres above mean sea level (-1000..64535), satellites in view."""

    TYPE: ClassVar[int] = 0x02
    latitude_deg: float
    longitude_deg: float
    ground_speed_m_s: float
    course_deg: float  # 0..360, the direction of travel over the ground
    altitude_m: float
    satellites: int


@dataclass(frozen=True)
class UnknownFrame:
    """A good-CRC frame of a type decoded nowhere else; ``payload`` is everything between type and CRC."""

    type: int
    payload: bytes


CrsfMessage = (
    CrsfChannels | LinkStatistics | Attitude | Battery | FlightMode | BaroAltitude | Vario | Gps | UnknownFrame
)

_LINK_STATISTICS = struct.Struct(">BBBbBBBBBb")
_ATTITUDE = struct.Struct(">hhh")
_BATTERY = struct.Struct(">HHI")  # voltage, current, then capacity (u24) << 8 | remaining (u8)
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_BARO_ALT_VARIO = struct.Struct(">Hh")
_GPS = struct.Struct(">iiHHHB")  # latitude, longitude, ground speed, course, altitude, satellites
_GPS_ALT_OFFSET_M = 1000  # packed altitude 0 is -1000 m
_KMH_PER_M_S = 3.6

_RAD_SCALE = 10000  # wire units per radian
_DECI = 10  # wire units per volt, ampere
_CENTI = 100  # wire units per m/s
_ALT_OFFSET_DM = 10000  # packed altitude 0 is -1000 m
_ALT_METRES_FLAG = 0x8000
_ALT_DM_LIMIT = _ALT_METRES_FLAG - _ALT_OFFSET_DM  # 22768 dm: whole metres from here on
_VARIO_LOG_KR = 0.026  # TBS log packing: range constant
_VARIO_LOG_KL = 100.0  # TBS log packing: linearity constant, cm/s
_FLIGHT_MODE_MAX = MAX_PAYLOAD - 1  # bytes of text, before the NUL


# ---------------------------------------------------------------- encoding: message -> frame bytes


def _units(name: str, value: float, scale: int, low: int, high: int) -> int:
    """``value * scale`` rounded half to even; ValueError if NaN or outside low..high."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} = {value!r} is not finite")
    units = round(value * scale)
    if not low <= units <= high:
        raise ValueError(f"{name} = {value!r} is outside {low / scale}..{high / scale}")
    return units


def encode_frame(type: int, payload: bytes, address: int = ADDRESS_FLIGHT_CONTROLLER) -> bytes:
    """Bytes of one frame; ValueError for an address outside ``ADDRESSES``, a type not a u8 or > 60 payload bytes."""
    if address not in ADDRESSES:
        raise ValueError(f"address 0x{address:02X} is not one of {', '.join(f'0x{a:02X}' for a in sorted(ADDRESSES))}")
    check_range("type", type, 0, 0xFF)
    check_range("payload length", len(payload), 0, MAX_PAYLOAD)
    body = bytes([type]) + bytes(payload)
    return bytes([address, len(body) + 1]) + body + bytes([crc8_dvb_s2(body)])


def _ticks_of(frame: ChannelFrame) -> list[int]:
    """Ticks of the 16 channels: a ``CrsfChannels``' own tick where it still maps to the channel's us."""
    channels = frame.channels_us
    if len(channels) > CHANNELS:
        raise ValueError(f"CRSF carries {CHANNELS} channels, got {len(channels)}")
    raw = frame.ticks if isinstance(frame, CrsfChannels) else ()
    ticks = []
    for index in range(CHANNELS):
        us = channels[index] if index < len(channels) else CENTRE_US
        tick = raw[index] if index < len(raw) else None
        ticks.append(tick if tick is not None and _US_OF_TICK[tick] == us else us_to_ticks(us))
    return ticks


def encode_channels(frame: ChannelFrame, address: int = ADDRESS_FLIGHT_CONTROLLER) -> bytes:
    """The 26-byte RC frame (0x16) of ``frame``: channel 1 first, missing channels 1500 us.

    ValueError for more than 16 channels or a NaN; values clamp to ticks 0..2047 (881..2159 us).
    ``failsafe``/``frame_lost`` are not sent: CRSF has no such flags (link loss is silence).
    """
    return encode_frame(TYPE_RC_CHANNELS, pack_channels(_ticks_of(frame)), address)


_LINK_STATISTICS_RANGES = {  # field -> (low, high), in the message's units
    "uplink_rssi_ant1_dbm": (-0xFF, 0),
    "uplink_rssi_ant2_dbm": (-0xFF, 0),
    "uplink_link_quality_pct": (0, 0xFF),
    "uplink_snr_db": (-0x80, 0x7F),
    "active_antenna": (0, 0xFF),
    "rf_mode": (0, 0xFF),
    "uplink_tx_power": (0, 0xFF),
    "downlink_rssi_dbm": (-0xFF, 0),
    "downlink_link_quality_pct": (0, 0xFF),
    "downlink_snr_db": (-0x80, 0x7F),
}


def _pack_link_statistics(m: LinkStatistics) -> bytes:
    for name, (low, high) in _LINK_STATISTICS_RANGES.items():
        check_range(f"LinkStatistics {name}", getattr(m, name), low, high)
    return _LINK_STATISTICS.pack(
        -m.uplink_rssi_ant1_dbm,
        -m.uplink_rssi_ant2_dbm,
        m.uplink_link_quality_pct,
        m.uplink_snr_db,
        m.active_antenna,
        m.rf_mode,
        m.uplink_tx_power,
        -m.downlink_rssi_dbm,
        m.downlink_link_quality_pct,
        m.downlink_snr_db,
    )


def _pack_attitude(m: Attitude) -> bytes:
    angles = (m.pitch_rad, m.roll_rad, m.yaw_rad)
    return _ATTITUDE.pack(*[_units("Attitude angle (rad)", a, _RAD_SCALE, -0x8000, 0x7FFF) for a in angles])


def _pack_battery(m: Battery) -> bytes:
    voltage = _units("Battery voltage_v", m.voltage_v, _DECI, 0, 0xFFFF)
    current = _units("Battery current_a", m.current_a, _DECI, 0, 0xFFFF)
    check_range("Battery capacity_mah", m.capacity_mah, 0, 0xFFFFFF)
    check_range("Battery remaining_pct", m.remaining_pct, 0, 0xFF)
    return _BATTERY.pack(voltage, current, m.capacity_mah << 8 | m.remaining_pct)


def _pack_flight_mode(m: FlightMode) -> bytes:
    text = m.mode.encode("utf-8")
    if b"\x00" in text:
        raise ValueError("FlightMode text contains a NUL")
    check_range("FlightMode text length (UTF-8 bytes)", len(text), 0, _FLIGHT_MODE_MAX)
    return text + b"\x00"


def _pack_altitude(altitude_m: float) -> int:
    dm = _units("BaroAltitude altitude_m", altitude_m, _DECI, -_ALT_OFFSET_DM, 0x7FFF * _DECI)
    if dm < _ALT_DM_LIMIT:
        return dm + _ALT_OFFSET_DM
    return min((dm + 5) // 10, 0x7FFF) | _ALT_METRES_FLAG


def _pack_baro_altitude(m: BaroAltitude) -> bytes:
    packed = _pack_altitude(m.altitude_m)
    if m.vertical_speed_m_s is None:
        return _U16.pack(packed)
    speed = _units("BaroAltitude vertical_speed_m_s", m.vertical_speed_m_s, _CENTI, -0x8000, 0x7FFF)
    return _BARO_ALT_VARIO.pack(packed, speed)


def _pack_vario(m: Vario) -> bytes:
    return _I16.pack(_units("Vario vertical_speed_m_s", m.vertical_speed_m_s, _CENTI, -0x8000, 0x7FFF))


def _pack_gps(m: Gps) -> bytes:
    return _GPS.pack(
        _units("Gps latitude_deg", m.latitude_deg, 10_000_000, -900_000_000, 900_000_000),
        _units("Gps longitude_deg", m.longitude_deg, 10_000_000, -1_800_000_000, 1_800_000_000),
        _units("Gps ground_speed_m_s (0.1 km/h)", m.ground_speed_m_s * _KMH_PER_M_S, _DECI, 0, 0xFFFF),
        # a bearing wraps: 359.996 degrees rounds to 360.00, which is sent as 0.00 (not refused)
        _units("Gps course_deg", m.course_deg % 360.0, _CENTI, 0, 36000) % 36000,
        _units("Gps altitude_m", m.altitude_m + _GPS_ALT_OFFSET_M, 1, 0, 0xFFFF),
        _check_byte("Gps satellites", m.satellites),
    )


def _check_byte(name: str, value: int) -> int:
    check_range(name, value, 0, 0xFF)
    return value


_PACKERS: dict[type, Callable] = {
    Gps: _pack_gps,
    LinkStatistics: _pack_link_statistics,
    Attitude: _pack_attitude,
    Battery: _pack_battery,
    FlightMode: _pack_flight_mode,
    BaroAltitude: _pack_baro_altitude,
    Vario: _pack_vario,
}


def encode(message: CrsfMessage | ChannelFrame, address: int = ADDRESS_FLIGHT_CONTROLLER) -> bytes:
    """Bytes of one frame carrying ``message`` (any type ``CrsfDecoder`` returns).

    ValueError if a field is out of range (see each message's doc); TypeError for a non-CRSF message.
    """
    if isinstance(message, ChannelFrame):
        return encode_channels(message, address)
    if isinstance(message, UnknownFrame):
        return encode_frame(message.type, message.payload, address)
    packer = _PACKERS.get(type(message))
    if packer is None:
        raise TypeError(f"not a CRSF message: {type(message).__name__}")
    return encode_frame(message.TYPE, packer(message), address)


# ---------------------------------------------------------------- decoding: payload -> message


def _unpack_link_statistics(p: bytes) -> LinkStatistics:
    v = _LINK_STATISTICS.unpack_from(p)
    return LinkStatistics(-v[0], -v[1], v[2], v[3], v[4], v[5], v[6], -v[7], v[8], v[9])


def _unpack_attitude(p: bytes) -> Attitude:
    pitch, roll, yaw = _ATTITUDE.unpack_from(p)
    return Attitude(pitch / _RAD_SCALE, roll / _RAD_SCALE, yaw / _RAD_SCALE)


def _unpack_battery(p: bytes) -> Battery:
    voltage, current, capacity_remaining = _BATTERY.unpack_from(p)
    return Battery(voltage / _DECI, current / _DECI, capacity_remaining >> 8, capacity_remaining & 0xFF)


def _unpack_flight_mode(p: bytes) -> FlightMode:
    return FlightMode(p.split(b"\x00", 1)[0].decode("utf-8", "replace"))


def _unpack_altitude(packed: int) -> float:
    if packed & _ALT_METRES_FLAG:
        return float(packed & ~_ALT_METRES_FLAG)
    return (packed - _ALT_OFFSET_DM) / _DECI


def _unpack_baro_altitude(p: bytes) -> BaroAltitude:
    altitude_m = _unpack_altitude(_U16.unpack_from(p)[0])
    if len(p) == 2:
        return BaroAltitude(altitude_m)
    if len(p) == 3:  # TBS: i8 log-packed vertical speed
        packed = p[2] - 0x100 if p[2] & 0x80 else p[2]
        speed_cm_s = math.copysign((math.exp(abs(packed) * _VARIO_LOG_KR) - 1.0) * _VARIO_LOG_KL, packed)
        return BaroAltitude(altitude_m, speed_cm_s / _CENTI)
    return BaroAltitude(altitude_m, _I16.unpack_from(p, 2)[0] / _CENTI)  # ExpressLRS


def _unpack_vario(p: bytes) -> Vario:
    return Vario(_I16.unpack_from(p)[0] / _CENTI)


def _unpack_gps(p: bytes) -> Gps:
    lat, lon, speed, course, altitude, satellites = _GPS.unpack_from(p)
    return Gps(lat / 1e7, lon / 1e7, speed / _DECI / _KMH_PER_M_S, course / _CENTI, altitude - _GPS_ALT_OFFSET_M,
               satellites)  # fmt: skip


# type -> (smallest payload, unpacker); 0x16 (exactly 22 bytes) is handled in _message
_UNPACKERS: dict[int, tuple[int, Callable[[bytes], CrsfMessage]]] = {
    LinkStatistics.TYPE: (_LINK_STATISTICS.size, _unpack_link_statistics),
    Attitude.TYPE: (_ATTITUDE.size, _unpack_attitude),
    Battery.TYPE: (_BATTERY.size, _unpack_battery),
    FlightMode.TYPE: (0, _unpack_flight_mode),
    BaroAltitude.TYPE: (_U16.size, _unpack_baro_altitude),
    Vario.TYPE: (_I16.size, _unpack_vario),
    Gps.TYPE: (_GPS.size, _unpack_gps),
}


def _message(type_id: int, payload: bytes) -> CrsfMessage | None:
    """The message of a good-CRC frame, or None if its payload does not fit its type."""
    if type_id == TYPE_RC_CHANNELS:
        if len(payload) != RC_PAYLOAD_LEN:
            return None
        return CrsfChannels(unpack_channels(payload), False, False, payload)
    known = _UNPACKERS.get(type_id)
    if known is None:
        return UnknownFrame(type_id, payload)
    min_len, unpacker = known
    return unpacker(payload) if len(payload) >= min_len else None


# ---------------------------------------------------------------- stream decoder

# an accepted address followed by a valid length byte; no length byte (2..62) is an address, so
# candidates never overlap and one search finds them all
_CANDIDATE = re.compile(rb"[\x00\xc8\xea\xee][\x02-\x3e]")
_ADDRESS_BYTES = bytes(sorted(ADDRESSES))
_NOT_ADDRESS_BYTES = bytes(sorted(set(range(256)) - ADDRESSES))


def _earliest_frame(buffer: bytes, pos: int, end_of_data: int) -> tuple[int, int]:
    """Where the next frame is, among the candidates at or after ``pos``.

    Returns ``(start, end)`` of the complete good-CRC frame that ends first (the earlier start on
    a tie), or ``(-1, waiting)`` when there is none yet, ``waiting`` being the start of the first
    candidate that still needs bytes (``end_of_data`` if none does).
    """
    best_start, best_end = -1, end_of_data + 1
    waiting = end_of_data
    limit = end_of_data
    search = _CANDIDATE.search
    match = search(buffer, pos)
    while match is not None:
        start = match.start()
        if start + MIN_FRAME_LEN >= best_end:
            # this and every later candidate end at or after best_end; without a best, they need bytes
            waiting = min(waiting, start)
            break
        end = start + 2 + buffer[start + 1]
        if end > end_of_data:
            waiting = min(waiting, start)
        elif end < best_end and _crc_ok(buffer[start + 2 : end]):
            best_start, best_end = start, end
            limit = end - 3  # a candidate that ends before ``end`` has its length byte before this
        match = search(buffer, start + 1, limit)
    if best_start >= 0:
        return best_start, best_end
    if end_of_data > pos and buffer[end_of_data - 1] in _ADDRESS_BYTES:
        waiting = min(waiting, end_of_data - 1)  # its length byte may come in the next chunk
    return -1, waiting


class CrsfDecoder:
    """Incremental sliding-window CRSF parser; feed it bytes as they arrive, get messages back.

    The next frame delivered is the complete good-CRC frame that *ends* first, so a frame is
    delivered as soon as its last byte arrives, even when a fake or truncated header before it
    claims more bytes; everything before it is skipped.  Decisions depend only on the bytes up to
    a frame's end, so the output does not depend on how the stream is split into ``feed`` calls.

    Keeps at most ``MAX_FRAME_LEN - 1`` bytes between calls.  Counters (ints, since creation):
    ``frames`` delivered (unknown types included); ``length_errors``, address bytes skipped
    whose length byte is outside 2..62, plus good-CRC frames whose payload does not fit their
    type (consumed, not delivered); ``crc_errors``, other address bytes skipped (bad CRC, or cut
    short by a frame that completed first); ``bytes_in`` fed; ``bytes_skipped``, bytes dropped
    while resyncing or in rejected frames.  A candidate still waiting for bytes is counted once
    it is skipped.  Not thread-safe: one reader owns it.
    """

    def __init__(self) -> None:
        self._pending = b""  # bytes waiting for the rest of a frame
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
        """Bytes held back waiting for the rest of a frame (or an address byte's length byte)."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[CrsfMessage]:
        """Messages completed by ``data``, in stream order; never raises on any content."""
        buffer = self._pending + bytes(data)  # an immutable snapshot: slices of it are bytes, copied once
        end_of_data = len(buffer)
        self.bytes_in += end_of_data - len(self._pending)
        messages: list[CrsfMessage] = []
        pos = 0
        while True:
            start, end = _earliest_frame(buffer, pos, end_of_data)
            skip_to = start if start >= 0 else end
            if skip_to > pos:
                self._count_skipped(buffer, pos, skip_to)
                pos = skip_to
            if start < 0:
                break
            message = _message(buffer[start + 2], buffer[start + 3 : end - 1])
            if message is None:
                self.length_errors += 1
                self.bytes_skipped += end - start
            else:
                messages.append(message)
            pos = end
        self._pending = buffer[pos:]
        self.frames += len(messages)
        return messages

    def _count_skipped(self, buffer: bytes, pos: int, skip_to: int) -> None:
        """Account for the bytes in ``pos .. skip_to - 1`` and the rejected candidates among them."""
        self.bytes_skipped += skip_to - pos
        addresses = len(buffer[pos:skip_to].translate(None, _NOT_ADDRESS_BYTES))
        if addresses:
            with_length = len(_CANDIDATE.findall(buffer, pos, skip_to + 1))
            self.crc_errors += with_length
            self.length_errors += addresses - with_length
