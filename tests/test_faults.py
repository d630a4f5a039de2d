"""Fault injection: the faults on the wire over real ptys, and whole flights with faults from a
flight file showing what the hardware would (decode errors, failsafe, lost and found ports, write
timeouts, slow replies, missed deadlines), and still replaying bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import serial

from heli.errors import ConfigError
from sim.config import FaultSpec, FlightConfig, PortSpec, apply_overrides, load_flight
from sim.errors import PortError
from sim.faults import FaultInjector
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.loop import FlightLoop
from sim.ports.events import EventLog
from sim.ports.faults import FaultyOpener, FaultyTransport, LineFaults
from sim.ports.mailbox import Mailbox
from sim.ports.roles import TelemetryPort
from sim.ports.transport import SerialSettings, open_transport
from sim.ports.tx import TX_BUFFER_BYTES
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import LoopTiming, assert_keeps_time_like
from tests.test_ports import state, virtual

ROOT = Path(__file__).resolve().parent.parent


# --- the line


def test_spoil_loses_and_corrupts_bytes_at_the_rates_asked():
    faults = LineFaults(rng=np.random.default_rng(7))
    data = bytes(range(256)) * 400
    assert faults.spoil(data, 0.0, 0.0) is data
    kept = faults.spoil(data, 0.05, 0.0)
    assert abs((1 - len(kept) / len(data)) - 0.05) < 0.005
    corrupted = np.frombuffer(faults.spoil(data, 0.0, 0.02), np.uint8)
    flipped = corrupted ^ np.frombuffer(data, np.uint8)
    assert abs(np.count_nonzero(flipped) / len(data) - 0.02) < 0.003
    hits = flipped[flipped != 0]
    assert (np.unpackbits(hits[:, None], axis=1).sum(axis=1) == 1).all()  # one bit flipped per byte hit


def test_spoil_is_repeatable_from_the_seed():
    data = bytes(1000)
    first = LineFaults(rng=np.random.default_rng([3, 0])).spoil(data, 0.1, 0.1)
    second = LineFaults(rng=np.random.default_rng([3, 0])).spoil(data, 0.1, 0.1)
    assert first == second != data


@contextmanager
def faulty_pty(faults: LineFaults, timeout_s: float = 0.05):
    """A pty pair: (the far end's master fd, the simulator's transport with ``faults``)."""
    master, slave = os.openpty()
    settings = SerialSettings(read_quantum_s=timeout_s)
    opener = FaultyOpener(lambda: open_transport(os.ttyname(slave), settings), faults, "p")
    transport = opener()
    try:
        yield master, transport
    finally:
        transport.close()
        os.close(master)
        os.close(slave)


def read_until(transport: FaultyTransport, size: int, deadline_s: float) -> bytes:
    got = b""
    end = time.monotonic() + deadline_s
    while len(got) < size and time.monotonic() < end:
        got += transport.read(size - len(got))
    return got


def test_a_clean_line_passes_bytes_both_ways():
    with faulty_pty(LineFaults()) as (master, transport):
        os.write(master, b"hello")
        assert read_until(transport, 5, 2.0) == b"hello"
        transport.write(b"back")
        assert os.read(master, 16) == b"back"


def seconds_to_read(faults: LineFaults) -> float:
    """How long five bytes written by the far end take to be read through ``faults``."""
    with faulty_pty(faults) as (master, transport):
        sent = time.monotonic()
        os.write(master, b"reply")
        assert read_until(transport, 5, 2.0) == b"reply"
        return time.monotonic() - sent


@pytest.mark.realtime
def test_latency_holds_received_bytes_back():
    clean_s = seconds_to_read(LineFaults())  # the reference: the same read, no latency, same load
    held_s = seconds_to_read(LineFaults(latency_s=0.15))
    assert held_s >= 0.15
    assert held_s - clean_s < 2 * 0.15, (held_s, clean_s)  # held back once, not twice


def test_silence_drops_everything_until_it_ends():
    faults = LineFaults(silent_in=True)
    with faulty_pty(faults) as (master, transport):
        os.write(master, b"lost")
        assert read_until(transport, 4, 0.3) == b""
        faults.silent_in = False
        os.write(master, b"heard")
        assert read_until(transport, 5, 2.0) == b"heard"


@pytest.mark.realtime
def test_pacing_makes_a_write_take_the_time_of_the_wire():
    faults = LineFaults(pace_baud=9600)
    with faulty_pty(faults) as (master, transport):
        started = time.monotonic()
        transport.write(bytes(96))  # 960 bits at 9600 baud: 100 ms
        assert time.monotonic() - started >= 0.1
        assert len(os.read(master, 200)) == 96


def test_an_unplugged_device_fails_every_call_and_cannot_be_reopened():
    faults = LineFaults()
    with faulty_pty(faults) as (_master, transport):
        faults.unplugged = True
        with pytest.raises(serial.SerialException, match="unplugged"):
            transport.read(1)
        with pytest.raises(serial.SerialException, match="unplugged"):
            transport.write(b"x")
        opener = FaultyOpener(lambda: pytest.fail("opened an unplugged device"), faults, "servo0")
        with pytest.raises(PortError, match="servo0: device unplugged"):
            opener()


# --- flights with faults


def faulty_flight(ports, faults, duration_s: float, log_path: Path | None = None, hook=None, **settings) -> FlightLoop:
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=duration_s, **settings)
    config = replace(config, ports=ports, faults=faults)
    log = None if log_path is None else str(log_path)
    with flight_session(config, heli("trex450").config, log_path=log, before_tick=hook) as loop:
        loop.run()
    return loop


def missed(summary: dict) -> int:
    return sum(segment["missed_deadlines"] for segment in summary["segments"])


def events_of(summary: dict, kind: str) -> list[dict]:
    return [e for e in summary["events"] if e["kind"] == kind]


@pytest.mark.realtime
@pytest.mark.parametrize("mode", ["threaded", "asyncio"])
def test_each_fault_shows_as_the_hardware_would_and_a_flight_with_toggles_and_failsafe_replays(tmp_path, mode):
    ports = (PortSpec(role="rc-in"), PortSpec(role="servo"), PortSpec(role="link", latency_ms=5.0))
    faults = (
        FaultSpec(kind="byte_loss", port="rc-in", rate=0.01, start_s=0.3, duration_s=0.6),
        FaultSpec(kind="corrupt", port="rc-in", rate=0.01, start_s=1.0, duration_s=0.6),
        FaultSpec(kind="rc_silence", start_s=1.8, duration_s=0.6),
        FaultSpec(kind="unplug", port="servo0", start_s=2.6, duration_s=0.5),
        FaultSpec(kind="latency", port="link0", latency_ms=150.0, start_s=3.3, duration_s=0.5),
        FaultSpec(kind="loop_delay", delay_ms=30.0, every_s=0.1, start_s=4.0, duration_s=0.4),
    )
    toggles = [0.5, 1.2]  # blocking while the RC line loses bytes, concurrent again while it corrupts them

    def toggle(loop: FlightLoop) -> None:
        if toggles and loop.flight_time_s >= toggles[0]:  # simulated time, as the faults
            toggles.pop(0)
            loop.command("toggle_io")

    log_path = tmp_path / "faults.hslog"
    loop = faulty_flight(ports, faults, 4.8, log_path=log_path, hook=toggle, seed=5, io=mode)
    summary = loop.summary()
    assert [s["io_mode"] for s in summary["segments"]] == [mode, "blocking", mode]
    by_name = {p["name"]: p for p in summary["ports"]}

    switched = [(e["kind"], e["detail"]) for e in summary["events"] if e["kind"].startswith("fault_")]
    assert [kind for kind, _ in switched] == ["fault_on", "fault_off"] * len(faults)
    assert [detail for _, detail in switched[::2]] == [f.describe() for f in faults]
    assert [f["kind"] for f in summary["faults"]] == [f.kind for f in faults]
    assert all(f["end_s"] is not None for f in summary["faults"])

    assert by_name["rc-in"]["decode_errors"] > 0  # lost and flipped bytes: frames fail their CRC
    # the failsafe takes over during the silence (0.6 s; it needs 0.25 s without frames) and lets go
    # once frames come back: judged by the order of the events, keyed to the fault's own, not by a
    # window of seconds (how promptly: test_protocols_e2e).  A busy machine may hold the RC frames
    # up for 0.25 s at other moments too: the failsafe then engages, as it should, and lets go.
    (silent, heard) = [e["t_s"] for e in summary["events"] if e["kind"].startswith("fault_") and "no RC" in e["detail"]]
    failsafe = [(e["t_s"], e["kind"]) for e in summary["events"] if e["kind"] in ("failsafe_on", "failsafe_off")]
    before = [(t_s, kind) for t_s, kind in failsafe if t_s <= heard]
    after = [kind for t_s, kind in failsafe if t_s > heard]
    assert before and before[-1][1] == "failsafe_on", failsafe  # on when the silence ends
    was_on = [kind for t_s, kind in before if t_s < silent][-1:] == ["failsafe_on"]
    assert was_on or before[-1][0] >= silent + 0.2, failsafe  # and not before the timeout (0.25 s) had run
    assert after and after[0] == "failsafe_off", failsafe  # and let go when frames came back
    assert by_name["servo0"]["disconnects"] == 1 and by_name["servo0"]["reconnects"] == 1
    assert events_of(summary, "port_lost") and events_of(summary, "port_back")
    assert by_name["link0"]["round_trip_ms"]["max"] >= 150.0  # the held-back replies (once: the test above)
    assert missed(summary) > 0  # the loop delays
    assert not summary["vehicles"][0]["crashed"]  # the failsafe held it; nothing else reached the sticks

    replay = Replay(read_log(str(log_path)))
    replay.run()
    assert replay.difference is None


@pytest.mark.realtime
@pytest.mark.parametrize("mode", ["threaded", "asyncio"])
def test_a_servo_board_that_hangs_times_out_and_recovers(tmp_path, mode):
    ports = (PortSpec(role="servo"),)
    faults = (FaultSpec(kind="backpressure", port="servo0", start_s=0.3, duration_s=1.2),)
    log_path = tmp_path / "hang.hslog"
    loop = faulty_flight(ports, faults, 2.4, log_path=log_path, io=mode)
    summary = loop.summary()
    (servo,) = summary["ports"]
    assert servo["timeouts"] > 0  # a servo board acknowledges each command: a hung one times out
    (hung, back) = [e["t_s"] for e in summary["events"] if e["kind"].startswith("fault_")]
    (timed_out,) = events_of(summary, "port_timeout")
    # the 500 ms reply deadline of the first command left unanswered, which may have gone out up to
    # one round trip before the board hung (the longest of this run), while it hangs
    round_trip_s = servo["round_trip_ms"]["max"] / 1e3
    assert hung + 0.5 - round_trip_s <= timed_out["t_s"] < back, (hung, timed_out, round_trip_s)
    (answering,) = events_of(summary, "port_ok")
    assert back <= answering["t_s"]  # answering again once it is back
    assert servo["state"] == "ok"
    # the loop kept ticking while the board hung as it did while the board answered (same flight,
    # same load): it never waited for the reply deadline
    ticks = read_log(str(log_path)).ticks
    during = (ticks["t_s"] >= hung) & (ticks["t_s"] < back)
    assert_keeps_time_like(LoopTiming.of_log(ticks[during]), LoopTiming.of_log(ticks[~during]), stall_s=0.5)


def test_a_stream_to_a_stopped_device_fills_its_buffers_then_drops_whole_frames_at_once_and_resumes(exchange):
    events = EventLog()
    port, endpoint = virtual(TelemetryPort, "gcs", [], events)
    port.open()
    try:
        endpoint.wait_ready(time.monotonic() + 10.0)
        endpoint.pause_far_end()  # what the backpressure fault does
        states = [state(vehicle) for vehicle in range(8)]
        deadline = time.monotonic() + 20.0
        while port.stats.frames_dropped == 0 and time.monotonic() < deadline:
            exchange(port, Mailbox().put(states, time.monotonic()))
        # the pty's buffer and then the port's own filled: frames are dropped whole, and no write
        # waited for the far end (a write timeout would have)
        assert port.state == "backpressured" and port.stats.write_timeouts == 0
        assert 0 < port.tx_waiting <= TX_BUFFER_BYTES
        assert events.wait_for("port_backpressure", 0.0) is not None
        endpoint.resume_far_end()
        while (port.state != "ok" or port.tx_waiting) and time.monotonic() < deadline:
            exchange(port, Mailbox().put(states, time.monotonic()))
        assert port.state == "ok" and port.tx_waiting == 0 and events.wait_for("port_ok", 0.0) is not None
    finally:
        port.close()
    # the ground station got whole frames only: what was dropped was dropped whole
    (gcs,) = endpoint.far_end_summaries
    assert gcs["errors"] == 0 and gcs["rx_sequence_gaps"] > 0


def seconds_to_fly(ports, faults, duration_s: float) -> tuple[float, FlightLoop]:
    """Wall-clock seconds to open, fly and close a flight; and its loop."""
    started = time.monotonic()
    loop = faulty_flight(ports, faults, duration_s)
    return time.monotonic() - started, loop


@pytest.mark.realtime
def test_a_fault_still_on_at_the_end_is_let_go_and_the_flight_shuts_down():
    ports = (PortSpec(role="servo"), PortSpec(role="rc-in"))
    faults = (
        FaultSpec(kind="backpressure", port="servo0", start_s=0.2),
        FaultSpec(kind="unplug", port="rc-in", start_s=0.2),
    )
    reference_s, _ = seconds_to_fly(ports, (), 1.0)  # the same flight without the faults, same load
    seconds, loop = seconds_to_fly(ports, faults, 1.0)
    # a device left paused or unplugged would hold the close for its timeouts (seconds)
    assert seconds < reference_s + 1.0, (seconds, reference_s)
    assert all(f["end_s"] is None for f in loop.summary()["faults"])


def test_decode_errors_before_a_reconnect_still_count():
    ports = (PortSpec(role="rc-in"),)
    faults = (
        FaultSpec(kind="corrupt", port="rc-in", rate=0.05, start_s=0.2, duration_s=0.5),
        FaultSpec(kind="unplug", port="rc-in", start_s=0.8, duration_s=0.3),
    )

    def until_back(loop: FlightLoop) -> None:  # ends once the port is back, however long that took here
        if any(port.stats.reconnects for port in loop.io.ports):
            loop.request_stop("reconnected")

    loop = faulty_flight(ports, faults, 30.0, hook=until_back)
    assert loop.stop_reason == "reconnected"
    (rc,) = loop.summary()["ports"]
    assert rc["reconnects"] == 1 and rc["decode_errors"] > 0


@pytest.mark.realtime
def test_pacing_in_blocking_mode_shows_as_io_wait_and_lateness():
    ports = (PortSpec(role="servo"),)
    faults = (FaultSpec(kind="pace", port="servo0", baud=1200, start_s=0.3),)
    loop = faulty_flight(ports, faults, 1.0, io="blocking")
    (servo,) = loop.summary()["ports"]
    assert servo["io_wait_ms"]["p99"] >= 10 * 10 / 1.2  # a servo frame is > 10 bytes: > 83 ms at 1200 baud
    assert missed(loop.summary()) > 0


def test_fault_keys_toggle_a_preset_and_say_when_there_is_no_port_for_it():
    ports = (PortSpec(role="rc-in"),)
    # keys at simulated seconds of flight, one a tick at most (as the view's script presses them); the
    # flight ends after the last one, however long a busy machine took to get there
    keys = [(0.3, "fault rc_silence"), (0.8, "fault rc_silence"), (0.84, "fault unplug"), (0.88, "fault loop_delay"),
            (0.92, "fault loop_delay"), (0.96, "fault latency")]  # fmt: skip

    def press(loop: FlightLoop) -> None:
        if keys and loop.flight_time_s >= keys[0][0]:
            loop.command(keys.pop(0)[1])
        elif not keys:
            loop.request_stop("keys done")

    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=30.0)
    with flight_session(replace(config, ports=ports), heli("trex450").config, before_tick=press) as loop:
        loop.run()
    summary = loop.summary()
    assert loop.stop_reason == "keys done"
    faults = [(e["kind"], e["detail"]) for e in summary["events"] if e["kind"].startswith("fault_")]
    assert faults == [
        ("fault_on", "rc-in: no RC frames arrive"),
        ("fault_off", "rc-in: no RC frames arrive"),
        ("fault_on", "loop: a 30 ms stall every 1 s"),
        ("fault_off", "loop: a 30 ms stall every 1 s"),
    ]
    assert any(e["detail"] == "no servo port in this flight for the unplug fault" for e in summary["events"])
    assert any(e["detail"] == "no link or servo port in this flight for the latency fault" for e in summary["events"])
    assert events_of(summary, "failsafe_on")  # half a second without RC frames
    assert [f["by_key"] for f in summary["faults"]] == [True, True]


# --- the flight file


def test_the_shipped_fault_demo_is_a_valid_flight_file():
    config = load_flight(str(ROOT / "configs" / "faults.toml"))
    kinds = {f.kind for f in config.faults}
    assert kinds == {"byte_loss", "corrupt", "rc_silence", "unplug", "backpressure", "latency", "loop_delay"}


@pytest.mark.parametrize(
    ("table", "fragments"),
    [
        ('kind = "static"', ["faults", "kind", "byte_loss"]),
        ('kind = "byte_loss"\nport = "servo3"', ["servo3", "no such port", "servo0"]),
        ('kind = "byte_loss"', ["needs a port"]),
        ('kind = "byte_loss"\nport = "rc-in"\nrate = 5', ["rate", "1"]),
        ('kind = "loop_delay"\nport = "rc-in"', ["loop_delay", "not of a port"]),
        ('kind = "latency"\nport = "link0"\nlatency = 50', ["latency"]),
        ('kind = "backpressure"\nport = "servo0"', ["backpressure", "virtual"]),
    ],
)
def test_a_bad_fault_table_is_a_one_line_error(tmp_path, table, fragments):
    ports = '[[ports]]\nrole = "rc-in"\n[[ports]]\nrole = "servo"\nurl = "loop://"\n[[ports]]\nrole = "link"\n'
    path = tmp_path / "bad.toml"
    path.write_text(f"{ports}[[faults]]\n{table}\n")
    result = subprocess.run([sys.executable, "-m", "sim", "fly", "--headless", "--config", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_the_summary_names_the_faults_in_the_stats_json(tmp_path):
    flight_file = tmp_path / "f.toml"
    flight_file.write_text('[[ports]]\nrole = "rc-in"\n[[faults]]\nkind = "byte_loss"\nport = "rc-in"\nrate = 0.1\n')
    stats = tmp_path / "run.json"
    result = subprocess.run([sys.executable, "-m", "sim", "fly", "--headless", "--config", str(flight_file),
                             "--duration", "0.6", "--stats-json", str(stats)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["faults"][0]["what"] == "rc-in: 10% of bytes lost (in)"
    assert summary["ports"][0]["decode_errors"] > 0


def test_a_late_tick_closes_one_window_before_it_opens_the_next():
    """A tick that comes late (a loaded machine) and passes one fault's end and the next one's
    start applies them in the order they were due."""
    specs = (
        FaultSpec(kind="byte_loss", port="rc-in", rate=0.1, start_s=0.3, duration_s=0.6),
        FaultSpec(kind="rc_silence", start_s=1.0, duration_s=0.5),
    )
    injector = FaultInjector(specs, {"rc-in": LineFaults()}, {}, {"rc-in": "rc-in"})
    recorded = []

    def record(kind: str, detail: str) -> None:
        recorded.append((kind, detail.split(":")[1].strip()))

    for t_s in (0.0, 0.4, 1.2, 2.0):  # 0.4 -> 1.2: past the loss's end (0.9) and the silence's start
        injector.on_tick(t_s, record)
    assert recorded == [("fault_on", "10% of bytes lost (in)"), ("fault_off", "10% of bytes lost (in)"),
                        ("fault_on", "no RC frames arrive"), ("fault_off", "no RC frames arrive")]  # fmt: skip


def test_backpressure_needs_a_device_to_stop(tmp_path):
    """The keyboard's rc-in port ends in the view, not in an emulator: nothing to stop, said at once."""
    flight = tmp_path / "flight.toml"
    flight.write_text(
        '[flight]\npilot = "keyboard"\n[[faults]]\nkind = "backpressure"\nport = "rc-in"\nstart_s = 1.0\n'
    )
    with pytest.raises(ConfigError, match="far end is the view's keyboard"):
        load_flight(str(flight))
