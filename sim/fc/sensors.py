"""What the firmware's sensors read, from the physics state at the instant of the reply.

- Gyro: the body rates, plus a constant bias and seeded white noise.
- Accelerometer: the specific force in body axes, ``R^T (a - g)``, with ``a`` the mean acceleration
  over the physics step just taken (the velocity's change over it: exactly what the integrator
  applied), plus bias and noise.  At rest on the skids it reads ``-g`` on the body z axis.
- Position and velocity (NED) and the attitude quaternion (body to NED): the truth.
- The wind: the air's velocity at the vehicle (steady wind, shear, turbulence, gusts).
- A rangefinder, if fitted: the distance along the body's down axis to flat ground, nothing
  (its maximum) past its range or when tilted more than 60 degrees.
- The battery, on an electric helicopter: its voltage and the current the motor model draws
  (``sim.battery``).

The noise is drawn from its own generator, seeded by the flight's seed: a flight with the same
seed and the same frames reads the same noise.
"""

from __future__ import annotations

import math

import numpy as np

from heli.dynamics import FlightModel
from heli.state import StateIndex, VehicleState
from sim.battery import BatteryMeter
from sim.fc.config import FcSensors
from sim.protocols.ardupilot_json import Sensors, specific_force_body

__all__ = ["SensorModel"]

_MAX_RANGEFINDER_TILT = math.cos(math.radians(60.0))


class SensorModel:
    """Vehicle 0's sensor readings, one per reply."""

    def __init__(self, settings: FcSensors, model: FlightModel, seed: int):
        self.settings = settings
        self.gravity = model.gravity
        self._rng = np.random.default_rng([seed, 0x46C])  # its own stream: nothing else draws from it
        self.battery = BatteryMeter(model) if model.electric and settings.battery else None
        self._gyro_bias = np.asarray(settings.gyro_bias_rad_s, dtype=np.float64)
        self._accel_bias = np.asarray(settings.accel_bias_m_s2, dtype=np.float64)
        self._accel = np.zeros(3)  # NED acceleration over the last physics step (at rest before the first)

    def read(
        self,
        vehicles: VehicleState,
        velocity_before: np.ndarray,
        dt_s: float,
        time_s: float,
        wind_ned: np.ndarray | None,
        rc_us: np.ndarray | None,
    ) -> Sensors:
        """The readings at ``time_s`` after ``dt_s`` of physics from ``velocity_before`` (NED m/s); with
        ``dt_s`` 0 (no step this time) the accelerometer reads the last step's acceleration again."""
        row = vehicles.packed[0]
        velocity = row[StateIndex.VELOCITY]
        quaternion = row[StateIndex.ATTITUDE]
        if dt_s > 0.0:
            self._accel = (velocity - velocity_before) / dt_s
        accel = self._accel  # no step since the last reading (the firmware steps faster): the last one's
        specific = specific_force_body(accel, quaternion, self.gravity) + self._accel_bias
        gyro = row[StateIndex.RATES] + self._gyro_bias
        s = self.settings
        if s.gyro_noise_rad_s > 0.0:
            gyro = gyro + self._rng.normal(0.0, s.gyro_noise_rad_s, 3)
        if s.accel_noise_m_s2 > 0.0:
            specific = specific + self._rng.normal(0.0, s.accel_noise_m_s2, 3)
        battery = None
        if self.battery is not None:
            self.battery.update(vehicles, time_s)
            battery = (self.battery.voltage_v, self.battery.current_a)
        return Sensors(
            time_s=time_s,
            gyro_rad_s=gyro,
            specific_force_body_m_s2=specific,
            position_ned_m=row[StateIndex.POSITION],
            velocity_ned_m_s=velocity,
            quaternion=quaternion,
            wind_ned_m_s=wind_ned,
            rangefinder_m=self._range(vehicles) if s.rangefinder else None,
            battery_v_a=battery,
            rc_us=rc_us,
        )

    def _range(self, vehicles: VehicleState) -> float:
        """Distance along the body's down axis from the skids' plane to flat ground."""
        height = float(vehicles.altitude_m[0])
        x, y = (float(v) for v in vehicles.packed[0, StateIndex.ATTITUDE][1:3])
        down_z = 1.0 - 2.0 * (x * x + y * y)  # the body z axis' NED z component: cos(tilt)
        limit = self.settings.rangefinder_max_m
        if down_z < _MAX_RANGEFINDER_TILT:
            return limit
        return min(max(height, 0.0) / down_z, limit)
