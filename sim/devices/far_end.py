"""The emulator's side of the wire: a pty master (``--fd``) or any port name, with deadlines.

``read(timeout)`` returns the bytes available within the timeout (possibly none);
``write(data)`` gives up after ``write_timeout_s`` and counts the drop.  A vanished other side
(the simulator closed its end, a socat pair was killed) raises ``Hangup``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import time
import tty

import serial

from sim.ports.transport import TRANSPORT_ERRORS, SerialSettings, open_transport

__all__ = ["FarEnd", "FdFarEnd", "Hangup", "SerialFarEnd"]


class Hangup(Exception):
    """The other side of the wire is gone."""


class FarEnd:
    """Interface of both far ends."""

    drops = 0

    def read(self, timeout_s: float) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class FdFarEnd(FarEnd):
    """A pty master file descriptor inherited from the simulator."""

    def __init__(self, fd: int, write_timeout_s: float = 0.25):
        self.fd = fd
        self.write_timeout_s = write_timeout_s
        tty.setraw(fd)
        os.set_blocking(fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(fd, selectors.EVENT_READ)

    def read(self, timeout_s: float) -> bytes:
        if not self._selector.select(max(0.0, timeout_s)):
            return b""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as error:
            if error.errno == errno.EIO:
                raise Hangup("the simulator closed its end") from None
            raise
        if not data:
            raise Hangup("end of file")
        return data

    def write(self, data: bytes) -> bool:
        deadline = time.monotonic() + self.write_timeout_s
        view = memoryview(data)
        with selectors.DefaultSelector() as writable:
            writable.register(self.fd, selectors.EVENT_WRITE)
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError as error:
                    if error.errno == errno.EIO:
                        raise Hangup("the simulator closed its end") from None
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not writable.select(remaining):
                    self.drops += 1
                    return False
        return True

    def close(self) -> None:
        self._selector.close()
        os.close(self.fd)


class SerialFarEnd(FarEnd):
    """A device path or URL opened with pyserial (for ``heli-sim device --port`` by hand)."""

    def __init__(self, name: str, settings: SerialSettings):
        self.port: serial.Serial = open_transport(name, settings)
        self._quantum_s = settings.read_quantum_s

    def read(self, timeout_s: float) -> bytes:
        """What comes within ``timeout_s``: each pyserial read waits at most what is left of it (a
        read that waited its whole 20 ms quantum past the device's next frame held a 150 Hz
        transmitter to 48 frames a second)."""
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                wait = min(self._quantum_s, max(0.0, deadline - time.monotonic()))
                if self.port.timeout != wait:
                    self.port.timeout = wait
                data = self.port.read(max(1, self.port.in_waiting))
                if data or time.monotonic() >= deadline:
                    return data
        except TRANSPORT_ERRORS as error:
            raise Hangup(str(error)) from None

    def write(self, data: bytes) -> bool:
        try:
            self.port.write(data)
        except serial.SerialTimeoutException:
            self.drops += 1
            return False
        except TRANSPORT_ERRORS as error:
            raise Hangup(str(error)) from None
        return True

    def close(self) -> None:
        with contextlib.suppress(*TRANSPORT_ERRORS):  # closing a port that is already gone
            self.port.close()
