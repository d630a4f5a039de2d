"""Timing statistics of the loop: percentiles in bounded memory, per I/O-mode segment.

``LogHistogram`` keeps counts in bins 1 % wide on a log scale from 0.1 us to 1000 s, so a
flight of any length costs the same memory and its percentiles are exact to 1 %; the maximum
is exact.  A ``Segment`` is a stretch of the run in one I/O mode; a switch closes one and
opens the next.  ``Event`` records what a user wants to find in the summary (mode switches,
crashes, catch-up limits...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Event", "LogHistogram", "Segment"]


class LogHistogram:
    """Bounded-memory distribution of positive durations in seconds; 1 % bins.

    Only the bins that were hit are stored (a dict), so a histogram costs a few kilobytes however
    many samples it holds, and a flight with thousands of I/O mode segments stays small.
    """

    _FLOOR_S = 1e-7
    _CEILING_S = 1e3
    _GROWTH = 1.01
    _LAST = int(math.log(_CEILING_S / _FLOOR_S) / math.log(_GROWTH)) + 1  # the overflow bin
    _LOG_GROWTH = math.log(_GROWTH)

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}  # bin index -> samples in it
        self.count = 0
        self.max = 0.0
        self.total = 0.0

    def add(self, value_s: float) -> None:
        self.count += 1
        self.total += value_s
        if value_s > self.max:
            self.max = value_s
        if value_s <= self._FLOOR_S:
            index = 0
        elif value_s >= self._CEILING_S:
            index = self._LAST
        else:
            index = min(int(math.log(value_s / self._FLOOR_S) / self._LOG_GROWTH) + 1, self._LAST)
        bins = self._bins
        bins[index] = bins.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The value below which a share ``q`` of the samples lie (None when empty)."""
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        for index in sorted(self._bins):
            n = self._bins[index]
            seen += n
            if seen >= rank:
                if index == 0:
                    return 0.0
                # geometric middle of the bin, never above the exact maximum
                middle = self._FLOOR_S * self._GROWTH ** (index - 0.5)
                return min(middle, self.max)
        return self.max

    def sampled_quantile(self, q: float) -> float:
        """``quantile`` of a histogram that holds samples (a benchmark's measured run); ValueError when empty."""
        value = self.quantile(q)
        if value is None:
            raise ValueError("no samples: a quantile of an empty histogram")
        return value

    def bins(self) -> list[tuple[float, float, int]]:
        """The bins that were hit, in order: (lower edge s, upper edge s, samples)."""
        out = []
        for index in sorted(self._bins):
            lower = 0.0 if index == 0 else self._FLOOR_S * self._GROWTH ** (index - 1)
            upper = self._FLOOR_S * self._GROWTH**index if index < self._LAST else math.inf
            out.append((lower, upper, self._bins[index]))
        return out

    def summary(self, scale: float, digits: int = 1) -> dict[str, float | None]:
        """{p50, p99, max} multiplied by ``scale`` (1e6 for microseconds, 1e3 for ms)."""

        def scaled(value: float | None) -> float | None:
            return None if value is None else round(value * scale, digits)

        return {
            "p50": scaled(self.quantile(0.5)),
            "p99": scaled(self.quantile(0.99)),
            "max": scaled(self.max if self.count else None),
        }


@dataclass
class Segment:
    """Loop timing while in one I/O mode."""

    io_mode: str
    t_start_s: float
    t_end_s: float = 0.0
    ticks: int = 0
    missed_deadlines: int = 0
    lateness: LogHistogram = field(default_factory=LogHistogram)
    period: LogHistogram = field(default_factory=LogHistogram)

    def to_dict(self) -> dict:
        return {
            "io_mode": self.io_mode,
            "t_start_s": round(self.t_start_s, 6),
            "t_end_s": round(self.t_end_s, 6),
            "ticks": self.ticks,
            "missed_deadlines": self.missed_deadlines,
            "lateness_us": self.lateness.summary(1e6),
            "period_ms": self.period.summary(1e3, 3),
        }


@dataclass(frozen=True)
class Event:
    """Something that happened at ``t_s`` seconds of flight (wall clock since the start)."""

    t_s: float
    kind: str
    detail: str

    def to_dict(self) -> dict:
        return {"t_s": round(self.t_s, 6), "kind": self.kind, "detail": self.detail}
