"""Whole frames to a far end that may not be reading, without ever waiting for it.

A serial device's kernel buffer (16-32 KiB on a pty, a few KiB on a USB UART) fills when the
program at the far end stops reading: a radio that ignores telemetry, a ground station busy
elsewhere.  A blocking write would then wait for its timeout on every frame; on the rc-in port
that wait is as long as the failsafe timeout.  So ports write without blocking:

* what the kernel takes now goes; the rest waits in the port's own buffer (at most
  ``TX_BUFFER_BYTES``), and goes first the next time anything is written or the port is drained
  (an I/O thread drains its port every few milliseconds while bytes wait);
* a frame that would take that buffer past its bound is dropped whole (the caller counts it):
  the far end never sees half a frame, a burst larger than the kernel's buffer still goes out
  whole to a far end that reads, and a write costs one system call whatever the far end does.

Only a plain device (``serial.Serial`` on POSIX, whose file descriptor pyserial opens with
``O_NONBLOCK``) is written this way.  URL transports (``socket://``, ``loop://``, ``spy://``,
``rfc2217://``) keep pyserial's own blocking write with its ``write_timeout``.
"""

from __future__ import annotations

import os

import serial

__all__ = ["TX_BUFFER_BYTES", "FrameWriter", "nonblocking_fd"]

TX_BUFFER_BYTES = 64 * 1024  # per port: a burst of telemetry for a large fleet, several times over


def nonblocking_fd(transport: object) -> int | None:
    """The file descriptor to write ``transport``'s frames to without blocking; None where its own
    ``write`` must be used (a URL transport, or one whose ``write`` does more than write)."""
    real = getattr(transport, "real", transport)  # under a sim.ports.faults.FaultyTransport
    if type(real) is not serial.Serial or not hasattr(os, "set_blocking"):  # (serial.Serial: the POSIX one here)
        return None
    fd = real.fd if real.is_open else None
    if fd is None or os.get_blocking(fd):
        return None
    return fd


class FrameWriter:
    """One port's outgoing bytes that the far end has not taken yet (whole frames, and at most one
    frame's tail)."""

    def __init__(self, limit_bytes: int = TX_BUFFER_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self._pending = bytearray()

    @property
    def waiting(self) -> int:
        """Bytes written by the port that the far end has not taken yet."""
        return len(self._pending)

    def flush(self, fd: int) -> bool:
        """Write what the far end takes now; True if nothing waits any more."""
        if self._pending:
            del self._pending[: _write_some(fd, self._pending)]
        return not self._pending

    def offer(self, fd: int, frame: bytes) -> bool:
        """Queue ``frame`` behind what waits and write what the far end takes now; False, queueing
        nothing, if the frame would take the buffer past its bound (the frame is to be dropped)."""
        self.flush(fd)
        if self._pending and len(self._pending) + len(frame) > self.limit_bytes:
            return False
        self._pending += frame
        self.flush(fd)
        return True

    def forget(self) -> None:
        """A new stream (the device was reopened): what waited was for the old one."""
        self._pending.clear()


def _write_some(fd: int, data: bytes | bytearray) -> int:
    """Bytes of ``data`` written now (0 if the far end's buffer is full); ``SerialException`` if the
    device has gone (EIO on a pty whose far end closed, ENODEV on an unplugged USB adapter)."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as error:
        raise serial.SerialException(f"write failed: {error.strerror or error}") from None
