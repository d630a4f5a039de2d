"""``virtual`` ports: a pty pair made by the simulator, a device emulator process on the far end.

The simulator opens the pty's slave path with pyserial like any serial device; the emulator
(``heli-sim device KIND --fd N``) inherits the master.  The emulator process belongs to the
``VirtualEndpoint``: closing the endpoint stops it (SIGTERM, then SIGKILL after a deadline) and
reaps it; reopening the endpoint (after the far end was lost) makes a fresh pair and emulator.
Emulators run in their own process group, so a Ctrl-C in the terminal reaches the simulator
only, and the simulator shuts its devices down in order.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import serial

from sim.errors import PortError
from sim.ports.transport import SerialSettings, open_transport

__all__ = ["EmulatorProcess", "HandoffEndpoint", "VirtualEndpoint"]

_STOP_TIMEOUT_S = 1.0


class EmulatorProcess:
    """A ``heli-sim device`` child process; ``stop()`` ends it and returns its summary."""

    def __init__(self, kind: str, args: list[str], pass_fds: tuple[int, ...] = ()):
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "device", kind, *args],
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # its own process group, so a terminal's Ctrl-C reaches the simulator only (which ends
            # it in order); the same session, so it shares the simulator's scheduler autogroup and
            # its lower niceness counts against the loop (in a session of its own it would not)
            process_group=0,
        )
        self.summary: dict | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, deadline: float) -> None:
        """Block until the emulator says ``ready`` (it serves its port), or raise ``PortError``."""
        fd = self.proc.stdout.fileno()
        received = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise PortError(f"the {self.kind} emulator did not start in time")
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise PortError(f"the {self.kind} emulator ended while starting (status {self.proc.wait(1.0)})")
                received += chunk
        self._early_output = received.split(b"\n", 1)[1]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self, stopped: bool) -> None:
        """Stop the device (SIGSTOP: it reads and writes nothing) or let it go on (SIGCONT)."""
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP if stopped else signal.SIGCONT)

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> dict | None:
        """End the process and reap it; returns its summary (None if it had none to give).

        Its end of the wire is normally closed already, a hang-up it notices and answers by
        printing its summary and exiting; it gets half of ``timeout_s`` to do so (it may still
        be starting up), then SIGTERM and the other half, then SIGKILL.
        """
        self.pause(False)  # a stopped device (backpressure fault) could not answer anything
        try:
            out, _ = self.proc.communicate(timeout=timeout_s / 2)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=timeout_s / 2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate(timeout=timeout_s)
        out = getattr(self, "_early_output", b"") + (out or b"")
        for line in reversed(out.decode(errors="replace").splitlines()):
            try:
                self.summary = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
        return self.summary


class VirtualEndpoint:
    """Opens a fresh pty pair with an emulator on the far end, each time ``open`` is called."""

    def __init__(self, kind: str, device_args: list[str], settings: SerialSettings | None = None):
        self.kind = kind
        self.device_args = device_args
        self.settings = settings or SerialSettings()
        self.emulator: EmulatorProcess | None = None
        self.path: str | None = None
        self.far_end_summaries: list[dict] = []

    def open(self) -> serial.SerialBase:
        self.close()
        master, slave = os.openpty()
        try:
            self.path = os.ttyname(slave)
            transport = open_transport(self.path, self.settings)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        try:
            self.emulator = EmulatorProcess(self.kind, ["--fd", str(master), *self.device_args], pass_fds=(master,))
        except BaseException:
            transport.close()
            raise
        finally:
            os.close(master)
        return transport

    def wait_ready(self, deadline: float) -> None:
        if self.emulator is not None:
            self.emulator.wait_ready(deadline)

    def pause_far_end(self) -> None:
        if self.emulator is not None:
            self.emulator.pause(True)

    def resume_far_end(self) -> None:
        if self.emulator is not None:
            self.emulator.pause(False)

    def close(self) -> None:
        emulator, self.emulator = self.emulator, None
        if emulator is not None:
            summary = emulator.stop()
            if summary is not None:
                self.far_end_summaries.append(summary)


class HandoffEndpoint:
    """A pty pair whose far end is handed to a process someone else starts (the view's keyboard).

    ``open`` makes a fresh pair and keeps the master until ``take_far_end`` hands it over; an
    untaken master is closed with the endpoint.
    """

    def __init__(self, settings: SerialSettings | None = None):
        self.settings = settings or SerialSettings()
        self.far_fd: int | None = None
        self.path: str | None = None
        self.far_end_summaries: list[dict] = []

    def open(self) -> serial.SerialBase:
        self.close()
        master, slave = os.openpty()
        try:
            self.path = os.ttyname(slave)
            transport = open_transport(self.path, self.settings)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.far_fd = master
        return transport

    def take_far_end(self) -> int | None:
        fd, self.far_fd = self.far_fd, None
        return fd

    def wait_ready(self, deadline: float) -> None:
        return None  # whoever takes the far end is ready when it is

    def close(self) -> None:
        fd, self.far_fd = self.far_fd, None
        if fd is not None:
            os.close(fd)
