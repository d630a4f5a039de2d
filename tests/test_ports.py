"""Serial ports over real ptys and socat pairs: transports, roles with their emulators, threads
and blocking calls, live mode switches, unplug and replug, errors a user sees."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import serial

from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.errors import PortError
from sim.loop import FlightLoop
from sim.ports.events import EventLog
from sim.ports.mailbox import Mailbox
from sim.ports.portset import PortSet
from sim.ports.roles import Downlink, LinkPort, RcFrame, RcInPort, RcOutPort, ServoOrder, ServoPort, TelemetryPort
from sim.ports.transport import SerialSettings, open_transport
from sim.ports.virtual import VirtualEndpoint
from sim.protocols import crsf
from sim.protocols.hsf import LinkReply, RcChannels, ServoAck, ServoCommand, VehicleStateMsg, encode
from sim.protocols.rc import ChannelFrame
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import (
    SIGNAL_ALLOWANCE_S,
    LoopTiming,
    StderrLines,
    assert_keeps_time_like,
    exit_seconds,
    running,
)

ROOT = Path(__file__).resolve().parent.parent
needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (CI installs it)")


def virtual(role_class, kind: str, args: list[str], events: EventLog | None = None, **kwargs):
    """A port of ``role_class`` on a fresh pty pair with emulator ``kind`` on the far end."""
    endpoint = VirtualEndpoint(kind, args)
    port = role_class(f"{kind}-test", endpoint.open, events or EventLog(), url="virtual", closer=endpoint.close,
                      **kwargs)  # fmt: skip
    return port, endpoint


@contextlib.contextmanager
def socat_pair(directory: Path, name: str = "v"):
    """A socat pty pair with stable links ``<dir>/<name>a`` and ``<name>b``; killed on exit."""
    a, b = directory / f"{name}a", directory / f"{name}b"
    proc = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"], stderr=subprocess.PIPE
    )
    try:
        StderrLines(proc).wait_for("starting data transfer loop", 10.0)
        yield str(a), str(b), proc
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stderr.close()


@contextlib.contextmanager
def device_on(port: str, kind: str, *args: str):
    """``heli-sim device KIND --port PORT`` run by hand; yields the process once it serves."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "device", kind, "--port", port, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        StderrLines(proc).wait_for("serving", 30.0)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=5)


# --- building blocks


def test_mailbox_keeps_only_the_latest_and_wakes_waiters():
    box: Mailbox[int] = Mailbox()
    assert box.latest() is None
    box.put(1, 10.0)
    box.put(2, 11.0)
    assert box.latest() == (2, 11.0, 2)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(box.wait_newer(2, 5.0)))
    waiter.start()
    box.put(3, 12.0)
    waiter.join(5.0)
    assert got == [(3, 12.0, 3)]
    stop = threading.Event()
    stop.set()
    assert box.wait_newer(3, 5.0, abort=stop) is None  # an abort returns at once, not after 5 s


def test_event_log_keeps_the_newest_when_full():
    log = EventLog(capacity=3)
    for i in range(5):
        log.push("port_lost", str(i), float(i))
    assert [e.detail for e in log.drain()] == ["2", "3", "4"]
    assert log.dropped == 2
    assert log.wait_for("port_lost", 0.0, after=4.0).detail == "4"
    assert log.wait_for("port_back", 0.01) is None


def test_unknown_scheme_is_refused_with_the_valid_ones():
    with pytest.raises(PortError, match=r"unknown port scheme 'carrier'.*socket://.*rfc2217://.*loop://.*spy://"):
        open_transport("carrier://pigeon")


def test_missing_port_is_named():
    with pytest.raises(PortError, match=r"/dev/pts/9999: no such port"):
        open_transport("/dev/pts/9999")


def test_busy_port_is_reported():
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        first = open_transport(path)
        try:
            with pytest.raises(PortError, match="port busy"):
                open_transport(path)
        finally:
            first.close()
    finally:
        os.close(master)
        os.close(slave)


def test_url_transports_open_and_carry_bytes():
    port = open_transport("loop://", SerialSettings(write_timeout_s=0.5))
    try:
        assert port.write_timeout == 0.5
        port.write(b"\xa5\x5a hello")
        assert port.read(10) == b"\xa5\x5a hello"
    finally:
        port.close()


# --- each role with its emulator, over a real pty


@pytest.mark.realtime
def test_servo_role_gets_acks_from_the_servo_board(exchange):
    port, endpoint = virtual(ServoPort, "servo", ["--latency-ms", "2"], reply_timeout_s=5.0)
    port.open()
    try:
        box: Mailbox = Mailbox()
        for i in range(20):
            command = ServoCommand(0, (0.1 * (i % 3), -0.2, 0.3, 0.0), 0.5)
            ack = exchange(port, box.put(ServoOrder(command, None), time.monotonic()))
            assert isinstance(ack, ServoAck) and ack.acked_seq == i
    finally:
        port.close()
    (far,) = endpoint.far_end_summaries
    assert far["frames_in"] == 20 and far["rx_sequence_gaps"] == 0 and far["rx_sequence_repeats"] == 0
    assert port.stats.round_trip.quantile(0.5) >= 0.002  # the board's latency is really there


def link_round_trip_s(exchange, latency_ms: float) -> tuple[float, float, list]:
    """(median round trip, longest I/O wait, the replies) of four exchanges with a link device."""
    port, _endpoint = virtual(LinkPort, "link", ["--latency-ms", f"{latency_ms:g}"], reply_timeout_s=5.0)
    port.open()
    try:
        replies = [exchange(port, None) for _ in range(4)]
    finally:
        port.close()
    return port.stats.round_trip.quantile(0.5), port.stats.io_wait.max, replies


@pytest.mark.realtime
def test_link_role_waits_for_the_reply_latency(exchange):
    immediate_s, _wait_s, _replies = link_round_trip_s(exchange, 0.0)  # the reference: same pty, same load
    round_trip_s, wait_s, replies = link_round_trip_s(exchange, 50.0)
    assert all(isinstance(r, LinkReply) for r in replies)
    assert [r.request_seq for r in replies] == [0, 1, 2, 3]
    assert round_trip_s >= 0.05 and wait_s >= 0.05  # the caller was blocked for the whole round trip
    assert round_trip_s - immediate_s < 2 * 0.05, (round_trip_s, immediate_s)  # the latency once, not twice


@pytest.mark.realtime
def test_baud_pacing_gives_the_wire_time_a_pty_lacks(exchange):
    # at 9600 baud, 10 bits a byte, the reply frame occupies the wire for ~20 ms on top of the latency
    wire_s = len(encode(LinkReply(0, 0, 0.0), 0)) * 10 / 9600
    port, _endpoint = virtual(LinkPort, "link", ["--latency-ms", "10", "--baud", "9600", "--pace"], reply_timeout_s=5.0)
    port.open()
    try:
        for _ in range(3):
            assert isinstance(exchange(port, None), LinkReply)
    finally:
        port.close()
    assert port.stats.round_trip.quantile(0.5) >= (0.010 + wire_s) * 0.99  # 1 % histogram bins


def state(vehicle: int) -> VehicleStateMsg:
    return VehicleStateMsg(vehicle, 1.5, (1.0, 2.0, -3.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0),
                           (0.0, 0.0, 0.0), 100.0, False, True)  # fmt: skip


def test_telemetry_role_feeds_the_ground_station(exchange):
    port, endpoint = virtual(TelemetryPort, "gcs", [])
    port.open()
    try:
        box: Mailbox = Mailbox()
        for _ in range(10):
            exchange(port, box.put([state(0), state(1)], time.monotonic()))
    finally:
        port.close()
    (far,) = endpoint.far_end_summaries
    assert far["frames_in"] == 20 and far["vehicles_seen"] == [0, 1] and far["rx_sequence_gaps"] == 0


def test_rc_in_role_reads_the_transmitter_and_sends_states_down(exchange):
    port, endpoint = virtual(RcInPort, "transmitter", ["--pilot", "neutral", "--fleet", "2", "--rate-hz", "200"],
                             read_deadline_s=5.0)  # fmt: skip
    port.open()
    try:
        box: Mailbox = Mailbox()
        letter = box.put(Downlink([state(0), state(1)]), time.monotonic())
        seen: dict[int, RcFrame] = {}
        for _ in range(10):
            frames = exchange(port, letter)
            seen.update(frames or {})
    finally:
        port.close()
    assert set(seen) == {0, 1}
    assert seen[0].channels.channels_us[4] == 1000  # neutral: disarmed
    assert port.stats.rx_sequence.gaps == 0 and port.stats.rx_sequence.repeats == 0
    (far,) = endpoint.far_end_summaries
    assert far["frames_in"] == 2  # the two states went down the link once (one letter)


def test_rc_out_role_pushes_channels(exchange):
    port, endpoint = virtual(RcOutPort, "gcs", [])
    port.open()
    try:
        box: Mailbox = Mailbox()
        for _ in range(5):
            exchange(port, box.put([RcChannels(0, (1500,) * 16)], time.monotonic()))
    finally:
        port.close()
    assert endpoint.far_end_summaries[0]["frames_in"] == 5


# --- socat pairs and devices run by hand


@needs_socat
def test_link_device_run_by_hand_on_a_socat_pair(tmp_path, exchange):
    with socat_pair(tmp_path) as (a, b, _socat), device_on(b, "link", "--latency-ms", "20") as device:
        port = LinkPort("link-by-hand", lambda: open_transport(a), EventLog(), url=a, reply_timeout_s=5.0)
        port.open()
        try:
            assert isinstance(exchange(port, None), LinkReply)
        finally:
            port.close()
        device.send_signal(signal.SIGTERM)
        out, _err = device.communicate(timeout=5)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["device"] == "link" and summary["frames_in"] == 1 and summary["frames_out"] == 1


@needs_socat
def test_socket_url_reaches_a_device_behind_tcp(tmp_path, exchange):
    with socket.socket() as probe:  # a free TCP port for socat to listen on
        probe.bind(("127.0.0.1", 0))
        tcp_port = probe.getsockname()[1]
    link = tmp_path / "tcplink"
    socat = subprocess.Popen(
        # the pty first: socat opens its second address only once a TCP client connects
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={link}", f"TCP-LISTEN:{tcp_port},bind=127.0.0.1,reuseaddr"],
        stderr=subprocess.PIPE,
    )
    try:
        StderrLines(socat).wait_for("listening on", 10.0)
        with device_on(str(link), "link", "--latency-ms", "5"):
            url = f"socket://127.0.0.1:{tcp_port}"
            port = LinkPort("link-tcp", lambda: open_transport(url), EventLog(), url=url, reply_timeout_s=5.0)
            port.open()
            try:
                replies = [exchange(port, None) for _ in range(3)]
            finally:
                port.close()
    finally:
        socat.terminate()
        socat.wait(5)
        socat.stderr.close()
    assert all(isinstance(r, LinkReply) for r in replies)


@needs_socat
@pytest.mark.parametrize("mode", ["threaded", "asyncio"])
def test_unplug_and_replug_recover(tmp_path, mode):
    events = EventLog()
    with socat_pair(tmp_path) as (a, b, socat), device_on(b, "link", "--latency-ms", "5"):
        port = LinkPort("link0", lambda: open_transport(a), events, url=a, reply_timeout_s=2.0)
        portset = PortSet([port], events, mode)
        with portset:
            first = portset.inboxes["link0"].wait_newer(0, 10.0)
            assert isinstance(first.value, LinkReply)
            unplugged = time.monotonic()
            socat.terminate()  # the "USB cable" goes
            lost = events.wait_for("port_lost", 10.0, after=unplugged)
            assert lost is not None and "link0" in lost.detail
            with socat_pair(tmp_path) as (a2, b2, _), device_on(b2, "link", "--latency-ms", "5"):
                assert a2 == a
                back = events.wait_for("port_back", 10.0, after=lost.t_monotonic)
                assert back is not None
                replies_before = portset.inboxes["link0"].latest().seq
                resumed = portset.inboxes["link0"].wait_newer(replies_before, 10.0)
                assert isinstance(resumed.value, LinkReply)
                assert port.stats.disconnects == 1 and port.stats.reconnects == 1


# --- threaded vs blocking in the real loop


def port_flight(ports: tuple[PortSpec, ...], *, io: str, duration_s: float, fleet: int = 1, hook=None, **settings):
    config = apply_overrides(FlightConfig(), heli="trex450", fleet=fleet, start="hover", io=io,
                             duration_s=duration_s, **settings)  # fmt: skip
    with flight_session(replace(config, ports=ports), heli("trex450").config, before_tick=hook) as loop:
        loop.run()
    return loop


@pytest.mark.realtime
@pytest.mark.parametrize("mode", ["threaded", "asyncio"])
def test_concurrent_modes_keep_the_loop_on_time_while_a_link_takes_200_ms(mode):
    reference = port_flight((), io=mode, duration_s=1.0)  # the same flight without the slow link
    loop = port_flight((PortSpec(role="link", latency_ms=200.0),), io=mode, duration_s=1.0)
    assert_keeps_time_like(LoopTiming.of(loop.segments), LoopTiming.of(reference.segments), stall_s=0.2)
    (segment,) = loop.segments
    (link,) = loop.summary()["ports"]
    assert link["round_trip_ms"]["p50"] >= 200.0
    # served all along, one request after another: about one reply per round trip of the flight
    assert link["frames_in"] >= 0.5 * segment.t_end_s / (link["round_trip_ms"]["max"] / 1e3), link


@pytest.mark.realtime
def test_blocking_mode_period_grows_by_the_sum_of_the_waits():
    links = tuple(PortSpec(role="link", vehicle=i, latency_ms=100.0) for i in range(2))
    loop = port_flight(links, io="blocking", duration_s=2.0, fleet=2)
    (segment,) = loop.segments
    waits_s = sum(port["round_trip_ms"]["p50"] / 1e3 for port in loop.summary()["ports"])  # this run's
    assert segment.period.quantile(0.5) >= 0.2  # 2 x 100 ms, in turn
    assert segment.period.quantile(0.5) == pytest.approx(waits_s, rel=0.1)  # the sum of the waits measured
    assert segment.missed_deadlines > 50 * segment.ticks


def flown_until(switches: int, switch) -> Callable[[FlightLoop], None]:
    """A hook: ``switch(loop, n)`` for the n-th switch every 40 ticks (at tick 20, 60, ...), and the
    flight ends after ``switches`` of them (a number of ticks, not of seconds: the same on a busy machine)."""
    done = []

    def hook(loop: FlightLoop) -> None:
        if loop.ticks % 40 == 20:
            if len(done) == switches:
                loop.request_stop("switches done")
                return
            switch(loop, len(done))
            done.append(loop.ticks)

    return hook


def arrived_once(port: dict) -> None:
    """Every frame the far end sent on ``port`` arrived once (all but the few it sent as the port closed)."""
    (far,) = port["far_end"]
    assert port["rx_sequence_gaps"] == 0 and port["rx_sequence_repeats"] == 0 and port["decode_errors"] == 0
    assert far["frames_out"] - 5 <= port["frames_in"] <= far["frames_out"], (port["frames_in"], far)


def test_live_toggles_under_load_lose_and_duplicate_nothing():
    ports = (PortSpec(role="rc-in"), PortSpec(role="servo"), PortSpec(role="telemetry"))
    hook = flown_until(20, lambda loop, _n: loop.toggle_io_mode())
    loop = port_flight(ports, io="threaded", duration_s=60.0, hook=hook, pilot_hz=500.0)
    assert loop.stop_reason == "switches done"
    switches = [e for e in loop.events if e.kind == "mode_switch"]
    assert len(switches) == 20
    summary = {p["name"]: p for p in loop.summary()["ports"]}
    rc, servo, telemetry = summary["rc-in"], summary["servo0"], summary["telemetry"]
    arrived_once(rc)
    for port in (servo, telemetry):
        (far,) = port["far_end"]
        assert far["rx_sequence_gaps"] == 0 and far["rx_sequence_repeats"] == 0
        assert far["frames_in"] == port["frames_out"]  # every frame sent arrived, once
    (transmitter,) = rc["far_end"]
    assert transmitter["rx_sequence_gaps"] == 0 and transmitter["rx_sequence_repeats"] == 0


def test_switches_among_all_three_modes_under_load_lose_and_duplicate_nothing():
    # every ordered pair of modes, twice: threaded -> blocking -> asyncio -> threaded -> asyncio -> blocking -> ...
    order = ["blocking", "asyncio", "threaded", "asyncio", "blocking", "threaded"]
    hook = flown_until(2 * len(order), lambda loop, n: loop.request_io_mode(order[n % len(order)]))
    ports = (PortSpec(role="rc-in"), PortSpec(role="servo"), PortSpec(role="telemetry"),
             PortSpec(role="link", latency_ms=1.0))  # fmt: skip
    loop = port_flight(ports, io="threaded", duration_s=60.0, hook=hook, pilot_hz=500.0)
    assert loop.stop_reason == "switches done"
    switches = [e.detail for e in loop.events if e.kind == "mode_switch"]
    modes = ["threaded", *order, *order]
    assert switches == [f"{a} -> {b}" for a, b in itertools.pairwise(modes)]
    assert set(switches) == {f"{a} -> {b}" for a in ("threaded", "blocking", "asyncio") for b in ("threaded",
                             "blocking", "asyncio") if a != b}  # fmt: skip
    assert {segment.io_mode for segment in loop.segments} == {"threaded", "blocking", "asyncio"}
    summary = {p["name"]: p for p in loop.summary()["ports"]}
    rc = summary["rc-in"]
    arrived_once(rc)
    for name in ("servo0", "telemetry", "link0"):
        port = summary[name]
        (far,) = port["far_end"]
        assert far["rx_sequence_gaps"] == 0 and far["rx_sequence_repeats"] == 0
        assert far["frames_in"] == port["frames_out"]  # every frame sent arrived, once
        assert port["rx_sequence_gaps"] == 0 and port["rx_sequence_repeats"] == 0 and port["timeouts"] == 0
    (transmitter,) = rc["far_end"]
    assert transmitter["rx_sequence_gaps"] == 0 and transmitter["rx_sequence_repeats"] == 0
    assert loop.io.portset.threads_alive == 0 and not loop.io.portset.stuck_threads


def test_t_goes_back_to_the_concurrent_mode_it_left_and_i_toggles_asyncio():
    loop = port_flight((), io="asyncio", duration_s=0.01)
    visited = []
    for command in ("toggle_io", "toggle_io", "toggle_asyncio", "toggle_io", "toggle_io", "toggle_asyncio"):
        loop.command(command)
        visited.append(loop._requested_mode)
    assert visited == ["blocking", "asyncio", "threaded", "blocking", "threaded", "asyncio"]


def test_a_loop_url_reads_back_what_it_writes_and_never_fills():
    # pyserial's loop:// hands back what is written to it: the telemetry port is its own far end,
    # and reads it all (a telemetry port reads whatever comes back, and has no use for it)
    loop = port_flight((PortSpec(role="telemetry", url="loop://"),), io="threaded", duration_s=1.0)
    (telemetry,) = loop.summary()["ports"]
    # all it wrote came back, but for what was still on its way at the end (one MAVLink state: a
    # few messages); every message read was discarded
    sent, read = telemetry["bytes_out"], telemetry["bytes_in"]
    assert sent > 0 and sent - 300 <= read <= sent
    assert telemetry["frames_discarded"] == telemetry["frames_in"] > 0
    assert telemetry["write_timeouts"] == 0 and telemetry["frames_dropped"] == 0 and telemetry["state"] == "ok"
    assert not loop.io.portset.stuck_threads


@pytest.mark.realtime
def test_stick_to_servo_latency_is_measured_over_ptys():
    ports = (PortSpec(role="rc-in"), PortSpec(role="servo"))
    loop = port_flight(ports, io="threaded", duration_s=2.0, pilot_hz=100.0)
    latency = loop.summary()["stick_to_servo_ms"]
    (segment,) = loop.segments
    # a frame waits at most one period for the tick that uses it (+ 1 ms to decode, compute and
    # write): judged with this run's own period and lateness, so a busy machine's delays count once
    period_ms, late_ms = segment.period.quantile(0.5) * 1e3, segment.lateness.quantile(0.5) * 1e3
    assert latency["p50"] is not None and 0.0 < latency["p50"] < period_ms + late_ms + 1.0, (latency, late_ms)
    # the tail: the worst tick of this run, and one GIL switch interval (5 ms) for the servo's I/O
    # thread to take the command (a frame held back a few ticks, or timed from somewhere else, is not)
    worst_ms = segment.lateness.max * 1e3
    assert latency["p99"] < period_ms + worst_ms + 5.0, (latency, worst_ms)


def test_port_summary_has_the_contract_keys():
    loop = port_flight((PortSpec(role="servo"),), io="threaded", duration_s=0.3)
    (entry,) = loop.summary()["ports"]
    keys = {"name", "role", "protocol", "url", "frames_in", "frames_out", "bytes_in", "bytes_out", "decode_errors",
            "io_wait_ms", "disconnects", "reconnects"}  # fmt: skip
    assert keys <= set(entry)
    assert set(entry["io_wait_ms"]) == {"p50", "p99", "max"}
    assert entry["role"] == "servo" and entry["url"] == "virtual" and entry["protocol"] == "hsf"


# --- what a user sees


def heli_sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_port_on_the_command_line():
    result = heli_sim("fly", "--headless", "--duration", "1", "--servo", "/dev/ttyUSB99")
    assert_one_line_error(result, "/dev/ttyUSB99", "no such port")


@needs_socat
def test_busy_port_on_the_command_line(tmp_path):
    with socat_pair(tmp_path) as (a, _b, _socat):
        holder = serial.Serial(a, exclusive=True, timeout=0.1, write_timeout=0.1)
        try:
            result = heli_sim("fly", "--headless", "--duration", "1", "--telemetry", a)
        finally:
            holder.close()
    assert_one_line_error(result, a, "port busy")


def test_unknown_scheme_on_the_command_line():
    assert_one_line_error(heli_sim("fly", "--headless", "--duration", "1", "--rc", "bogus://x"), "unknown port scheme")


def stopped_by_sigint(stats: Path, latency_ms: float) -> float:
    """Seconds from SIGINT to exit of a blocking flight with a link device answering after ``latency_ms``."""
    command = [sys.executable, "-m", "sim", "-v", "fly", "--headless", "--no-ports", "--link", "virtual",
               "--link-latency", f"{latency_ms:g}", "--io", "blocking", "--stats-json", str(stats)]  # fmt: skip
    with running(command, cwd=ROOT) as proc:
        StderrLines(proc).wait_for("heli-sim: flying")
        seconds, _out = exit_seconds(proc, signal.SIGINT)
    assert proc.returncode == 130
    return seconds


@pytest.mark.realtime
def test_sigint_stops_a_flight_blocked_on_a_slow_device_as_promptly_as_one_that_is_not(tmp_path):
    reference_s = stopped_by_sigint(tmp_path / "reference.json", 1.0)  # the same flight, a quick device
    stats = tmp_path / "run.json"
    stopped_s = stopped_by_sigint(stats, 5000.0)  # stopped in the middle of a 5 s wait
    assert stopped_s < reference_s + SIGNAL_ALLOWANCE_S, (stopped_s, reference_s)
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "SIGINT" and summary["io_mode_final"] == "blocking"
    assert math.isfinite(summary["duration_s"])


def median_frame_gap_s(port: serial.SerialBase, frames: int = 60) -> float:
    """The median time between CRSF stick frames arriving on ``port`` (read until ``frames`` came)."""
    decoder, arrivals = crsf.CrsfDecoder(), []
    deadline = time.monotonic() + 30.0
    while len(arrivals) < frames and time.monotonic() < deadline:
        for message in decoder.feed(port.read(max(1, port.in_waiting))):
            if isinstance(message, ChannelFrame):
                arrivals.append(time.monotonic())
    assert len(arrivals) == frames, f"{len(arrivals)} of {frames} frames came"
    return float(np.median(np.diff(arrivals)))


@needs_socat
def test_a_transmitter_run_by_hand_keeps_its_frame_rate_as_one_the_simulator_starts(tmp_path):
    """``heli-sim device transmitter --port`` against the same transmitter on a pty the simulator's
    way (``--fd``), in the same test: the frames come as often (each read used to wait a whole read
    quantum past the next frame, 150 Hz became 48)."""
    transmitter = ["transmitter", "--protocol", "crsf", "--pilot", "neutral"]
    master, slave = os.openpty()
    try:
        reader = serial.Serial(os.ttyname(slave), timeout=0.05)
        proc = subprocess.Popen([sys.executable, "-m", "sim", "device", *transmitter, "--fd", str(master)], cwd=ROOT,
                                pass_fds=(master,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            reference_s = median_frame_gap_s(reader)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
            reader.close()
    finally:
        os.close(master)
        os.close(slave)
    with socat_pair(tmp_path) as (a, b, _socat), device_on(b, *transmitter):
        reader = serial.Serial(a, timeout=0.05)
        try:
            by_hand_s = median_frame_gap_s(reader)
        finally:
            reader.close()
    assert by_hand_s < 1.5 * reference_s, (by_hand_s, reference_s)
