"""What a sweep reports of each flight, measured every tick as the batch flies.

Per vehicle (one flight each): whether it crashed and why, the largest tilt from level, how
closely it followed the rates it was asked for (RMS of the built-in controller's rate setpoints
less the rates it then had: what the pilot script asked, through the controller's modes), how
far it drifted from where it started, the sink rate of its last touchdown, how far the headspeed
drooped below the governed speed in flight, the time in failsafe, and the highest point.
"""

from __future__ import annotations

import math

import numpy as np

from heli.state import CRASH_REASONS
from sim.flight import Flight

__all__ = ["METRICS", "FlightMeter"]

# the rows' metric columns, in order, with what each is (units in the names)
METRICS: dict[str, str] = {
    "crashed": "the helicopter crashed (or its numbers blew up)",
    "crash_reason": "rotor strike, hard landing, roll-over, diverged, or none",
    "max_tilt_deg": "largest angle between the rotor shaft and the vertical",
    "rate_error_rms_deg_s": "RMS of the controller's rate setpoints less the body rates, while flying (3 axes)",
    "roll_rate_error_rms_deg_s": "... of the roll axis alone",
    "pitch_rate_error_rms_deg_s": "... of the pitch axis alone",
    "yaw_rate_error_rms_deg_s": "... of the yaw axis alone",
    "max_drift_m": "farthest horizontal distance from the start",
    "landing_sink_m_s": "sink rate at the last touchdown (empty: never landed after flying)",
    "rpm_droop_pct": "lowest headspeed in flight below the governed one (empty: never governed in flight)",
    "failsafe_s": "time the controller spent in failsafe",
    "max_altitude_m": "highest point above the ground",
    "flight_s": "simulated time flown",
}
_GOVERNOR_ACTIVE = 2.0


class FlightMeter:
    """The ``METRICS`` of every vehicle of a batch, sampled at the start of each tick."""

    def __init__(self, flight: Flight):
        vehicles = flight.vehicles
        count = vehicles.count
        self._start_ne = vehicles.position_ned_m[:, :2].copy()
        self._skid_m = flight.model.params.contact.skid_depth_m
        self._headspeed = np.broadcast_to(np.asarray(flight.constants.headspeed, dtype=np.float64), (count,))
        self.max_tilt_deg = np.zeros(count)
        self.max_drift_m = np.zeros(count)
        self.failsafe_s = np.zeros(count)
        self._lowest_speed = np.full(count, math.inf)
        self._rate_error_sq = np.zeros((count, 3))  # per axis
        self._rate_samples = np.zeros(count)
        self._seen_rates: np.ndarray | None = None  # the rates the controller saw at its last cycle
        self._last_t = flight.sim_time_s

    def sample(self, flight: Flight) -> None:
        vehicles = flight.vehicles
        dt = flight.sim_time_s - self._last_t
        self._last_t = flight.sim_time_s
        q = vehicles.attitude_quat
        cos_tilt = np.clip(1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2), -1.0, 1.0)
        np.maximum(self.max_tilt_deg, np.degrees(np.arccos(cos_tilt)), out=self.max_tilt_deg)
        drift = np.hypot(*(vehicles.position_ned_m[:, :2] - self._start_ne).T)
        np.maximum(self.max_drift_m, drift, out=self.max_drift_m)
        controller = flight.controller
        self.failsafe_s += dt * (controller.failsafe_active > 0.5)
        governed = flight.airborne & (controller.governor_state == _GOVERNOR_ACTIVE)
        speed = np.where(governed, vehicles.rotor_speed_rad_s, math.inf)
        np.minimum(self._lowest_speed, speed, out=self._lowest_speed)
        if flight.terms is not None and self._seen_rates is not None:  # last cycle's setpoints against its rates
            error = flight.terms[:, :3] - self._seen_rates
            flying = governed.astype(np.float64)
            self._rate_error_sq += flying[:, None] * error * error
            self._rate_samples += flying
        self._seen_rates = vehicles.body_rates_rad_s.copy()

    def rows(self, flight: Flight) -> list[dict[str, object]]:
        """One dict of ``METRICS`` per vehicle, in the fleet's order."""
        vehicles = flight.vehicles
        codes = vehicles.crash_code
        samples = np.maximum(self._rate_samples, 1.0)[:, None]
        per_axis = np.degrees(np.sqrt(self._rate_error_sq / samples))
        rms = np.degrees(np.sqrt(self._rate_error_sq.sum(axis=1, keepdims=True) / samples))
        rates = np.concatenate([rms, per_axis], axis=1)
        rates[self._rate_samples == 0] = math.nan
        droop = np.where(np.isfinite(self._lowest_speed), 100.0 * (1.0 - self._lowest_speed / self._headspeed), np.nan)
        rows = []
        for i in range(vehicles.count):
            diverged = bool(flight.diverged_in_flight[i])
            reason = "diverged" if diverged else CRASH_REASONS.get(int(codes[i]), "crash") if codes[i] else "none"
            rows.append({
                "crashed": bool(codes[i]) or diverged,
                "crash_reason": reason,
                "max_tilt_deg": float(self.max_tilt_deg[i]),
                "rate_error_rms_deg_s": float(rates[i, 0]),
                "roll_rate_error_rms_deg_s": float(rates[i, 1]),
                "pitch_rate_error_rms_deg_s": float(rates[i, 2]),
                "yaw_rate_error_rms_deg_s": float(rates[i, 3]),
                "max_drift_m": float(self.max_drift_m[i]),
                "landing_sink_m_s": float(flight.touchdown_sink_m_s[i]),
                "rpm_droop_pct": float(droop[i]),
                "failsafe_s": float(self.failsafe_s[i]),
                "max_altitude_m": float(flight.max_altitude_m[i] - self._skid_m),
                "flight_s": flight.sim_time_s,
            })  # fmt: skip
        return rows
