"""SBUS (Futaba; FrSky and ExpressLRS "SBUS" outputs): the 25-byte channel frame, its encoder and a decoder.

Pure: no ports, threads, clocks, logging or printing.  Facts from Betaflight ``src/main/rx/sbus.c``
and ``sbus_channels.h``, and PX4 ``src/lib/rc/sbus.cpp``.  Line: 100000 baud 8E2, inverted (a plain
USB-UART needs an inverter or an "uninverted"/ELRS "Inverted SBUS" output), a frame every
7-14 ms (ExpressLRS: 9 ms).  Frame layout::

    offset 0      0x0F  header
    offset 1..22  16 x 11-bit channel ticks, packed exactly like the CRSF RC payload (Futaba's layout)
    offset 23     flags: bit 0 CH17, bit 1 CH18 (digital channels), bit 2 frame lost, bit 3 failsafe;
                  bits 4..7 are ignored
    offset 24     end byte: 0x00, or an SBUS2 telemetry slot 0x04, 0x14, 0x24, 0x34

Conventions chosen here:

* Ticks <-> microseconds: Betaflight's SBUS mapping ``us = 5 * t / 8 + 880`` (its ``sbus_channels.c``;
  ticks 192/992/1792 are 1000/1500/2000 us, 172/1811 are 987.5/2011.875 us).  It is exact in
  floating point (a 0.625 us grid), so ``channels_us`` are floats and every tick survives the
  round trip; encoding takes the nearest tick (halves to even), clamped to 0..2047.  Futaba's
  own centre is ~1024 ticks (1520 us here): calibrate per channel rather than trusting 1500.
* CH17/CH18: ``SbusFrame``, a ``ChannelFrame`` with two extra bools ``ch17`` and ``ch18``;
  ``channels_us`` keeps the 16 proportional channels.  ``failsafe`` (bit 3) and ``frame_lost``
  (bit 2) are the receiver's flags; a lost frame is one missed packet, not link loss (PX4).
* The SBUS2 slot id of the end byte is not kept: ``encode_channels`` always writes 0x00.
* No checksum: a frame is accepted when its header and its end byte are right (PX4 does the
  same; Betaflight relies on inter-frame gaps, which a USB adapter blurs).  ``SbusDecoder`` is
  a sliding-window parser: a wrong end byte costs one byte, then it searches for the next
  0x0F.  All frames have the same length, so the earliest candidate is also the one that
  completes first: a fake header cannot delay the frame behind it, and the output does not
  depend on how the stream is split into ``feed`` calls.  The price of having no checksum: a
  stray 0x0F up to 24 bytes before a real frame is taken as a frame when the byte 24 places
  after it is a valid end byte (likely for a 0x0F just before a frame: that byte is the frame's
  flags, usually 0x00), and the real frame it overlaps is lost; the next frame is read normally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.protocols.crsf import pack_channels, unpack_channels
from sim.protocols.rc import CENTRE_US, ChannelFrame, LineSettings

__all__ = [
    "CHANNELS",
    "END_BYTES",
    "FRAME_LEN",
    "HEADER",
    "LINE",
    "SbusDecoder",
    "SbusFrame",
    "encode_channels",
    "ticks_to_us",
    "us_to_ticks",
]

LINE = LineSettings(baudrate=100000, parity="E", stopbits=2, inverted=True, frame_rate_hz=111.0)  # 8E2, ~9 ms

HEADER = 0x0F
END_BYTES = frozenset({0x00, 0x04, 0x14, 0x24, 0x34})  # SBUS, and SBUS2 telemetry slots
FRAME_LEN = 25  # bytes
CHANNELS = 16  # proportional channels; CH17/CH18 are flag bits
TICK_MAX = 0x7FF  # 11 bits

_CHANNELS_AT = 1  # offset of the packed channels
_FLAGS_AT = 23
_END_AT = 24
_FLAG_CH17 = 0x01
_FLAG_CH18 = 0x02
_FLAG_FRAME_LOST = 0x04
_FLAG_FAILSAFE = 0x08

# Betaflight: us = 5 * t / 8 + 880
_US_OFFSET = 880
_US_PER_8_TICKS = 5


@dataclass(frozen=True)
class SbusFrame(ChannelFrame):
    """SBUS channels: 16 proportional ``channels_us``, the receiver's flags, and digital CH17/CH18."""

    ch17: bool = False
    ch18: bool = False


def ticks_to_us(ticks: int) -> float:
    """Microseconds of an 11-bit channel value (0..2047): ``5 * ticks / 8 + 880``, 992 -> 1500.0."""
    return _US_PER_8_TICKS * ticks / 8 + _US_OFFSET


def us_to_ticks(us: float) -> int:
    """The nearest channel tick to ``us`` (halves to even), clamped to 0..2047; ValueError for NaN."""
    if math.isnan(us):
        raise ValueError("channel value is NaN")
    if math.isinf(us):
        return TICK_MAX if us > 0 else 0
    return min(max(round((us - _US_OFFSET) * 8 / _US_PER_8_TICKS), 0), TICK_MAX)


_US_OF_TICK = tuple(ticks_to_us(t) for t in range(TICK_MAX + 1))


def _flag(given: bool | None, frame: ChannelFrame, name: str) -> bool:
    if given is not None:
        return given
    return bool(getattr(frame, name)) if isinstance(frame, SbusFrame) else False


def encode_channels(frame: ChannelFrame, *, ch17: bool | None = None, ch18: bool | None = None) -> bytes:
    """The 25-byte frame of ``frame``: channel 1 first, missing channels 1500 us, its failsafe/frame-lost flags.

    ``ch17``/``ch18``: the digital channels; None takes them from an ``SbusFrame`` (else off).
    ValueError for more than 16 channels or a NaN; values clamp to ticks 0..2047 (880..2159.4 us).
    """
    channels = frame.channels_us
    if len(channels) > CHANNELS:
        raise ValueError(f"SBUS carries {CHANNELS} proportional channels, got {len(channels)}")
    padded = (*channels, *([CENTRE_US] * (CHANNELS - len(channels))))
    flags = (
        (_FLAG_CH17 if _flag(ch17, frame, "ch17") else 0)
        | (_FLAG_CH18 if _flag(ch18, frame, "ch18") else 0)
        | (_FLAG_FRAME_LOST if frame.frame_lost else 0)
        | (_FLAG_FAILSAFE if frame.failsafe else 0)
    )
    return bytes([HEADER]) + pack_channels([us_to_ticks(us) for us in padded]) + bytes([flags, 0x00])


def _frame_at(buffer: bytearray, start: int) -> SbusFrame:
    flags = buffer[start + _FLAGS_AT]
    return SbusFrame(
        unpack_channels(buffer[start + _CHANNELS_AT : start + _FLAGS_AT], _US_OF_TICK),
        bool(flags & _FLAG_FAILSAFE),
        bool(flags & _FLAG_FRAME_LOST),
        bool(flags & _FLAG_CH17),
        bool(flags & _FLAG_CH18),
    )


class SbusDecoder:
    """Incremental sliding-window SBUS parser; feed it bytes as they arrive, get ``SbusFrame``s back.

    Keeps at most ``FRAME_LEN - 1`` bytes between calls.  Counters (ints, since creation):
    ``frames`` delivered; ``end_byte_errors``, headers skipped because the byte 24 places later
    is not an end byte; ``bytes_in`` fed; ``bytes_skipped``, bytes dropped while resyncing.
    Not thread-safe: one reader owns it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames = 0
        self.end_byte_errors = 0
        self.bytes_in = 0
        self.bytes_skipped = 0

    @property
    def decode_errors(self) -> int:
        """Candidate frames rejected so far: ``end_byte_errors`` (SBUS has nothing else to check)."""
        return self.end_byte_errors

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[SbusFrame]:
        """Frames completed by ``data``, in stream order; never raises on any content."""
        buffer = self._buffer
        held = len(buffer)
        buffer += data
        end_of_data = len(buffer)
        self.bytes_in += end_of_data - held
        frames: list[SbusFrame] = []
        pos = 0  # bytes before pos are consumed: delivered or skipped
        skipped = 0
        while True:
            start = buffer.find(HEADER, pos)
            if start < 0 or start + FRAME_LEN > end_of_data:
                keep = end_of_data if start < 0 else start
                break
            skipped += start - pos
            if buffer[start + _END_AT] in END_BYTES:
                frames.append(_frame_at(buffer, start))
                pos = start + FRAME_LEN
            else:
                self.end_byte_errors += 1
                skipped += 1
                pos = start + 1
        skipped += keep - pos
        del buffer[:keep]
        self.bytes_skipped += skipped
        self.frames += len(frames)
        return frames
