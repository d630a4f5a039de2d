"""A transmitter taking over a hovering helicopter: the keyboard's collective stick that gives the hover
trim's collective through the flight's own calibration and reversal, and the stick state it starts in."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from sim.config import FlightConfig, apply_overrides, load_heli
from sim.flight import Flight
from sim.rc import to_pilot_input
from sim.session import _hover_takeover
from sim.view.sticks import StickState


@pytest.mark.parametrize(
    "rc", [{}, {"collective_us": (1100.0, 1520.0, 1950.0)}, {"reversed": ("collective",)}], ids=str
)
def test_the_keyboard_collective_gives_the_hover_collective_through_the_calibration(rc):
    config = apply_overrides(FlightConfig(), start="hover", pilot="keyboard")
    config = replace(config, rc=replace(config.rc, **rc))
    heli = load_heli("xcell60")
    flight = Flight(heli, config)
    takeover = _hover_takeover(SimpleNamespace(flight=flight), config)
    assert takeover["start_hover"] is True
    assert takeover["hover_collective_deg"] == pytest.approx(flight.trim.collective_deg)
    sticks = StickState(channel_map=tuple(config.rc.numbers()))
    sticks.take_over_hover(takeover["hover_collective"])
    frame = np.array([sticks.channels_us()])
    pilot = to_pilot_input(frame, True, config.rc)
    collective_deg = float(pilot.packed[0, 3]) * heli.controller.collective_max_deg
    assert collective_deg == pytest.approx(flight.trim.collective_deg, abs=0.01)
    assert pilot.packed[0, 4] == 1.0 and pilot.packed[0, 5] == 1.0  # armed, angle mode
    assert pilot.packed[0, :3].tolist() == [0.0, 0.0, 0.0]  # roll, pitch, yaw centred


def test_a_ground_start_is_not_taken_over():
    config = apply_overrides(FlightConfig(), start="ground", pilot="keyboard")
    takeover = _hover_takeover(SimpleNamespace(flight=Flight(load_heli("xcell60"), config)), config)
    assert takeover["start_hover"] is False
    assert not StickState().armed and math.isclose(StickState().collective, 0.0)


def test_a_joystick_is_held_at_the_hover_until_a_stick_or_a_switch_moves():
    from sim.joystick.sticks import ANGLE, RATE, HoverTakeover, JoystickReading

    resting = JoystickReading(0.02, -0.03, -1.0, 0.0, armed=False, mode=RATE)
    takeover = HoverTakeover(0.46)
    held = takeover.apply(resting)
    assert (held.armed, held.mode, held.collective, held.roll) == (True, ANGLE, 0.46, 0.0)
    assert takeover.apply(replace(resting, roll=0.02 + 0.05)).collective == 0.46  # within the threshold: held
    assert takeover.apply(replace(resting, mode=ANGLE)) == replace(resting, mode=ANGLE)  # a switch: handed over
    assert not takeover.holding
    assert takeover.apply(resting) == resting  # and it stays handed over
