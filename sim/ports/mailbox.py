"""One-slot, overwrite-on-put hand-off of state between an I/O thread and the loop.

State (sticks, commands, snapshots) wants "latest wins", not a queue: a reader that falls behind
should see the newest value, never a backlog.  Each ``put`` stamps the value with the monotonic
time and a sequence number, so a reader sees how stale a value is and whether it is new.
Thread-safe; ``latest`` never blocks; ``wait_newer`` blocks up to its timeout.
"""

from __future__ import annotations

import threading
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Letter", "Mailbox"]

T = TypeVar("T")


class Letter(NamedTuple, Generic[T]):
    """A value with the time it was posted (monotonic seconds) and its sequence number (1, 2, ...)."""

    value: T
    t_monotonic: float
    seq: int


class Mailbox(Generic[T]):
    """Holds only the latest ``Letter``; ``put`` overwrites."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._letter: Letter[T] | None = None
        self._seq = 0

    def put(self, value: T, t_monotonic: float) -> Letter[T]:
        with self._changed:
            self._seq += 1
            self._letter = Letter(value, t_monotonic, self._seq)
            self._changed.notify_all()
            return self._letter

    def latest(self) -> Letter[T] | None:
        """The newest letter, or None if nothing was ever posted (never blocks)."""
        return self._letter

    def wait_newer(self, after_seq: int, timeout_s: float, abort: threading.Event | None = None) -> Letter[T] | None:
        """Block up to ``timeout_s`` for a letter with ``seq > after_seq``; None on timeout or abort."""

        def ready() -> bool:
            return (abort is not None and abort.is_set()) or (self._letter is not None and self._letter.seq > after_seq)

        with self._changed:
            self._changed.wait_for(ready, timeout_s)
            letter = self._letter
            return letter if letter is not None and letter.seq > after_seq else None

    def wake(self) -> None:
        """Wake every waiter so it re-checks its abort event: used when stopping a thread."""
        with self._changed:
            self._changed.notify_all()
