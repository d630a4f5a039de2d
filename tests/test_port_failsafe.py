"""The failsafe deadline in blocking mode: the loop reads the RC port inline, and the deadline
still holds.

A blocking read gives up when the pilot's input goes stale (so the loop gets control to engage
the failsafe), and freshness is judged with the time after the read.  The flight test measures
how long after the last stick frame the failsafe engages, in threaded mode (the reference) and
in blocking mode, in the same test under the same load.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from sim.config import FaultSpec, FlightConfig, PortSpec, apply_overrides
from sim.flight import Flight
from sim.ports.codecs import make_codec
from sim.ports.events import EventLog
from sim.ports.roles import RcInPort
from sim.ports.transport import SerialSettings, open_transport
from sim.protocols import crsf
from sim.protocols.hsf import RcChannels, encode
from sim.protocols.rc import ChannelFrame
from sim.report import format_summary
from sim.session import flight_session
from sim.wiring import PortIO
from tests.conftest import heli
from tests.test_port_errors import pty_pair

SILENCE_AT_S = 0.6  # the transmitter goes silent (wall-clock seconds of flight) ...
SILENCE_S = 0.45  # ... for this long (the failsafe engages 0.25 s in) ...
SILENCE_EVERY_S = 0.8  # ... and again, this often
SILENCES = 5


def test_a_blocking_read_gives_up_when_the_input_goes_stale():
    with pty_pair() as (_master, path):
        port = RcInPort("rc-in", lambda: open_transport(path), EventLog(), url=path, codec=make_codec("hsf"),
                        read_deadline_s=5.0)  # fmt: skip
        port.open()
        try:
            start = time.monotonic()
            port.give_up_at = start + 0.2  # the first vehicle's input goes stale then
            assert port.exchange(None) is None  # nothing came
            elapsed_s = time.monotonic() - start
        finally:
            port.close()
    assert 0.2 <= elapsed_s < port.read_deadline_s / 2  # by the failsafe deadline, not the read's own


def test_blocking_mode_judges_freshness_with_the_time_after_the_inline_read():
    """In simulated time: the loop read its clock before calling ``read_inputs``; the inline read then
    took 0.3 s on the clock the flight's I/O reads (injected), so the input must be judged stale."""
    with pty_pair() as (master, path):
        config = apply_overrides(FlightConfig(), heli="trex450")
        config = replace(config, ports=(PortSpec(role="rc-in", url=path, protocol="hsf"),))
        read_took_s = [0.0]
        io = PortIO(Flight(heli("trex450").config, config), config, "blocking",
                    clock=lambda: time.monotonic() + read_took_s[0])  # fmt: skip
        io.open()
        try:
            os.write(master, encode(RcChannels(0, (1500,) * 8), 0))
            _frames, fresh, stick_t = io.read_inputs(time.monotonic())
            assert fresh[0]
            read_took_s[0] = 0.3
            _frames, fresh, _ = io.read_inputs(float(stick_t[0]))  # "now", as the loop read it before the read
        finally:
            io.close()
    assert not fresh[0]  # stale once the read is over: the controller flies the failsafe now, not a tick later
    assert [e.kind for e in io.drain_events()] == ["failsafe_on"]


def failsafe_delays(mode: str) -> tuple[list[float], float]:
    """Seconds from the last stick frame to ``failsafe_on``, for each of the transmitter's silences,
    and the loop's median tick period."""
    silences = tuple(SILENCE_AT_S + k * SILENCE_EVERY_S for k in range(SILENCES))
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", io=mode, duration_s=silences[-1] + 0.8)
    config = replace(
        config,
        ports=(PortSpec(role="rc-in"), PortSpec(role="servo")),
        faults=tuple(FaultSpec(kind="rc_silence", start_s=t, duration_s=SILENCE_S) for t in silences),
    )
    frame_times: set[float] = set()

    def watch(loop) -> None:  # vehicle 0's last stick frame (monotonic s), as each tick begins
        if loop.io.rc_port._last_t is not None:
            frame_times.add(loop.io.rc_port._last_t)

    with flight_session(config, heli("trex450").config, before_tick=watch) as loop:
        loop.run()
    engaged = [loop.t0 + e.t_s for e in loop.events if e.kind == "failsafe_on"]
    assert len(engaged) == SILENCES, [(e.t_s, e.kind) for e in loop.events]
    (segment,) = loop.segments
    return [t - max(f for f in frame_times if f < t) for t in engaged], segment.period.quantile(0.5)


@pytest.mark.realtime
def test_blocking_mode_engages_the_failsafe_as_promptly_as_threaded_mode():
    timeout_s = FlightConfig().flight.failsafe_timeout_s
    threaded_s, _ = failsafe_delays("threaded")
    blocking_s, blocking_period_s = failsafe_delays("blocking")
    assert min(threaded_s) >= timeout_s and min(blocking_s) >= timeout_s  # never early
    # blocking mode may add one read quantum (a read's poll) and a tick or two of its own (the
    # servo's round trip); before, the loop only looked again once the RC read's own 100 ms
    # deadline had passed: up to a whole read late, by the phase of the ticks (5 silences sample it)
    allowed_s = max(threaded_s) + SerialSettings().read_quantum_s + 2 * blocking_period_s
    assert max(blocking_s) <= allowed_s, (
        f"failsafe {[round(s * 1e3) for s in blocking_s]} ms after the last frame in blocking mode, "
        f"{[round(s * 1e3) for s in threaded_s]} ms in threaded mode (allowed {allowed_s * 1e3:.0f} ms)"
    )


def test_a_silent_radio_is_failsafe_from_the_start_said_so_and_recovers_when_it_speaks():
    """A radio that is off, unbound or on the wrong baud rate: nothing comes on rc-in.  The failsafe
    holds from the start (an event says so once its timeout has run), the summary names what was
    expected, and the first frame that comes is the failsafe's end."""
    with pty_pair() as (master, path):
        config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=30.0)
        config = replace(config, ports=(PortSpec(role="rc-in", url=path, protocol="crsf"),))
        frame = crsf.encode_channels(ChannelFrame((1500.0,) * 4 + (2000.0, 1500.0) + (1500.0,) * 10))

        def radio_after_silence(loop) -> None:
            kinds = [e.kind for e in loop.events]
            if "failsafe_off" in kinds:
                loop.request_stop("radio heard")
            elif "failsafe_on" in kinds:
                os.write(master, frame)  # the radio comes on

        with flight_session(config, heli("trex450").config, before_tick=radio_after_silence) as loop:
            loop.run()
    summary = loop.summary()
    assert summary["stop_reason"] == "radio heard"
    (silent, heard) = [e for e in summary["events"] if e["kind"].startswith("failsafe_")]
    assert silent["kind"] == "failsafe_on" and silent["detail"] == (
        "vehicle 0: no pilot input since the start (no frames from rc-in)"
    )
    assert silent["t_s"] >= config.flight.failsafe_timeout_s  # said once its timeout had run, in flight time
    assert heard["kind"] == "failsafe_off" and heard["detail"] == "vehicle 0: pilot input back"
    assert summary["pilot_source"] == f"the radio on {path} (crsf)"
    (rc,) = summary["ports"]
    assert rc["line"] == "CRSF at 420000 8N1"


def test_the_summary_says_when_nothing_came_from_the_radio():
    summary = {"duration_s": 1.0, "heli": "trex450", "fleet": 1, "loop_hz": 500, "physics_dt_s": 0.001,
               "stop_reason": "duration reached", "segments": [], "vehicles": [], "events": [],
               "ports": [{"name": "rc-in", "role": "rc-in", "protocol": "sbus", "stick_frames": 0,
                          "line": "SBUS at 100000 8E2, inverted"}]}  # fmt: skip
    assert "no frames from rc-in (expected SBUS at 100000 8E2, inverted)" in format_summary(summary).splitlines()
    summary["ports"][0]["stick_frames"] = 1
    assert "no frames from" not in format_summary(summary)
