"""A serial port with a role: the transport, the decoder, the counters, and reconnection.

A ``Port`` is the same object whether an I/O thread drives it (threaded mode), the loop calls
it inline (blocking mode) or an event loop serves it (asyncio mode): ``exchange(letter)`` is one
unit of the role's work (write a command and wait for its reply, read until a frame arrives...),
always bounded by deadlines.  The decoder buffer and the sequence counters belong to the port,
not to a thread, so a switch between modes loses and duplicates nothing.

The roles write that unit once, as a coroutine over ``await self.send / receive / request``.
Without an event loop the coroutine never suspends (its reads and writes block, with
deadlines) and ``exchange`` runs it to the end in one ``send(None)``; in asyncio mode
(``sim.ports.aio``) ``exchange_async`` awaits it, and its reads and writes yield to the loop.

Errors are separated and never escape ``exchange``:

* a frame the codec cannot accept (bad framing or checksum, or a payload that does not fit, in
  any protocol) is counted in ``decode_errors`` and skipped;
* a transport error (device unplugged, far end killed) closes the port, records ``port_lost``,
  and later exchanges try to reopen it every ``RECONNECT_INTERVAL_S`` (``port_back`` when it works);
* any other exception (a bug in a role or a codec, a message the protocol cannot carry) ends
  that exchange only: it is counted in ``io_errors``, reported as an ``io_error`` event with its
  message (and logged with its traceback), and the port goes on.  A port whose every exchange
  has raised for ``FAILED_AFTER_S`` seconds and at least ``FAILED_AFTER_ERRORS`` exchanges in a
  row cannot go on: its state becomes ``failed`` for the rest of the flight (an ``io_error``
  event says why), its exchanges return None at once, and ``fly`` ends with exit status 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import serial

from sim.errors import PortError
from sim.ports.codecs import Codec, HsfCodec
from sim.ports.events import EventLog
from sim.ports.faults import Transport
from sim.ports.mailbox import Letter
from sim.ports.transport import TRANSPORT_ERRORS
from sim.ports.tx import FrameWriter, nonblocking_fd
from sim.stats import LogHistogram

if TYPE_CHECKING:
    from sim.log.writer import FlightLogWriter
    from sim.ports.aio import AsyncLine

__all__ = [
    "FAILED_AFTER_ERRORS",
    "FAILED_AFTER_S",
    "MAX_IO_ERROR_EVENTS",
    "RECONNECT_INTERVAL_S",
    "AsyncBackend",
    "Port",
    "PortState",
    "PortStats",
    "SequenceCheck",
    "run_to_end",
]

log = logging.getLogger(__name__)

RECONNECT_INTERVAL_S = 0.5
# a port fails when its exchanges have all raised for this long and at least this many in a row
FAILED_AFTER_S = 2.0
FAILED_AFTER_ERRORS = 10
MAX_IO_ERROR_EVENTS = 10  # io_error events per port (each a different error); later ones are only counted
_SEQ_MODULO = 1 << 16
_READ_CHUNK = 4096
_DRAIN_CHUNKS = 16  # at most 64 KiB read per drain
_ERROR_TEXT_MAX = 300  # characters of an error's repr in an event
_LOCK_TIMEOUT_S = 1.0  # longer than any exchange's deadlines: a stuck one is reported, not waited for
_LOCK_POLL_S = 0.001  # on an event loop, how often a held lock is tried again (the loop serves others between)
T = TypeVar("T")


async def _sleep(seconds: float) -> None:
    """A blocking sleep, awaitable: where no event loop serves the port, its waits block."""
    time.sleep(seconds)


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that does not suspend (its I/O blocks): no event loop needed."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("an exchange suspended outside an event loop (its port has no async backend)")


class AsyncBackend(Protocol):
    """What an event loop lends a port in asyncio mode (``sim.ports.aio.EventLoopWorker``)."""

    def attach(self, port: Port) -> None:
        """Serve ``port.transport`` from the event loop: sets ``port.line``."""

    async def in_background(self, call: Callable[[], T]) -> T:
        """Run a blocking call (opening a device) off the event loop's thread."""


class SequenceCheck:
    """Counts gaps (frames lost in transit) and repeats in a stream of 16-bit sequence numbers."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.gaps = 0  # frames missing
        self.repeats = 0
        self.count = 0

    def see(self, seq: int) -> None:
        self.count += 1
        if self.last is not None:
            step = (seq - self.last) % _SEQ_MODULO
            if step == 0:
                self.repeats += 1
            elif step < _SEQ_MODULO // 2:
                self.gaps += step - 1
            else:
                self.repeats += 1  # an old frame again
        self.last = seq

    def restart(self) -> None:
        """A new stream (after a reconnect): the next number starts a fresh count of gaps."""
        self.last = None


@dataclass
class PortStats:
    """What a port has done; the ``ports`` entries of the run summary."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    disconnects: int = 0
    reconnects: int = 0
    timeouts: int = 0  # replies that never came
    write_timeouts: int = 0  # writes the far end did not take in time (back-pressure, URL transports)
    frames_dropped: int = 0  # frames not sent: too much waited for the far end to take it (back-pressure)
    frames_discarded: int = 0  # frames the far end sent that this port's role has no use for (read, counted)
    io_errors: int = 0  # exchanges ended by an unexpected exception (a bug in a role or codec)
    rejected: int = 0  # frames decoded but of no use to the role (a vehicle outside the fleet): decode errors
    io_wait: LogHistogram = field(default_factory=LogHistogram)  # seconds inside exchange()
    round_trip: LogHistogram = field(default_factory=LogHistogram)  # request to reply
    rx_sequence: SequenceCheck = field(default_factory=SequenceCheck)


class PortState(StrEnum):
    """Where a port is (the summary's ``state``); ``Port._enter`` changes it and says so in an event."""

    CLOSED = "closed"
    OK = "ok"
    BACKPRESSURED = "backpressured"  # the far end does not take what is written
    TIMED_OUT = "timed out"  # a request went unanswered
    DISCONNECTED = "disconnected"  # the device went away: reopened every RECONNECT_INTERVAL_S
    FAILED = "failed"  # given up for the rest of the flight (``failure`` says why)


class Port:
    """Base of the roles in ``sim.ports.roles``; subclasses implement ``_exchange``."""

    role: ClassVar[str] = ""
    device: ClassVar[str] = ""  # the emulator (heli-sim device KIND) on the far end of a virtual port
    device_answers: ClassVar[bool] = False  # the device answers each message (its latency is simulated)
    # True: an I/O thread only calls exchange() when a newer letter is posted (outputs);
    # False: it calls exchange() back to back (readers, request/response links).
    waits_for_new_letter: ClassVar[bool] = True
    is_input: ClassVar[bool] = False
    failed_after_s: float = FAILED_AFTER_S  # the failed rule (module doc); a test may shorten it on an instance
    failed_after_errors: int = FAILED_AFTER_ERRORS

    def __init__(
        self,
        name: str,
        opener: Callable[[], Transport],
        events: EventLog,
        *,
        url: str,
        vehicle: int = 0,
        reply_timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        closer: Callable[[], None] | None = None,
        codec: Codec | None = None,
    ):
        self.name = name
        self.url = url
        self.vehicle = vehicle
        self.codec = codec or HsfCodec()
        self.protocol = self.codec.name
        self.reply_timeout_s = reply_timeout_s
        self._opener = opener
        self._closer = closer  # ends what the opener started besides the transport (an emulator)
        self._events = events
        self._clock = clock
        self.transport: Transport | None = None
        self.decoder = self.codec.new_decoder()
        self._earlier_decode_errors = 0  # counted by the decoders of streams before a reconnect
        self.stats = PortStats()
        self.state = PortState.CLOSED
        self.last_state = PortState.CLOSED  # the state before the last close (what the summary reports)
        # the session is closing the far end itself (the view, the keyboard's transmitter, at the end of
        # the flight): its hang-up is the end, not a lost device
        self.far_end_leaving = False
        self._tx_seq = 0
        self._tx = FrameWriter()  # bytes written that the far end has not taken yet
        # (transport, the fd its frames go to): found once per transport
        self._tx_fd: tuple[Transport | None, int | None] = (None, None)
        self._next_reconnect_t = 0.0
        self._lock = threading.Lock()  # one exchange at a time, whoever calls it
        self.abort = threading.Event()  # set when the flight stops: blocking waits give up at once
        self.backend: AsyncBackend | None = None  # the event loop serving this port (asyncio mode)
        self.line: AsyncLine | None = None  # how reads and writes reach the transport then
        self.letter_seen = 0  # the newest outbox letter an exchange took: no mode sends a letter twice
        self._lock_stuck = False
        # closes so far, counted under a lock of their own (never held over I/O): a reopen in an I/O
        # thread that a close overtook (a stop that could not wait for the thread) keeps nothing open
        self._closes = 0
        self._closes_lock = threading.Lock()
        self.recorder: FlightLogWriter | None = None  # every frame in and out is logged
        self.failure: str | None = None  # why the port failed (state "failed"), for the rest of the flight
        self._errors_in_a_row = 0  # exchanges that raised since the last one that did not
        self._first_error_t = 0.0  # when the first of them began
        self._io_error_events = 0
        self._last_error_text = ""

    # --- life cycle
    def open(self) -> None:
        """Open the transport now; ``PortError`` if it cannot be (missing, busy, forbidden)."""
        self.transport = self._opener()
        self._enter(PortState.OK)

    def close(self, end_far_end: bool = True) -> None:
        """Close the transport and, with ``end_far_end``, what the opener started with it (an emulator)."""
        if self.state != PortState.CLOSED:
            self.last_state = self.state
        self.detach_line()
        with self._closes_lock:
            self._closes += 1
            transport, self.transport = self.transport, None
        self._tx_fd = (None, None)  # its fd number may be given to another file
        if transport is not None:
            with contextlib.suppress(*TRANSPORT_ERRORS):  # closing a port whose device is gone
                transport.close()
        if self._closer is not None and end_far_end:
            self._closer()
        self._enter(PortState.CLOSED)

    def cancel(self) -> None:
        """Make a blocking read in another thread return now (used to stop I/O threads).

        Writes need no cancelling: a device's never waits (``sim.ports.tx``), and a URL
        transport's ends by its ``write_timeout`` (0.25 s at most), within the stop deadline.
        """
        transport = self.transport
        cancel = getattr(transport, "cancel_read", None) if transport is not None else None
        if cancel is not None:
            # gone already: the blocked call fails anyway; loop:// with a full queue: its read is not waiting
            with contextlib.suppress(*TRANSPORT_ERRORS, queue.Full):
                cancel()

    def serve_from(self, backend: AsyncBackend) -> None:
        """Lend the port to an event loop (asyncio mode; in the loop's thread).  A device found
        gone here is counted lost, and reopened by a later exchange."""
        self.backend = backend
        if self.transport is not None and self.state != PortState.FAILED:
            try:
                backend.attach(self)
            except TRANSPORT_ERRORS as error:
                self._lost(error)

    def stop_serving(self) -> None:
        """Take the port back from the event loop (in the loop's thread): reads and writes block again."""
        self.detach_line()
        self.backend = None

    def detach_line(self) -> None:
        line, self.line = self.line, None
        if line is not None:
            line.detach()

    # --- the unit of work
    def exchange(self, letter: Letter | None) -> Any:
        """One bounded piece of the role's I/O; returns what came in (or None).  Never raises an
        ``Exception`` (see the module's doc for where each kind of error goes)."""
        return run_to_end(self.exchange_async(letter))

    async def exchange_async(self, letter: Letter | None) -> Any:
        """``exchange`` as a coroutine: it suspends only where an event loop serves the port."""
        if letter is not None:
            self.letter_seen = max(self.letter_seen, letter.seq)
        if self.state == PortState.FAILED:
            return None
        if not await self._take_lock():  # an I/O thread that would not stop still has it
            if not self._lock_stuck:
                self._lock_stuck = True
                self._events.push("port_stuck", f"{self.name}: an earlier exchange has not ended")
            return None
        try:
            start = self._clock()
            try:
                if self.transport is None and not await self._reconnect(start):
                    return None
                try:
                    result = await self._exchange(letter)
                except TRANSPORT_ERRORS as error:
                    self._lost(error)
                    return None
                self._errors_in_a_row = 0
                return result
            except Exception as error:  # a bug in a role or codec: this exchange ends, the port goes on
                self._io_error(error, start)
                return None
            finally:
                self.stats.io_wait.add(self._clock() - start)
        finally:
            self._lock.release()

    async def _take_lock(self) -> bool:
        """The port's exchange lock within ``_LOCK_TIMEOUT_S``.  On an event loop (asyncio mode) it is
        tried without blocking and waited for in the loop's own sleeps, so the other ports it serves go
        on meanwhile; an I/O thread (or the loop's own, inline) may block on it."""
        if self.backend is None:
            return self._lock.acquire(timeout=_LOCK_TIMEOUT_S)
        give_up = time.monotonic() + _LOCK_TIMEOUT_S
        while not self._lock.acquire(blocking=False):
            if time.monotonic() >= give_up:
                return False
            await asyncio.sleep(_LOCK_POLL_S)
        return True

    def read_what_is_left(self) -> None:
        """After the I/O has stopped (``abort`` set): one last exchange of an input port, if bytes
        wait, so what its far end sent before the flight ended is counted, not left unread in
        the kernel's buffer as the port closes.  It reads what waits and returns (never waits)."""
        if not self.is_input or self.transport is None or self.state == PortState.FAILED:
            return
        try:
            waiting = self._in_waiting()
        except TRANSPORT_ERRORS:
            return
        if waiting:
            self.exchange(None)

    @property
    def resting(self) -> bool:
        """True when the last exchange found no device or raised: a reader that calls ``exchange``
        back to back waits a little before the next (a reconnect attempt, a retry)."""
        return self.transport is None or self._errors_in_a_row > 0

    def _io_error(self, error: Exception, started: float) -> None:
        """Count an exchange ended by ``error``; report it (the first of each kind); fail the port if
        no exchange has ended well for ``failed_after_s`` and ``failed_after_errors`` exchanges."""
        self.stats.io_errors += 1
        if self._errors_in_a_row == 0:
            self._first_error_t = started
        self._errors_in_a_row += 1
        text = repr(error)[:_ERROR_TEXT_MAX]
        if text != self._last_error_text and self._io_error_events < MAX_IO_ERROR_EVENTS:
            self._io_error_events += 1
            self._last_error_text = text
            log.warning("port %s: an exchange raised %s; the port goes on", self.name, text)
            log.info("port %s: where %s was raised", self.name, text, exc_info=error)  # heli-sim -v shows it
            last = self._io_error_events == MAX_IO_ERROR_EVENTS
            self._events.push("io_error", f"{self.name}: {text}" + ("; later ones are only counted" if last else ""))
        failing_s = self._clock() - self._first_error_t
        count = self._errors_in_a_row
        if count >= self.failed_after_errors and failing_s >= self.failed_after_s:
            self.fail(f"every exchange for {failing_s:.1f} s ({count} in a row) raised, the last {text}")

    def fail(self, reason: str) -> None:
        """Give the port up for the rest of the flight: state ``failed``, an ``io_error`` event with
        ``reason``; its exchanges return None at once from now on.  Any thread may call it."""
        if self.state == PortState.FAILED:
            return
        self.failure = reason
        log.error("port %s failed: %s", self.name, reason)
        self._enter(PortState.FAILED, "io_error", f"{self.name} failed: {reason}")

    async def _exchange(self, letter: Letter | None) -> Any:
        raise NotImplementedError

    # --- bytes: straight to the transport (blocking, with deadlines), or through the event loop
    async def _write(self, data: bytes) -> bool:
        """Hand one whole frame to the far end without waiting for it (``sim.ports.tx``): False if
        it was dropped because too much already waits for the far end to take.  A URL transport writes
        with its own write timeout (``SerialTimeoutException``, ``queue.Full`` from loop://)."""
        transport, line = self.transport, self.line
        fd = self._fd_for_writes()
        if fd is None:
            if line is None:
                self._open_transport().write(data)
            else:
                await line.write(data)
            return True
        if line is not None:
            line.check()  # the event loop saw the device go
        outgoing = getattr(transport, "outgoing", None)  # a FaultyTransport: the injected output faults
        if outgoing is not None:
            pace_s, data = outgoing(data)
            if pace_s:  # a slow UART: the line takes this long (bounded: one frame)
                await (asyncio.sleep(pace_s) if line is not None else _sleep(pace_s))
        return self._tx.offer(fd, data) if data else True

    def _fd_for_writes(self) -> int | None:
        """``nonblocking_fd`` of the transport now, looked up once per transport object (not per frame)."""
        transport = self.transport
        if self._tx_fd[0] is not transport:
            self._tx_fd = (transport, nonblocking_fd(transport))
        return self._tx_fd[1]

    @property
    def tx_waiting(self) -> int:
        """Bytes this port has written that its far end has not taken yet (``sim.ports.tx``)."""
        return self._tx.waiting

    async def flush_tail(self) -> None:
        """Send on what waits for the far end to take it (nothing if nothing waits)."""
        fd = self._fd_for_writes() if self._tx.waiting else None
        if fd is not None and self._tx.flush(fd) and self.state == PortState.BACKPRESSURED:
            self._back_from_backpressure()

    async def _read(self, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes; b"" after one read quantum (or at ``deadline``) if none came."""
        line = self.line
        if line is None:
            return self._open_transport().read(size)
        return await line.read(size, deadline)

    def _in_waiting(self) -> int:
        line = self.line
        return self._open_transport().in_waiting if line is None else line.in_waiting

    def _open_transport(self) -> Transport:
        """The transport of an exchange under way; ``RuntimeError`` if the port was closed meanwhile."""
        transport = self.transport
        if transport is None:
            raise RuntimeError(f"{self.name}: the port was closed during an exchange")
        return transport

    # --- helpers for the roles
    async def send(self, message: Any) -> bool:
        """Encode and write one message with the next sequence number; False on back-pressure."""
        seq = self._tx_seq
        data = self.codec.encode(message, seq)
        self._tx_seq = (seq + 1) % _SEQ_MODULO
        if not data:  # nothing due (a rate-limited protocol)
            return True
        try:
            sent = await self._write(data)
        except (serial.SerialTimeoutException, queue.Full):  # loop:// says Full where a device times out
            self.stats.write_timeouts += 1
            sent = False
        else:
            self.stats.frames_dropped += not sent
        if not sent:
            if self.state != PortState.BACKPRESSURED:
                self._enter(PortState.BACKPRESSURED, "port_backpressure", f"{self.name}: far end is not reading")
            return False
        self.stats.frames_out += 1
        self.stats.bytes_out += len(data)
        if self.recorder is not None:
            self.recorder.record_frame(
                self.name, 1, message, (self._tx_seq - 1) % _SEQ_MODULO, len(data), self._clock()
            )
        if self.state == PortState.BACKPRESSURED:
            self._back_from_backpressure()
        return True

    def _back_from_backpressure(self) -> None:
        self._enter(PortState.OK, "port_ok", f"{self.name}: the far end reads again")

    def _enter(self, state: PortState, event: str | None = None, detail: str = "") -> None:
        """The one place a port's state changes; ``event`` (with ``detail``), the event that says so."""
        self.state = state
        if event is not None:
            self._events.push(event, detail)

    async def send_all(self, messages: Iterable[Any]) -> bool:
        """``send`` each message in turn; stop at the first the far end does not take (False), and
        count the rest as dropped with it.

        Where a write has a timeout (a URL transport), a far end that is not reading would hold
        every remaining write for its whole timeout: one write timeout per exchange, not one per
        message.
        """
        messages = list(messages)
        for index, message in enumerate(messages):
            if not await self.send(message):
                self.stats.frames_dropped += len(messages) - index - 1
                return False
        return True

    @property
    def next_seq(self) -> int:
        return self._tx_seq

    async def receive(
        self, deadline: float, until: Callable[[int | None, Any], bool] | None = None, *, drain: bool = False
    ) -> list[tuple[int | None, Any, float]]:
        """Read and decode until ``until(seq, message)`` is true for a message, or ``deadline``.

        Returns every (seq, message, t_received) decoded on the way (seq None where the protocol
        has no sequence numbers); with ``until`` None, as
        soon as anything decodes.  With ``drain``, once satisfied it also takes every byte that
        is already waiting (without waiting for more), so a reader that was held up catches up.
        """
        out: list[tuple[int | None, Any, float]] = []
        satisfied = False
        while True:
            waiting = self._in_waiting()
            if satisfied and not waiting:
                return out
            data = await self._read(min(max(waiting, 1), _READ_CHUNK), deadline)
            now = self._clock()
            if data:
                for seq, message, t in self._decode(data, now):
                    out.append((seq, message, t))
                    satisfied = satisfied or until is None or until(seq, message)
                if satisfied and not drain:
                    return out
            if now >= deadline or self.abort.is_set():
                return out

    async def take_waiting(self) -> list[tuple[int | None, Any, float]]:
        """Read and decode every byte the far end has sent, without waiting for more, and send on
        a frame tail that waits: what a port does between its exchanges, so that a far end is
        always read, whatever it sends, and never blocks on a full buffer of ours."""
        await self.flush_tail()
        out: list[tuple[int | None, Any, float]] = []
        for _ in range(_DRAIN_CHUNKS):  # bounded: a far end sending faster than we read is read next time
            waiting = self._in_waiting()
            if not waiting:
                break
            data = await self._read(min(waiting, _READ_CHUNK), self._clock())
            out.extend(self._decode(data, self._clock()))
        return out

    def _decode(self, data: bytes, now: float) -> list[tuple[int | None, Any, float]]:
        """The messages completed by ``data`` (counted and logged), each with the time it came."""
        self.stats.bytes_in += len(data)
        out = []
        for seq, message in self.decoder.feed(data):
            self.stats.frames_in += 1
            if self.recorder is not None:
                self.recorder.record_frame(self.name, 0, message, seq, 0, now)
            out.append((seq, message, now))
        return out

    async def discard_waiting(self) -> None:
        """``take_waiting``, for a role that has no use for what comes back: counted in ``frames_discarded``."""
        self.stats.frames_discarded += len(await self.take_waiting())

    async def request(
        self, message: Any, is_reply: Callable[[Any, int], bool], on_sent: Callable[[float], None] | None = None
    ) -> Any:
        """Send ``message`` and wait up to ``reply_timeout_s`` for the reply ``is_reply(msg, seq)``.

        ``on_sent(t)`` is called once the message is written.  Round trips are timed; a reply
        that does not come counts as a timeout and marks the port "timed out" until the next
        one does.  Returns the reply, or None.
        """
        seq = self.next_seq
        sent_at = self._clock()
        if not await self.send(message):
            return None
        if on_sent is not None:
            on_sent(self._clock())
        for _seq, reply, t in await self.receive(sent_at + self.reply_timeout_s, lambda _s, m: is_reply(m, seq)):
            if is_reply(reply, seq):
                self.stats.round_trip.add(t - sent_at)
                if self.state == PortState.TIMED_OUT:
                    self._enter(PortState.OK, "port_ok", f"{self.name}: answering again")
                return reply
        if not self.abort.is_set():  # a wait cut short by a stopping flight is no device timeout
            self.stats.timeouts += 1
            if self.state != PortState.TIMED_OUT:
                timeout_ms = self.reply_timeout_s * 1e3
                self._enter(PortState.TIMED_OUT, "port_timeout", f"{self.name}: no reply in {timeout_ms:g} ms")
        return None

    @property
    def decode_errors(self) -> int:
        """Frames rejected: by the decoders (framing, checksum, payload) and by the role (``stats.rejected``)."""
        return self._earlier_decode_errors + self.decoder.decode_errors + self.stats.rejected

    # --- losing and finding the device
    def _lost(self, error: BaseException) -> None:
        # an event loop must not wait for an emulator to end: the next open (in the background) or
        # the final close ends it, and it sees the hang-up and exits meanwhile
        if self.state == PortState.FAILED:  # given up already: its state says so to the end
            return
        if self.far_end_leaving:
            self.close(end_far_end=False)
            return
        self.close(end_far_end=self.backend is None)
        self.stats.disconnects += 1
        self._next_reconnect_t = self._clock() + RECONNECT_INTERVAL_S
        self._enter(PortState.DISCONNECTED, "port_lost", f"{self.name} ({self.url}): {error}")

    async def _reconnect(self, now: float) -> bool:
        if now < self._next_reconnect_t:
            return False
        self._next_reconnect_t = now + RECONNECT_INTERVAL_S
        backend = self.backend
        closes = self._closes
        try:  # opening can take a while (a virtual device restarts its emulator): not on the event loop
            opened = self._opener() if backend is None else await backend.in_background(self._opener)
        except (PortError, *TRANSPORT_ERRORS):
            return False
        with self._closes_lock:  # (an event loop's reopen is never overtaken: in_background closes a late one)
            overtaken = self._closes != closes
            if not overtaken:
                self.transport = opened
        if overtaken:  # closed while it opened (an I/O thread the stop did not wait for): not reopened
            with contextlib.suppress(*TRANSPORT_ERRORS):
                opened.close()
            if self._closer is not None:
                self._closer()  # and what the opener started with it (an emulator)
            return False
        if backend is not None:
            try:
                backend.attach(self)
            except TRANSPORT_ERRORS:
                self.close(end_far_end=False)
                return False
        self._earlier_decode_errors += self.decoder.decode_errors
        self.decoder = self.codec.new_decoder()  # a new stream: no half frame from before the loss
        self._tx.forget()  # nor half of one to it
        self.stats.rx_sequence.restart()
        self.stats.reconnects += 1
        self._enter(PortState.OK, "port_back", f"{self.name} ({self.url})")
        return True

    def summary(self) -> dict:
        """This port's entry in the ``ports`` list of the run summary (contract keys first)."""
        s = self.stats
        return {
            "name": self.name,
            "role": self.role,
            "protocol": self.protocol,
            "url": self.url,
            "frames_in": s.frames_in,
            "frames_out": s.frames_out,
            "bytes_in": s.bytes_in,
            "bytes_out": s.bytes_out,
            "decode_errors": self.decode_errors,
            "io_wait_ms": s.io_wait.summary(1e3, 3),
            "disconnects": s.disconnects,
            "reconnects": s.reconnects,
            "timeouts": s.timeouts,
            "write_timeouts": s.write_timeouts,
            "frames_dropped": s.frames_dropped,
            "frames_discarded": s.frames_discarded,
            "io_errors": s.io_errors,
            "round_trip_ms": s.round_trip.summary(1e3, 3),
            "rx_sequence_gaps": s.rx_sequence.gaps,
            "rx_sequence_repeats": s.rx_sequence.repeats,
            "state": str(self.state if self.state != PortState.CLOSED else self.last_state),
        }
