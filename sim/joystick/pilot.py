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
from sim.joystick.sticks import MODE_NAMES, HoverTakeover, channels_us

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
        takeover: HoverTakeover | None = None,
    ):
        # the simulator checked it is there; unplugged since (or never there, run by hand), the
        # transmitter starts anyway and waits for one, as a radio without its gimbals would
        self.device = JoystickDevice(start_pygame(events=True), mapping, index, require=False)
        self.order = channel_map.numbers()  # roll, pitch, collective, yaw, arm, mode, throttle hold
        self.count = count
        self.report = report
        self._switches: tuple | None = None  # armed, mode, arm refused, hold: said when they change
        self.takeover = takeover  # a hovering start: held until the pilot moves (sim.joystick.sticks)
        if self.device.connected:
            report("joystick", self.device.opened)
        else:
            report("joystick_lost", f"joystick {index or 0}: not connected: no stick frames until one is plugged in")

    def channels(self, t_s: float, vehicles: VehicleState) -> np.ndarray | None:
        for kind, detail in self.device.poll():
            self.report(kind, detail)
        reading = self.device.read()
        if reading is None:
            self._switches = None  # read anew when it is back
            return None
        if self.takeover is not None and self.takeover.holding:
            reading = self.takeover.apply(reading)
            if not self.takeover.holding:
                self.report("transmitter", "joystick: the pilot moved: the joystick flies (it held the hover till now)")
        switches = (reading.armed, reading.mode, reading.arm_refused, reading.hold)
        if switches != self._switches:
            self._switches = switches
            said = "arm refused: collective up (lower it to zero pitch or below)" if reading.arm_refused else (
                f"{'armed' if reading.armed else 'disarmed'}, {MODE_NAMES[reading.mode]}"
                + (", throttle hold" if reading.hold else "")
            )  # fmt: skip
            self.report("transmitter", f"joystick switches: {said}")
        row = channels_us(reading.roll, reading.pitch, reading.collective, reading.yaw, reading.armed, reading.mode,
                          self.order, reading.hold)  # fmt: skip
        return np.tile(np.array(row), (self.count, 1))

    def close(self) -> None:
        self.device.close()
