"""Pololu Maestro compact serial protocol: the servo board on heli-sim's servo port.

Pure: no ports, threads, clocks, logging or printing.  Facts from the Pololu Maestro Servo
Controller User's Guide (pololu.com/docs/0J40), section 5.c "Command Protocols" and section
5.e "Serial Servo Commands", compact protocol; error bits from section 4.b "Errors".

A command is a command byte (high bit set, 0x80..0xFF) followed by its data bytes (high bit
clear, 0..127, so each carries 7 bits; a 14-bit value goes low 7 bits first).  There is no
checksum and no framing beyond the command byte's high bit (the Maestro's optional CRC mode is
not supported here).  Commands (``ch`` a channel 0..127 on the wire, 0..23 on the largest
Maestro)::

    0x84 ch lo hi          Set Target: pulse width in quarter-microseconds (0..16383; 0 = no pulses)
    0x9F n ch (lo hi) x n  Set Multiple Targets, channels ch..ch+n-1 (Mini Maestro 12/18/24 only)
    0x87 ch lo hi          Set Speed, (0.25 us)/(10 ms); 0 = unlimited
    0x89 ch lo hi          Set Acceleration, (0.25 us)/(10 ms)/(80 ms); 0 = unlimited
    0x90 ch                Get Position  -> 2 bytes, little-endian (8 bits each), quarter-us
    0x93                   Get Moving State -> 1 byte, 0x00 or 0x01
    0xA1                   Get Errors -> 2 bytes, little-endian error bits; reading clears them
    0xA2                   Go Home

Examples from the guide: 1500 us on channel 0 is ``84 00 70 2E``; channel 3 off and channel 4
at 1500 us is ``9F 02 03 00 00 70 2E``; speed 140 on channel 5 is ``87 05 0C 01``.

The simulator, having no other acknowledgement, sends Get Errors after each batch of Set
Target commands and takes the 2-byte reply as the batch's "ack" (a round trip, and a check
that the board saw no protocol error).

``MaestroCommandDecoder`` is the device side (a servo-board emulator parsing what the simulator
sends).  As the Maestro's "serial protocol error" says: a data byte where a command byte is
expected, a command byte that interrupts an unfinished command, or an unknown command byte is
a protocol error; each is counted once in ``decode_errors`` and the decoder resyncs at the next
command byte (the interrupting one starts a new command).  Unknown here: everything but the 8
commands above, including the Pololu protocol's 0xAA and the Mini SSC's 0xFF.  A Set Multiple
Targets with a count of 0 is a protocol error too (our choice; the guide does not say).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from heli.errors import HeliSimError
from sim.protocols.rc import check_range

__all__ = [
    "ERROR_SCRIPT_CALL_STACK",
    "ERROR_SCRIPT_STACK",
    "ERROR_SERIAL_BUFFER_FULL",
    "ERROR_SERIAL_CRC",
    "ERROR_SERIAL_OVERRUN",
    "ERROR_SERIAL_PROTOCOL",
    "ERROR_SERIAL_SIGNAL",
    "ERROR_SERIAL_TIMEOUT",
    "MAX_CHANNEL",
    "MAX_TARGET_QUARTER_US",
    "REPLY_LENGTHS",
    "Command",
    "GetErrors",
    "GetMovingState",
    "GetPosition",
    "GoHome",
    "MaestroCommandDecoder",
    "ReplyError",
    "SetAcceleration",
    "SetMultipleTargets",
    "SetSpeed",
    "SetTarget",
    "encode",
    "encode_errors_reply",
    "encode_get_errors",
    "encode_get_moving_state",
    "encode_get_position",
    "encode_go_home",
    "encode_moving_state_reply",
    "encode_position_reply",
    "encode_set_acceleration",
    "encode_set_multiple_targets",
    "encode_set_speed",
    "encode_set_target",
    "parse_errors_reply",
    "parse_moving_state_reply",
    "parse_position_reply",
]

QUARTER_US_PER_US = 4
MAX_TARGET_QUARTER_US = 0x3FFF  # 14 bits: 4095.75 us
MAX_DATA = 0x7F  # a data byte carries 7 bits
MAX_CHANNEL = MAX_DATA  # on the wire; a Mini Maestro 24 has channels 0..23
MAX_VALUE = MAX_TARGET_QUARTER_US  # speed and acceleration travel as 14 bits too
MAX_TARGETS = MAX_DATA  # per Set Multiple Targets

# error register bits (guide section 4.b)
ERROR_SERIAL_SIGNAL = 1 << 0  # a stop bit not where expected (baud rate mismatch)
ERROR_SERIAL_OVERRUN = 1 << 1
ERROR_SERIAL_BUFFER_FULL = 1 << 2
ERROR_SERIAL_CRC = 1 << 3
ERROR_SERIAL_PROTOCOL = 1 << 4  # malformed command: unknown, interrupted, data without a command
ERROR_SERIAL_TIMEOUT = 1 << 5
ERROR_SCRIPT_STACK = 1 << 6
ERROR_SCRIPT_CALL_STACK = 1 << 7


class ReplyError(HeliSimError, ValueError):
    """A reply from the board that is not what the request expects (wrong length, impossible value)."""


@dataclass(frozen=True)
class SetTarget:
    """Set Target: channel's pulse width in quarter-microseconds (0 stops the pulses)."""

    COMMAND: ClassVar[int] = 0x84
    channel: int
    quarter_us: int

    @property
    def microseconds(self) -> float:
        return self.quarter_us / QUARTER_US_PER_US


@dataclass(frozen=True)
class SetMultipleTargets:
    """Set Multiple Targets: channels ``first_channel`` .. ``first_channel + len(quarter_us) - 1``."""

    COMMAND: ClassVar[int] = 0x9F
    first_channel: int
    quarter_us: tuple[int, ...]

    @property
    def microseconds(self) -> tuple[float, ...]:
        return tuple(target / QUARTER_US_PER_US for target in self.quarter_us)


@dataclass(frozen=True)
class SetSpeed:
    """Set Speed: limit in (0.25 us)/(10 ms); 0 is unlimited."""

    COMMAND: ClassVar[int] = 0x87
    channel: int
    speed: int


@dataclass(frozen=True)
class SetAcceleration:
    """Set Acceleration: limit in (0.25 us)/(10 ms)/(80 ms); 0 is unlimited."""

    COMMAND: ClassVar[int] = 0x89
    channel: int
    acceleration: int


@dataclass(frozen=True)
class GetPosition:
    """Get Position: the board replies with 2 bytes, the channel's position in quarter-us, little-endian."""

    COMMAND: ClassVar[int] = 0x90
    channel: int


@dataclass(frozen=True)
class GetMovingState:
    """Get Moving State: the board replies 0x01 while a speed- or acceleration-limited servo moves, else 0x00."""

    COMMAND: ClassVar[int] = 0x93


@dataclass(frozen=True)
class GetErrors:
    """Get Errors: the board replies with its 2-byte error register (little-endian) and clears it."""

    COMMAND: ClassVar[int] = 0xA1


@dataclass(frozen=True)
class GoHome:
    """Go Home: every channel to its configured home position (or off)."""

    COMMAND: ClassVar[int] = 0xA2


Command = (
    SetTarget | SetMultipleTargets | SetSpeed | SetAcceleration | GetPosition | GetMovingState | GetErrors | GoHome
)

REPLY_LENGTHS = {GetPosition: 2, GetMovingState: 1, GetErrors: 2}  # bytes the board answers; others: none


def _seven_bit_pair(name: str, value: int) -> bytes:
    check_range(name, value, 0, MAX_VALUE)
    return bytes((value & MAX_DATA, value >> 7))


def _channel_and_value(command: SetTarget | SetSpeed | SetAcceleration, value: int) -> bytes:
    check_range("Maestro channel", command.channel, 0, MAX_CHANNEL)
    return bytes((command.COMMAND, command.channel)) + _seven_bit_pair(f"{type(command).__name__} value", value)


def encode(command: Command) -> bytes:
    """The bytes of one command; the decoder's exact inverse.  ValueError if a field is out of the
    wire's range: channels 0..127, targets, speeds and accelerations 0..16383, 1..127 targets."""
    if isinstance(command, SetTarget):
        return _channel_and_value(command, command.quarter_us)
    if isinstance(command, SetSpeed):
        return _channel_and_value(command, command.speed)
    if isinstance(command, SetAcceleration):
        return _channel_and_value(command, command.acceleration)
    if isinstance(command, SetMultipleTargets):
        count = len(command.quarter_us)
        check_range("Set Multiple Targets count", count, 1, MAX_TARGETS)
        check_range("Set Multiple Targets first channel", command.first_channel, 0, MAX_CHANNEL)
        targets = b"".join(_seven_bit_pair("Set Multiple Targets target", target) for target in command.quarter_us)
        return bytes((command.COMMAND, count, command.first_channel)) + targets
    if isinstance(command, GetPosition):
        check_range("Maestro channel", command.channel, 0, MAX_CHANNEL)
        return bytes((command.COMMAND, command.channel))
    if isinstance(command, GetMovingState | GetErrors | GoHome):
        return bytes((command.COMMAND,))
    raise TypeError(f"not a Maestro command: {type(command).__name__}")


def _quarter_us(microseconds: float) -> int:
    """``microseconds`` to the nearest quarter-us (half to even); ValueError outside 0..16383 quarter-us."""
    if not math.isfinite(microseconds):
        raise ValueError(f"Maestro target {microseconds!r} us is not finite")
    target = round(microseconds * QUARTER_US_PER_US)
    check_range("Maestro target (quarter-us)", target, 0, MAX_TARGET_QUARTER_US)
    return target


def encode_set_target(channel: int, microseconds: float) -> bytes:
    """Set Target for ``channel`` to ``microseconds`` (rounded to a quarter-us; 0..4095.75 us, 0 = off)."""
    return encode(SetTarget(channel, _quarter_us(microseconds)))


def encode_set_multiple_targets(first_channel: int, microseconds_list: Sequence[float]) -> bytes:
    """Set Multiple Targets: channels from ``first_channel`` on to ``microseconds_list`` (each as in
    ``encode_set_target``)."""
    return encode(SetMultipleTargets(first_channel, tuple(_quarter_us(us) for us in microseconds_list)))


def encode_set_speed(channel: int, speed: int) -> bytes:
    """Set Speed for ``channel``: ``speed`` in (0.25 us)/(10 ms), 0..16383, 0 = unlimited."""
    return encode(SetSpeed(channel, speed))


def encode_set_acceleration(channel: int, acceleration: int) -> bytes:
    """Set Acceleration for ``channel``: (0.25 us)/(10 ms)/(80 ms), 0..16383 (the guide uses 0..255), 0 = unlimited."""
    return encode(SetAcceleration(channel, acceleration))


def encode_get_position(channel: int) -> bytes:
    """Get Position of ``channel``; the reply is 2 bytes (``parse_position_reply``)."""
    return encode(GetPosition(channel))


def encode_get_moving_state() -> bytes:
    """Get Moving State; the reply is 1 byte (``parse_moving_state_reply``)."""
    return encode(GetMovingState())


def encode_get_errors() -> bytes:
    """Get Errors; the reply is 2 bytes (``parse_errors_reply``).  heli-sim's "ack" after a batch of targets."""
    return encode(GetErrors())


def encode_go_home() -> bytes:
    """Go Home: no reply."""
    return encode(GoHome())


# ---------------------------------------------------------------- replies (board -> simulator)


def encode_position_reply(quarter_us: int) -> bytes:
    """The board's answer to Get Position: u16 little-endian (0..65535), full 8-bit bytes."""
    check_range("Maestro position", quarter_us, 0, 0xFFFF)
    return quarter_us.to_bytes(2, "little")


def encode_errors_reply(bits: int) -> bytes:
    """The board's answer to Get Errors: the 16-bit error register, little-endian."""
    check_range("Maestro error bits", bits, 0, 0xFFFF)
    return bits.to_bytes(2, "little")


def encode_moving_state_reply(moving: bool) -> bytes:
    """The board's answer to Get Moving State: 0x01 while servos move, else 0x00."""
    return b"\x01" if moving else b"\x00"


def _expect_length(name: str, data: bytes, expected: int) -> None:
    if len(data) != expected:
        raise ReplyError(f"Maestro {name} reply is {len(data)} bytes, expected {expected}")


def parse_position_reply(data: bytes) -> int:
    """Position in quarter-us from a 2-byte Get Position reply; ReplyError on another length."""
    _expect_length("Get Position", data, 2)
    return int.from_bytes(data, "little")


def parse_errors_reply(data: bytes) -> int:
    """Error register bits (``ERROR_*``) from a 2-byte Get Errors reply; ReplyError on another length."""
    _expect_length("Get Errors", data, 2)
    return int.from_bytes(data, "little")


def parse_moving_state_reply(data: bytes) -> bool:
    """True while servos move, from a 1-byte Get Moving State reply; ReplyError unless it is 0x00 or 0x01."""
    _expect_length("Get Moving State", data, 1)
    if data[0] > 1:
        raise ReplyError(f"Maestro Get Moving State reply is 0x{data[0]:02x}, expected 0x00 or 0x01")
    return data[0] == 1


# ---------------------------------------------------------------- command decoder (device side)

# command byte -> data bytes that follow (Set Multiple Targets: the count, then 1 + 2 * count more)
_DATA_LENGTHS = {
    SetTarget.COMMAND: 3,
    SetMultipleTargets.COMMAND: 1,
    SetSpeed.COMMAND: 3,
    SetAcceleration.COMMAND: 3,
    GetPosition.COMMAND: 1,
    GetMovingState.COMMAND: 0,
    GetErrors.COMMAND: 0,
    GoHome.COMMAND: 0,
}
_COMMAND_BIT = 0x80


def _build(command: int, data: bytearray) -> Command:
    if command == SetTarget.COMMAND:
        return SetTarget(data[0], data[1] | data[2] << 7)
    if command == SetMultipleTargets.COMMAND:
        targets = tuple(data[i] | data[i + 1] << 7 for i in range(2, len(data), 2))
        return SetMultipleTargets(data[1], targets)
    if command == SetSpeed.COMMAND:
        return SetSpeed(data[0], data[1] | data[2] << 7)
    if command == SetAcceleration.COMMAND:
        return SetAcceleration(data[0], data[1] | data[2] << 7)
    if command == GetPosition.COMMAND:
        return GetPosition(data[0])
    if command == GetMovingState.COMMAND:
        return GetMovingState()
    if command == GetErrors.COMMAND:
        return GetErrors()
    return GoHome()


class MaestroCommandDecoder:
    """Incremental compact-protocol parser for the board side: feed it bytes, get command objects back.

    Channels are decoded as sent, 0..127 (which ones exist is the board's business).  Counters
    (ints, since creation): ``frames``, commands delivered; ``decode_errors``, protocol errors
    (each resync counts once); ``bytes_in`` fed; ``bytes_skipped``, bytes dropped (so
    ``bytes_in`` is the bytes of the delivered commands + ``bytes_skipped`` + ``pending_bytes``).
    Not thread-safe: one reader owns it.
    """

    def __init__(self) -> None:
        self._command: int | None = None  # command byte of the unfinished command
        self._data = bytearray()
        self._needed = 0  # data bytes the unfinished command needs in all
        self._resyncing = False  # dropping data bytes until the next command byte
        self.frames = 0
        self.decode_errors = 0
        self.bytes_in = 0
        self.bytes_skipped = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished command (its command byte and data so far)."""
        return 0 if self._command is None else 1 + len(self._data)

    def _error(self, dropped: int) -> None:
        """A protocol error: drop ``dropped`` bytes and skip data bytes up to the next command byte."""
        self.decode_errors += 1
        self.bytes_skipped += dropped
        self._command = None
        self._data.clear()
        self._resyncing = True

    def feed(self, data: bytes) -> list[Command]:
        """Commands completed by ``data`` (bytes-like), in stream order; never raises on any content."""
        self.bytes_in += len(data)
        commands: list[Command] = []
        for byte in data:
            if byte & _COMMAND_BIT:
                if self._command is not None:
                    self._error(self.pending_bytes)  # interrupted; this byte starts afresh
                needed = _DATA_LENGTHS.get(byte)
                if needed is None:
                    self._error(1)
                    continue
                self._resyncing = False
                if needed == 0:
                    commands.append(_build(byte, self._data))
                    continue
                self._command, self._needed = byte, needed
            elif self._command is None:
                if self._resyncing:
                    self.bytes_skipped += 1
                else:
                    self._error(1)
                continue
            else:
                self._data.append(byte)
                if self._command == SetMultipleTargets.COMMAND and len(self._data) == 1:
                    if byte == 0:
                        self._error(2)
                        continue
                    self._needed = 2 + 2 * byte  # count, first channel, count x (low, high)
                if len(self._data) < self._needed:
                    continue
                commands.append(_build(self._command, self._data))
                self._command = None
                self._data.clear()
        self.frames += len(commands)
        return commands
