"""Real air: Dryden turbulence, wind shear near the ground and discrete 1-cos gusts.

Pure numpy, seeded: the same seed gives the same air, step by step, so a flight replays exactly.
Every vehicle of a fleet flies in its own realisation of the same statistics (its own noise
stream from the one seed), as vehicles spread over a field meet different eddies.

Turbulence follows the Dryden form of MIL-F-8785C (and MIL-HDBK-1797) at low altitude (below
1000 ft), components along the mean wind (u), across it (v) and vertical (w), with the height
``h`` in feet:

* scale lengths ``L_w = h``, ``L_u = L_v = h / (0.177 + 0.000823 h)^1.2``;
* intensities ``sigma_w = 0.1 W20``, ``sigma_u = sigma_v = sigma_w / (0.177 + 0.000823 h)^0.4``,
  ``W20`` the wind speed at 20 ft: 15 kt light, 30 kt moderate, 45 kt severe, or the steady
  wind's own speed (``turbulence = "wind"``);
* spectra ``Phi_u(W) = sigma_u^2 (2 L_u / pi) / (1 + (L_u W)^2)`` and
  ``Phi_v,w(W) = sigma^2 (L / pi) (1 + 3 (L W)^2) / (1 + (L W)^2)^2`` over the spatial frequency
  ``W`` (rad/m); a frozen field carried past at the mean wind speed ``V`` gives the temporal
  ones.  ``u`` is an exact first-order Gauss-Markov update; ``v`` and ``w`` are the two-state
  shaping filter ``(1 + sqrt(3) (L/V) s) / (1 + (L/V) s)^2`` on white noise, discretised
  exactly (its noise covariance by Van Loan's integral), scaled to the stationary variance above;
  each starts in its stationary distribution.

The air is drawn anew every ``UPDATE_PERIOD_S`` (10 ms) and held between physics steps: the
spectra matter up to a few hertz, and drawing every 1 ms step would cost more than the step.
The height is clamped to 10 ft (the standard's floor) and the carrying speed to at least
``MIN_CARRY_SPEED_M_S``: in still air the turbulence's eddies would not move past a hovering
helicopter at all.

Shear: the steady wind is the wind at 20 ft (6.1 m); at other heights it scales as
MIL-F-8785C's logarithmic profile ``ln(h / z0) / ln(20 ft / z0)``, ``z0`` the surface roughness
(0.15 ft, 0.046 m, for the standard's terminal phases), and is zero at ``z0`` and below.

Discrete gust: MIL-F-8785C's ``(V_m / 2) (1 - cos(pi x / d_m))`` over ``0 <= x <= 2 d_m``, here
in time as the gust front passes at the carrying speed: ``x = V t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heli.params import Environment

__all__ = [
    "FEET",
    "MIN_CARRY_SPEED_M_S",
    "TURBULENCE_W20_M_S",
    "UPDATE_PERIOD_S",
    "WindField",
    "dryden_psd",
    "dryden_scales",
    "gust_speed",
    "shear_factor",
    "turbulence_w20_m_s",
]

FEET = 0.3048
KNOT = 0.514444
TURBULENCE_W20_M_S = {"none": 0.0, "light": 15.0 * KNOT, "moderate": 30.0 * KNOT, "severe": 45.0 * KNOT}
MIN_CARRY_SPEED_M_S = 1.0
UPDATE_PERIOD_S = 0.01  # the air is drawn anew at 100 Hz, held between (far above the rotor's bandwidth)
_MIN_HEIGHT_FT = 10.0
_MAX_HEIGHT_FT = 1000.0
_REFERENCE_HEIGHT_M = 20.0 * FEET
_SQRT3 = math.sqrt(3.0)


def turbulence_w20_m_s(environment: Environment) -> float:
    """W20 of an environment: its level's (light, moderate, severe), or with ``turbulence = "wind"``
    the steady wind's horizontal speed (as the standard reads W20: the wind at 20 ft)."""
    if environment.turbulence == "wind":
        return math.hypot(environment.wind_north_m_s, environment.wind_east_m_s)
    return TURBULENCE_W20_M_S[environment.turbulence]


def dryden_scales(height_m: np.ndarray | float, w20_m_s: float) -> tuple:
    """``(L_u, L_v, L_w, sigma_u, sigma_v, sigma_w)`` in m and m/s at ``height_m`` (low altitude)."""
    h = np.clip(np.asarray(height_m, dtype=np.float64) / FEET, _MIN_HEIGHT_FT, _MAX_HEIGHT_FT)
    base = 0.177 + 0.000823 * h
    length_w = h * FEET
    length_uv = h / base**1.2 * FEET
    sigma_w = 0.1 * w20_m_s * np.ones_like(h)
    sigma_uv = sigma_w / base**0.4
    return length_uv, length_uv, length_w, sigma_uv, sigma_uv, sigma_w


def dryden_psd(component: str, omega_rad_s: np.ndarray, length_m: float, sigma: float, speed: float) -> np.ndarray:
    """One-sided temporal PSD ((m/s)^2 per Hz) of a component at angular frequencies ``omega_rad_s``."""
    spatial = omega_rad_s / speed
    lw = length_m * spatial
    if component == "u":
        per_rad_m = sigma**2 * (2.0 * length_m / math.pi) / (1.0 + lw**2)
    else:
        per_rad_m = sigma**2 * (length_m / math.pi) * (1.0 + 3.0 * lw**2) / (1.0 + lw**2) ** 2
    # per rad/m (two-sided in W, as the standard writes it, integrating to sigma^2 over 0..inf)
    # -> per rad/s (divide by V) -> per Hz (times 2 pi)
    return per_rad_m / speed * 2.0 * math.pi


def shear_factor(height_m: np.ndarray | float, roughness_m: float) -> np.ndarray:
    """The logarithmic profile's wind at ``height_m`` over its wind at 20 ft (0 at and below ``z0``)."""
    h = np.maximum(np.asarray(height_m, dtype=np.float64), roughness_m)
    return np.log(h / roughness_m) / math.log(_REFERENCE_HEIGHT_M / roughness_m)


def gust_speed(elapsed_s: np.ndarray | float, amplitude_m_s: float, length_m: float, carry_m_s: float) -> np.ndarray:
    """The 1-cos gust's speed ``elapsed_s`` after its front arrives (0 before and after it)."""
    x = np.asarray(elapsed_s, dtype=np.float64) * np.maximum(carry_m_s, MIN_CARRY_SPEED_M_S)
    inside = (x >= 0.0) & (x <= 2.0 * length_m)
    return np.where(inside, 0.5 * amplitude_m_s * (1.0 - np.cos(math.pi * x / length_m)), 0.0)


def _chain_step(tau: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact discretisation of the chain ``x1' = (n - x1) / tau``, ``x0' = (x1 - x0) / tau`` driven by
    unit white noise ``n``: the ``(N, 2, 2)`` transition of ``(x0, x1)`` and the Cholesky factor of
    its noise covariance (Van Loan's integral in closed form)."""
    r = dt / tau
    e = np.exp(-r)
    transition = np.zeros((tau.size, 2, 2))
    transition[:, 0, 0] = e
    transition[:, 0, 1] = r * e
    transition[:, 1, 1] = e
    k_dt = 2.0 * r  # (2 / tau) dt
    fade = np.exp(-k_dt)
    i0 = tau / 2.0 * (1.0 - fade)
    i1 = (tau / 2.0) ** 2 * (1.0 - fade * (1.0 + k_dt))
    i2 = (tau / 2.0) ** 3 * (2.0 - fade * (k_dt * k_dt + 2.0 * k_dt + 2.0))
    q11, q12, q22 = i2 / tau**4, i1 / tau**3, i0 / tau**2
    chol = np.zeros((tau.size, 2, 2))
    chol[:, 0, 0] = np.sqrt(q11)
    chol[:, 1, 0] = q12 / np.sqrt(q11)
    chol[:, 1, 1] = np.sqrt(np.maximum(q22 - q12**2 / q11, 0.0))
    return transition, chol


@dataclass
class WindField:
    """Per-vehicle air: steady wind (sheared or not), Dryden turbulence and gusts, stepped in time.

    ``wind_ned`` is the steady wind at 20 ft; ``w20_m_s`` the turbulence level (0: none).
    """

    count: int
    wind_ned: tuple[float, float, float]
    w20_m_s: float = 0.0
    seed: int = 0
    shear: bool = False
    roughness_m: float = 0.15 * FEET
    start_time_s: float = 0.0  # the flight time the field starts at (gusts are scheduled on it)

    def __post_init__(self) -> None:
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.u = np.zeros(self.count)
        self.v_state = np.zeros((self.count, 2))
        self.w_state = np.zeros((self.count, 2))
        self.started = False
        self.gusts: list[tuple[float, float, float, np.ndarray]] = []  # (start s, amplitude, length, unit NED)
        self.time_s = self.start_time_s
        self.pending_s = 0.0  # time since the air was last drawn
        self.current: np.ndarray | None = None

    @property
    def turbulent(self) -> bool:
        return self.w20_m_s > 0.0

    def snapshot(self) -> tuple:
        """Everything the next steps depend on (to retry a stretch of steps identically)."""
        current = None if self.current is None else self.current.copy()
        return (self.rng.bit_generator.state, self.u.copy(), self.v_state.copy(), self.w_state.copy(),
                self.started, self.time_s, self.pending_s, current)  # fmt: skip

    def restore(self, snapshot: tuple) -> None:
        state, u, v, w, started, time_s, pending_s, current = snapshot
        self.rng.bit_generator.state = state
        self.u, self.v_state, self.w_state, self.started = u.copy(), v.copy(), w.copy(), started
        self.time_s, self.pending_s = time_s, pending_s
        self.current = None if current is None else current.copy()

    def add_gust(self, start_s: float, amplitude_m_s: float, length_m: float, direction_ned: tuple) -> None:
        """A 1-cos gust from ``start_s`` (flight time), ``amplitude_m_s`` along ``direction_ned``."""
        unit = np.asarray(direction_ned, dtype=np.float64)
        self.gusts.append((start_s, amplitude_m_s, length_m, unit / np.linalg.norm(unit)))

    def mean_wind(self, height_m: np.ndarray) -> np.ndarray:
        """(N, 3) steady wind at each vehicle's height."""
        steady = np.tile(np.asarray(self.wind_ned, dtype=np.float64), (self.count, 1))
        if self.shear:
            steady[:, :2] *= shear_factor(height_m, self.roughness_m)[:, None]
        return steady

    def step(self, height_m: np.ndarray, dt_s: float) -> np.ndarray:
        """Advance ``dt_s`` and return the (N, 3) NED wind each vehicle meets (m/s): drawn anew every
        ``UPDATE_PERIOD_S`` of flight time (over the time since the last draw), held between."""
        self.pending_s += dt_s
        if self.current is None or self.pending_s >= UPDATE_PERIOD_S - 1e-12:
            self.current = self._draw(height_m, self.pending_s)
            self.pending_s = 0.0
        return self.current

    def _draw(self, height_m: np.ndarray, dt_s: float) -> np.ndarray:
        height_m = np.asarray(height_m, dtype=np.float64)
        mean = self.mean_wind(height_m)
        horizontal = np.hypot(mean[:, 0], mean[:, 1])
        carry = np.maximum(horizontal, MIN_CARRY_SPEED_M_S)
        wind = mean
        if self.turbulent:
            wind = mean + self._turbulence(height_m, carry, horizontal, mean, dt_s)
        self.time_s += dt_s
        for start, amplitude, length, unit in self.gusts:
            wind = wind + gust_speed(self.time_s - start, amplitude, length, carry)[:, None] * unit[None, :]
        return wind

    def _turbulence(self, height_m, carry, horizontal, mean, dt_s) -> np.ndarray:
        lu, lv, lw, su, sv, sw = dryden_scales(height_m, self.w20_m_s)
        if not self.started:  # start in the stationary distribution, not from calm air
            self.started = True
            self.u = su * self.rng.standard_normal(self.count)
            for state, length in ((self.v_state, lv), (self.w_state, lw)):
                tau = length / carry
                z = self.rng.standard_normal((self.count, 2))
                spread = np.sqrt(1.0 / (4.0 * tau))  # stationary covariance [[1, 1], [1, 2]] / (4 tau)
                state[:, 0] = spread * z[:, 0]
                state[:, 1] = spread * (z[:, 0] + z[:, 1])
        noise = self.rng.standard_normal((self.count, 5))
        decay = np.exp(-carry * dt_s / lu)
        self.u = decay * self.u + su * np.sqrt(1.0 - decay**2) * noise[:, 0]
        v = self._chain(self.v_state, lv / carry, sv, noise[:, 1:3], dt_s)
        w = self._chain(self.w_state, lw / carry, sw, noise[:, 3:5], dt_s)
        # u along the mean wind, v across it (to its right), w up (NED down is -w)
        heading = np.where(horizontal > 1e-6, np.arctan2(mean[:, 1], mean[:, 0]), 0.0)
        cos_h, sin_h = np.cos(heading), np.sin(heading)
        return np.stack([self.u * cos_h - v * sin_h, self.u * sin_h + v * cos_h, -w], axis=1)

    @staticmethod
    def _chain(state: np.ndarray, tau: np.ndarray, sigma: np.ndarray, noise: np.ndarray, dt_s: float) -> np.ndarray:
        """Advance a unit-noise chain one step; its Dryden output ``(1 + sqrt(3) tau s) x0``, scaled so
        its stationary variance is ``sigma^2`` (the chain's output variance is ``1 / tau``)."""
        transition, chol = _chain_step(tau, dt_s)
        state[:] = np.einsum("nij,nj->ni", transition, state) + np.einsum("nij,nj->ni", chol, noise)
        return sigma * np.sqrt(tau) * ((1.0 - _SQRT3) * state[:, 0] + _SQRT3 * state[:, 1])
