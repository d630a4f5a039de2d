"""What every RC protocol codec hands the simulator: channels in microseconds, plus flags.

A codec module (``crsf``, ``sbus``, ``ibus``, ``msp``) provides an incremental decoder whose
``feed(data) -> list`` returns ``ChannelFrame`` objects (and, where the protocol has them, other
typed messages), and an encoder ``encode_channels(frame) -> bytes`` that is its exact inverse
(up to the protocol's resolution).  Each module also states its line settings as a
``LineSettings``, so the port opens the way a real receiver needs (SBUS: 100000 8E2).

Microsecond conventions differ by up to a microsecond between firmwares; each codec documents
the one it uses (Betaflight's, OpenTX/EdgeTX's and ExpressLRS's formulas differ there).

``PayloadError`` is the one kind of error a codec raises for a frame it has read: good framing
and a good checksum, but a payload that does not fit (unknown type, wrong length, a field out
of range).  Each codec module's own payload error subclasses it, so a port counts every such
frame as a decode error and skips it, whatever the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from heli.errors import HeliSimError

__all__ = ["CENTRE_US", "HALF_RANGE_US", "ChannelFrame", "LineSettings", "PayloadError", "check_range"]

CENTRE_US = 1500  # a stick's centre, microseconds: what a codec pads the channels a frame does not give with
HALF_RANGE_US = 500  # from the centre to either end of a stick's travel: 1000..2000 us


class PayloadError(HeliSimError, ValueError):
    """A frame whose framing and checksum are good but whose payload does not fit its type."""


def check_range(name: str, value: int, low: int, high: int) -> None:
    """``ValueError`` naming ``name`` unless ``low <= value <= high`` (an encoder's field check)."""
    if not low <= value <= high:
        raise ValueError(f"{name} = {value!r} is outside {low}..{high}")


@dataclass(frozen=True)
class ChannelFrame:
    """One frame of stick channels from a receiver or transmitter.

    ``channels_us``: pulse widths in microseconds, channel 1 first (1000-2000 full range,
    1500 centre).  ``failsafe`` and ``frame_lost``: the receiver's own flags (SBUS bits 3 and
    2); protocols without flags leave them False and signal link loss by going silent.
    """

    channels_us: tuple[float, ...]
    failsafe: bool = False
    frame_lost: bool = False


@dataclass(frozen=True)
class LineSettings:
    """How the serial line of a protocol is set up, and how often its frames come."""

    baudrate: int
    parity: str = "N"  # pyserial: N, E, O
    stopbits: float = 1
    inverted: bool = False  # SBUS: a plain USB-UART needs an inverter (or an "uninverted" receiver pad)
    frame_rate_hz: float = 100.0  # a typical rate, for emulators and expectations
