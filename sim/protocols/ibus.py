"""FlySky iBUS: the 32-byte servo frame of FS-iA6B/FS-iA10B receivers, its encoder and an incremental decoder.

Pure: no ports, threads, clocks, logging or printing.  Facts from
Betaflight ``src/main/rx/ibus.c`` and ``src/test/unit/rx_ibus_unittest.cc``.  Line:
115200 8N1, not inverted, a frame about every 7 ms.  Frame layout::

    offset 0       0x20  frame length (32)
    offset 1       0x40  command "servo channels"
    offset 2..29   14 x u16 little-endian, channels 1..14 in microseconds (unused channels 1500)
    offset 30..31  checksum, u16 little-endian: 0xFFFF - (sum of bytes 0..29)

Channels 15..18: newer receivers carry four more channels in the high nibbles of the channel
words, as Betaflight's ``updateChannelData`` reads them; with b[i] the frame's byte i,
channel 15 = ``(b3 >> 4) | (b5 & 0xF0) | (b7 & 0xF0) << 4`` and channels 16, 17, 18 the same
from b9/b11/b13, b15/b17/b19 and b21/b23/b25.  So channels 1..14 are the low 12 bits of their
words, always (as in Betaflight).  A frame with any of those nibbles set decodes to 18 channels,
one with all of them zero (an older receiver) to 14: the channel count is the frame's.

Conventions chosen here:

* The decoder keys on both header bytes ``20 40``.  Betaflight checks only ``20`` and ignores
  byte 1 (its unit-test frames have ``20 00``); real receivers send ``40``, and a two-byte sync
  halves the false starts of the weak sum checksum.  A ``20 00`` frame is skipped.
* Values are whole microseconds (ints), no scaling (iBUS carries microseconds directly).
* No clock: Betaflight also resyncs on an inter-byte gap > 500 us; here resync is by content
  alone.  iBUS has no failsafe flag: a receiver signals link loss by going silent.

``IbusDecoder`` is a sliding-window parser: it tries every ``20 40`` in order; a window whose
checksum fails costs one byte, and the search goes on from the next byte.  All frames have the
same length, so the earliest candidate is also the one that completes first: a fake ``20 40``
in garbage is rejected as soon as its 32 bytes are in, and cannot delay the valid frame behind
it.  The output does not depend on how the stream is split into ``feed`` calls.
"""

from __future__ import annotations

import math
import struct

from sim.protocols.rc import CENTRE_US, ChannelFrame, LineSettings

__all__ = [
    "FRAME_LEN",
    "HEADER",
    "LINE",
    "MAX_CHANNELS",
    "MAX_VALUE_US",
    "SLOTS",
    "IbusDecoder",
    "checksum",
    "encode_channels",
]

LINE = LineSettings(baudrate=115200, frame_rate_hz=143.0)  # 8N1, not inverted; a frame every ~7 ms

HEADER = b"\x20\x40"  # frame length 32, command 0x40 "servo channels"
FRAME_LEN = 32  # bytes
CHECKSUM_OFFSET = 30  # checksum covers bytes 0..29
SLOTS = 14  # channel words in a frame
MAX_CHANNELS = 18  # 14 words + 4 channels in the words' high nibbles
MAX_VALUE_US = 0x0FFF  # 12 bits per channel (the high nibble of each word is taken)

_NIBBLE_CHANNELS = MAX_CHANNELS - SLOTS  # 4
_NIBBLE_WORDS = 3 * _NIBBLE_CHANNELS  # words 0..11 carry channels 15..18, 4 bits each
_LOW_12 = 0x0FFF

_WORDS = struct.Struct(f"<{SLOTS}H")
_CHECKSUM = struct.Struct("<H")


def checksum(data: bytes) -> int:
    """The iBUS checksum of a frame's first 30 bytes: ``0xFFFF - sum(data)``, as a u16."""
    return (0xFFFF - sum(data)) & 0xFFFF


def _channels_of(words: tuple[int, ...]) -> tuple[int, ...]:
    """Channel values (us) from the 14 words: 14 of them, or 18 when the high nibbles are used."""
    if max(words[:_NIBBLE_WORDS]) <= _LOW_12:  # no nibble channels
        return words if max(words) <= _LOW_12 else tuple(word & _LOW_12 for word in words)
    low = [word & _LOW_12 for word in words]
    for k in range(_NIBBLE_CHANNELS):
        a, b, c = words[3 * k : 3 * k + 3]
        low.append((a >> 12) | (b >> 12) << 4 | (c >> 12) << 8)
    return tuple(low)


def _whole_us(value: float) -> int:
    if not math.isfinite(value):
        raise ValueError(f"channel value {value!r} is not a finite number of microseconds")
    us = round(value)
    if not 0 <= us <= MAX_VALUE_US:
        raise ValueError(f"channel value {value!r} us is outside 0..{MAX_VALUE_US}")
    return us


def encode_channels(frame: ChannelFrame) -> bytes:
    """The 32-byte iBUS frame carrying ``frame.channels_us`` (0..18 channels), the decoder's exact inverse.

    Values are rounded to whole microseconds (half to even) and must lie in 0..4095.  Up to 14
    channels are padded with 1500 to 14; 15..18 are padded with 1500 to 18 and channels 15..18
    go into the high nibbles.  ValueError on more than 18 channels, a value out of range, a
    failsafe or frame-lost flag (iBUS has none: stop sending instead), or channels 15..18 all
    0 (such a frame cannot be told from a 14-channel one).
    """
    if frame.failsafe or frame.frame_lost:
        raise ValueError("iBUS has no failsafe or frame-lost flag; a receiver in failsafe stops sending")
    values = [_whole_us(value) for value in frame.channels_us]
    if len(values) > MAX_CHANNELS:
        raise ValueError(f"iBUS carries at most {MAX_CHANNELS} channels, got {len(values)}")
    words = values[:SLOTS] + [CENTRE_US] * (SLOTS - min(len(values), SLOTS))
    if len(values) > SLOTS:
        extra = values[SLOTS:] + [CENTRE_US] * (MAX_CHANNELS - len(values))
        if not any(extra):
            raise ValueError("channels 15..18 all 0 us cannot be sent: the frame would decode as 14 channels")
        for k, value in enumerate(extra):
            for j in range(3):
                words[3 * k + j] |= ((value >> (4 * j)) & 0xF) << 12
    body = HEADER + _WORDS.pack(*words)
    return body + _CHECKSUM.pack(checksum(body))


class IbusDecoder:
    """Incremental sliding-window iBUS parser; feed it bytes as they arrive, get ``ChannelFrame`` objects back.

    Keeps at most ``FRAME_LEN - 1`` bytes between calls.  Counters (ints, since creation):
    ``frames`` delivered; ``checksum_errors``, ``20 40`` windows whose checksum failed;
    ``bytes_in`` fed; ``bytes_skipped``, bytes dropped while resyncing (so ``bytes_in`` is
    ``32 * frames + bytes_skipped + pending_bytes``).  Not thread-safe: one reader owns it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.frames = 0
        self.checksum_errors = 0
        self.bytes_in = 0
        self.bytes_skipped = 0

    @property
    def decode_errors(self) -> int:
        """Candidate frames rejected so far (iBUS has one kind: a bad checksum)."""
        return self.checksum_errors

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the rest of a frame (or a header's second byte)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[ChannelFrame]:
        """Channel frames completed by ``data`` (bytes-like), in stream order; never raises on any content."""
        buffer = self._buffer
        held = len(buffer)
        buffer += data
        end_of_data = len(buffer)
        self.bytes_in += end_of_data - held
        frames: list[ChannelFrame] = []
        pos = 0
        find = buffer.find
        while True:
            start = find(HEADER, pos)
            if start < 0:
                # keep a trailing 0x20: the header's second byte may come in the next chunk
                pos = end_of_data - 1 if end_of_data > pos and buffer[-1] == HEADER[0] else end_of_data
                break
            end = start + FRAME_LEN
            if end > end_of_data:
                pos = start
                break
            if sum(buffer[start : start + CHECKSUM_OFFSET]) + (buffer[end - 2] | buffer[end - 1] << 8) == 0xFFFF:
                frames.append(ChannelFrame(_channels_of(_WORDS.unpack_from(buffer, start + 2))))
                pos = end
            else:
                self.checksum_errors += 1
                pos = start + 1
        del buffer[:pos]
        self.frames += len(frames)
        self.bytes_skipped += pos - FRAME_LEN * len(frames)
        return frames
