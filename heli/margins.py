"""Stability margins of the flight controller's loops, from the linearised flight model.

The flight model is linearised about the hover trim over one controller period (its 1 ms
physics steps composed, the command held between cycles, as the loop runs it): ``x+ = A x + B u``
with ``x`` the vehicle state and ``u`` the controller's outputs (lateral and longitudinal cyclic
and yaw, in rad of blade pitch, and the throttle).  Each loop is broken at its actuator, the
other loops open:

* rate loop:   ``L(z) = C(z) P_rate(z) z^-N``,
  ``C(z) = kp + ki T z / (z - 1) + kd a (z - 1) / (T (z - 1 + a))`` (the kernel's P, I and
  filtered D, ``a`` the D filter's smoothing factor at the loop period ``T``);
* angle loop (self-level, roll and pitch): the rate loop plus the outer one the self-level
  closes through it, ``L(z) = (C(z) P_rate(z) + g (kp + kf + ki T z / (z - 1)) P_angle(z)) z^-N``
  with ``g`` the level gain (the angle error becomes a rate setpoint, which reaches the output
  through P, F and I);
* governor: ``L(z) = (gp + gi T z / (z - 1)) / Omega_gov P_speed(z) z^-N``, throttle to rotor
  speed through the drive's lag and the rotor's inertia,

where ``N`` is a transport delay in whole controller periods (the servo delay a real flight
controller's output stage adds).  Gain margin: how much the loop gain may grow before the phase
crossover (``arg L = -180 deg``) reaches ``|L| = 1``; phase margin: ``180 deg + arg L`` at the gain
crossover.  Read on a log grid of frequencies from 0.1 Hz up to the loop's Nyquist frequency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heli.control import ControllerConstants
from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.mixer import mix
from heli.ops import SCALAR
from heli.state import ActuatorCommand, StateIndex, VehicleState
from heli.trim import TrimResult

__all__ = ["AXES", "LoopMargins", "applied_delay_periods", "linearise", "loop_margins"]

AXES = ("roll", "pitch", "yaw")
_OUTPUTS = 4  # lateral, longitudinal, yaw, throttle
_RATE_COLUMNS = (10, 11, 12)  # p, q, r in the packed vehicle state
_ALTITUDE_M = 200.0  # out of ground effect
_PERTURBATION = 1e-6
_LOWEST_HZ = 0.1
_POINTS_PER_DECADE = 1000


@dataclass(frozen=True)
class LoopMargins:
    """One loop's margins; ``inf`` where the loop never crosses (no phase crossover: no gain limit)."""

    axis: str  # roll, pitch, yaw, or rotor speed
    loop: str  # "rate", "angle" or "governor"
    gain_margin_db: float
    phase_margin_deg: float
    crossover_hz: float  # where |L| = 1
    phase_crossover_hz: float  # where arg L = -180 deg


def _command(model: FlightModel, base: np.ndarray, outputs: np.ndarray, constants: ControllerConstants) -> np.ndarray:
    """The actuator command for controller outputs (lateral, longitudinal, yaw, throttle) added to ``base``."""
    lateral, longitudinal, yaw, throttle = (float(v) for v in outputs)
    s0, s1, s2 = mix(SCALAR, model.swash, 0.0, lateral, longitudinal)  # the mixer is linear: deltas add
    command = base.copy()
    command[:3] += (s0, s1, s2)
    command[3] += constants.direction * yaw / constants.tail_pitch_per_throw
    command[4] += throttle
    return command


def _advance(model: FlightModel, state: np.ndarray, command: np.ndarray, substeps: int, dt_s: float) -> np.ndarray:
    vehicles = VehicleState(state[None, :].copy())
    actuators = ActuatorCommand(command[None, :])
    for _ in range(substeps):
        vehicles = step(model, vehicles, actuators, dt_s)
    return vehicles.packed[0]


def linearise(
    model: FlightModel, trim: TrimResult, constants: ControllerConstants, loop_hz: float, physics_dt_s: float = 0.001
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, state)``: the hover's discrete dynamics over one controller period, and the trim state."""
    substeps = max(1, round(1.0 / (loop_hz * physics_dt_s)))
    dt_s = 1.0 / (loop_hz * substeps)
    hover = hover_state(model, trim, 1, _ALTITUDE_M)
    x0 = hover.packed[0].copy()
    base = np.concatenate([hover.servo_position[0], [trim.throttle]])
    size = x0.size
    a = np.zeros((size, size))
    b = np.zeros((size, _OUTPUTS))
    for column in range(size):
        if column == StateIndex.CRASH:
            continue
        plus, minus = x0.copy(), x0.copy()
        plus[column] += _PERTURBATION
        minus[column] -= _PERTURBATION
        a[:, column] = (_advance(model, plus, base, substeps, dt_s) - _advance(model, minus, base, substeps, dt_s)) / (
            2.0 * _PERTURBATION
        )
    for column in range(_OUTPUTS):
        delta = np.zeros(_OUTPUTS)
        delta[column] = _PERTURBATION
        up = _advance(model, x0, _command(model, base, delta, constants), substeps, dt_s)
        down = _advance(model, x0, _command(model, base, -delta, constants), substeps, dt_s)
        b[:, column] = (up - down) / (2.0 * _PERTURBATION)
    return a, b, x0


def _angle_rows(x0: np.ndarray) -> np.ndarray:
    """Rows mapping a state perturbation to (roll, pitch) perturbations, by finite differences."""

    def angles(x: np.ndarray) -> np.ndarray:
        return np.radians(VehicleState(x[None, :]).euler_deg()[0, :2])

    rows = np.zeros((2, x0.size))
    for column in range(StateIndex.ATTITUDE.start, StateIndex.ATTITUDE.stop):
        plus, minus = x0.copy(), x0.copy()
        plus[column] += _PERTURBATION
        minus[column] -= _PERTURBATION
        rows[:, column] = (angles(plus) - angles(minus)) / (2.0 * _PERTURBATION)
    return rows


def loop_margins(
    model: FlightModel, trim: TrimResult, constants: ControllerConstants, loop_hz: float, delay_s: float = 0.0
) -> list[LoopMargins]:
    """Margins of the rate loops (roll, pitch, yaw), the angle loops (roll, pitch) and the governor
    at ``loop_hz`` with a transport delay of ``delay_s`` (rounded to whole controller periods)."""
    period = 1.0 / loop_hz
    a, b, x0 = linearise(model, trim, constants, loop_hz)
    nyquist = 0.5 * loop_hz
    decades = math.log10(nyquist / _LOWEST_HZ)
    frequencies = np.logspace(math.log10(_LOWEST_HZ), math.log10(nyquist), round(decades * _POINTS_PER_DECADE))
    z = np.exp(2j * math.pi * frequencies * period)
    delay = z ** (-applied_delay_periods(delay_s, loop_hz))
    angle_rows = _angle_rows(x0)
    identity = np.eye(a.shape[0])
    # responses of every state to each output, at every frequency: (frequency, state, output)
    responses = np.stack([np.linalg.solve(zk * identity - a, b) for zk in z])
    d_alpha = 1.0 - math.exp(-2.0 * math.pi * constants.d_cutoff_hz * period)
    results = []
    for index, axis in enumerate(AXES):
        kp, ki, kd, kf = getattr(constants, axis)
        integral = ki * period * z / (z - 1.0)
        derivative = kd * d_alpha * (z - 1.0) / (period * (z - 1.0 + d_alpha))
        rate_response = responses[:, _RATE_COLUMNS[index], index]
        rate_loop = (kp + integral + derivative) * rate_response * delay
        results.append(_margins(axis, "rate", frequencies, rate_loop))
        if index < 2:
            angle_response = responses[:, :, index] @ angle_rows[index]
            angle_loop = rate_loop + constants.level_gain * (kp + kf + integral) * angle_response * delay
            results.append(_margins(axis, "angle", frequencies, angle_loop))
    governor = (constants.governor_p + constants.governor_i * period * z / (z - 1.0)) / constants.headspeed
    speed_response = responses[:, StateIndex.ROTOR_SPEED, 3]
    results.append(_margins("rotor speed", "governor", frequencies, governor * speed_response * delay))
    return results


def applied_delay_periods(delay_s: float, loop_hz: float) -> int:
    """The transport delay in whole controller periods (as a loop can delay its output)."""
    return round(delay_s * loop_hz)


def _margins(axis: str, loop: str, frequencies: np.ndarray, response: np.ndarray) -> LoopMargins:
    magnitude = np.abs(response)
    if not np.any(magnitude > 0.0):  # a loop whose gains are all zero: open, nothing to lose
        return LoopMargins(axis, loop, math.inf, math.inf, math.nan, math.nan)
    phase = np.unwrap(np.angle(response))
    gain_margin, phase_crossover = math.inf, math.nan
    # phase crossovers: -180 deg (mod 360) crossed; the lowest margin over them counts
    wrapped = (phase + math.pi) / (2.0 * math.pi)
    for i in np.nonzero(np.floor(wrapped[:-1]) != np.floor(wrapped[1:]))[0].tolist():
        margin = -20.0 * math.log10(max(_interpolate_log(magnitude, phase, i, wrapped), 1e-300))
        if margin < gain_margin:
            gain_margin, phase_crossover = margin, float(frequencies[i])
    phase_margin, crossover = math.inf, math.nan
    above = magnitude >= 1.0
    for i in np.nonzero(above[:-1] != above[1:])[0].tolist():
        margin = (math.degrees(phase[i]) + 360.0) % 360.0 - 180.0  # 180 deg + arg L, in [-180, 180)
        if abs(margin) < abs(phase_margin):
            phase_margin, crossover = margin, float(frequencies[i])
    return LoopMargins(axis, loop, gain_margin, phase_margin, crossover, phase_crossover)


def _interpolate_log(magnitude: np.ndarray, phase: np.ndarray, i: int, wrapped: np.ndarray) -> float:
    """|L| where the phase crosses -180 deg between grid points ``i`` and ``i + 1`` (log-linear)."""
    target = math.floor(wrapped[i + 1]) if wrapped[i + 1] > wrapped[i] else math.floor(wrapped[i])
    span = wrapped[i + 1] - wrapped[i]
    fraction = (target - wrapped[i]) / span if span else 0.0
    fraction = min(max(fraction, 0.0), 1.0)
    low, high = max(magnitude[i], 1e-300), max(magnitude[i + 1], 1e-300)
    return math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
