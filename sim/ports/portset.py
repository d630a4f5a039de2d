"""All the ports of a flight, and the I/O mode they run in: threaded, blocking or asyncio.

The loop talks to a ``PortSet`` twice a tick: ``read_inputs()`` before the controller and
``push_outputs()`` after it.

* threaded: each port has its own ``PortWorker`` thread; ``read_inputs`` returns the newest
  letters from the inboxes and ``push_outputs`` posts into the outboxes.  No blocking call.
* blocking: no threads; ``read_inputs`` runs each input port's exchange inline, in turn, and
  ``push_outputs`` each output port's.  The loop waits for every device, as a naive program does.
  An output port with nothing new to send is still read every ``IDLE_READ_INTERVAL_S`` (every
  tick while bytes it wrote wait for its far end to take them).
* asyncio: one ``EventLoopWorker`` thread runs an event loop with a task per port; the loop
  talks to it through the same mailboxes as in threaded mode.

``switch(mode)`` changes mode at a tick boundary: the I/O threads are stopped and joined (their
current exchange finished) before the loop or the other mode takes over, and started after,
so no frame is lost or sent twice.  Ports stay open across a switch.

No I/O thread ends unnoticed: every tick (``push_outputs``) and at every stop the set reads
what ended a thread early (``PortWorker.error``, ``EventLoopWorker.error``): the ports it served
fail (state ``failed``, an ``io_error`` event naming the error).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from typing import Any

from sim.config import IO_MODES
from sim.errors import PortError
from sim.ports.aio import EventLoopWorker
from sim.ports.events import EventLog
from sim.ports.mailbox import Letter, Mailbox
from sim.ports.port import Port
from sim.ports.worker import PortWorker

__all__ = ["THREAD_STOP_TIMEOUT_S", "PortSet"]

THREAD_STOP_TIMEOUT_S = 1.0
IDLE_READ_INTERVAL_S = 0.05  # blocking mode: an output port with no new letter reads its far end this often
NO_FILE_DESCRIPTOR = ("loop://", "rfc2217://")  # pyserial URL transports an event loop cannot watch


class PortSet:
    """Owns ports, their mailboxes and (in threaded mode) their threads."""

    def __init__(self, ports: Iterable[Port], events: EventLog, mode: str = "threaded"):
        if mode not in IO_MODES:
            raise ValueError(f"I/O mode must be one of {IO_MODES}, got {mode!r}")
        self.ports = list(ports)
        refusal = self.refuses(mode)
        if refusal is not None:
            raise PortError(refusal)
        self.events = events
        self.mode = mode
        # what the ports send and what they received: the messages of their protocols (sim.ports.codecs)
        self.outboxes: dict[str, Mailbox[Any]] = {port.name: Mailbox() for port in self.ports}
        self.inboxes: dict[str, Mailbox[Any]] = {port.name: Mailbox() for port in self.ports}
        self._workers: dict[str, PortWorker] = {}
        self._event_loop: EventLoopWorker | None = None
        self.stuck_threads: list[str] = []
        self._last_exchange_t = {port.name: 0.0 for port in self.ports}  # blocking mode: when last exchanged

    def __enter__(self) -> PortSet:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, start: bool = True) -> None:
        """Open every port (``PortError`` names the first that fails; the rest are closed again).

        With ``start`` (the default) the I/O begins at once; otherwise at ``start()``, once the
        devices serve (a request sent to a device still starting up would time its start-up).
        """
        opened: list[Port] = []
        try:
            for port in self.ports:
                port.open()
                opened.append(port)
        except OSError as error:  # a PortError, or the machine out of file descriptors, processes, ptys
            self._close_all(opened)
            if isinstance(error, PortError):
                raise
            raise PortError(_cannot_open(port, error)) from None
        if start:
            self.start()

    def start(self) -> None:
        """Begin the I/O: start the port threads (threaded) or the event loop's (asyncio)."""
        if not self._workers and self._event_loop is None:
            self._start_threads()

    def abort(self) -> None:
        """Make every blocking wait in progress give up now (the flight is stopping)."""
        for port in self.ports:
            port.abort.set()

    def close(self) -> None:
        self.abort()
        self._stop_threads()
        for port in self.ports:
            port.read_what_is_left()
        self._close_all(self.ports)

    @staticmethod
    def _close_all(ports: list[Port]) -> None:
        """Close every port's transport first, then end their far ends: every emulator sees its
        hang-up at once and they exit together, rather than one after the other."""
        for port in ports:
            port.close(end_far_end=False)
        for port in ports:
            port.close()

    def refuses(self, mode: str) -> str | None:
        """Why these ports cannot run in ``mode`` (None: they can).  Asyncio watches file descriptors:
        ``loop://`` and ``rfc2217://`` ports have none."""
        if mode != "asyncio":
            return None
        without = [f"{port.name} ({port.url})" for port in self.ports if port.url.startswith(NO_FILE_DESCRIPTOR)]
        if not without:
            return None
        return f"I/O mode asyncio watches file descriptors and {', '.join(without)} has none; use threaded or blocking"

    def switch(self, mode: str) -> None:
        """Change I/O mode now (call it at a tick boundary)."""
        if mode not in IO_MODES:
            raise ValueError(f"I/O mode must be one of {IO_MODES}, got {mode!r}")
        if mode == self.mode:
            return
        refusal = self.refuses(mode)
        if refusal is not None:
            raise PortError(refusal)
        self._stop_threads()
        self.mode = mode
        self._start_threads()

    def read_inputs(self) -> dict[str, Letter | None]:
        """The newest letter from each input port (blocking mode: after reading it inline)."""
        out = {}
        for port in self.ports:
            if not port.is_input:
                continue
            if self.mode == "blocking":
                self._exchange_inline(port, self.outboxes[port.name].latest())
            out[port.name] = self.inboxes[port.name].latest()
        return out

    def push_outputs(self, values: dict[str, object], now: float | None = None) -> None:
        """Post a value to each named port; blocking mode then runs every output port inline.

        Ports that want no new value this tick are left out of ``values`` (a link port still
        makes its request in blocking mode: the loop waits for it every tick).
        """
        now = time.monotonic() if now is None else now
        self._report_ended_threads(self._workers.values(), self._event_loop)
        for name, value in values.items():
            self.outboxes[name].put(value, now)
        if self._event_loop is not None and values:
            self._event_loop.notify()
        if self.mode == "blocking":
            for port in self.ports:
                if port.is_input:
                    continue
                if port.waits_for_new_letter and port.name not in values:
                    if port.tx_waiting or now - self._last_exchange_t[port.name] >= IDLE_READ_INTERVAL_S:
                        self._exchange_inline(port, None, now)  # reads what its far end sent
                    continue
                self._exchange_inline(port, self.outboxes[port.name].latest(), now)

    def _exchange_inline(self, port: Port, letter: Letter | None = None, now: float | None = None) -> None:
        self._last_exchange_t[port.name] = time.monotonic() if now is None else now
        result = port.exchange(letter)
        if result is not None:
            self.inboxes[port.name].put(result, time.monotonic())

    def _start_threads(self) -> None:
        """The I/O threads of the current mode: one per port (threaded), one for all (asyncio), none."""
        if self.mode == "asyncio":
            self._event_loop = EventLoopWorker(self.ports, self.outboxes, self.inboxes, self.events)
            self._event_loop.start()
            return
        if self.mode != "threaded":
            return
        for port in self.ports:
            worker = PortWorker(port, self.outboxes[port.name], self.inboxes[port.name])
            self._workers[port.name] = worker
            worker.start()

    def _stop_threads(self) -> None:
        deadline = time.monotonic() + THREAD_STOP_TIMEOUT_S
        workers, self._workers = self._workers, {}
        for worker in workers.values():  # all at once: a thread asked late would start another exchange
            worker.request_stop()
        for worker in workers.values():
            if not worker.stop(max(0.0, deadline - time.monotonic())):
                self.stuck_threads.append(worker.port.name)
                self.events.push("thread_stuck", f"io:{worker.port.name} did not stop within {THREAD_STOP_TIMEOUT_S} s")
        event_loop, self._event_loop = self._event_loop, None
        if event_loop is not None:
            if not event_loop.stop(max(0.0, deadline - time.monotonic())):
                for port in self.ports:  # its thread is wedged: the ports go on without it (blocking calls)
                    line, port.line, port.backend = port.line, None, None
                    if line is not None:
                        line.give_back()  # their timeouts again, not the loop's zero (a blocking read would spin)
            for name in event_loop.stuck:
                self.stuck_threads.append(name)
                self.events.push("thread_stuck", f"io:asyncio: {name} did not stop within {THREAD_STOP_TIMEOUT_S} s")
        self._report_ended_threads(workers.values(), event_loop)

    def _report_ended_threads(self, workers: Iterable[PortWorker], event_loop: EventLoopWorker | None) -> None:
        """Read what ended an I/O thread early, once each: the ports it served fail, saying why."""
        for worker in workers:
            if worker.error is not None and not worker.error_reported:
                worker.error_reported = True
                worker.port.fail(f"its I/O thread io:{worker.port.name} ended by {worker.error!r}")
        if event_loop is not None and event_loop.error is not None and not event_loop.error_reported:
            event_loop.error_reported = True
            for port in self.ports:
                port.fail(f"the asyncio I/O thread ended by {event_loop.error!r}")

    @property
    def threads_alive(self) -> int:
        alive = sum(1 for w in self._workers.values() if w.alive)
        return alive + (1 if self._event_loop is not None and self._event_loop.alive else 0)


_OUT_OF = {  # errno -> what ran out, and what to do about it
    errno.EMFILE: "too many open files (each virtual port keeps two open and runs an emulator process): "
    "raise the limit (ulimit -n) or open fewer ports (a large fleet: --no-ports)",
    errno.ENFILE: "the system is out of open files: open fewer ports (a large fleet: --no-ports)",
    errno.EAGAIN: "cannot start another process: each virtual port runs an emulator; raise the limit "
    "(ulimit -u) or open fewer ports (a large fleet: --no-ports)",
    errno.ENOMEM: "out of memory: each virtual port runs an emulator process; open fewer ports",
}


def _cannot_open(port: Port, error: OSError) -> str:
    """One line for an ``OSError`` opening ``port`` (not a ``PortError``: those say it already)."""
    why = _OUT_OF.get(error.errno or 0) or error.strerror or repr(error)
    return f"{port.name} ({port.url}): cannot open: {why}"
