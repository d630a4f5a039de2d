"""Stick calibration: watch a transmitter's channels, record each stick's extremes and centre.

The pilot moves every stick to both ends, then lets the self-centring sticks (roll, pitch, yaw)
rest.  ``Calibrator`` keeps the minimum and maximum of every channel and the recent samples;
``result()`` gives (min, centre, max) per stick: the centre of a self-centring stick is the
median of its last second, the collective's (which stays where it is left) the middle of its
range.  A stick that barely moved keeps the default calibration and is reported.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import tomli_w

from sim.config import STICKS, ChannelMap
from sim.dataclass_io import to_table

__all__ = ["MIN_TRAVEL_US", "Calibrator", "StickCalibration"]

MIN_TRAVEL_US = 200.0  # a stick that moved less than this was not calibrated
FULL_TRAVEL_US = 800.0  # a stick that moved this far has been to both ends (a radio: ~1000 us)
_CENTRE_WINDOW_S = 1.0
_RESTING_SPREAD_US = 30.0  # a self-centring stick whose last second stays within this has come to rest


@dataclass
class StickCalibration:
    """What was seen of one channel."""

    channel: int
    low: float = float("inf")
    high: float = float("-inf")
    recent: deque = field(default_factory=deque)  # (t, us) of the last second

    def see(self, t: float, us: float) -> None:
        self.low = min(self.low, us)
        self.high = max(self.high, us)
        self.recent.append((t, us))
        while self.recent and self.recent[0][0] < t - _CENTRE_WINDOW_S:
            self.recent.popleft()

    @property
    def travel(self) -> float:
        return self.high - self.low if self.high >= self.low else 0.0


class Calibrator:
    """Feed it stick frames; ask it for a calibrated ``ChannelMap``."""

    def __init__(self, channel_map: ChannelMap):
        self.channel_map = channel_map
        self.sticks = {name: StickCalibration(getattr(channel_map, name)) for name in STICKS}
        self.frames = 0
        self.latest: tuple[float, ...] = ()
        self._told: set[tuple[str, str]] = set()  # (stick, "travel" or "centred") already said

    def see(self, t: float, channels_us: tuple[float, ...]) -> None:
        self.frames += 1
        self.latest = channels_us
        for stick in self.sticks.values():
            if stick.channel <= len(channels_us):
                stick.see(t, channels_us[stick.channel - 1])

    def news(self) -> list[str]:
        """What the pilot has done since the last call, in words: a stick moved through its whole
        travel, a self-centring stick came to rest, every stick done (the prompt to finish)."""
        lines = []
        for name, stick in self.sticks.items():
            if stick.travel >= FULL_TRAVEL_US and (name, "travel") not in self._told:
                self._told.add((name, "travel"))
                lines.append(f"{name}: full travel seen ({stick.low:.0f} to {stick.high:.0f} us)")
            if name == "collective" or (name, "travel") not in self._told or (name, "centred") in self._told:
                continue
            recent = [us for _t, us in stick.recent]
            rested = stick.recent and stick.recent[-1][0] - stick.recent[0][0] >= 0.9 * _CENTRE_WINDOW_S
            middle = (
                abs(statistics.median(recent) - 0.5 * (stick.low + stick.high)) < stick.travel / 6 if recent else False
            )
            if rested and middle and max(recent) - min(recent) <= _RESTING_SPREAD_US:
                self._told.add((name, "centred"))
                lines.append(f"{name}: centred at {statistics.median(recent):.0f} us")
        done = {(n, "travel") for n in self.sticks} | {(n, "centred") for n in self.sticks if n != "collective"}
        if done <= self._told and ("all", "done") not in self._told:
            self._told.add(("all", "done"))
            lines.append("every stick calibrated: Ctrl-C to finish now")
        return lines

    def result(self, reversed_sticks: tuple[str, ...] = ()) -> tuple[ChannelMap, list[str]]:
        """The calibrated channel map, and a note for each stick that could not be calibrated."""
        notes = []
        values: dict[str, Any] = {}  # the ChannelMap fields calibrated: {stick}_us -> (low, centre, high)
        for name, stick in self.sticks.items():
            if stick.travel < MIN_TRAVEL_US:
                notes.append(f"{name} (channel {stick.channel}) moved only {stick.travel:.0f} us: kept the default")
                continue
            if name == "collective":
                centre = 0.5 * (stick.low + stick.high)
            else:
                centre = statistics.median(us for _t, us in stick.recent)
            if not stick.low < centre < stick.high:
                notes.append(f"{name} was not left centred (at {centre:.0f} us): kept the default")
                continue
            values[f"{name}_us"] = (round(stick.low, 1), round(centre, 1), round(stick.high, 1))
        return replace(self.channel_map, reversed=tuple(reversed_sticks), **values), notes

    @staticmethod
    def to_toml(channel_map: ChannelMap) -> str:
        """The ``[rc]`` table of a flight file."""
        return tomli_w.dumps({"rc": to_table(channel_map)})

    def bars(self, width: int = 30) -> list[str]:
        """One text bar per channel of the latest frame (1000-2000 us across ``width`` cells)."""
        names = {stick.channel: name for name, stick in self.sticks.items()}
        names.setdefault(self.channel_map.arm, "arm")
        names.setdefault(self.channel_map.mode, "mode")
        if self.channel_map.hold_channel:
            names.setdefault(self.channel_map.hold_channel, "hold")
        lines = []
        for index, us in enumerate(self.latest, start=1):
            filled = max(0, min(width, round((us - 1000.0) / 1000.0 * width)))
            label = names.get(index, "")
            lines.append(f"ch{index:<2} {label:<10} {'#' * filled}{'.' * (width - filled)} {us:6.0f} us")
        return lines
