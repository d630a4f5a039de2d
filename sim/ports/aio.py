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
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import serial
from serial_asyncio_fast import SerialTransport

from sim.ports.faults import FaultyTransport, LineFaults
from sim.ports.mailbox import Mailbox
from sim.ports.port import Port
from sim.ports.transport import TRANSPORT_ERRORS

__all__ = ["AsyncLine", "EventLoopWorker"]

T = TypeVar("T")

_READ_QUANTUM_S = 0.02  # where a transport has no read timeout: how often deadlines and abort are re-checked
_WAIT_QUANTUM_S = 0.05  # a lost reader waits this long between reconnect attempts
_START_TIMEOUT_S = 2.0


class _Borrowed:
    """The pyserial object as ``SerialTransport`` sees it: reads and writes go through; it may
    not flush or close it (the port owns it and keeps it across mode switches)."""

    def __init__(self, real: serial.SerialBase):
        self._real = real

    def fileno(self) -> int:
        return self._real.fileno()

    def read(self, size: int) -> bytes:
        return self._real.read(size)

    def write(self, data: bytes) -> int | None:
        return self._real.write(data)

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
        self._loop = loop
        self._faulty = faulty
        self._real = faulty.real
        self._saved_timeouts = (self._real.timeout, self._real.write_timeout)
        self._write_timeout_s = self._real.write_timeout or 0.0
        self._read_quantum_s = self._real.timeout or _READ_QUANTUM_S
        self._lost: BaseException | None = None
        self._readable: asyncio.Future | None = None  # a read waiting for bytes
        self._drained: asyncio.Future | None = None  # a write waiting for the far end to take its bytes
        self._transport = SerialTransport(loop, self, _Borrowed(self._real))  # sets both timeouts to 0
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
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    def _wake_writer(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- the port's reads and writes
    def _check(self) -> None:
        if self._lost is not None:
            raise serial.SerialException(f"device lost: {self._lost}")
        self._faulty.check_plugged()

    @property
    def in_waiting(self) -> int:
        self._check()
        return self._faulty.ready

    async def read(self, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes; waits at most one read quantum (and not past ``deadline``)."""
        self._check()
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
        self._check()
        return self._faulty.take(size)

    async def write(self, data: bytes) -> None:
        """Write ``data``; returns once the far end's kernel has it, ``SerialTimeoutException`` if not in time."""
        self._check()
        pace_s, data = self._faulty.outgoing(data)
        if pace_s:
            await asyncio.sleep(pace_s)  # a slow UART: the line takes this long, and the loop serves others
        if not data:
            return
        if self._transport.get_write_buffer_size():  # a write that timed out earlier is still going
            await self._until_drained()
        self._transport.write(data)
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
        self._check()
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
        with contextlib.suppress(*TRANSPORT_ERRORS):  # a vanished device: it is being closed anyway
            self._real.timeout, self._real.write_timeout = self._saved_timeouts


class EventLoopWorker:
    """Thread ``io:asyncio``: one task per port, one event loop for all of them.

    Owned by a ``PortSet``: ``start()`` it, ``notify()`` it when new letters are posted,
    ``stop(timeout)`` it.  Ports must be open (or lost, to be reopened by their exchange).
    """

    def __init__(self, ports: Iterable[Port], outboxes: dict[str, Mailbox], inboxes: dict[str, Mailbox]):
        self.ports = list(ports)
        self.outboxes = outboxes
        self.inboxes = inboxes
        self.error: BaseException | None = None
        self.stuck: list[str] = []  # ports whose task did not end in time at the last stop
        self._thread = threading.Thread(target=self._run, name="io:asyncio", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stop_requested = False
        self._stop_deadline = 0.0
        self._letters: dict[str, asyncio.Event] = {}
        self._stopping: asyncio.Event | None = None

    # --- the owner's side (any thread but io:asyncio)
    def start(self) -> None:
        """Start the loop and attach every open port to it; returns once it serves them."""
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S):
            raise RuntimeError("the asyncio I/O thread did not start")
        if self.error is not None:
            raise self.error

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
        return not self._thread.is_alive()

    # --- in the loop's thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve_all(loop))
            loop.run_until_complete(loop.shutdown_default_executor())  # joins its helper threads
        except BaseException as error:  # kept for the owner to report; the thread must not die silently
            self.error = error
            self._started.set()
            raise
        finally:
            loop.close()

    async def _serve_all(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stopping = asyncio.Event()
        self._letters = {port.name: asyncio.Event() for port in self.ports}
        for port in self.ports:
            port.backend = self
            if port.transport is not None:
                self.attach(port)
        self._loop = loop
        tasks = {loop.create_task(self._serve(port), name=f"io:{port.name}"): port for port in self.ports}
        self._started.set()
        try:
            await self._stopping.wait()
            leeway = max(0.0, self._stop_deadline - time.monotonic() - 0.05)  # keep time to detach and join
            _, late = await asyncio.wait(tasks, timeout=leeway)
            self.stuck = [tasks[task].name for task in late]
            for task in late:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception) and self.error is None:
                    self.error = outcome  # a bug in a role: kept for the owner to report
        finally:
            for port in self.ports:
                port.detach_line()
                port.backend = None

    def _begin_stop(self) -> None:
        self._wake_outputs()
        if self._stopping is not None:
            self._stopping.set()

    def _wake_outputs(self) -> None:
        for event in self._letters.values():
            event.set()

    async def _serve(self, port: Port) -> None:
        outbox, inbox, letters = self.outboxes[port.name], self.inboxes[port.name], self._letters[port.name]
        seen = 0
        while not self._stop_requested:
            letter = outbox.latest()
            if port.waits_for_new_letter:
                if letter is None or letter.seq <= seen:
                    letters.clear()
                    await letters.wait()  # set by notify() or stop()
                    continue
                seen = letter.seq
            result = await port.exchange_async(letter)
            if result is not None:
                inbox.put(result, time.monotonic())
            elif port.transport is None and not port.waits_for_new_letter:
                # a lost reader: wait a little before the next reconnect attempt, stoppably
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _WAIT_QUANTUM_S)

    # --- AsyncBackend, for the ports
    def attach(self, port: Port) -> None:
        """Serve ``port``'s transport from this loop (its bytes then pass through an ``AsyncLine``)."""
        if not isinstance(port.transport, FaultyTransport):
            port.transport = FaultyTransport(port.transport, LineFaults())  # no faults: a read buffer
        port.line = AsyncLine(asyncio.get_running_loop(), port.transport)

    async def in_background(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, call)
