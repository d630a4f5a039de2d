"""A joystick's raw axes and buttons as a transmitter's sticks and switches (no pygame here).

``JoystickSticks.read`` maps one sample (axes in pygame's -1..1, buttons pressed or not) through a
``JoystickLayout`` and the flight file's calibration: each stick to -1..1 (piecewise about its
calibrated centre, with a deadband), the arm and flight-mode switches to levels.  A switch on an
axis reads as a radio's channel (above 0.4 armed; low rate, middle angle, high rescue, the same
thresholds as a receiver's channels); a switch on a button is held-is-on (``buttons = "switch"``,
a radio's latching switch) or flips on each press (``"toggle"``, a gamepad's momentary button).
Arming needs the collective at or below zero pitch (a flight controller's "collective not low"
check): with it up, the arm switch is refused until it is lowered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.config import STICKS, JoystickLayout, JoystickMap
from sim.rc import ARM_THRESHOLD_US, CENTRE_US, CHANNEL_COUNT, HALF_RANGE_US, MODE_ANGLE_US, MODE_RESCUE_US

__all__ = ["MODES_US", "MODE_NAMES", "HoverTakeover", "JoystickReading", "JoystickSticks", "channels_us"]

MODES_US = (1000.0, 1500.0, 2000.0)  # rate, angle, rescue
MODE_NAMES = ("rate", "angle", "rescue")
RATE, ANGLE, RESCUE = range(3)
ARM_COLLECTIVE_MAX = 0.0  # the collective stick at or below zero pitch to arm


@dataclass(frozen=True)
class JoystickReading:
    """Sticks in -1..1 (roll right, pitch forward, collective up, yaw right positive), the switches."""

    roll: float
    pitch: float
    collective: float
    yaw: float
    armed: bool
    mode: int  # index into MODE_NAMES
    arm_refused: bool = False  # the arm switch is on, the collective up: not armed until it is lowered
    hold: bool = False  # throttle hold: the motor stops, the controller flies on


class HoverTakeover:
    """A joystick taking over a helicopter that starts in a hover: until the pilot moves a stick (by more
    than ``threshold`` of its throw from where it was first read) or a switch, the transmitter sends
    what keeps it hovering (armed, angle mode, sticks centred, the collective at ``hover_collective``);
    from then on, the joystick, as a trainer switch hands over.  Bring the collective to the hover
    first: the handover takes every stick where it is."""

    THRESHOLD = 0.1

    def __init__(self, hover_collective: float, threshold: float = THRESHOLD):
        self.hover_collective = hover_collective
        self.threshold = threshold
        self.holding = True
        self._first: JoystickReading | None = None

    def apply(self, reading: JoystickReading) -> JoystickReading:
        if not self.holding:
            return reading
        first = self._first = self._first or reading
        sticks_moved = any(
            abs(getattr(reading, stick) - getattr(first, stick)) > self.threshold
            for stick in ("roll", "pitch", "collective", "yaw")
        )
        switches_moved = (reading.armed, reading.mode, reading.hold) != (first.armed, first.mode, first.hold)
        if sticks_moved or switches_moved:
            self.holding = False
            return reading
        return JoystickReading(0.0, 0.0, self.hover_collective, 0.0, armed=True, mode=ANGLE)


def channels_us(
    roll: float,
    pitch: float,
    collective: float,
    yaw: float,
    armed: bool,
    mode: int,
    channel_map: Sequence[int],
    hold: bool = False,
) -> tuple[float, ...]:
    """``CHANNEL_COUNT`` channels in microseconds, in the flight's channel order (roll, pitch,
    collective, yaw, arm, mode and, if given and not 0, throttle-hold channel numbers from 1);
    the others centred."""
    values = (
        CENTRE_US + HALF_RANGE_US * roll,
        CENTRE_US + HALF_RANGE_US * pitch,
        CENTRE_US + HALF_RANGE_US * collective,
        CENTRE_US + HALF_RANGE_US * yaw,
        2000.0 if armed else 1000.0,
        MODES_US[mode],
        2000.0 if hold else 1000.0,
    )
    channels: list[float] = [CENTRE_US] * CHANNEL_COUNT
    for value, channel in zip(values, channel_map, strict=False):
        if channel:
            channels[channel - 1] = value
    return tuple(channels)


class JoystickSticks:
    """Reads samples of one joystick through its layout; keeps the toggled switches between samples."""

    def __init__(self, mapping: JoystickMap, layout: JoystickLayout):
        self.mapping = mapping
        self.layout = layout
        self.armed = False
        self.mode = ANGLE
        self.rescue = False
        self.hold = False
        self._was_pressed: dict[int, bool] = {}

    def read(self, axes: Sequence[float], buttons: Sequence[bool]) -> JoystickReading:
        layout = self.layout
        sticks = {stick: self._stick(axes, stick) for stick in STICKS}
        wants = self.armed
        if layout.arm_axis is not None:
            wants = _raw_us(axes, layout.arm_axis) > ARM_THRESHOLD_US
        elif layout.arm_button is not None:
            wants = self._switch(buttons, layout.arm_button, self.armed)
        # arming with the collective up would leap off the ground (a gamepad's resting trigger read as
        # the collective, a throttle lever left forward): arming needs zero pitch or below, as a
        # flight controller's "collective not low" check; once armed, the collective is free
        refused = wants and not self.armed and sticks["collective"] > ARM_COLLECTIVE_MAX
        self.armed = wants and not refused
        if layout.mode_axis is not None:
            us = _raw_us(axes, layout.mode_axis)
            self.mode = RATE if us < MODE_ANGLE_US else ANGLE if us <= MODE_RESCUE_US else RESCUE
        elif layout.mode_button is not None:
            rate = self._switch(buttons, layout.mode_button, self.mode == RATE)
            self.mode = RATE if rate else ANGLE
        if layout.rescue_button is not None:
            self.rescue = self._switch(buttons, layout.rescue_button, self.rescue)
        if layout.hold_axis is not None:
            self.hold = _raw_us(axes, layout.hold_axis) > ARM_THRESHOLD_US
        elif layout.hold_button is not None:
            self.hold = self._switch(buttons, layout.hold_button, self.hold)
        mode = RESCUE if self.rescue else self.mode
        return JoystickReading(**sticks, armed=self.armed, mode=mode, arm_refused=refused, hold=self.hold)

    def _stick(self, axes: Sequence[float], stick: str) -> float:
        index = getattr(self.layout, f"{stick}_axis")
        raw = axes[index] if index < len(axes) else 0.0
        low, centre, high = getattr(self.mapping, f"{stick}_range")
        # the calibrated range, piecewise about the centre, to -1..1
        value = (raw - centre) / (high - centre) if raw >= centre else (raw - centre) / (centre - low)
        value = max(-1.0, min(1.0, value))
        value = 0.0 if abs(value) < self.mapping.deadband else value
        return -value if stick in self.layout.inverted else value

    def _switch(self, buttons: Sequence[bool], index: int, on: bool) -> bool:
        """A switch on a button: its level, or (toggle) flipped on each press."""
        pressed = bool(buttons[index]) if index < len(buttons) else False
        if self.layout.buttons == "switch":
            return pressed
        was = self._was_pressed.get(index, False)
        self._was_pressed[index] = pressed
        return not on if pressed and not was else on


def _raw_us(axes: Sequence[float], index: int) -> float:
    """An axis read as a channel, without calibration (a switch: its two or three positions)."""
    raw = axes[index] if index < len(axes) else -1.0
    return CENTRE_US + HALF_RANGE_US * max(-1.0, min(1.0, raw))
