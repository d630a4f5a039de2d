"""A port never dies silently, over real ptys and real emulator processes, in every I/O mode.

A well-checksummed frame whose payload does not fit (the 40-byte MSP v2 MSP_SET_RAW_RC) is one
decode error and the port reads on; an exception in a role or codec (a codec test double: no
device can produce a bug) is an ``io_error`` event, counted, and the port goes on; a port whose
every exchange raises for the failed rule's time fails (state ``failed``, which makes ``fly``
exit 3, and the status line says so); what ends an I/O thread or task is read by the port set
and reported, and one that does not stop by the port set's deadline is named (``thread_stuck``,
``stuck_threads``) and let go; the fleet and the protocols' vehicle ids agree; running out of
file descriptors while opening ports is one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import select
import struct
import subprocess
import sys
import threading
import time
import tty
from dataclasses import replace

import pytest

from heli.errors import ConfigError
from sim.cli.fly import _status_line
from sim.config import FlightConfig, FlightSettings, PortSpec, apply_overrides
from sim.errors import PortError
from sim.outcome import flight_failures
from sim.ports.codecs import HsfCodec, MspCodec, make_codec
from sim.ports.events import EventLog
from sim.ports.port import MAX_IO_ERROR_EVENTS
from sim.ports.portset import PortSet
from sim.ports.roles import Downlink, LinkPort, RcInPort, TelemetryPort
from sim.ports.transport import MAX_PORTS, SELECT_FD_LIMIT, open_transport
from sim.protocols import msp
from sim.protocols.hsf import VehicleStateMsg
from sim.session import flight_session
from sim.view.snapshot import IO_MODES as MODES  # every I/O mode the loop has
from tests.conftest import heli
from tests.test_ports import ROOT, virtual

WAIT_S = 10.0


@contextlib.contextmanager
def pty_pair():
    """A pty pair: yields (master fd, slave path); the port opens the slave by its path."""
    master, slave = os.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def raw_rc(first_us: int, version: int = 2) -> bytes:
    """An MSP_SET_RAW_RC request with 8 channels, channel 1 = ``first_us``."""
    payload = struct.pack("<8H", first_us, 1500, 1000, 1500, 1000, 1500, 1500, 1500)
    return msp.encode(msp.MspMessage(version, "<", msp.MSP_SET_RAW_RC, payload))


# the frame: MSP v2, good CRC, MSP_SET_RAW_RC with a 40-byte payload (20 channels: 18 at most)
BAD_40 = msp.encode(msp.MspMessage(2, "<", msp.MSP_SET_RAW_RC, bytes(range(40))))


def drain(master: int) -> None:
    """Read what the port wrote back (MSP acks), so the pty never fills."""
    with contextlib.suppress(BlockingIOError):
        while os.read(master, 65536):
            pass


def wait_for_sticks(portset: PortSet, port: RcInPort, master: int, first_us: int) -> bool:
    """True once the port has delivered a stick frame whose channel 1 is ``first_us`` (False at WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    inbox = portset.inboxes[port.name]
    seen = 0
    while time.monotonic() < deadline:
        if portset.mode == "blocking":
            portset.read_inputs()  # the loop's inline read
        letter = inbox.latest() if portset.mode == "blocking" else inbox.wait_newer(seen, 0.05)
        if letter is not None:
            seen = letter.seq
            if letter.value[0].channels.channels_us[0] == first_us:
                return True
        drain(master)
    return False


def pump_until(portset: PortSet, condition) -> bool:
    """Wait until ``condition()``, doing the loop's inline reads in blocking mode; False at WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() >= deadline:
            return False
        if portset.mode == "blocking":
            portset.read_inputs()
        else:
            time.sleep(0.01)  # polling a counter the I/O thread moves: it has no event to wait on
    return True


def rc_port(path: str, events: EventLog, codec=None) -> RcInPort:
    return RcInPort("rc-in", lambda: open_transport(path), events, url=path, codec=codec or make_codec("msp"),
                    read_deadline_s=0.05)  # fmt: skip


def alive_threads(portset: PortSet) -> int:
    return {"threaded": 1, "asyncio": 1, "blocking": 0}[portset.mode]


# ---------------------------------------------------------------- decode errors: counted, skipped, the port reads on


@pytest.mark.parametrize("mode", MODES)
def test_the_40_byte_msp_v2_set_raw_rc_frame_is_one_decode_error_and_the_rc_port_reads_on(mode):
    events = EventLog()
    with pty_pair() as (master, path):
        port = rc_port(path, events)
        with PortSet([port], events, mode) as portset:
            os.write(master, raw_rc(1100))
            assert wait_for_sticks(portset, port, master, 1100)
            os.write(master, BAD_40 + raw_rc(1200))  # in one read
            assert wait_for_sticks(portset, port, master, 1200)
            os.write(master, BAD_40)  # alone
            os.write(master, raw_rc(1300, version=1))
            assert wait_for_sticks(portset, port, master, 1300), "later good frames no longer arrive"
            assert portset.threads_alive == alive_threads(portset)
            summary = port.summary()
    assert summary["decode_errors"] == 2 and summary["io_errors"] == 0 and summary["state"] == "ok"
    assert summary["stick_frames"] == 3
    assert not [e for e in events.history if e.kind == "io_error"]


def msp_flight(path: str, mode: str, hook) -> dict:
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", io=mode, duration_s=1.0)
    config = replace(config, ports=(PortSpec(role="rc-in", url=path, protocol="msp"),))
    with flight_session(config, heli("trex450").config, before_tick=hook) as loop:
        loop.run()
    return loop


@pytest.mark.parametrize("mode", MODES)
def test_a_flight_with_a_bad_msp_frame_keeps_its_rc_input(mode):
    """The issue's case end to end: the summary counts the frame, the input stays fresh, exit 0."""
    with pty_pair() as (master, path):

        def transmit(loop) -> None:  # a radio at the loop's rate; one bad frame 0.2 s in
            drain(master)
            os.write(master, BAD_40 if loop.ticks == 100 else raw_rc(1500 + loop.ticks % 7))

        loop = msp_flight(path, mode, transmit)
    summary = loop.summary()
    (rc,) = summary["ports"]
    assert (rc["decode_errors"], rc["io_errors"], rc["state"]) == (1, 0, "ok")
    assert rc["stick_frames"] > 150  # frames after the bad one arrived (about 500 in all)
    assert bool(loop.last_input[1][0]), "the pilot's input is stale at the end: the RC input stopped"
    assert flight_failures(summary) == []
    assert not [e for e in summary["events"] if e["kind"] in ("io_error", "failsafe_on")]


# ---------------------------------------------------------------- io errors: counted, reported, the port goes on


class RespondRaises(MspCodec):
    """A codec with a bug: answering the stick frame whose channel 1 is 1234 raises."""

    def __init__(self, always: bool = False) -> None:
        super().__init__("host")
        self.always = always

    def respond(self, message, snapshot):
        if self.always or self.channels_of(message).channels_us[0] == 1234:
            raise RuntimeError("a bug in respond")
        return super().respond(message, snapshot)


@pytest.mark.parametrize("mode", MODES)
def test_an_exception_in_a_codec_is_an_io_error_and_the_port_goes_on(mode, caplog):
    caplog.set_level(logging.INFO, logger="sim.ports.port")  # heli-sim -v: the traceback too
    events = EventLog()
    with pty_pair() as (master, path):
        port = rc_port(path, events, RespondRaises())
        with PortSet([port], events, mode) as portset:
            os.write(master, raw_rc(1100))
            assert wait_for_sticks(portset, port, master, 1100)
            os.write(master, raw_rc(1234))
            assert pump_until(portset, lambda: port.stats.io_errors == 1)
            os.write(master, raw_rc(1300))  # (frames read together with the one that raised are lost with it)
            assert wait_for_sticks(portset, port, master, 1300), "the port stopped after the io error"
            assert portset.threads_alive == alive_threads(portset)
            summary = port.summary()
    assert (summary["io_errors"], summary["state"], summary["decode_errors"]) == (1, "ok", 0)
    (error,) = [e for e in events.history if e.kind == "io_error"]
    assert error.detail == "rc-in: RuntimeError('a bug in respond')"
    assert any("a bug in respond" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert any(r.exc_info and "a bug in respond" in str(r.exc_info[1]) for r in caplog.records)  # the traceback


@pytest.mark.parametrize("mode", MODES)
def test_a_port_whose_every_exchange_raises_fails_by_the_documented_rule(mode):
    events = EventLog()
    with pty_pair() as (master, path):
        port = rc_port(path, events, RespondRaises(always=True))
        port.failed_after_s, port.failed_after_errors = 0.3, 5  # the rule's thresholds, shortened
        with PortSet([port], events, mode) as portset:
            deadline = time.monotonic() + WAIT_S
            while port.state != "failed" and time.monotonic() < deadline:
                os.write(master, raw_rc(1100))
                if mode == "blocking":
                    portset.read_inputs()
                else:
                    events.wait_for("io_error", 0.02, after=time.monotonic())
                drain(master)
            assert port.state == "failed"
            errors_when_failed = port.stats.io_errors
            os.write(master, raw_rc(1100))
            assert port.exchange(None) is None  # a failed port does nothing more
            if mode == "threaded":
                assert wait_until(lambda: portset.threads_alive == 0)  # its thread ends, quietly: the port said why
            portset.push_outputs({})
        summary = port.summary()
    assert summary["state"] == "failed" and errors_when_failed >= 5 and summary["io_errors"] == errors_when_failed
    failed = [e for e in events.history if e.kind == "io_error" and "failed" in e.detail]
    assert len(failed) == 1 and "every exchange for" in failed[0].detail and "a bug in respond" in failed[0].detail
    assert len([e for e in events.history if e.kind == "io_error"]) <= MAX_IO_ERROR_EVENTS + 1  # no flood


class EncodeRaises(HsfCodec):
    """A servo codec with a bug: every servo command fails to encode."""

    def encode(self, message, seq):
        raise ValueError("cannot encode a servo command")


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_port_fails_the_flight_and_shows_on_the_status_line(mode, capsys):
    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", io=mode, duration_s=1.0)
    config = replace(config, ports=(PortSpec(role="servo"),))
    with flight_session(config, heli("trex450").config) as loop:
        (servo,) = loop.io.ports
        servo.codec = EncodeRaises()
        servo.failed_after_s = 0.3
        loop.run()
        _status_line(loop)
    summary = loop.summary()
    (entry,) = summary["ports"]
    assert entry["state"] == "failed" and entry["io_errors"] >= servo.failed_after_errors
    assert flight_failures(summary) == ["port servo0 failed"]  # so fly exits 3
    assert [e["detail"] for e in summary["events"] if e["kind"] == "io_error"][-1].startswith("servo0 failed: ")
    assert "FAILED: servo0" in capsys.readouterr().err


# ---------------------------------------------------------------- a thread or task that ends is read and reported


class ExchangeEnds(LinkPort):
    """A role whose exchange raises what the port cannot catch: it ends the thread that runs it."""

    def exchange(self, letter):
        raise SystemExit(3)  # before, a thread ended by SystemExit vanished without a word


class TaskBug(LinkPort):
    async def exchange_async(self, letter):
        raise RuntimeError("a bug around the exchange")


def wait_until(condition, timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)  # polling a thread's end, which has no event to wait on
    return True


def test_an_io_thread_that_ends_is_read_by_its_owner_and_fails_its_port():
    events = EventLog()
    port = ExchangeEnds("link0", lambda: open_transport("loop://"), events, url="loop://")
    with PortSet([port], events, "threaded") as portset:
        assert wait_until(lambda: portset.threads_alive == 0)
        portset.push_outputs({})  # every tick: the owner reads what ended its threads
    (error,) = [e for e in events.history if e.kind == "io_error"]
    assert error.detail == "link0 failed: its I/O thread io:link0 ended by SystemExit(3)"
    assert port.summary()["state"] == "failed"


def test_an_asyncio_task_that_ends_fails_its_port_and_the_others_go_on():
    events = EventLog()
    with pty_pair() as (_master, path):
        broken = TaskBug("link0", lambda: open_transport(path), events, url=path)
        telemetry, ground = virtual(TelemetryPort, "gcs", [], events)
        portset = PortSet([broken, telemetry], events, "asyncio")
        portset.open(start=False)
        try:
            ground.wait_ready(time.monotonic() + WAIT_S)
            portset.start()
            assert events.wait_for("io_error", WAIT_S) is not None
            portset.push_outputs({telemetry.name: [state(0)]})
            assert wait_until(lambda: telemetry.stats.frames_out == 1)
        finally:
            portset.close()
    assert broken.summary()["state"] == "failed" and telemetry.summary()["state"] == "ok"
    (error,) = [e for e in events.history if e.kind == "io_error"]
    assert "its task io:link0 (asyncio) ended by RuntimeError('a bug around the exchange')" in error.detail


class StopServingBug(LinkPort):
    def stop_serving(self) -> None:
        super().stop_serving()
        raise RuntimeError("a bug that ends the event loop's thread")


def test_the_event_loop_thread_ending_is_read_and_reported():
    events = EventLog()
    with pty_pair() as (_master, path):
        port = StopServingBug("link0", lambda: open_transport(path), events, url=path, reply_timeout_s=0.05)
        with PortSet([port], events, "asyncio") as portset:
            portset.switch("threaded")  # the event loop's thread ends by the error; the switch reads it
            assert port.state == "failed"
    (error,) = [e for e in events.history if e.kind == "io_error"]
    assert "the asyncio I/O thread ended by RuntimeError" in error.detail


# ---------------------------------------------------------------- a thread or task that does not stop in time is named

STOP_S = 0.5  # the port set's stop deadline here (THREAD_STOP_TIMEOUT_S: 1 s in a flight)


def request_arrives(master: int) -> bool:
    """True once the port's request has reached its far end (the pty's master), within WAIT_S."""
    readable, _, _ = select.select([master], [], [], WAIT_S)
    return bool(readable)


def io_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("io:")]


def join_io_threads() -> None:
    """Join the I/O threads a port set let go of, once what held them has let go too."""
    for thread in io_threads():
        thread.join(WAIT_S)


def silent_link(path: str, events: EventLog) -> LinkPort:
    """A link whose reply timeout (ten times the stop's deadline; up to ten minutes may be
    configured) outlasts the stop's deadline, on a pty whose far end never answers."""
    return LinkPort("link0", lambda: open_transport(path), events, url=path, reply_timeout_s=10 * STOP_S)


def test_an_io_thread_still_waiting_for_a_reply_at_a_switch_is_named_stuck(monkeypatch):
    """A switch cannot end the exchange under way in time: the port set names the port whose
    thread did not stop (``stuck_threads``, a ``thread_stuck`` event) and goes on without it;
    the thread is still running when it says so (no false alarm), and ends once the flight stops."""
    monkeypatch.setattr("sim.ports.portset.THREAD_STOP_TIMEOUT_S", STOP_S)
    events = EventLog()
    with pty_pair() as (master, path):
        link = silent_link(path, events)
        portset = PortSet([link], events, "threaded")
        portset.open()
        try:
            assert request_arrives(master)  # the exchange is under way: it waits for a reply that never comes
            portset.switch("blocking")
            left_running = [thread.name for thread in io_threads()]
        finally:
            portset.abort()  # the flight stops: the wait under way gives up
            join_io_threads()
            portset.close()
    assert portset.stuck_threads == ["link0"] and left_running == ["io:link0"]
    stuck = [e.detail for e in events.history if e.kind == "thread_stuck"]
    assert stuck == [f"io:link0 did not stop within {STOP_S} s"]


def test_an_asyncio_task_still_waiting_for_a_reply_at_a_switch_is_named_stuck_and_cancelled(monkeypatch):
    """The same in asyncio mode: the event loop names the late task (``sim.ports.aio``) and cancels
    it, so the loop's thread ends without waiting out the reply timeout; the port set reports the task."""
    monkeypatch.setattr("sim.ports.portset.THREAD_STOP_TIMEOUT_S", STOP_S)
    events = EventLog()
    with pty_pair() as (master, path):
        link = silent_link(path, events)
        portset = PortSet([link], events, "asyncio")
        portset.open()
        try:
            assert request_arrives(master)
            portset.switch("blocking")
            join_io_threads()  # before the flight stops: only the cancel can end the wait this soon
            timeouts = link.stats.timeouts  # a wait run on to the reply timeout counts one
        finally:
            portset.abort()
            join_io_threads()
            portset.close()
    assert "link0" in portset.stuck_threads  # (with io:asyncio, if its thread ended just after the deadline)
    assert f"io:asyncio: link0 did not stop within {STOP_S} s" in [
        e.detail for e in events.history if e.kind == "thread_stuck"
    ]
    assert timeouts == 0  # cancelled at the deadline


class WedgesTheEventLoop(LinkPort):
    """A bug that blocks the event loop's thread inside an exchange (a blocking wait in a coroutine)
    until released: a stand-in, as no device can hold an event loop; the port is otherwise real."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.holding = threading.Event()
        self.release = threading.Event()

    async def _exchange(self, letter):
        self.holding.set()
        self.release.wait(WAIT_S)  # blocks the whole event loop, on purpose
        return None


def test_an_event_loop_thread_that_does_not_stop_is_named_stuck_and_its_ports_go_on_without_it(monkeypatch):
    monkeypatch.setattr("sim.ports.portset.THREAD_STOP_TIMEOUT_S", STOP_S)
    events = EventLog()
    with pty_pair() as (_master, path):
        port = WedgesTheEventLoop("link0", lambda: open_transport(path), events, url=path)
        portset = PortSet([port], events, "asyncio")
        portset.open()
        try:
            assert port.holding.wait(WAIT_S)
            portset.switch("blocking")
            left_running = [thread.name for thread in io_threads()]
            served_by = (port.line, port.backend)
            given_back = (port.transport.timeout, port.transport.write_timeout)
        finally:
            port.release.set()
            join_io_threads()
            portset.close()
    assert portset.stuck_threads == ["io:asyncio"] and left_running == ["io:asyncio"]
    stuck = [e.detail for e in events.history if e.kind == "thread_stuck"]
    assert stuck == [f"io:asyncio: io:asyncio did not stop within {STOP_S} s"]
    assert served_by == (None, None)  # the wedged loop no longer serves the port: its blocking calls do
    # ... bounded by its own timeouts again, not the event loop's zero (a blocking read would spin)
    assert min(given_back) > 0.0


def test_a_reopen_in_an_io_thread_that_the_stop_overtook_keeps_nothing_open(monkeypatch):
    """Threaded: a lost device is reopened in its port's I/O thread; a stop that cannot wait for that
    open (the thread is named stuck) closes the port meanwhile; the device the open returns afterwards
    is closed at once, and the port stays closed (not "ok" with an open file nobody owns)."""
    from tests.test_aio import SlowToComeBack  # a device slow to come back (the wait stands in for it)

    monkeypatch.setattr("sim.ports.port.RECONNECT_INTERVAL_S", 0.0)  # a lost device is reopened at once
    monkeypatch.setattr("sim.ports.portset.THREAD_STOP_TIMEOUT_S", STOP_S)
    events = EventLog()
    device = SlowToComeBack()
    link = LinkPort("link0", device, events, url="pty", reply_timeout_s=5.0)
    portset = PortSet([link], events, "threaded")
    portset.open()
    try:
        assert request_arrives(device.master)
        device.unplug()  # lost, and reopened in its port's I/O thread
        assert device.reopening.wait(WAIT_S)
        with pty_pair() as (_master, path):  # the device comes back on a new pty, after the stop
            device.path = path
            portset.close()
            stuck = list(portset.stuck_threads)
            device.release.set()
            join_io_threads()  # the open ends now, in the thread the stop let go of
            left = (link.transport, link.state)
    finally:
        device.close()
        link.close()
    assert stuck == ["link0"]
    (late,) = device.opened[1:]
    assert not late.is_open  # opened once the port was closed: closed at once
    assert left == (None, "closed")


# ---------------------------------------------------------------- fleets and the protocols' vehicle ids


def state(vehicle: int) -> VehicleStateMsg:
    return VehicleStateMsg(vehicle, 0.5, (0.0, 0.0, -1.0), (0.0,) * 3, (1.0, 0.0, 0.0, 0.0), (0.0,) * 3, 100.0, False,
                           False)  # fmt: skip


def test_vehicle_ids_above_255_travel_both_ways_over_hsf_ports():
    """The fleet of 300 that killed the I/O threads (a one-byte id): states down, sticks up.  The
    ground station here is the test, reading the far end of a pty until every state has come:
    the port's writes never wait for it, so only a reader that waits can tell they all went."""
    events = EventLog()
    rc, transmitter = virtual(RcInPort, "transmitter", ["--pilot", "neutral", "--fleet", "300", "--rate-hz", "5"],
                              events, read_deadline_s=0.5)  # fmt: skip
    rc.vehicles = 300
    with pty_pair() as (ground, path):
        telemetry = TelemetryPort("gcs", lambda: open_transport(path), events, url=path, codec=HsfCodec())
        portset = PortSet([rc, telemetry], events, "threaded")
        portset.open(start=False)
        seen: set[int] = set()
        decoder = make_codec("hsf", "device").new_decoder()
        try:
            transmitter.wait_ready(time.monotonic() + WAIT_S)
            portset.start()
            portset.push_outputs({rc.name: Downlink([state(v) for v in (0, 255, 256, 299)]),
                                  telemetry.name: [state(v) for v in range(300)]})  # fmt: skip

            def every_state_read() -> bool:
                with contextlib.suppress(BlockingIOError):
                    seen.update(m.vehicle for _seq, m in decoder.feed(os.read(ground, 65536)))
                return len(seen) == 300

            assert wait_until(every_state_read)
            assert wait_until(lambda: {0, 255, 256, 299} <= set(rc.newest))
        finally:
            portset.close()
    assert rc.summary()["io_errors"] == telemetry.summary()["io_errors"] == 0
    assert rc.decode_errors == 0 and rc.summary()["state"] == telemetry.summary()["state"] == "ok"
    assert seen == set(range(300)) and decoder.decode_errors == 0


def test_a_fleet_a_protocol_cannot_address_is_refused_in_one_line():
    ports = (PortSpec(role="telemetry"),)
    with pytest.raises(ConfigError, match=r"flight.fleet = 65537: port telemetry speaks hsf, whose vehicle index "
                                          r"reaches 65536 vehicles \(0..65535\)"):  # fmt: skip
        FlightConfig(flight=FlightSettings(fleet=65537), ports=ports)
    FlightConfig(flight=FlightSettings(fleet=65536), ports=ports)  # the largest it can address
    FlightConfig(flight=FlightSettings(fleet=65537), ports=(PortSpec(role="telemetry", protocol="mavlink"),))
    # servo ports carry their own vehicle's id: only the vehicles past 65535 cannot be addressed
    servos = (PortSpec(role="servo", vehicle=65535), PortSpec(role="servo", vehicle=65536, protocol="maestro"))
    FlightConfig(flight=FlightSettings(fleet=70000), ports=servos)
    with pytest.raises(ConfigError, match="port servo65536 speaks hsf"):
        FlightConfig(flight=FlightSettings(fleet=70000), ports=(PortSpec(role="servo", vehicle=65536),))


def heli_sim(*args: str, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=preexec_fn)  # fmt: skip


def test_a_default_fleet_beyond_hsf_ids_is_refused_on_the_command_line():
    result = heli_sim("fly", "--headless", "--duration", "0.1", "--fleet", "65537")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "port rc-in speaks hsf, whose vehicle index reaches 65536 vehicles" in result.stderr


def test_a_default_fleet_with_more_ports_than_select_can_watch_is_refused_in_one_line():
    result = heli_sim("fly", "--headless", "--duration", "0.1", "--fleet", str(MAX_PORTS))  # and rc-in, telemetry
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"its {MAX_PORTS + 2} ports (rc-in ... telemetry) are more than the {MAX_PORTS}" in result.stderr
    assert "--no-ports" in result.stderr


def test_a_port_given_a_file_descriptor_select_cannot_watch_is_refused():
    """Past descriptor 1023 every pyserial read would raise ValueError: refused at open, and closed."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    filler = os.open(os.devnull, os.O_RDONLY)
    taken = []
    try:
        for fd in range(SELECT_FD_LIMIT):  # every free descriptor below the limit
            with contextlib.suppress(OSError):
                os.fstat(fd)
                continue
            os.dup2(filler, fd)
            taken.append(fd)
        with pytest.raises(PortError, match=rf"{path}: cannot open: it got file descriptor \d+, and pyserial's"):
            open_transport(path)
        for fd in taken:
            os.close(fd)
        taken.clear()
        open_transport(path).close()  # with descriptors free again it opens
    finally:
        for fd in (*taken, filler, master, slave):
            os.close(fd)


def test_running_out_of_file_descriptors_while_opening_ports_is_one_line():
    def few_files() -> None:  # in the child: room for Python and a few ports, not for 40 virtual ones
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    result = heli_sim("fly", "--headless", "--duration", "0.5", "--fleet", "40", "--telemetry", "none",
                      preexec_fn=few_files)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "too many open files" in result.stderr.lower()


def test_status_line_without_failures_names_none(capsys):
    config = apply_overrides(FlightConfig(ports=()), heli="trex450", duration_s=0.01)
    with flight_session(config, heli("trex450").config) as loop:
        loop.run()
        _status_line(loop)
    assert "FAILED" not in capsys.readouterr().err


def test_the_status_lines_rc_rate_is_the_last_seconds_not_the_flights():
    """100 frames a second for 3 s, then the radio off: the line says 0 Hz within two seconds (an
    average over the flight said 100 Hz for as long again).  The clock is the test's."""
    from sim.cli import fly as fly_cli

    class Flight:  # stands for the loop: only its identity matters here
        pass

    class RcPort:
        stick_frames = 0

        def summary(self) -> dict:
            return {"frame_rate_hz": None}

    loop, rc_port, rates = Flight(), RcPort(), []
    for tenth in range(60):  # the status line is drawn ten times a second
        rc_port.stick_frames += 10 if tenth < 30 else 0
        rates.append(fly_cli._recent_rc_rate_hz(loop, rc_port, now=1000.0 + 0.1 * (tenth + 1)))
    assert rates[25] == pytest.approx(100.0) and rates[-1] == 0.0


def test_a_ports_state_changes_in_one_place_that_also_tells_the_flight():
    """Every assignment of a port's state is ``Port._enter``'s (which pushes the event that says so)."""
    import ast
    import inspect

    from sim.ports import port as port_module

    assignments = [
        node
        for node in ast.walk(ast.parse(inspect.getsource(port_module)))
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "state" for t in node.targets)
    ]
    where = {ast.unparse(node) for node in assignments}
    assert where == {"self.state = PortState.CLOSED", "self.state = state"}  # __init__'s, and _enter's


def test_a_port_that_cannot_open_closes_the_ones_opened_before_it(tmp_path):
    """The port set opens its ports in turn; the first that fails is named, and the ones already open
    are closed again (their transports and their emulators: the leak guard checks no fd or process is
    left)."""
    from sim.config import PortSpec
    from sim.errors import PortError
    from sim.ports.events import EventLog
    from sim.ports.portset import PortSet
    from sim.wiring import build_port

    events = EventLog()
    first, endpoint = build_port(PortSpec(role="servo", name="servo0"), events)  # virtual: an emulator behind it
    second, _ = build_port(PortSpec(role="telemetry", url=str(tmp_path / "no-such-radio")), events)
    portset = PortSet([first, second], events)
    with pytest.raises(PortError, match="no-such-radio"):
        portset.open()
    assert first.transport is None and first.state == "closed"
    assert endpoint is not None and endpoint.emulator is None  # stopped (and reaped: the leak guard)
