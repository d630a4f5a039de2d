"""Virtual serial port pairs made of ptys and bridged by one loop: what ``heli-sim vports`` runs.

A pair is two pty slave paths, A and B: bytes written to A are read from B and the other way
round, like ``socat pty,raw,echo=0 pty,raw,echo=0``.  Every slave is put in raw mode once and
then closed, so the bridge sees who is attached: reading a master whose slave nobody has open
gives EIO (and the master polls as hung up).

Behaviour at the edges (measured on Linux 6.18):

* Bytes written while nobody has the far end open are dropped and counted
  (``dropped_unattached``), as on a cable whose other end is unplugged: a program that opens
  the far end later does not read stale frames.  Bytes a previous opener left unread in its
  slave stay there for the next opener (the kernel keeps them; a master cannot flush them).
* An end that nobody has open is re-checked every ``REATTACH_POLL_S`` seconds, not watched, so
  an idle bridge does not spin; a newly opened end is noticed within that time (its bytes wait
  in the kernel meanwhile).
* A far end that is open but not reading: the kernel takes about 20 KiB, then the bridge keeps
  at most ``PENDING_LIMIT_BYTES`` per direction and drops the oldest beyond that
  (``dropped_overflow``): when the reader catches up it sees the newest bytes.
* Baud rate, parity and stop bits are ignored, and there is no wire timing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import selectors
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import PortError

__all__ = [
    "PENDING_LIMIT_BYTES",
    "REATTACH_POLL_S",
    "DirectionStats",
    "PairPaths",
    "PairStats",
    "PtyBridge",
]

log = logging.getLogger(__name__)

PENDING_LIMIT_BYTES = 64 * 1024  # per direction, on top of the ~20 KiB the kernel holds
REATTACH_POLL_S = 0.05  # how often an end that nobody has open is re-checked
_READ_CHUNK_BYTES = 65536
_WRITE_CHUNK_BYTES = 65536


@dataclass(frozen=True)
class PairPaths:
    """Where a pair lives: the two slave paths, and the symlinks to them if any were asked for."""

    index: int
    a: str
    b: str
    a_link: str | None = None
    b_link: str | None = None


@dataclass
class DirectionStats:
    """Byte counts of one direction of a pair (written by the bridge's loop; read them after ``run``)."""

    forwarded: int = 0  # handed to the far end's kernel buffer
    dropped_overflow: int = 0  # oldest bytes dropped: the far end is open but was not reading
    dropped_unattached: int = 0  # dropped: nobody had the far end open

    @property
    def dropped(self) -> int:
        return self.dropped_overflow + self.dropped_unattached


@dataclass
class PairStats:
    a_to_b: DirectionStats = field(default_factory=DirectionStats)
    b_to_a: DirectionStats = field(default_factory=DirectionStats)


class _End:
    """One pty of a pair: its master, and the bytes waiting to be written into it (towards its reader)."""

    def __init__(self, name: str, master: int, path: str, incoming: DirectionStats):
        self.name = name  # "vport0a"
        self.master = master
        self.path = path
        self.incoming = incoming  # the stats of the direction that ends at this pty
        self.peer: _End = self
        self.pending = bytearray()
        self.events = 0  # what the selector watches on the master; 0 = not registered
        self.attached = False  # the bridge closed the slave after making it raw; nobody else has it yet
        self.poller = select.poll()
        self.poller.register(master, select.POLLIN)

    def revents(self) -> int:
        """The master's poll flags right now, without consuming anything: POLLHUP = nobody has the slave open."""
        flags = 0
        for _, revents in self.poller.poll(0):
            flags |= revents
        return flags

    def hung_up(self) -> bool:
        return bool(self.revents() & select.POLLHUP)


class PtyBridge:
    """``pairs`` pty pairs, forwarded both ways by ``run()`` in the caller's thread.

    Open in the constructor (raises ``PortError``), close with ``close()`` or ``with``.  ``run``
    blocks in one thread at a time; ``stop()`` may be called from any thread or a signal
    handler.  With ``link_dir``, symlinks ``link_dir/vport{i}a`` and ``vport{i}b`` point at the
    slaves (an existing symlink of that name is replaced; anything else is an error); ``close()``
    removes the ones that still point at this bridge's slaves.
    """

    def __init__(
        self,
        pairs: int = 1,
        *,
        link_dir: str | os.PathLike | None = None,
        pending_limit_bytes: int = PENDING_LIMIT_BYTES,
        reattach_poll_s: float = REATTACH_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if pairs < 1:
            raise ValueError(f"pairs: expected at least 1, got {pairs}")
        self._pending_limit = pending_limit_bytes
        self._reattach_poll_s = reattach_poll_s
        self._clock = clock
        self._stop_requested = False
        self._ends: list[_End] = []
        self._links: list[tuple[Path, str]] = []
        self._wake_r = self._wake_w = -1
        self._selector: selectors.BaseSelector | None = None
        self.paths: list[PairPaths] = []
        self.stats: list[PairStats] = []
        self.wakeups = 0  # how often the loop woke up: an idle bridge should barely count
        try:
            self._open(pairs, None if link_dir is None else Path(link_dir))
        except BaseException:
            self.close()
            raise

    def _open(self, pairs: int, link_dir: Path | None) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        for index in range(pairs):
            stats = PairStats()
            a = self._open_end(f"vport{index}a", stats.b_to_a)
            b = self._open_end(f"vport{index}b", stats.a_to_b)
            a.peer, b.peer = b, a
            a_link = b_link = None
            if link_dir is not None:
                a_link = self._link(link_dir / a.name, a.path)
                b_link = self._link(link_dir / b.name, b.path)
            self.stats.append(stats)
            self.paths.append(PairPaths(index, a.path, b.path, a_link, b_link))

    def _open_end(self, name: str, incoming: DirectionStats) -> _End:
        try:
            master, slave = os.openpty()
        except OSError as error:
            raise PortError(f"cannot make a pty for {name}: {error}") from None
        try:
            path = os.ttyname(slave)
            tty.setraw(slave)  # without it the line discipline turns 0D into 0A, echoes, waits for newlines
            os.set_blocking(master, False)
            end = _End(name, master, path, incoming)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the bridge keeps no slave open: EIO on the master then means "nobody attached"
        self._ends.append(end)
        return end

    def _link(self, link: Path, target: str) -> str:
        try:
            if link.is_symlink():
                tmp = link.with_name(f".{link.name}.{os.getpid()}")
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target)
                os.replace(tmp, link)
            else:
                link.symlink_to(target)
        except FileExistsError:
            raise PortError(f"{link}: exists and is not a symlink; not replacing it") from None
        except OSError as error:
            raise PortError(f"{link}: cannot make a symlink: {error.strerror}") from None
        self._links.append((link, target))
        return str(link)

    def __enter__(self) -> PtyBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stop(self) -> None:
        """Make ``run`` return soon (and any later ``run`` at once).  Any thread, or a signal handler."""
        self._stop_requested = True
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is already pending
                os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Close every fd and remove the symlinks.  Call after ``run`` has returned; idempotent."""
        for link, target in reversed(self._links):
            try:
                if os.readlink(link) == target:
                    link.unlink()
            except OSError:  # already gone or replaced by someone else: not ours to remove any more
                pass
        self._links.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        for end in reversed(self._ends):
            os.close(end.master)
        self._ends.clear()
        wake_r, wake_w = self._wake_r, self._wake_w
        self._wake_r = self._wake_w = -1
        for fd in (wake_w, wake_r):
            if fd >= 0:
                os.close(fd)

    def run(self, deadline: float | None = None) -> None:
        """Forward bytes until ``stop()`` or until the clock reaches ``deadline`` (None: no deadline).

        Blocks the calling thread; returns within one loop turn of ``stop()``.
        """
        if self._selector is None:
            raise PortError("the pty bridge is closed")
        selector = self._selector
        next_recheck = self._clock()
        while not self._stop_requested:
            now = self._clock()
            if deadline is not None and now >= deadline:
                return
            if now >= next_recheck:
                self._recheck_unattached()
                next_recheck = now + self._reattach_poll_s
            timeout = None
            if any(end.events == 0 for end in self._ends):
                timeout = max(0.0, next_recheck - now)
            if deadline is not None:
                timeout = max(0.0, deadline - now) if timeout is None else min(timeout, deadline - now)
            ready = selector.select(timeout)
            self.wakeups += 1
            for key, events in ready:
                end = key.data
                if end is None:
                    self._drain_wake_pipe()
                    continue
                if events & selectors.EVENT_READ and end.events & selectors.EVENT_READ:
                    self._read(end)
                if events & selectors.EVENT_WRITE and end.events & selectors.EVENT_WRITE:
                    self._deliver(end)

    def _drain_wake_pipe(self) -> None:
        with contextlib.suppress(BlockingIOError):  # empty now
            while os.read(self._wake_r, 4096):
                pass

    def _watch(self, end: _End, events: int) -> None:
        assert self._selector is not None
        if events == end.events:
            return
        if end.events == 0:
            self._selector.register(end.master, events, end)
        elif events == 0:
            self._selector.unregister(end.master)
        else:
            self._selector.modify(end.master, events, end)
        end.events = events

    def _set_attached(self, end: _End, attached: bool) -> None:
        if attached != end.attached:
            log.info("%s (%s): %s", end.name, end.path, "opened" if attached else "closed")
        end.attached = attached
        if attached:
            self._watch(end, selectors.EVENT_READ | (selectors.EVENT_WRITE if end.pending else 0))
        else:
            # nobody to read what is waiting: drop it rather than leave it for the next opener
            end.incoming.dropped_unattached += len(end.pending)
            end.pending.clear()
            self._watch(end, 0)

    def _recheck_unattached(self) -> None:
        for end in self._ends:
            if end.events:
                continue
            revents = end.revents()
            if not revents & select.POLLHUP:
                self._set_attached(end, True)
            elif revents & select.POLLIN:  # the last opener wrote bytes before leaving: read them, then EIO again
                self._watch(end, selectors.EVENT_READ)

    def _read(self, end: _End) -> None:
        try:
            data = os.read(end.master, _READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.EIO:
                raise PortError(f"{end.name} ({end.path}): read failed: {error.strerror}") from None
            data = b""
        if not data:  # EIO: nobody has the slave open; re-checked on the timer, not watched
            self._set_attached(end, False)
            return
        self._forward(data, end.peer)

    def _forward(self, data: bytes, to: _End) -> None:
        if to.hung_up():
            self._set_attached(to, False)
            to.incoming.dropped_unattached += len(data)
            return
        self._set_attached(to, True)
        to.pending += data
        excess = len(to.pending) - self._pending_limit
        if excess > 0:
            del to.pending[:excess]
            to.incoming.dropped_overflow += excess
        self._deliver(to)

    def _deliver(self, end: _End) -> None:
        """Write what is pending into ``end``'s master until the kernel would block."""
        if end.hung_up():
            self._set_attached(end, False)
            return
        while end.pending:
            try:
                written = os.write(end.master, end.pending[:_WRITE_CHUNK_BYTES])
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno != errno.EIO:
                    raise PortError(f"{end.name} ({end.path}): write failed: {error.strerror}") from None
                self._set_attached(end, False)
                return
            del end.pending[:written]
            end.incoming.forwarded += written
        self._watch(end, selectors.EVENT_READ | (selectors.EVENT_WRITE if end.pending else 0))
