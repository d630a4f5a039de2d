"""Open a serial transport by name: a device path, a pyserial URL, through one explicit registry.

Names: a device path (``/dev/ttyUSB0``, ``/dev/pts/7``, a socat link), or a URL whose scheme is
one of ``URL_SCHEMES`` (``socket://host:port``, ``rfc2217://host:port``, ``loop://``,
``spy://PORT?file=...``), handed to ``serial.serial_for_url``.  ``virtual`` is handled one level
up (``sim.ports.virtual``).  Nothing is guessed: an unknown scheme is an error that lists the
valid ones.  Device paths open with ``exclusive=True`` so a second process gets "port busy".
Every transport gets a read timeout (the poll quantum of the reader) and a ``write_timeout``:
no write can block forever on a far end that stopped reading.
"""

from __future__ import annotations

import errno
import termios
from dataclasses import dataclass
from typing import TypedDict

import serial

from heli.errors import ConfigError
from sim.errors import PortError

__all__ = [
    "MAX_PORTS",
    "SELECT_FD_LIMIT",
    "TRANSPORT_ERRORS",
    "URL_SCHEMES",
    "SerialSettings",
    "check_port_count",
    "describe_names",
    "open_transport",
]

URL_SCHEMES = ("socket", "rfc2217", "loop", "spy")
# What a transport raises when the device goes away mid-use (as pyserial 3.5 reports a hang-up): pyserial's
# own exception, bare OSError from in_waiting, termios.error from flush and reconfiguration.
TRANSPORT_ERRORS = (serial.SerialException, OSError, termios.error)
# pyserial waits on its file descriptors with select(), which cannot watch one numbered 1024 or
# more (FD_SETSIZE on Linux).  A port costs about six: the device, pyserial's two cancel pipes,
# and an emulator's output pipe for a virtual one; 160 ports stay below the limit with room for
# the rest of the process (the log, the view's link, Python's own).
SELECT_FD_LIMIT = 1024
MAX_PORTS = 160


@dataclass(frozen=True)
class SerialSettings:
    """Line settings and the two deadlines every transport gets."""

    baudrate: int = 115200
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    stopbits: float = serial.STOPBITS_ONE
    read_quantum_s: float = 0.02  # a blocking read returns after this at the latest (re-checks deadlines)
    write_timeout_s: float = 0.25


class _LineOptions(TypedDict):
    """The keyword arguments every pyserial transport is opened with."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    timeout: float
    write_timeout: float


def check_port_count(labels: list[str], fleet: int) -> None:
    """``ConfigError`` when a flight would open more ports than one process can watch."""
    if len(labels) > MAX_PORTS:
        raise ConfigError(
            f"flight.fleet = {fleet}: its {len(labels)} ports ({labels[0]} ... {labels[-1]}) are more than the "
            f"{MAX_PORTS} one process can watch (pyserial's select() stops at file descriptor "
            f"{SELECT_FD_LIMIT - 1}); fly it with --no-ports, or name the ports you need"
        )


def describe_names() -> str:
    return "a device path (/dev/ttyUSB0, /dev/pts/N), virtual, or a URL: " + ", ".join(f"{s}://" for s in URL_SCHEMES)


def open_transport(name: str, settings: SerialSettings | None = None) -> serial.Serial:
    """Open ``name`` (not ``virtual``); raises ``PortError`` with one line saying what is wrong."""
    settings = settings or SerialSettings()
    common = _LineOptions(
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=settings.read_quantum_s,
        write_timeout=settings.write_timeout_s,
    )
    if "://" in name:
        scheme = name.split("://", 1)[0]
        if scheme not in URL_SCHEMES:
            raise PortError(f"{name}: unknown port scheme {scheme!r}; expected {describe_names()}")
        if scheme in ("socket", "rfc2217"):
            _check_host_port(name)
        try:
            return serial.serial_for_url(name, **common)
        except (serial.SerialException, ValueError, OSError) as error:
            raise PortError(f"{name}: cannot open: {error}") from None
    try:
        transport = serial.Serial(name, exclusive=True, **common)
    except serial.SerialException as error:
        raise PortError(_explain_open_error(name, error)) from None
    except (OSError, ValueError) as error:
        raise PortError(f"{name}: cannot open: {error}") from None
    fd = transport.fileno()
    if fd >= SELECT_FD_LIMIT:  # every later read would raise ValueError from select()
        transport.close()
        raise PortError(
            f"{name}: cannot open: it got file descriptor {fd}, and pyserial's select() stops at "
            f"{SELECT_FD_LIMIT - 1}; open fewer ports (or --no-ports)"
        )
    return transport


def _check_host_port(name: str) -> None:
    """``socket://HOST:PORT`` and ``rfc2217://HOST:PORT``: a host and a TCP port number (pyserial's
    own message for a bad one quotes its URL grammar, not the problem)."""
    address = name.split("://", 1)[1].split("?", 1)[0]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PortError(f"{name}: expected {name.split('://', 1)[0]}://HOST:PORT with a TCP port from 1 to 65535")


def _explain_open_error(name: str, error: serial.SerialException) -> str:
    code = error.errno
    if code == errno.ENOENT:
        return f"{name}: no such port (is the device plugged in? `heli-sim ports` lists what is there)"
    if code in (errno.EACCES, errno.EPERM):
        return f"{name}: permission denied (add your user to the dialout group, then log in again)"
    if code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in str(error):
        return f"{name}: port busy: another program has it open"
    return f"{name}: cannot open: {error}"
