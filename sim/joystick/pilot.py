"""The emulated transmitter's joystick pilot: the sticks of a USB joystick, or of a radio in joystick mode.

``heli-sim fly --pilot joystick[:N]`` (and ``heli-sim device transmitter --pilot joystick``, which
turns a joystick into a CRSF, SBUS, iBUS or MSP transmitter on any serial port) reads the
joystick in the transmitter's process and sends its sticks in the port's protocol, as a radio
would.  While the joystick is unplugged it sends nothing, as a radio switched off: the flight
controller's failsafe takes over after its timeout, and hands control back when the joystick
(the same device) is plugged in again.  Its comings and goings are reported through ``report``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from heli.state import VehicleState
from sim.config import ChannelMap, JoystickMap
from sim.joystick.device import JoystickDevice, start_pygame
from sim.joystick.sticks import channels_us

__all__ = ["JoystickPilot", "joystick_index"]


def joystick_index(spec: str) -> int | None:
    """``joystick`` -> None (the first one), ``joystick:N`` -> N."""
    _, _, number = spec.partition(":")
    return int(number) if number else None


class JoystickPilot:
    """A frame per vehicle (all fly the same sticks) from the joystick; None while it is unplugged."""

    def __init__(
        self,
        index: int | None,
        mapping: JoystickMap,
        channel_map: ChannelMap,
        count: int,
        report: Callable[[str, str], None],
    ):
        self.device = JoystickDevice(start_pygame(events=True), mapping, index)
        self.order = (channel_map.roll, channel_map.pitch, channel_map.collective, channel_map.yaw,
                      channel_map.arm, channel_map.mode)  # fmt: skip
        self.count = count
        self.report = report
        report("joystick", self.device.opened)

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray | None:
        for kind, detail in self.device.poll():
            self.report(kind, detail)
        reading = self.device.read()
        if reading is None:
            return None
        row = channels_us(reading.roll, reading.pitch, reading.collective, reading.yaw, reading.armed, reading.mode,
                          self.order)  # fmt: skip
        return np.tile(np.array(row), (self.count, 1))

    def close(self) -> None:
        self.device.close()
