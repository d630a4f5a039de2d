"""Each RC protocol end to end over a pty: an emulated transmitter speaking it flies the
simulated helicopter; stale input and the SBUS failsafe flag engage the failsafe and release it."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest
import serial

from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.loop import FlightLoop
from sim.protocols import msp, sbus
from sim.protocols.rc import ChannelFrame
from sim.session import flight_session
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
    loop = fly((PortSpec(role="rc-in", protocol=protocol),), 2.5, pilot=f"script:{script}", pilot_hz=150.0)
    (rc,) = loop.summary()["ports"]
    vehicle = loop.summary()["vehicles"][0]
    assert rc["protocol"] == protocol
    assert rc["stick_frames"] > 200 and rc["decode_errors"] == 0
    assert vehicle["max_altitude_m"] > 6.0  # collective up: it climbs from 5 m
    assert not vehicle["crashed"]
    assert not [e for e in loop.events if e.kind == "failsafe_on"]


@needs_socat
def test_msp_requests_are_answered(tmp_path):
    with socat_pair(tmp_path) as (sim_end, client_end, _socat):
        client = serial.Serial(client_end, 115200, timeout=0, write_timeout=1.0)  # the hook must not block
        answers: dict[int, msp.MspMessage] = {}
        decoder = msp.MspDecoder()

        def ask(loop: FlightLoop) -> None:
            if loop.ticks in (100, 200, 300, 400):
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


@pytest.mark.parametrize("protocol", ["crsf", "hsf"])
def test_silence_engages_the_failsafe_within_300_ms_and_a_steady_link_releases_it(tmp_path, protocol):
    script = tmp_path / "hold.toml"
    script.write_text("[[at]]\nt = 0.0\narm = 2000\nmode = 1500\ncollective = 1740\n")
    marks: dict[str, float] = {}

    def pause_the_transmitter(loop: FlightLoop) -> None:
        pid = loop.io.endpoints["rc-in"].emulator.pid
        now = time.monotonic()
        if loop.ticks == 500:
            os.kill(pid, signal.SIGSTOP)  # the radio link goes silent
            marks["stopped"] = now
        if "stopped" in marks and "on" not in marks and any(e.kind == "failsafe_on" for e in loop.events):
            marks["on"] = now
            os.kill(pid, signal.SIGCONT)
        if "on" in marks and "off" not in marks and any(e.kind == "failsafe_off" for e in loop.events):
            marks["off"] = now

    loop = fly((PortSpec(role="rc-in", protocol=protocol),), 3.0, hook=pause_the_transmitter,
               pilot=f"script:{script}")  # fmt: skip
    assert marks["on"] - marks["stopped"] < 0.3
    assert "off" in marks and marks["off"] - marks["on"] < 0.3
    assert not loop.summary()["vehicles"][0]["crashed"]


@needs_socat
def test_the_sbus_failsafe_flag_engages_the_failsafe(tmp_path):
    with socat_pair(tmp_path) as (sim_end, radio_end, _socat):
        radio = serial.Serial(radio_end, 100000, parity="E", stopbits=2, timeout=0.05, write_timeout=1.0)
        sticks = (1500.0, 1500.0, 1740.0, 1500.0, 2000.0, 1500.0) + (1500.0,) * 10

        def send(loop: FlightLoop) -> None:
            if loop.ticks % 5 == 0:  # an SBUS frame every 10 ms
                flagged = 600 <= loop.ticks < 900  # the receiver says: failsafe (link lost)
                radio.write(sbus.encode_channels(ChannelFrame(sticks, failsafe=flagged)))

        try:
            loop = fly((PortSpec(role="rc-in", url=sim_end, protocol="sbus"),), 2.5, hook=send)
        finally:
            radio.close()
    kinds = [(e.kind, e.t_s) for e in loop.events if e.kind.startswith("failsafe")]
    assert [k for k, _t in kinds] == ["failsafe_on", "failsafe_off"]
    assert kinds[0][1] == pytest.approx(1.2, abs=0.1)  # the flag came at tick 600 (1.2 s)
    (rc,) = loop.summary()["ports"]
    assert rc["failsafe_flags"] > 20


def test_servo_board_speaking_maestro_acknowledges_every_command():
    loop = fly((PortSpec(role="servo", protocol="maestro"),), 1.0)
    (servo,) = loop.summary()["ports"]
    assert servo["protocol"] == "maestro"
    assert servo["frames_out"] > 400 and servo["timeouts"] == 0 and servo["decode_errors"] == 0
    assert servo["round_trip_ms"]["p50"] >= 1.0  # the board answers Get Errors after its 1 ms latency
    (far,) = servo["far_end"]
    assert far["frames_in"] == 6 * servo["frames_out"]  # five Set Target and one Get Errors per command


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
            fly((PortSpec(role="rc-out", url=sim_end),), 2.0, hook=listen)
        finally:
            module.close()
    channels = [m for m in received if isinstance(m, ChannelFrame)]
    assert 280 <= len(channels) <= 320, len(channels)  # 150 frames/s for 2 s (125 when the cadence slipped)
    assert decoder.decode_errors == 0
    assert all(len(c.channels_us) == 16 for c in channels)


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
