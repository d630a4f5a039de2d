"""The battery an electric helicopter's ESC reports, from the motor model: checked from first
principles (the motor's equation, charge as current times time, power balance in a hover)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from heli.state import StateIndex, VehicleState
from sim.battery import BatteryMeter
from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.session import flight_session
from tests.conftest import heli


def state_with(throttle: float, rotor_speed_rad_s: float) -> VehicleState:
    packed = np.zeros((1, 24))
    packed[0, StateIndex.ATTITUDE.start] = 1.0
    packed[0, StateIndex.THROTTLE] = throttle
    packed[0, StateIndex.ROTOR_SPEED] = rotor_speed_rad_s
    return VehicleState(packed)


def motor_current_a(model, throttle: float, rotor_speed_rad_s: float) -> float:
    """The motor's equation: the ESC's average voltage against the back-EMF, across the winding."""
    back_emf_v = model.motor_gear * rotor_speed_rad_s / model.motor_kv_rad
    return (throttle * model.battery_voltage - back_emf_v) / model.motor_resistance


def test_the_current_is_the_motor_equation_times_the_duty_and_the_charge_its_integral():
    model = heli("trex450").model
    meter = BatteryMeter(model)
    throttle, rotor = 0.6, 200.0
    motor_a = (
        throttle * model.battery_voltage - model.motor_gear * rotor / model.motor_kv_rad
    ) / model.motor_resistance
    expected_a = throttle * min(max(motor_a, 0.0), model.current_limit)
    for step in range(3601):  # one hour of 1 s ticks at a steady current
        meter.update(state_with(throttle, rotor), float(step))
    assert meter.current_a == pytest.approx(expected_a) and expected_a > 0
    assert meter.consumed_mah == pytest.approx(expected_a * 1000.0)  # A for an hour: A x 1000 mAh
    meter.update(state_with(0.0, rotor), 3602.0)  # throttle cut: the clutch freewheels, no current
    assert meter.current_a == 0.0


def test_a_hovering_electric_helicopter_draws_at_least_its_shaft_power_from_the_battery():
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=3.0)
    config = replace(config, ports=(PortSpec(role="telemetry", protocol="mavlink"),))
    with flight_session(config, heli("trex450").config) as loop:
        loop.run()
    io, model = loop.io, heli("trex450").model
    row = loop.flight.vehicles.packed[0]
    rotor, throttle = row[StateIndex.ROTOR_SPEED], row[StateIndex.THROTTLE]
    motor_a = (
        throttle * model.battery_voltage - model.motor_gear * rotor / model.motor_kv_rad
    ) / model.motor_resistance
    shaft_w = model.motor_gear * motor_a / model.motor_kv_rad * rotor
    electric_w = io.battery.voltage_v * io.battery.current_a
    assert shaft_w > 0 and electric_w >= shaft_w  # the motor's losses come on top
    assert electric_w == pytest.approx(shaft_w + motor_a**2 * model.motor_resistance, rel=1e-6)
    assert 0.0 < io.battery.consumed_mah < io.battery.current_a * 1000.0 * 3.5 / 3600.0 * 1.5
    assert math.isfinite(io.battery.consumed_mah)
