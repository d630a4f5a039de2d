"""Vehicle 0's battery as its ESC reports it: the current the motor model draws, and the charge used.

The motor model drives the motor with ``throttle x V`` across its resistance against its
back-EMF: its current is ``heli.dynamics.motor_current``, ``(throttle V - gear omega / kv) / R``
clipped at 0 and at the ESC's limit; an ESC switching at ``throttle`` draws ``throttle`` times that
from the battery.  The charge used is that current integrated over simulated time, a tick at
a time.  The battery's voltage is its nominal voltage: the model has no sag and no capacity, so
neither is reported (MAVLink's remaining charge is "unknown"; CRSF has no such value and says 100 %).
"""

from __future__ import annotations

import numpy as np

from heli.dynamics import FlightModel, motor_current
from heli.state import StateIndex, VehicleState

__all__ = ["BatteryMeter"]

_SECONDS_PER_HOUR = 3600.0


class BatteryMeter:
    """The current and the charge used of vehicle 0's battery (an electric helicopter's)."""

    def __init__(self, model: FlightModel):
        self._model = model
        self.voltage_v = model.battery_voltage
        self.current_a = 0.0
        self.consumed_mah = 0.0
        self._last_t_s: float | None = None

    def update(self, vehicles: VehicleState, sim_time_s: float) -> None:
        """Take vehicle 0's throttle and rotor speed at ``sim_time_s``; integrate since the last call."""
        row = vehicles.packed[0]
        throttle, rotor_speed = float(row[StateIndex.THROTTLE]), float(row[StateIndex.ROTOR_SPEED])
        battery_a = max(0.0, throttle) * float(motor_current(np, self._model, throttle, rotor_speed))
        if self._last_t_s is not None and sim_time_s > self._last_t_s:
            mean_a = 0.5 * (battery_a + self.current_a)  # the trapezoid over the tick
            self.consumed_mah += mean_a * (sim_time_s - self._last_t_s) * 1000.0 / _SECONDS_PER_HOUR
        self._last_t_s = sim_time_s
        self.current_a = battery_a
