"""asyncio I/O mode: one event loop, in one thread, serves every port.

``EventLoopWorker`` owns the thread ``io:asyncio``.  In it an event loop runs one task per
port; each task does what a port's I/O thread does in threaded mode (take the newest letter,
run the port's exchange, post the result), but its reads and writes yield to the loop instead
of blocking, so one thread waits on every device at once.

Bytes reach the loop through pyserial-asyncio-fast's ``SerialTransport``, which watches the
port's file descriptor.  ``AsyncLine`` is the port's side of it: what arrives goes through the
port's ``FaultyTransport`` (the same injected faults as in the other modes) and waits there to
be read, so the bytes left unread when the mode switches are read by the next mode.  A switch
detaches the line without closing anything: the pyserial object, its decoder and its sequence
counters stay the port's.

Deadlines: a read waits at most one read quantum (then the exchange re-checks its own deadline
and the flight's abort flag), a write at most the transport's ``write_timeout`` for the far
end to take the bytes (then ``SerialTimeoutException``, as pyserial gives, and the bytes the
far end did not take are dropped: a half frame, as in blocking mode).  ``stop`` ends every
task after its current exchange and joins the thread against one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import serial
from serial_asyncio_fast import SerialTransport

from sim.ports.events import EventLog
from sim.ports.faults import FaultyTransport, LineFaults
from sim.ports.mailbox import Mailbox
from sim.ports.port import Port
from sim.ports.transport import TRANSPORT_ERRORS

__all__ = ["AsyncLine", "EventLoopWorker"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_READ_QUANTUM_S = 0.02  # where a transport has no read timeout: how often deadlines and abort are re-checked
_WAIT_QUANTUM_S = 0.05  # a lost reader waits this long between reconnect attempts; an idle output reads its far end
_FLUSH_QUANTUM_S = 0.005  # an idle output with bytes waiting for its far end tries again this often
_START_TIMEOUT_S = 2.0


class _Borrowed:
    """The pyserial object as ``SerialTransport`` sees it: reads go through; writes are one
    non-blocking ``os.write`` (pyserial's own write with ``write_timeout=0`` retries forever on a
    full buffer, pyserial issue 280, which would freeze the event loop under back-pressure);
    it may not flush or close it (the port owns it and keeps it across mode switches)."""

    def __init__(self, real: serial.Serial, fd: int):
        self._real = real
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int) -> bytes:
        return self._real.read(size)

    def write(self, data: bytes) -> int:
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0  # the far end's buffer is full: SerialTransport keeps the bytes and waits to write
        except OSError as error:
            raise serial.SerialException(f"write failed: {error.strerror or error}") from None

    @property
    def timeout(self) -> float | None:
        return self._real.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._real.timeout = value

    @property
    def write_timeout(self) -> float | None:
        return self._real.write_timeout

    @write_timeout.setter
    def write_timeout(self, value: float | None) -> None:
        self._real.write_timeout = value

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class AsyncLine(asyncio.Protocol):
    """One port's bytes through the event loop (create and use it in the loop's thread only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, faulty: FaultyTransport):
        """Raises what the transport raises if the device has gone (the caller counts the port lost)."""
        self._loop = loop
        self._faulty = faulty
        self._real = faulty.real
        fd = self._real.fileno()  # a transport without one was refused before asyncio mode started
        self._fd_was_blocking = os.get_blocking(fd)
        self._saved_timeouts = (self._real.timeout, self._real.write_timeout)
        self._write_timeout_s = self._real.write_timeout or 0.0
        self._read_quantum_s = self._real.timeout or _READ_QUANTUM_S
        self._lost: BaseException | None = None
        self._readable: asyncio.Future | None = None  # a read waiting for bytes
        self._drained: asyncio.Future | None = None  # a write waiting for the far end to take its bytes
        try:
            os.set_blocking(fd, False)
            # SerialTransport (which sets both timeouts to 0) is typed for a pyserial Serial; _Borrowed stands
            # in for one with what it uses: fileno, read, write, the two timeouts, flush and close
            self._transport = SerialTransport(loop, self, _Borrowed(self._real, fd))  # type: ignore[arg-type]
        except BaseException:
            self.give_back()
            raise
        self._transport.set_write_buffer_limits(high=0)  # pause_writing as soon as anything waits

    # --- asyncio.Protocol: called by SerialTransport in the loop
    def data_received(self, data: bytes) -> None:
        self._faulty.arrive(data)
        self._wake_reader()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or serial.SerialException("the port was closed")
        self._wake_reader()
        self._wake_writer()

    def resume_writing(self) -> None:
        # everything written: stop watching for writability.  SerialTransport leaves its writer
        # registered on an empty buffer, and would then be called on every pass of the loop.
        if not self._transport.get_write_buffer_size():
            self._transport.flush()
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- the port's reads and writes
    def check(self) -> None:
        """``SerialException`` if the device has gone (seen by the event loop, or unplugged by a fault)."""
        if self._lost is not None:
            raise serial.SerialException(f"device lost: {self._lost}")
        if self._transport.is_closing():  # a read or write failed; connection_lost follows later
            raise serial.SerialException("device lost: the transport is closing")
        self._faulty.check_plugged()

    @property
    def in_waiting(self) -> int:
        self.check()
        return self._faulty.ready

    @property
    def buffered(self) -> int:
        """Bytes written that the far end has not taken yet (held by the event loop)."""
        return self._transport.get_write_buffer_size()

    async def read(self, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes; waits at most one read quantum (and not past ``deadline``)."""
        self.check()
        data = self._faulty.take(size)
        if data:
            return data
        now = time.monotonic()
        wait_s = min(self._read_quantum_s, deadline - now)
        release = self._faulty.next_release()
        if release is not None:
            wait_s = min(wait_s, release - now)
        if wait_s > 0:
            self._readable = self._loop.create_future()
            timer = self._loop.call_later(wait_s, self._wake_reader)
            try:
                await self._readable
            finally:
                timer.cancel()
                self._readable = None
        self.check()
        return self._faulty.take(size)

    async def write(self, data: bytes) -> None:
        """Write ``data``; returns once the far end's kernel has it, ``SerialTimeoutException`` if not in time."""
        self.check()
        pace_s, data = self._faulty.outgoing(data)
        if pace_s:
            await asyncio.sleep(pace_s)  # a slow UART: the line takes this long, and the loop serves others
        if not data:
            return
        self._transport.write(data)  # the buffer is empty here: a drained write, or one dropped at its timeout
        await self._until_drained()

    async def _until_drained(self) -> None:
        transport = self._transport
        if not transport.get_write_buffer_size():
            return
        self._drained = self._loop.create_future()
        timer = self._loop.call_later(self._write_timeout_s, self._wake_writer)
        try:
            await self._drained
        finally:
            timer.cancel()
            self._drained = None
        self.check()
        if transport.get_write_buffer_size():
            transport.flush()  # what the far end did not take is dropped, as a blocking write's rest is
            raise serial.SerialTimeoutException("Write timeout")

    def detach(self) -> None:
        """Stop watching the port and give its blocking timeouts back; closes nothing."""
        transport = self._transport
        transport.pause_reading()
        transport.flush()  # removes the writer; empty unless the last write timed out (then dropped already)
        self._lost = self._lost or serial.SerialException("detached from the event loop")
        self._wake_reader()
        self._wake_writer()
        self.give_back()

    def give_back(self) -> None:
        """The port's blocking mode and timeouts as they were before the event loop borrowed it.  Safe
        from any thread (it touches the serial port, not the event loop): where the loop's thread is
        wedged and ``detach`` cannot run, the ports go on with their blocking calls bounded again."""
        with contextlib.suppress(*TRANSPORT_ERRORS):  # a vanished device: it is being closed anyway
            os.set_blocking(self._real.fileno(), self._fd_was_blocking)
            self._real.timeout, self._real.write_timeout = self._saved_timeouts


class EventLoopWorker:
    """Thread ``io:asyncio``: one task per port, one event loop for all of them.

    Owned by a ``PortSet``: ``start()`` it, ``notify()`` it when new letters are posted,
    ``stop(timeout)`` it.  Ports must be open (or lost, to be reopened by their exchange).
    Reopening a lost device can take a while (a virtual one starts its emulator), so it runs in
    a short-lived ``io:asyncio-open`` thread that ``stop`` joins against the same deadline.
    """

    def __init__(
        self,
        ports: Iterable[Port],
        outboxes: dict[str, Mailbox],
        inboxes: dict[str, Mailbox],
        events: EventLog | None = None,
    ):
        self.ports = list(ports)
        self.outboxes = outboxes
        self.inboxes = inboxes
        self.events = events or EventLog()
        # what ended the thread itself (every port's I/O with it); the owner reads and reports it.  A
        # task that ends by an error fails its own port (an io_error event says why); the others go on
        self.error: BaseException | None = None
        self.error_reported = False
        self.stuck: list[str] = []  # what did not end in time at the last stop
        self._thread = threading.Thread(target=self._run, name="io:asyncio", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stop_requested = False
        self._stop_deadline = 0.0
        self._letters: dict[str, asyncio.Event] = {}
        self._stopping: asyncio.Event | None = None
        self._openers: list[threading.Thread] = []
        self._startup_error: BaseException | None = None

    # --- the owner's side (any thread but io:asyncio)
    def start(self) -> None:
        """Start the loop and attach every open port to it; returns once it serves them."""
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S):
            raise RuntimeError("the asyncio I/O thread did not start")
        if self._startup_error is not None:
            raise self._startup_error

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def notify(self) -> None:
        """New letters are in the outboxes: wake the output tasks (cheap; never blocks)."""
        loop = self._loop
        if loop is not None and not self._stop_requested:
            with contextlib.suppress(RuntimeError):  # the loop is closing: the stop is under way
                loop.call_soon_threadsafe(self._wake_outputs)

    def stop(self, timeout_s: float = 1.0) -> bool:
        """Let every task finish its current exchange, detach the ports, end the thread; True if in time."""
        self._stop_deadline = time.monotonic() + timeout_s
        self._stop_requested = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # already closed: the thread is ending
                loop.call_soon_threadsafe(self._begin_stop)
        self._thread.join(max(0.0, self._stop_deadline - time.monotonic()))
        if self._thread.is_alive():
            self.stuck.append("io:asyncio")
            return False
        return True

    # --- in the loop's thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve_all(loop))
        except BaseException as error:  # kept for the owner to report; the thread must not die silently
            self.error = error
            log.error("io:asyncio ended by %r", error)
            log.info("io:asyncio: where %r was raised", error, exc_info=error)  # heli-sim -v shows it
            if not self._started.is_set():
                self._startup_error = error
                self._started.set()
        finally:
            loop.close()
            for opener in self._openers:  # an open under way ends by its own timeout; wait until the deadline
                opener.join(max(0.0, self._stop_deadline - time.monotonic()))
                if opener.is_alive():
                    self.stuck.append(opener.name)

    async def _serve_all(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stopping = stopping = asyncio.Event()
        self._letters = {port.name: asyncio.Event() for port in self.ports}
        self._loop = loop
        tasks: dict[asyncio.Task, Port] = {}
        try:
            for port in self.ports:
                port.serve_from(self)  # a device found gone here is counted lost, and reopened later
            tasks = {loop.create_task(self._serve(port, stopping), name=f"io:{port.name}"): port for port in self.ports}
            self._started.set()
            await stopping.wait()
            leeway = max(0.0, self._stop_deadline - time.monotonic() - 0.05)  # keep time to detach and join
            _, late = await asyncio.wait(tasks, timeout=leeway)
            self.stuck = [tasks[task].name for task in late]
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for port in self.ports:
                port.stop_serving()

    def _begin_stop(self) -> None:
        self._wake_outputs()
        if self._stopping is not None:
            self._stopping.set()

    def _wake_outputs(self) -> None:
        for event in self._letters.values():
            event.set()

    async def _serve(self, port: Port, stopping: asyncio.Event) -> None:
        try:
            await self._serve_port(port, stopping)
        except Exception as error:  # a bug outside the port's exchange (which catches its own): the port fails
            log.error("io:%s (asyncio) ended by %r", port.name, error)
            log.info("io:%s (asyncio): where %r was raised", port.name, error, exc_info=error)
            port.fail(f"its task io:{port.name} (asyncio) ended by {error!r}")

    async def _serve_port(self, port: Port, stopping: asyncio.Event) -> None:
        outbox, inbox, letters = self.outboxes[port.name], self.inboxes[port.name], self._letters[port.name]
        while not self._stop_requested and port.state != "failed":
            letter = outbox.latest()
            if port.waits_for_new_letter and (letter is None or letter.seq <= port.letter_seen):
                letters.clear()
                # set by notify() or stop(); none within the quantum: an exchange without a letter
                # reads what the far end sent
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(letters.wait(), _FLUSH_QUANTUM_S if port.tx_waiting else _WAIT_QUANTUM_S)
                    continue
                if self._stop_requested:
                    break
                letter = None
            result = await port.exchange_async(letter)
            if result is not None:
                inbox.put(result, time.monotonic())
            elif port.resting and not port.waits_for_new_letter:
                # a lost reader, or one whose exchange raised: wait a little before the next
                # reconnect attempt or retry, stoppably
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), _WAIT_QUANTUM_S)

    # --- AsyncBackend, for the ports
    def attach(self, port: Port) -> None:
        """Serve ``port``'s transport from this loop (its bytes then pass through an ``AsyncLine``)."""
        transport = port.transport
        if transport is None:
            raise RuntimeError(f"{port.name}: only an open port is served from the event loop")
        if not isinstance(transport, FaultyTransport):
            port.transport = transport = FaultyTransport(transport, LineFaults())  # no faults: a read buffer
        port.line = AsyncLine(asyncio.get_running_loop(), transport)

    async def in_background(self, call: Callable[[], T]) -> T:
        """``call()`` in an ``io:asyncio-open`` thread; what it opens after the loop has gone is closed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(outcome: T) -> None:  # in the loop's thread
            if future.cancelled():
                _close_quietly(outcome)
            else:
                future.set_result(outcome)

        def fail(error: BaseException) -> None:  # in the loop's thread
            if not future.cancelled():
                future.set_exception(error)

        def run() -> None:
            try:
                outcome = call()
            except BaseException as error:
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for the outcome
                    loop.call_soon_threadsafe(fail, error)
                return
            try:
                loop.call_soon_threadsafe(deliver, outcome)
            except RuntimeError:  # the loop has closed: nobody will use what was opened
                _close_quietly(outcome)

        self._openers = [t for t in self._openers if t.is_alive()]
        opener = threading.Thread(target=run, name="io:asyncio-open", daemon=True)
        self._openers.append(opener)
        opener.start()
        return await future


def _close_quietly(thing: object) -> None:
    close = getattr(thing, "close", None)
    if close is not None:
        with contextlib.suppress(*TRANSPORT_ERRORS):
            close()
