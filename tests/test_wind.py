"""Real air: the Dryden turbulence against its MIL-F-8785C forms (intensities, scale lengths,
spectra), the shear profile, the 1-cos gust, seeding, and flights in it that replay exactly."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from heli.dynamics import FlightModel, step
from heli.initial import hover_state
from heli.params import Environment
from heli.state import ActuatorCommand
from heli.wind import (
    FEET,
    TURBULENCE_W20_M_S,
    UPDATE_PERIOD_S,
    WindField,
    dryden_psd,
    dryden_scales,
    gust_speed,
    shear_factor,
    turbulence_w20_m_s,
)
from sim.config import FaultSpec, FlightConfig, apply_overrides
from sim.flight import Flight
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import ManualClock
from sim.session import flight_session
from tests.conftest import heli
from tests.test_control import fly_flight

KNOT = 0.514444


def test_intensities_and_scale_lengths_are_mil_f_8785c_at_low_altitude():
    """At 20 ft in moderate turbulence (30 kt): sigma_w = 0.1 W20 = 1.54 m/s, L_w = 20 ft, and
    sigma_u = sigma_w / 0.1935^0.4 = 2.98 m/s, L_u = 20 ft / 0.1935^1.2 = 43.8 m."""
    lu, lv, lw, su, sv, sw = (float(x) for x in dryden_scales(20.0 * FEET, 30.0 * KNOT))
    assert sw == pytest.approx(0.1 * 30.0 * KNOT, rel=1e-9)
    assert lw == pytest.approx(20.0 * FEET, rel=1e-9)
    assert su == pytest.approx(2.976, rel=1e-3) and sv == su
    assert lu == pytest.approx(43.76, rel=1e-3) and lv == lu
    # below 10 ft the standard's floor; the levels are 15 / 30 / 45 kt at 20 ft
    assert dryden_scales(0.5, 1.0)[2] == pytest.approx(10.0 * FEET)
    assert [TURBULENCE_W20_M_S[k] / KNOT for k in ("light", "moderate", "severe")] == pytest.approx([15, 30, 45])
    # or the wind's own speed at 20 ft, as the standard reads W20
    assert turbulence_w20_m_s(Environment(wind_north_m_s=3.0, wind_east_m_s=4.0, turbulence="wind")) == 5.0


def welch(x: np.ndarray, rate_hz: float, segment: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """One-sided PSD by Welch's method (Hann window, no overlap), per Hz."""
    segments = x[: len(x) // segment * segment].reshape(-1, segment)
    window = np.hanning(segment)
    spectra = np.fft.rfft((segments - segments.mean(axis=1, keepdims=True)) * window, axis=1)
    psd = (np.abs(spectra) ** 2).mean(axis=0) * 2.0 / (rate_hz * (window**2).sum())
    return np.fft.rfftfreq(segment, 1.0 / rate_hz), psd


@pytest.fixture(scope="module")
def turbulence_record() -> tuple[np.ndarray, float]:
    """16 vehicles at 30 m in a 5 m/s north wind, moderate turbulence, 330 s at the field's 100 Hz."""
    field = WindField(count=16, wind_ned=(5.0, 0.0, 0.0), w20_m_s=TURBULENCE_W20_M_S["moderate"], seed=7)
    height = np.full(16, 30.0)
    samples = np.array([field.step(height, UPDATE_PERIOD_S) for _ in range(2**15)])
    return samples - np.array([5.0, 0.0, 0.0]), 1.0 / UPDATE_PERIOD_S


@pytest.mark.parametrize(("component", "column"), [("u", 0), ("v", 1), ("w", 2)])
def test_the_turbulence_has_the_dryden_spectrum_and_intensity(turbulence_record, component, column):
    samples, rate = turbulence_record
    lu, lv, lw, su, sv, sw = (float(x) for x in dryden_scales(30.0, TURBULENCE_W20_M_S["moderate"]))
    length, sigma = {"u": (lu, su), "v": (lv, sv), "w": (lw, sw)}[component]
    series = samples[:, :, column]
    assert series.std() == pytest.approx(sigma, rel=0.1)
    frequencies = welch(series[:, 0], rate)[0]
    psd = np.mean([welch(series[:, k], rate)[1] for k in range(series.shape[1])], axis=0)
    for low, high in ((0.05, 0.2), (0.2, 1.0), (1.0, 5.0)):
        band = (frequencies >= low) & (frequencies < high)
        dryden = dryden_psd("u" if component == "u" else "w", 2.0 * math.pi * frequencies[band], length, sigma, 5.0)
        assert psd[band].mean() / dryden.mean() == pytest.approx(1.0, abs=0.2), (low, high)


def test_every_vehicle_meets_its_own_eddies_and_the_seed_gives_the_same_air():
    def record(seed: int) -> np.ndarray:
        field = WindField(count=3, wind_ned=(3.0, 2.0, 0.0), w20_m_s=TURBULENCE_W20_M_S["light"], seed=seed)
        return np.array([field.step(np.full(3, 10.0), UPDATE_PERIOD_S) for _ in range(3000)])

    first, again, other = record(1), record(1), record(2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    correlation = np.corrcoef(first[:, 0, 2], first[:, 1, 2])[0, 1]
    assert abs(correlation) < 0.2  # vehicles 0 and 1: independent realisations


def test_a_snapshot_restores_the_air_exactly():
    field = WindField(count=2, wind_ned=(4.0, 0.0, 0.0), w20_m_s=TURBULENCE_W20_M_S["severe"], seed=3, shear=True)
    heights = np.array([5.0, 40.0])
    for _ in range(50):
        field.step(heights, 0.001)
    saved = field.snapshot()
    ahead = [field.step(heights, 0.001).copy() for _ in range(100)]
    field.restore(saved)
    again = [field.step(heights, 0.001).copy() for _ in range(100)]
    assert np.array_equal(np.array(ahead), np.array(again))


def test_the_shear_profile_is_logarithmic_from_the_surface_roughness():
    z0 = 0.15 * FEET
    assert float(shear_factor(20.0 * FEET, z0)) == pytest.approx(1.0)
    assert float(shear_factor(z0, z0)) == 0.0 and float(shear_factor(0.0, z0)) == 0.0
    assert float(shear_factor(2.0, z0)) == pytest.approx(math.log(2.0 / z0) / math.log(20.0 * FEET / z0))
    field = WindField(count=2, wind_ned=(6.0, 0.0, 0.0), shear=True)
    low, high = field.step(np.array([1.0, 30.0]), UPDATE_PERIOD_S)
    assert low[0] < 6.0 < high[0]


def test_the_discrete_gust_is_one_minus_cosine():
    """MIL-F-8785C: (V_m / 2)(1 - cos(pi x / d_m)) for 0 <= x <= 2 d_m; here x = V t."""
    t = np.array([-0.1, 0.0, 1.0, 2.0, 3.0, 4.0, 4.1])  # d_m = 10 m passed at 5 m/s: the peak at 2 s
    speed = gust_speed(t, 8.0, 10.0, 5.0)
    np.testing.assert_allclose(speed, [0.0, 0.0, 4.0, 8.0, 4.0, 0.0, 0.0], atol=1e-12)


def test_a_constant_wind_given_per_vehicle_is_the_environments_wind_bit_for_bit():
    h = heli("xcell60")
    model = FlightModel.build(h.config.params, Environment(wind_east_m_s=4.0))
    state = hover_state(model, h.trim, 2, 20.0)
    command = ActuatorCommand(np.concatenate([state.servo_position, state.throttle[:, None]], axis=1))
    given = step(model, state, command, 0.001, np.tile([0.0, 4.0, 0.0], (2, 1)))
    assert np.array_equal(given.packed, step(model, state, command, 0.001).packed)
    with pytest.raises(ValueError, match="wind has shape"):
        step(model, state, command, 0.001, np.zeros((3, 3)))


def turbulent_flight(seed: int, fleet: int = 2, faults: tuple = ()) -> Flight:
    config = apply_overrides(FlightConfig(), heli="xcell60", start="hover", start_altitude_m=10.0, fleet=fleet)
    environment = replace(config.environment, wind_north_m_s=5.0, turbulence="moderate", turbulence_seed=seed,
                          wind_shear=True)  # fmt: skip
    return Flight(heli("xcell60").config, replace(config, environment=environment, faults=faults))


def test_the_hover_pilot_holds_in_moderate_turbulence_and_a_reset_flies_the_same_air():
    flight = turbulent_flight(5)
    start = flight.vehicles.position_ned_m.copy()
    fly_flight(flight, 8.0, 500)
    first = flight.vehicles.packed.copy()
    assert not flight.vehicles.crashed.any()
    drift = np.linalg.norm(flight.vehicles.position_ned_m - start, axis=1)
    assert drift.max() < 5.0
    assert not np.array_equal(first[0, :6], first[1, :6])  # each in its own eddies
    flight.reset()
    fly_flight(flight, 8.0, 500)
    assert np.array_equal(flight.vehicles.packed, first)


@pytest.mark.parametrize("fleet", [1, 2])
def test_a_gust_fault_pushes_the_helicopter_when_it_comes(fleet):
    calm = turbulent_flight(5, fleet=fleet)
    gust = FaultSpec(kind="gust", start_s=2.0, gust_east_m_s=6.0, gust_length_m=10.0)
    gusty = turbulent_flight(5, fleet=fleet, faults=(gust,))
    fly_flight(calm, 1.9, 500)
    fly_flight(gusty, 1.9, 500)
    assert np.array_equal(calm.vehicles.packed, gusty.vehicles.packed)  # nothing before it comes
    fly_flight(calm, 2.0, 500)
    fly_flight(gusty, 2.0, 500)
    pushed = gusty.vehicles.position_ned_m[:, 1] - calm.vehicles.position_ned_m[:, 1]
    assert np.all(pushed > 0.1)  # blown east (each vehicle in its own turbulence as well)


def test_a_flight_in_turbulence_shear_and_a_gust_replays_bit_for_bit_through_a_reset(tmp_path):
    gust = FaultSpec(kind="gust", start_s=0.6, gust_north_m_s=-5.0, gust_length_m=5.0)
    config = apply_overrides(FlightConfig(ports=()), heli="xcell60", start="hover", start_altitude_m=10.0, fleet=2,
                             duration_s=1.5)  # fmt: skip
    environment = replace(config.environment, wind_east_m_s=3.0, turbulence="moderate", wind_shear=True)
    config = replace(config, environment=environment, faults=(gust,))
    log_path = tmp_path / "air.hslog"

    def reset_at_tick_300(loop) -> None:
        if loop.ticks == 300:
            loop.command("reset")

    with flight_session(config, heli("xcell60").config, clock=ManualClock(), log_path=str(log_path),
                        before_tick=reset_at_tick_300) as loop:  # fmt: skip
        loop.run()
    replay = Replay(read_log(str(log_path)))
    replay.run()
    assert replay.difference is None
    assert np.array_equal(replay.flight.vehicles.packed, loop.flight.vehicles.packed)
