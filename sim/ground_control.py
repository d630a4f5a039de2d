"""What a ground station may do to a flight, and the rules it does it under (the loop's side of
``sim.protocols.mavlink_fc``).

Once a tick, before the controller, ``GroundControl.apply`` takes the ground station's requests:

* **Arm, disarm, flight mode** act as the transmitter's switches do: the controller sees the
  switch position the station asked for (arm channel 2000 or 1000 us; mode channel 1000 rate,
  1500 angle, 2000 rescue) until the pilot moves that switch on the transmitter, when the
  transmitter's position rules again: whoever acted last wins.  Refused while the failsafe holds
  (no pilot input: the failsafe's own rules fly the helicopter, ``TEMPORARILY_REJECTED``), and
  arming a crashed helicopter (``DENIED``).  MAVLink is one system, vehicle 0.
* **A parameter set** changes the controller's gains, rates or limits from this tick on, for
  every vehicle (one helicopter type, one tune).  It is recorded as a ``param_set`` event that
  names the tick it applies from, so a replay applies it at the same tick.

Each request is answered (COMMAND_ACK, or PARAM_VALUE with the value now) and recorded as an event.

* **RC_CHANNELS_OVERRIDE**, where the flight file allows it (``[flight] rc_override = true``;
  off by default), flies vehicle 0: each channel the station sets replaces the pilot's while
  its overrides keep coming (within the failsafe timeout), and the input counts as fresh.  The
  frames the controller flew by are what the log records, so a replay is exact.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pymavlink.dialects.v20 import common as mavlink2

from heli.control import ControllerParams
from heli.errors import HeliSimError
from sim.config import ChannelMap
from sim.protocols.mavlink_fc import GroundStationLink, ParamInfo, Request
from sim.rc import ARM_THRESHOLD_US, MODE_ANGLE_US, MODE_RESCUE_US

if TYPE_CHECKING:
    from sim.flight import Flight

__all__ = ["GroundControl", "parse_param_set"]

_ARM_US = {1: 2000.0, 0: 1000.0}
_MODE_US = {"rate": 1000.0, "angle": 1500.0, "rescue": 2000.0}
_PARAM_SET = re.compile(r"^(?P<id>\S+) = (?P<value>\S+) \((?P<field>\w+), was \S+\) from tick (?P<tick>\d+)$")


def parse_param_set(detail: str) -> tuple[str, float, int] | None:
    """(field, value, tick) of a ``param_set`` event's detail; None if it is not one."""
    match = _PARAM_SET.match(detail)
    if match is None:
        return None
    try:
        return match["field"], float(match["value"]), int(match["tick"])
    except ValueError:
        return None


@dataclasses.dataclass
class _Latch:
    """A switch position a ground station set, and the transmitter's position it overrode."""

    us: float
    pilot_position: int


def _position(is_arm: bool, us: float) -> int:
    """Where a switch is, as the controller reads it (``sim.rc``; a real radio's pulses jitter by a
    few us): armed or not, and rate, angle or rescue."""
    if is_arm:
        return int(us > ARM_THRESHOLD_US)
    return 2 if us > MODE_RESCUE_US else 1 if us >= MODE_ANGLE_US else 0


class GroundControl:
    """Applies a ground station's requests to vehicle 0's pilot frames and the controller."""

    def __init__(
        self,
        link: GroundStationLink,
        channels: ChannelMap,
        record: Callable[[str, str], None],
        timeout_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``timeout_s``: how long an RC_CHANNELS_OVERRIDE holds (the failsafe timeout)."""
        self.link = link
        self._timeout_s = timeout_s
        self._clock = clock
        self._overriding = False
        self._arm_index = channels.arm - 1
        self._mode_index = channels.mode - 1
        self._record = record
        self._latches: dict[int, _Latch] = {}  # channel index -> what the station set

    def apply(
        self, frames: np.ndarray, fresh: np.ndarray, flight: Flight, tick: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The frames the controller flies by this tick (the loop's ``tick``), and which are fresh:
        a copy where a station's switch holds, or its RC_CHANNELS_OVERRIDE flies vehicle 0."""
        frames, fresh = self._rc_override(frames, fresh)
        for request in self.link.take_requests():
            self._decide(request, frames, fresh, flight, tick)
        return self._override(frames), fresh

    def _rc_override(self, frames: np.ndarray, fresh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A ground station's sticks (allowed by ``rc_override``): each channel it sets replaces the
        pilot's for vehicle 0 while its overrides keep coming (0: the channel is released to the
        pilot, 65535: left as it is, as MAVLink says); the input is then fresh."""
        latest = self.link.override
        active = (
            latest is not None
            and any(0 < value < 0xFFFF for value in latest[1])  # else: no pilot input
            and self._clock() - latest[0] <= self._timeout_s
        )
        if active != self._overriding:
            self._overriding = active
            self._record("gcs_command", f"RC_CHANNELS_OVERRIDE {'flies' if active else 'released'} vehicle 0")
        if latest is None or not active:
            return frames, fresh
        frames, fresh = frames.copy(), fresh.copy()
        for index, value in enumerate(latest[1][: frames.shape[1]]):
            if 0 < value < 0xFFFF:
                frames[0, index] = float(value)
        fresh[0] = True
        return frames, fresh

    def _decide(self, request: Request, frames: np.ndarray, fresh: np.ndarray, flight: Flight, tick: int) -> None:
        if request.param is not None:  # a parameter set (kind "param")
            self._set_param(request, request.param, flight, tick)
            return
        what = f"{'arm' if request.value else 'disarm'}" if request.kind == "arm" else f"mode {request.value}"
        if not bool(fresh[0]):
            self._refuse(request, mavlink2.MAV_RESULT_TEMPORARILY_REJECTED, what, "no pilot input: failsafe")
            return
        if request.kind == "arm" and request.value and bool(flight.vehicles.crashed[0]):
            self._refuse(request, mavlink2.MAV_RESULT_DENIED, what, "crashed")
            return
        index = self._arm_index if request.kind == "arm" else self._mode_index
        us = _ARM_US[request.value] if request.kind == "arm" else _MODE_US[request.value]
        self._latches[index] = _Latch(us, _position(index == self._arm_index, float(frames[0, index])))
        self.link.answer(request, mavlink2.MAV_RESULT_ACCEPTED)
        self._record("gcs_command", f"{what}: accepted (vehicle 0, as the transmitter's switch)")

    def _refuse(self, request: Request, result: int, what: str, why: str) -> None:
        self.link.answer(request, result, f"{what}: {why}")
        self._record("gcs_command", f"{what}: refused ({why})")

    def _set_param(self, request: Request, info: ParamInfo, flight: Flight, tick: int) -> None:
        params: ControllerParams = flight.controller_params
        old = getattr(params, info.field)
        try:
            flight.set_controller_params(dataclasses.replace(params, **{info.field: request.value}))
        except (HeliSimError, ValueError, ArithmeticError) as error:
            self.link.answer(request, 0, f"{info.id}: {error}")
            self._record("param_set", f"{info.id} = {request.value!r} refused: {error}")
            return
        self.link.params = flight.controller_params
        self.link.answer(request, 0)
        self._record("param_set", f"{info.id} = {request.value!r} ({info.field}, was {old!r}) from tick {tick}")

    def _override(self, frames: np.ndarray) -> np.ndarray:
        if not self._latches:
            return frames
        for index, latch in list(self._latches.items()):
            moved = _position(index == self._arm_index, float(frames[0, index])) != latch.pilot_position
            if moved:  # the pilot moved the switch: the transmitter rules again
                del self._latches[index]
        if not self._latches:
            return frames
        frames = frames.copy()  # a new array: the controller decodes it afresh
        for index, latch in self._latches.items():
            frames[0, index] = latch.us
        return frames
