"""A bounded, thread-safe log of port events (lost, back, timed out) for the loop to drain.

Overflow policy: when full, the oldest event is dropped and counted in ``dropped``; the newest
is always kept (what a user needs is the current story, and the count says something was lost).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple

__all__ = ["EventLog", "PortEvent"]


class PortEvent(NamedTuple):
    t_monotonic: float
    kind: str
    detail: str


class EventLog:
    """Append from any thread, drain from the loop."""

    def __init__(self, capacity: int = 1024):
        self._events: deque[PortEvent] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._pushed = threading.Condition(self._lock)
        self.dropped = 0
        self.history: deque[PortEvent] = deque(maxlen=capacity)  # what was pushed, drained or not

    def push(self, kind: str, detail: str, t_monotonic: float | None = None) -> None:
        event = PortEvent(time.monotonic() if t_monotonic is None else t_monotonic, kind, detail)
        with self._lock:
            if len(self._events) >= self._capacity:
                self._events.popleft()
                self.dropped += 1
            self._events.append(event)
            self.history.append(event)
            self._pushed.notify_all()

    def wait_for(self, kind: str, timeout_s: float, after: float = -1.0) -> PortEvent | None:
        """Block up to ``timeout_s`` for an event of ``kind`` pushed at or after ``after``; None on timeout."""

        def found() -> PortEvent | None:
            return next((e for e in self.history if e.kind == kind and e.t_monotonic >= after), None)

        with self._pushed:
            self._pushed.wait_for(found, timeout_s)
            return found()

    def drain(self) -> list[PortEvent]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events
