"""heli-sim's pilot as the firmware's radio: the channel frames of any transmitter source
(keyboard, joystick, a real radio on rc-in, a pilot script, the hover pilot) rearranged into the
firmware's RC channels, as ``[fc] rc`` lists them.

Most sources are one of heli-sim's channel functions, passed through as pulses.  Two are shaped
for the firmware, which cannot arm while it starts up and refuses to arm with the motor interlock
on: ``arm`` stays off until the firmware has run ``arm_after_s`` (an arm switch already on is
then passed on), and ``interlock`` comes on once the passed-on arm switch has been on for
``interlock_delay_s``, and goes off with throttle hold or when the arm switch goes off.  Times are
the firmware's (simulated, from its first frame).  ``low``, ``centre`` and
``high`` are fixed pulses (1000, 1500, 2000 us).
"""

from __future__ import annotations

import numpy as np

from sim.config import ChannelMap
from sim.fc.config import FcConfig
from sim.rc import ARM_THRESHOLD_US, CENTRE_US, HALF_RANGE_US

__all__ = ["FirmwareRadio"]

_FIXED = {"low": CENTRE_US - HALF_RANGE_US, "centre": CENTRE_US, "high": CENTRE_US + HALF_RANGE_US}


class FirmwareRadio:
    """Pilot frames (N, 16) in heli-sim's channel order -> the firmware's RC channels (N, len(rc))."""

    def __init__(self, fc: FcConfig, channel_map: ChannelMap, count: int):
        self.sources = fc.rc
        self.delay_s = fc.interlock_delay_s
        self.arm_after_s = fc.arm_after_s
        self.channel_map = channel_map
        self.reset(count)

    def reset(self, count: int) -> None:
        self._armed_since = np.full(count, np.nan)  # simulated time the arm switch came on

    def channels(self, frames_us: np.ndarray, t_s: float) -> np.ndarray:
        """The firmware's channels at its time ``t_s`` (simulated, from its first frame), in microseconds."""
        cmap = self.channel_map
        arm_on = (frames_us[:, cmap.arm - 1] > ARM_THRESHOLD_US) & (t_s >= self.arm_after_s)
        self._armed_since = np.where(arm_on, np.where(np.isnan(self._armed_since), t_s, self._armed_since), np.nan)
        hold = cmap.hold_channel
        held = frames_us[:, hold - 1] > ARM_THRESHOLD_US if hold else np.zeros(len(frames_us), dtype=bool)
        interlock = arm_on & ~held & (t_s - np.nan_to_num(self._armed_since, nan=np.inf) >= self.delay_s)
        out = np.empty((len(frames_us), len(self.sources)))
        for index, source in enumerate(self.sources):
            if source == "interlock":
                out[:, index] = np.where(interlock, CENTRE_US + HALF_RANGE_US, CENTRE_US - HALF_RANGE_US)
            elif source == "arm":
                out[:, index] = np.where(arm_on, frames_us[:, cmap.arm - 1], _FIXED["low"])
            elif source in _FIXED:
                out[:, index] = _FIXED[source]
            else:
                channel = cmap.channel_of(source)
                out[:, index] = frames_us[:, channel - 1] if channel else _FIXED["low"]
        return out
