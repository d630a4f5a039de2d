"""``virtual`` ports: a pty pair made by the simulator, a device emulator process on the far end.

The simulator opens the pty's slave path with pyserial like any serial device; the emulator
(``heli-sim device KIND --fd N``) inherits the master.  The emulator process belongs to the
``VirtualEndpoint``: closing the endpoint stops it (SIGTERM, then SIGKILL after a deadline) and
reaps it; reopening the endpoint (after the far end was lost) makes a fresh pair and emulator.
Emulators run in their own process group, so a Ctrl-C in the terminal reaches the simulator
only, and the simulator shuts its devices down in order.  An emulator is a fork of the simulator
where that is safe, else a new interpreter (``sim.ports.forked``); either way the working directory
is never on its ``sys.path`` (``-P``, or taken out in the fork), whatever files the user keeps there.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import time

import serial

from sim import stopping
from sim.errors import PortError
from sim.ports.forked import start_emulator
from sim.ports.transport import SerialSettings, open_transport

__all__ = ["EmulatorProcess", "HandoffEndpoint", "VirtualEndpoint"]

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 1.0
_STOP_CHECK_S = 0.05  # how often a wait for an emulator's start looks for a stop request (SIGINT / SIGTERM)
_MAX_READS_PER_POLL = 64  # 4 KiB each: what one poll takes at most (it is polled ten times a second)
_SUMMARY_BUDGET_S = 0.5  # stopping on a signal: the emulators' summaries are waited for until this long after it


class EmulatorProcess:
    """A ``heli-sim device`` child process; ``stop()`` ends it and returns its summary."""

    def __init__(self, kind: str, args: list[str], pass_fds: tuple[int, ...] = ()):
        self.kind = kind
        # an OSError (out of file descriptors for its pipes, or of processes) is the port's: see PortSet.open;
        # a fork of this process where that is safe, else a new interpreter (sim.ports.forked)
        self.proc = start_emulator(["device", kind, *args], pass_fds)
        assert self.proc.stdout is not None  # stdout: a pipe
        self._output = self.proc.stdout
        self.summary: dict | None = None
        self._received = b""  # its output read before it is stopped: "ready", events, at the end its summary
        self._events_at = 0  # how much of it poll_events has looked through

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ready(self) -> bool:
        """Whether it said ``ready`` (its line: it serves its port), as far as read."""
        return self._received.startswith(b"ready\n") or b"\nready\n" in self._received

    def wait_ready(self, deadline: float) -> None:
        """Block until the emulator says ``ready`` (it serves its port), or raise ``PortError``.

        Gives up at once (``sim.stopping.Stopped``) when SIGINT or SIGTERM asks heli-sim to stop.
        """
        while not self.ready:
            stopping.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PortError(f"the {self.kind} emulator did not start in time")
            if not self._read_output(min(remaining, _STOP_CHECK_S)):
                raise PortError(f"the {self.kind} emulator ended while starting (status {self.proc.wait(1.0)})")

    def _read_output(self, timeout_s: float) -> bool:
        """Keep what it wrote, waiting up to ``timeout_s`` for something; False once its output has ended."""
        fd = self._output.fileno()
        with selectors.PollSelector() as selector:  # poll needs no file descriptor of its own (EMFILE)
            selector.register(fd, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                return True
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # its pipe is gone (closed under us): nothing more will come from it
            return False
        self._received += chunk
        return bool(chunk)

    def poll_events(self) -> list[tuple[str, str, float | None]]:
        """What it has reported since the last call (never waits): its ``{"event": kind, "detail": ...,
        "t": monotonic s}`` lines, such as a joystick unplugged, with when they happened (None if it
        did not say).  Everything waiting is read, so its output never fills up."""
        try:
            for _ in range(_MAX_READS_PER_POLL):
                before = len(self._received)
                if not self._read_output(0.0) or len(self._received) == before:
                    break
        except ValueError:  # its output closed (it was stopped as we looked): nothing more from it
            return []
        complete = self._received.rfind(b"\n") + 1
        lines = self._received[self._events_at : complete].decode(errors="replace").split("\n")
        self._events_at = complete
        events = []
        for line in lines:
            if not line.startswith('{"event"'):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            t = event.get("t")
            events.append((str(event.get("event")), str(event.get("detail", "")), t if isinstance(t, float) else None))
        return events

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self, stopped: bool) -> None:
        """Stop the device (SIGSTOP: it reads and writes nothing) or let it go on (SIGCONT)."""
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP if stopped else signal.SIGCONT)

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> dict | None:
        """End the process and reap it (on a signal: see below); returns its summary (None if it had none).

        Its end of the wire is normally closed already, a hang-up it notices and answers by
        printing its summary and exiting; it gets half of ``timeout_s`` to do so (it may still
        be starting up), then SIGTERM and the other half, then SIGKILL.  When SIGINT or SIGTERM
        asked heli-sim to stop (``sim.stopping``), one still starting gets SIGTERM at once, every
        summary is waited for until ``_SUMMARY_BUDGET_S`` after the signal (all emulators saw
        their hang-up together), and one that has not exited then gets SIGKILL and is left to
        ``reap`` (its interpreter's shutdown, even its death, can take a niced process half a
        second on a busy machine: the killed ones are reaped together, not one after the other).
        """
        self.pause(False)  # a stopped device (backpressure fault) could not answer anything
        left_s = stopping.time_left(_SUMMARY_BUDGET_S)  # None: no signal, no hurry
        urgent = left_s is not None
        if urgent and not self.ready and self._read_output(0.0) and not self.ready:
            # SIGINT / SIGTERM, and it is still starting (importing): it would see the hang-up only once
            # it serves, read what it was sent and answer; heli-sim has to be gone within a second
            self.proc.send_signal(signal.SIGTERM)
        answered = self._read_until_summary(time.monotonic() + (timeout_s / 2 if left_s is None else left_s))
        if not answered and not urgent:
            self.proc.send_signal(signal.SIGTERM)  # it did not answer its hang-up
            self._read_until_summary(time.monotonic() + timeout_s / 2)
        try:
            # on a signal, one that has given its summary (or had its time) has nothing more to say
            self.proc.wait(0.0 if urgent else timeout_s / 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            if not urgent:
                self.proc.wait(timeout_s)
        finally:
            self._output.close()
        return self.summary

    @property
    def reaped(self) -> bool:
        return self.proc.returncode is not None

    def reap(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic``) for a killed emulator's end; one still dying
        then (a niced process on a saturated machine) is logged and left to the system."""
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("the %s emulator (pid %d) was killed but is still dying", self.kind, self.proc.pid)

    def _read_until_summary(self, deadline: float) -> bool:
        """Read its output until its summary (a JSON line, its last words) or its end; False at the deadline."""
        while self._parse_summary() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self._read_output(remaining):
                return True  # its output ended: no summary to come
        return True

    def _parse_summary(self) -> dict | None:
        lines = self._received.decode(errors="replace").split("\n")[:-1]  # complete lines only
        for line in reversed(lines):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(summary, dict) and "event" not in summary:
                self.summary = summary
                return summary
        return None


class VirtualEndpoint:
    """Opens a fresh pty pair with an emulator on the far end, each time ``open`` is called."""

    def __init__(self, kind: str, device_args: list[str], settings: SerialSettings | None = None):
        self.kind = kind
        self.device_args = device_args
        self.settings = settings or SerialSettings()
        self.emulator: EmulatorProcess | None = None
        self.path: str | None = None
        self.far_end_summaries: list[dict] = []
        self._dying: list[EmulatorProcess] = []  # killed, not reaped yet

    def open(self) -> serial.Serial:
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

    def poll_events(self) -> list[tuple[str, str, float | None]]:
        """What its emulator reported since the last call (see ``EmulatorProcess.poll_events``)."""
        return self.emulator.poll_events() if self.emulator is not None else []

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
            if not emulator.reaped:  # killed on a signal: reaped with the others (reap)
                self._dying.append(emulator)

    def reap(self, deadline: float) -> None:
        """Reap the emulators killed as heli-sim stopped on a signal, waiting until ``deadline`` at most."""
        dying, self._dying = self._dying, []
        for emulator in dying:
            emulator.reap(deadline)


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

    def open(self) -> serial.Serial:
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
