"""The real-time loop under a clock driven by hand: deadlines, stalls, catch-up, mode segments."""

from __future__ import annotations

import math

import pytest

from sim.config import FlightConfig, apply_overrides
from sim.flight import Flight
from sim.loop import FlightLoop, ManualClock
from tests.conftest import heli

CONTRACT_KEYS = {"duration_s", "loop_hz", "physics_dt_s", "io_mode_final", "segments", "ports", "events", "vehicles",
                 "stick_to_servo_ms"}  # fmt: skip
SEGMENT_KEYS = {"io_mode", "t_start_s", "t_end_s", "ticks", "missed_deadlines", "lateness_us", "period_ms"}
VEHICLE_KEYS = {"id", "crashed", "final_position_m", "final_velocity_m_s", "final_attitude_deg", "max_altitude_m",
                "min_altitude_m", "rotor_speed_rpm"}  # fmt: skip


def make_loop(duration_s: float, hook=None, catchup_limit_s: float = 1.0) -> tuple[FlightLoop, ManualClock]:
    flight = Flight(heli("xcell60").config, apply_overrides(FlightConfig(), start="hover"))
    clock = ManualClock()
    loop = FlightLoop(flight, clock, loop_hz=500, duration_s=duration_s, catchup_limit_s=catchup_limit_s,
                      before_tick=hook)  # fmt: skip
    return loop, clock


def test_undisturbed_loop_keeps_every_deadline():
    loop, _clock = make_loop(0.2)
    loop.run()
    (segment,) = loop.segments
    assert loop.stop_reason == "duration reached"
    assert loop.ticks == 101 and segment.ticks == 101
    assert loop.flight.steps == 200  # two 1 ms physics steps per 2 ms tick
    assert segment.missed_deadlines == 0
    assert segment.lateness.max == 0.0
    assert segment.period.quantile(0.5) == pytest.approx(0.002, rel=0.01)
    assert segment.period.max == pytest.approx(0.002, rel=1e-9)


def test_a_stall_misses_deadlines_but_the_world_keeps_moving():
    def stall_at_tick_10(loop: FlightLoop) -> None:
        if loop.ticks == 10:
            loop.clock.advance(0.1)  # a 100 ms blocking call inside the tick

    loop, clock = make_loop(0.3, stall_at_tick_10)
    loop.run()
    segment = loop.segments[0]
    assert segment.missed_deadlines == 49  # woke 98 ms late for tick 11: 49 more deadlines passed
    assert segment.lateness.max == pytest.approx(0.098, abs=1e-9)
    assert segment.period.max == pytest.approx(0.100, abs=1e-9)  # woke at 20 ms, then at 120 ms
    # the physics caught up with the wall clock: sim time is wall time, nothing was hidden
    assert loop.flight.sim_time_s == pytest.approx(clock.now() - loop.t0, abs=0.0011)
    assert not [e for e in loop.events if e.kind == "behind"]


def test_catch_up_is_capped_and_reported():
    def stall_at_tick_5(loop: FlightLoop) -> None:
        if loop.ticks == 5:
            loop.clock.advance(1.5)

    loop, clock = make_loop(2.0, stall_at_tick_5, catchup_limit_s=1.0)
    loop.run()
    (behind,) = [e for e in loop.events if e.kind == "behind"]
    # 1.5 s stalled plus the tick's own 2 ms: 1.502 s to catch up, 1 s allowed
    assert behind.detail == "physics 1.502 s behind the wall clock; skipped 0.502 s"
    wall = clock.now() - loop.t0
    assert loop.flight.sim_time_s == pytest.approx(wall - 0.502, abs=0.0011)


def test_mode_switch_opens_a_new_segment_at_a_tick_boundary():
    def switch(loop: FlightLoop) -> None:
        if loop.ticks == 20:
            loop.request_io_mode("blocking")
        if loop.ticks == 40:
            loop.toggle_io_mode()

    loop, _clock = make_loop(0.2, switch)
    loop.run()
    assert [s.io_mode for s in loop.segments] == ["threaded", "blocking", "threaded"]
    assert sum(s.ticks for s in loop.segments) == loop.ticks
    switches = [e.detail for e in loop.events if e.kind == "mode_switch"]
    assert switches == ["threaded -> blocking", "blocking -> threaded"]
    assert loop.segments[1].t_start_s == pytest.approx(21 * 0.002)
    assert loop.segments[0].t_end_s == loop.segments[1].t_start_s


def test_stop_request_ends_the_flight():
    def stop_at_tick_7(loop: FlightLoop) -> None:
        if loop.ticks == 7:
            loop.request_stop("SIGINT")

    loop, _clock = make_loop(0.0, stop_at_tick_7)
    loop.run()
    assert loop.stop_reason == "SIGINT"
    assert loop.ticks == 8


def test_summary_has_the_contract_keys():
    loop, _clock = make_loop(0.05)
    loop.run()
    summary = loop.summary()
    assert set(summary) >= CONTRACT_KEYS
    assert set(summary["segments"][0]) == SEGMENT_KEYS
    assert set(summary["vehicles"][0]) >= VEHICLE_KEYS
    assert summary["duration_s"] == pytest.approx(0.05)
    assert summary["io_mode_final"] == "threaded"
    assert set(summary["stick_to_servo_ms"]) == {"p50", "p99", "max"}
    assert all(math.isfinite(x) for x in summary["vehicles"][0]["final_position_m"])


def test_bad_io_mode_is_refused():
    loop, _clock = make_loop(0.01)
    with pytest.raises(ValueError, match="io_mode"):
        loop.request_io_mode("carrier pigeon")


def test_every_line_the_view_passes_on_is_a_command_of_the_loop():
    """The view's keys and the lines it passes on (sim.view.link) each have their method in the table."""
    from sim.loop import FlightLoop
    from sim.view.link import _PASSED_ON, COMMANDS

    words = {prefix.strip() for prefix in _PASSED_ON} | set(COMMANDS) | {"view_lost"}
    assert words <= set(FlightLoop._COMMANDS)
