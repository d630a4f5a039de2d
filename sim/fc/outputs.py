"""A firmware's output pulses as the helicopter's actuator command: the wiring of a real installation.

Each swashplate servo and the tail servo is plugged into one of the firmware's outputs
(``[fc.outputs]``): a pulse moves the servo linearly from full throw one way (``min``) through
centre to full throw the other (``max``), in heli-sim's full-throw units (``heli.mixer``: the
helicopter's own swashplate geometry turns the three servo positions into blade pitch, so the
firmware's mixer must match it, as on the bench).  A reversed output moves its servo the other way.

The motor output is either a throttle (``throttle``: off to full) or, as with most electric
helicopters and nitro governors, a request to an ESC governor (``governor``): the governor holds
``pulse share / governor_setpoint`` times the helicopter's governed headspeed, ramping up at its
spool-up rate, with heli-sim's own controller's PI law and back-EMF feed-forward
(``heli.control.governor_pi``); a request under 5 % of the range stops the motor.

A firmware that has stopped sending (``fresh`` false) no longer drives anything: its servos hold
their last position and the ESC, without a signal, stops the motor.  An output that sends no pulse
(ArduPilot sends 0 for an output it does not drive) leaves its servo where it is.
"""

from __future__ import annotations

import numpy as np

from heli.control import ControllerConstants, governor_pi
from heli.ops import ARRAY
from heli.state import ActuatorCommand, VehicleState
from sim.fc.config import SWASH_SERVOS, FcOutputs

__all__ = ["OutputMapper"]

_NO_PULSE_US = 500.0  # below this an output sends nothing
_MOTOR_OFF_SHARE = 0.05  # an ESC governor stops the motor below this share of its input range


class OutputMapper:
    """Turns (N, 16+) output pulse frames into ``ActuatorCommand``s; keeps the ESC governor's state."""

    def __init__(self, outputs: FcOutputs, constants: ControllerConstants, count: int):
        self.outputs = outputs
        self.constants = constants
        names = (*SWASH_SERVOS, "tail")
        self._servo_columns = np.array([outputs.channel_of(name) - 1 for name in names])
        ranges = [outputs.swash_us] * 3 + [outputs.tail_us]
        sign = np.array([-1.0 if name in outputs.reversed else 1.0 for name in names])
        self._centre = np.array([r[1] for r in ranges])
        # full throw per microsecond, above and below the centre (the two halves may differ)
        self._up = sign / np.array([r[2] - r[1] for r in ranges])
        self._down = sign / np.array([r[1] - r[0] for r in ranges])
        self._motor_column = outputs.motor - 1
        self._motor_sign = -1.0 if "motor" in outputs.reversed else 1.0
        self.reset(count)

    def reset(self, count: int) -> None:
        """The ESC governor off, nothing commanded yet (the flight's reset)."""
        self._governor_i = np.zeros(count)
        self._governor_target = np.zeros(count)
        self._last: np.ndarray | None = None

    def governor_state(self) -> np.ndarray:
        """Per vehicle, as heli-sim's governor reports it: 0 off, 1 spooling up, 2 holding the headspeed."""
        k = self.constants
        running = self._governor_target > 0.0
        return np.where(running, np.where(self._governor_target >= 0.99 * k.headspeed, 2, 1), 0)

    def motor_share(self, frames_us: np.ndarray) -> np.ndarray:
        """The motor output as a share of its range, 0..1 (reversal applied)."""
        off, full = self.outputs.motor_us
        share = (frames_us[:, self._motor_column] - off) / (full - off)
        if self._motor_sign < 0:
            share = 1.0 - share
        return np.clip(share, 0.0, 1.0)

    def command(
        self, frames_us: np.ndarray, fresh: np.ndarray | bool, vehicles: VehicleState, dt_s: float
    ) -> ActuatorCommand:
        """The command for one control cycle of ``dt_s``: servo positions from the pulses, the motor
        from the governor or throttle.  Vehicles whose frame is not ``fresh`` hold their servos, motor off."""
        pulses = frames_us[:, self._servo_columns]
        offset = pulses - self._centre
        servos = np.clip(np.where(offset >= 0.0, offset * self._up, offset * self._down), -1.0, 1.0)
        silent = pulses < _NO_PULSE_US
        if silent.any():
            servos = np.where(silent, vehicles.servo_position if self._last is None else self._last[:, :4], servos)
        share = self.motor_share(frames_us)
        throttle = share if self.outputs.motor_mode == "throttle" else self._govern(share, vehicles, dt_s)
        stale = ~np.broadcast_to(np.asarray(fresh, dtype=bool), (frames_us.shape[0],))
        if stale.any():
            held = servos if self._last is None else self._last[:, :4]
            servos = np.where(stale[:, None], held, servos)
            throttle = np.where(stale, 0.0, throttle)
            self._governor_i = np.where(stale, 0.0, self._governor_i)
            self._governor_target = np.where(stale, 0.0, self._governor_target)
        packed = np.concatenate([servos, throttle[:, None]], axis=1)
        self._last = packed
        return ActuatorCommand(packed)

    def _govern(self, share: np.ndarray, vehicles: VehicleState, dt_s: float) -> np.ndarray:
        """An ESC governor: hold ``share / setpoint`` of the headspeed, after a soft start."""
        k = self.constants
        running = share >= _MOTOR_OFF_SHARE
        wanted = k.headspeed * share / self.outputs.governor_setpoint
        omega = vehicles.rotor_speed_rad_s
        # the soft start ramps the target from the present rotor speed; a lower request is taken at once
        start_from = np.where(self._governor_target > 0.0, self._governor_target, omega)
        target = np.where(running, np.minimum(wanted, start_from + k.spoolup_rate * dt_s), 0.0)
        throttle, self._governor_i = governor_pi(ARRAY, k, target, omega, self._governor_i, dt_s, running)
        self._governor_target = target
        return throttle
