"""Each RC protocol end to end over a pty: an emulated transmitter speaking it flies the
simulated helicopter; stale input and the SBUS failsafe flag engage the failsafe and release it."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest
import serial

from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.loop import FlightLoop
from sim.protocols import msp, sbus
from sim.protocols.rc import ChannelFrame
from sim.session import flight_session
from sim.wiring import next_on_cadence
from tests.conftest import heli
from tests.test_ports import needs_socat, socat_pair

CLIMB = "[[at]]\nt = 0.0\narm = 2000\nmode = 1500\ncollective = 1500\n[[at]]\nt = 0.3\ncollective = 1900\n"


def fly(ports: tuple[PortSpec, ...], duration_s: float, hook=None, **settings) -> FlightLoop:
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=duration_s, **settings)
    with flight_session(replace(config, ports=ports), heli("trex450").config, before_tick=hook) as loop:
        loop.run()
    return loop


@pytest.mark.parametrize("protocol", ["crsf", "sbus", "ibus", "msp", "hsf"])
def test_a_transmitter_speaking_the_protocol_flies_the_helicopter(tmp_path, protocol):
    script = tmp_path / "climb.toml"
    script.write_text(CLIMB)
    loop = fly((PortSpec(role="rc-in", protocol=protocol),), 1.2, pilot=f"script:{script}", pilot_hz=150.0)
    (rc,) = loop.summary()["ports"]
    vehicle = loop.summary()["vehicles"][0]
    assert rc["protocol"] == protocol
    # every frame the transmitter sent was a stick frame decoded here (as many as it sent, however
    # many a busy machine let it send), all but the few it sent as the port closed
    (transmitter,) = rc["far_end"]
    assert transmitter["frames_out"] - 5 <= rc["stick_frames"] <= transmitter["frames_out"], transmitter
    assert rc["stick_frames"] > 0 and rc["decode_errors"] == 0
    assert vehicle["max_altitude_m"] > 6.0  # collective up: it climbs from 5 m
    assert not vehicle["crashed"]
    # a steady link: the failsafe engaged only if the frames really stopped for its timeout (a busy
    # machine can hold a transmitter up that long), never with frames coming
    if [e for e in loop.events if e.kind == "failsafe_on"]:
        timeout_ms = FlightConfig().flight.failsafe_timeout_s * 1e3
        assert rc["gap_ms"]["max"] >= 0.99 * timeout_ms, rc["gap_ms"]  # 1 % histogram bins


@needs_socat
def test_msp_requests_are_answered(tmp_path):
    with socat_pair(tmp_path) as (sim_end, client_end, _socat):
        client = serial.Serial(client_end, 115200, timeout=0, write_timeout=1.0)  # the hook must not block
        answers: dict[int, msp.MspMessage] = {}
        decoder = msp.MspDecoder()

        asks = [0.2, 0.4, 0.6, 0.8]  # simulated seconds of flight

        def ask(loop: FlightLoop) -> None:
            if asks and loop.flight_time_s >= asks[0]:
                asks.pop(0)
                raw = msp.MspMessage(1, "<", msp.MSP_SET_RAW_RC, msp.raw_rc_payload([1500] * 4 + [2000, 1500]))
                for command in (msp.MSP_ATTITUDE, msp.MSP_STATUS, msp.MSP_RC):
                    client.write(msp.encode(msp.MspMessage(1, "<", command, b"")))
                client.write(msp.encode(raw))
            for message in decoder.feed(client.read(client.in_waiting or 1)):
                answers[message.command] = message

        try:
            loop = fly((PortSpec(role="rc-in", url=sim_end, protocol="msp"),), 1.0, hook=ask)
        finally:
            client.close()
    attitude = msp.parse_attitude(answers[msp.MSP_ATTITUDE].payload)
    final_roll = loop.summary()["vehicles"][0]["final_attitude_deg"][0]
    assert attitude.roll_deg == pytest.approx(final_roll, abs=1.0)  # the simulated lean
    assert msp.parse_status(answers[msp.MSP_STATUS].payload).flight_mode_flags & 1  # armed
    assert msp.parse_raw_rc(answers[msp.MSP_RC].payload).channels_us[4] == 2000  # what we sent
    assert answers[msp.MSP_SET_RAW_RC].direction == ">"


@pytest.mark.realtime
@pytest.mark.parametrize("protocol", ["crsf", "hsf"])
def test_silence_engages_the_failsafe_at_its_timeout_and_a_steady_link_releases_it(tmp_path, protocol):
    script = tmp_path / "hold.toml"
    script.write_text("[[at]]\nt = 0.0\narm = 2000\nmode = 1500\ncollective = 1740\n")
    marks: dict[str, float] = {}

    def pause_the_transmitter(loop: FlightLoop) -> None:
        pid = loop.io.endpoints["rc-in"].emulator.pid
        if "stopped" not in marks and loop.flight_time_s >= 1.0:
            os.kill(pid, signal.SIGSTOP)  # the radio link goes silent
            marks["stopped"] = loop.clock.now()
        if "stopped" in marks and "on" not in marks and (on := events(loop, "failsafe_on", marks["stopped"])):
            marks["on"], marks["last_frame"] = on[0], loop.io.rc_port._last_t
            os.kill(pid, signal.SIGCONT)
        if "on" in marks and "off" not in marks and (off := events(loop, "failsafe_off", marks["on"])):
            marks["off"], marks["frame_back"] = off[0], loop.io.rc_port._last_t
            loop.request_stop("released")

    loop = fly((PortSpec(role="rc-in", protocol=protocol),), 30.0, hook=pause_the_transmitter,
               pilot=f"script:{script}")  # fmt: skip
    # the loop judges at each tick: the first tick after the timeout engages the failsafe, the first
    # tick after a frame releases it; a tick comes within a period of the one before, later by at most
    # the worst lateness of this run, and may wait one GIL switch interval (5 ms) to read the port
    timeout_s = FlightConfig().flight.failsafe_timeout_s
    (segment,) = loop.segments
    tick_s = loop.period_s + segment.lateness.max + 0.005
    assert timeout_s <= marks["on"] - marks["last_frame"] <= timeout_s + tick_s, (marks, tick_s)
    assert "off" in marks and marks["off"] - marks["frame_back"] <= tick_s, (marks, tick_s)
    assert not loop.summary()["vehicles"][0]["crashed"]


def events(loop: FlightLoop, kind: str, since: float) -> list[float]:
    """When (monotonic s) the loop recorded events of ``kind`` at or after ``since``."""
    return [loop.t0 + e.t_s for e in loop.events if e.kind == kind and loop.t0 + e.t_s >= since]


@needs_socat
def test_the_sbus_failsafe_flag_engages_the_failsafe(tmp_path):
    with socat_pair(tmp_path) as (sim_end, radio_end, _socat):
        radio = serial.Serial(radio_end, 100000, parity="E", stopbits=2, timeout=0.05, write_timeout=1.0)
        sticks = (1500.0, 1500.0, 1740.0, 1500.0, 2000.0, 1500.0) + (1500.0,) * 10

        sent = {"next_s": 0.0, "flagged": 0}
        flag_times: list[float] = []  # when the first and the last flagged frame went out (s since t0)

        def send(loop: FlightLoop) -> None:
            t_s = loop.flight_time_s
            if t_s >= sent["next_s"]:  # an SBUS frame every 10 ms of flight
                sent["next_s"] = t_s + 0.01
                flagged = 0.4 <= t_s < 1.0  # the receiver says: failsafe (link lost)
                radio.write(sbus.encode_channels(ChannelFrame(sticks, failsafe=flagged)))
                if flagged:
                    sent["flagged"] += 1
                    flag_times[1:] = [loop.clock.now() - loop.t0]
                    flag_times[:1] = flag_times[:1] or flag_times[1:]
            if t_s >= 1.0 and any(e.kind == "failsafe_off" for e in loop.events):
                loop.request_stop("released")  # however long that took on this machine

        try:
            loop = fly((PortSpec(role="rc-in", url=sim_end, protocol="sbus"),), 30.0, hook=send)
        finally:
            radio.close()
    kinds = [(e.kind, e.t_s) for e in loop.events if e.kind.startswith("failsafe")]
    assert [k for k, _t in kinds] == ["failsafe_on", "failsafe_off"], kinds
    first, last = flag_times
    # on with the first flagged frame, off after the last one (the frame after it is clear)
    assert first <= kinds[0][1] <= last < kinds[1][1], (flag_times, kinds)
    (rc,) = loop.summary()["ports"]
    assert rc["failsafe_flags"] == sent["flagged"] > 20  # every flagged frame the radio sent was seen


def test_servo_board_speaking_maestro_acknowledges_every_command():
    loop = fly((PortSpec(role="servo", protocol="maestro"),), 1.0)
    (servo,) = loop.summary()["ports"]
    assert servo["protocol"] == "maestro"
    assert servo["frames_out"] > 0 and servo["timeouts"] == 0 and servo["decode_errors"] == 0
    assert servo["frames_out"] <= loop.ticks + 1  # a command a tick at most (how many: the machine's)
    assert servo["round_trip_ms"]["p50"] >= 1.0  # the board answers Get Errors after its 1 ms latency
    (far,) = servo["far_end"]
    assert far["frames_in"] == 6 * servo["frames_out"]  # five Set Target and one Get Errors per command


@pytest.mark.realtime
@needs_socat
def test_rc_out_pushes_crsf_channels_at_the_protocol_rate(tmp_path):
    from sim.protocols import crsf

    with socat_pair(tmp_path) as (sim_end, module_end, _socat):
        module = serial.Serial(module_end, 420000, timeout=0, write_timeout=1.0)
        decoder = crsf.CrsfDecoder()
        received: list = []

        def listen(loop: FlightLoop) -> None:
            received.extend(decoder.feed(module.read(module.in_waiting or 1)))

        try:
            loop = fly((PortSpec(role="rc-out", url=sim_end),), 2.0, hook=listen)
        finally:
            module.close()
    channels = [m for m in received if isinstance(m, ChannelFrame)]
    (port,) = loop.summary()["ports"]
    (segment,) = loop.segments
    # every frame sent arrived (what the simulator produced in this run, not a count expected of the
    # clock), at most at the protocol's 150 frames/s (its cadence: test_the_rc_out_cadence_holds_150_hz)
    assert port["frames_out"] - 5 <= len(channels) <= port["frames_out"]  # the last few may be on the way
    assert len(channels) > 0
    assert len(channels) <= 150.0 * segment.t_end_s + 1
    assert decoder.decode_errors == 0
    assert all(len(c.channels_us) == 16 for c in channels)


@pytest.mark.parametrize(("rate_hz", "tick_s"), [(150.0, 0.002), (50.0, 0.002), (150.0, 0.0025)])
def test_the_rc_out_cadence_holds_its_rate_on_the_loop_ticks(rate_hz, tick_s):
    """``next_on_cadence`` over 2 s of ticks on a clock of the test's own: the rate holds on average
    (``now + period`` would wait for the tick after each due time: 150 Hz would become 125 Hz)."""
    due, sent = 0.0, 0
    for k in range(round(2.0 / tick_s)):
        now = k * tick_s
        if now >= due:
            sent += 1
            due = next_on_cadence(due, now, 1.0 / rate_hz)
    assert sent == pytest.approx(2.0 * rate_hz, abs=1)
    # behind by more than a period (a stall), it starts again from now instead of sending a burst
    assert next_on_cadence(0.0, 1.0, 1.0 / rate_hz) == pytest.approx(1.0 + 1.0 / rate_hz)


@needs_socat
def test_crsf_link_statistics_from_the_receiver_reach_the_summary(tmp_path):
    from sim.protocols import crsf

    report = crsf.LinkStatistics(-60, -61, 100, 9, 0, 7, 3, -55, 98, 8)
    with socat_pair(tmp_path) as (sim_end, receiver_end, _socat):
        receiver = serial.Serial(receiver_end, 420000, timeout=0, write_timeout=1.0)
        sticks = ChannelFrame((1500.0,) * 16)

        def send(loop: FlightLoop) -> None:
            if loop.ticks % 3 == 0:
                receiver.write(crsf.encode_channels(sticks))
            if loop.ticks % 50 == 0:
                receiver.write(crsf.encode(report))

        try:
            loop = fly((PortSpec(role="rc-in", url=sim_end),), 0.5, hook=send)
        finally:
            receiver.close()
    (rc,) = loop.summary()["ports"]
    assert rc["protocol"] == "crsf"  # the default on a real device
    assert rc["link_statistics"]["uplink_link_quality_pct"] == 100
    assert rc["link_statistics"]["uplink_rssi_ant1_dbm"] == -60
