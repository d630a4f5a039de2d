"""Loop timing statistics (``sim.stats``): log-binned percentiles against numpy, and the summary shape."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sim.stats import Event, LogHistogram, Segment

FLOOR_S = 1e-7  # the histogram's range, from its docstring: 0.1 us ...
CEILING_S = 1e3  # ... to 1000 s
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0)


def filled(samples) -> LogHistogram:
    histogram = LogHistogram()
    for value in samples:
        histogram.add(float(value))
    return histogram


def lognormal(seed: int, median_s: float, sigma: float, count: int) -> np.ndarray:
    return median_s * np.random.default_rng(seed).lognormal(0.0, sigma, count)


@pytest.mark.parametrize(
    ("seed", "median_s", "sigma"),
    [(1, 100e-6, 1.0), (2, 2e-3, 0.1), (3, 20e-6, 0.7), (4, 0.5, 0.5), (5, 1e-3, 2.0)],
    ids=["lateness-us", "period-ms", "tight-us", "seconds", "wide"],
)
def test_quantiles_within_one_percent_of_numpy(seed, median_s, sigma):
    # an odd count keeps q * count off whole numbers, where numpy's and the histogram's rounding of
    # the rank could pick neighbouring samples
    samples = lognormal(seed, median_s, sigma, 20_001)
    assert samples.min() > FLOOR_S
    histogram = filled(samples)
    assert histogram.count == samples.size
    for q in QUANTILES:
        # the histogram's definition: the smallest sample with at least a share q at or below it
        expected = np.percentile(samples, 100.0 * q, method="inverted_cdf")
        assert histogram.quantile(q) == pytest.approx(expected, rel=0.01), f"q = {q}"
    for q in (0.5, 0.9, 0.99):
        # numpy's default (linear) interpolation too, where the samples are dense
        assert histogram.quantile(q) == pytest.approx(np.percentile(samples, 100.0 * q), rel=0.01), f"q = {q}"


def test_quantiles_are_monotonic():
    histogram = filled(lognormal(6, 1e-4, 1.5, 5_000))
    values = [histogram.quantile(q) for q in np.linspace(0.0, 1.0, 101)]
    assert all(a <= b for a, b in itertools.pairwise(values))


def test_max_is_exact():
    samples = lognormal(7, 1e-4, 1.0, 10_000)
    histogram = filled(samples)
    assert histogram.max == samples.max()
    assert histogram.quantile(1.0) <= histogram.max
    assert histogram.summary(1.0, digits=12)["max"] == round(float(samples.max()), 12)


def test_total_and_count():
    samples = lognormal(8, 1e-3, 0.5, 1_000)
    histogram = filled(samples)
    assert histogram.count == 1_000
    assert histogram.total == pytest.approx(samples.sum(), rel=1e-12)


def test_a_single_sample():
    histogram = filled([1.234e-3])
    for q in (0.0, 0.5, 1.0):
        assert histogram.quantile(q) == pytest.approx(1.234e-3, rel=0.01)
    assert histogram.max == 1.234e-3


def test_identical_samples_never_exceed_the_max():
    histogram = filled([5e-4] * 100)
    assert histogram.quantile(0.99) <= 5e-4
    assert histogram.quantile(0.99) == pytest.approx(5e-4, rel=0.01)


def test_empty_histogram():
    histogram = LogHistogram()
    assert histogram.count == 0
    for q in (0.0, 0.5, 0.99, 1.0):
        assert histogram.quantile(q) is None
    assert histogram.summary(1e6) == {"p50": None, "p99": None, "max": None}


def test_zero_values():
    histogram = filled([0.0] * 10)
    assert histogram.count == 10
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(1.0) == 0.0
    assert histogram.max == 0.0
    assert histogram.summary(1e6) == {"p50": 0.0, "p99": 0.0, "max": 0.0}


def test_negative_values_count_as_zero():
    histogram = filled([-1e-3, -1e-6, 0.0])
    assert histogram.count == 3
    assert histogram.quantile(0.5) == 0.0
    assert histogram.quantile(1.0) == 0.0


def test_values_below_the_floor_read_as_zero():
    histogram = filled([FLOOR_S / 100.0] * 10)
    assert histogram.quantile(0.5) == 0.0
    assert histogram.max == FLOOR_S / 100.0  # the maximum stays exact


def test_zeros_and_negatives_do_not_disturb_the_rest():
    samples = lognormal(9, 1e-4, 0.5, 1_000)
    histogram = filled([*samples, 0.0, -5e-6])
    assert histogram.count == 1_002
    assert histogram.max == samples.max()
    assert histogram.quantile(0.0) == 0.0
    assert histogram.quantile(0.9) == pytest.approx(np.percentile(samples, 90.0, method="inverted_cdf"), rel=0.02)


@pytest.mark.parametrize("huge_s", [CEILING_S, 1e6, 1e300])
def test_huge_values_clamp_to_the_top_bin(huge_s):
    histogram = filled([1e-3] * 98 + [huge_s] * 2)
    assert histogram.count == 100
    assert histogram.max == huge_s  # exact, not clamped
    assert histogram.quantile(0.5) == pytest.approx(1e-3, rel=0.01)
    top = histogram.quantile(1.0)
    assert np.isfinite(top)
    assert top <= huge_s
    assert top == pytest.approx(CEILING_S, rel=0.01)


def test_summary_scales_and_rounds():
    histogram = filled(lognormal(10, 250e-6, 0.3, 5_000))
    in_us = histogram.summary(1e6)
    assert list(in_us) == ["p50", "p99", "max"]
    assert in_us["p50"] == pytest.approx(histogram.quantile(0.5) * 1e6, abs=0.05 + 1e-9)
    assert in_us["p99"] == pytest.approx(histogram.quantile(0.99) * 1e6, abs=0.05 + 1e-9)
    assert in_us["max"] == pytest.approx(histogram.max * 1e6, abs=0.05 + 1e-9)
    assert in_us["max"] == round(in_us["max"], 1)
    in_ms = histogram.summary(1e3, 3)
    assert in_ms["p50"] == round(in_ms["p50"], 3)
    assert in_ms["p50"] == pytest.approx(0.25, rel=0.03)
    assert in_ms["p50"] <= in_ms["p99"] <= in_ms["max"]


def test_segment_to_dict_keys():
    segment = Segment(io_mode="threaded", t_start_s=1.0)
    out = segment.to_dict()
    assert set(out) == {
        "io_mode",
        "t_start_s",
        "t_end_s",
        "ticks",
        "missed_deadlines",
        "lateness_us",
        "period_ms",
    }
    assert set(out["lateness_us"]) == {"p50", "p99", "max"}
    assert set(out["period_ms"]) == {"p50", "p99", "max"}
    assert out["lateness_us"] == {"p50": None, "p99": None, "max": None}


def test_segment_to_dict_values():
    segment = Segment(io_mode="asyncio", t_start_s=0.5, t_end_s=2.5, ticks=1000, missed_deadlines=3)
    for lateness_s, period_s in zip(lognormal(11, 50e-6, 0.5, 1000), lognormal(12, 2e-3, 0.05, 1000), strict=True):
        segment.lateness.add(float(lateness_s))
        segment.period.add(float(period_s))
    out = segment.to_dict()
    assert out["io_mode"] == "asyncio"
    assert (out["t_start_s"], out["t_end_s"]) == (0.5, 2.5)
    assert (out["ticks"], out["missed_deadlines"]) == (1000, 3)
    assert out["lateness_us"]["p50"] == pytest.approx(50.0, rel=0.1)  # microseconds
    assert out["period_ms"]["p50"] == pytest.approx(2.0, rel=0.02)  # milliseconds
    assert out["lateness_us"]["max"] == round(segment.lateness.max * 1e6, 1)
    assert out["period_ms"]["max"] == round(segment.period.max * 1e3, 3)


def test_segment_histograms_are_not_shared():
    first, second = Segment("threaded", 0.0), Segment("blocking", 1.0)
    first.lateness.add(1e-3)
    assert second.lateness.count == 0


def test_event_to_dict():
    assert Event(1.23456789, "io_switch", "threaded -> blocking").to_dict() == {
        "t_s": 1.234568,
        "kind": "io_switch",
        "detail": "threaded -> blocking",
    }


def test_many_short_segments_stay_small():
    # a soak toggles the I/O mode every few seconds: each toggle closes a segment with two histograms
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        segments = []
        for k in range(500):
            segment = Segment("threaded", float(k))
            for i in range(200):
                segment.lateness.add(1e-5 * (1 + i % 50))
                segment.period.add(2e-3 + 1e-6 * (i % 20))
            segments.append(segment)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 8e6 and segments[-1].to_dict()["ticks"] == 0  # 18 KB per histogram with dense bins: 18 MB


def test_the_interpreter_says_whether_its_gil_is_on(monkeypatch):
    import sys

    from sim.runtime import gil_enabled, python_line

    assert gil_enabled() == getattr(sys, "_is_gil_enabled", lambda: True)()
    # a free-threaded build with the GIL off (3.13t), which this machine does not have
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert not gil_enabled() and python_line().endswith("(free-threaded: no GIL)")


def test_a_fleet_too_heavy_for_its_loop_rate_is_said_in_the_summary_and_its_vehicles_counted():
    """20,000 vehicles cannot be stepped in a 2 ms period on any machine numpy runs on (two physics
    steps and a controller cycle of hundreds of array operations each): the summary says the loop
    ran far fewer ticks than asked, and lists 20 vehicles, then counts the rest by state."""
    from sim.config import FlightConfig, FlightSettings, load_heli
    from sim.report import format_summary
    from sim.session import flight_session

    settings = FlightSettings(heli="trex450", fleet=20_000, start="hover", duration_s=0.1)
    with flight_session(FlightConfig(flight=settings, ports=()), load_heli("trex450")) as loop:
        loop.run()
    text = format_summary(loop.summary())
    assert (
        "the loop ran " in text
        and "of wall-clock time at 500 Hz asks for" in text
        and "a tick took longer than the period" in text
    )
    assert "... and 19980 more: 19980 ok" in text
    assert len(text.splitlines()) < 60


def test_a_loop_held_up_by_blocking_io_is_told_to_use_threads_not_a_smaller_fleet():
    """The seed demo in blocking mode: the summary says the loop waited on its ports, and how to
    overlap the waits, rather than advising a smaller fleet (the fleet was never the cost)."""
    from sim.report import _held_line

    segment = {"io_mode": "blocking", "t_start_s": 0.0, "t_end_s": 3.0, "ticks": 6}
    (_, line) = _held_line({"segments": [segment], "loop_hz": 500.0, "fc": None})
    assert "waited on its ports in blocking I/O" in line and "--io threaded or asyncio" in line
    assert "smaller fleet" not in line


def test_a_loop_too_heavy_for_its_rate_is_told_what_would_lighten_it_and_only_that():
    """A flight whose ticks took longer than the period: a smaller fleet, a lower rate, the compiled
    kernels where it did not fly on them; --no-ports only where it had ports to drop."""
    from sim.report import _held_line

    segment = {"io_mode": "threaded", "t_start_s": 0.0, "t_end_s": 3.0, "ticks": 60}
    without = _held_line({"segments": [segment], "loop_hz": 500.0, "fc": None, "ports": [], "kernel": "numpy"})[1]
    assert "a smaller fleet" in without and "--kernel compiled" in without and "--no-ports" not in without
    with_ports = _held_line({"segments": [segment], "loop_hz": 500.0, "fc": None, "ports": [{"name": "rc-in"}],
                             "kernel": "compiled"})[1]  # fmt: skip
    assert "--no-ports" in with_ports and "--kernel compiled" not in with_ports
    assert "60 ticks of the 1,500" in with_ports and "3.0 s of wall-clock time" in with_ports


def test_a_fleet_whose_physics_cannot_keep_real_time_is_told_early_once():
    """A fleet whose physics step costs more wall-clock time than the millisecond it simulates: a
    warning and a ``too_heavy`` event once, early, not only the summary's line at the end."""
    from sim.config import FlightConfig, FlightSettings, load_heli
    from sim.session import flight_session

    settings = FlightSettings(heli="trex450", fleet=8_000, start="ground", duration_s=0.22)  # ~6 ms a 1 ms step
    with flight_session(FlightConfig(flight=settings, ports=()), load_heli("trex450")) as loop:
        loop.run()
    heavy = [e for e in loop.summary()["events"] if e["kind"] == "too_heavy"]
    assert len(heavy) == 1 and "cannot keep real time" in heavy[0]["detail"]


def test_a_light_flight_is_not_told_it_is_too_heavy():
    from sim.config import FlightConfig, FlightSettings, load_heli
    from sim.session import flight_session

    settings = FlightSettings(heli="trex450", fleet=1, start="hover", duration_s=0.6)
    with flight_session(FlightConfig(flight=settings, ports=()), load_heli("trex450")) as loop:
        loop.run()
    assert not [e for e in loop.summary()["events"] if e["kind"] == "too_heavy"]
