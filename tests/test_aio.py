"""The asyncio I/O mode's own hazards, over real ptys and emulator processes: one event loop
must not be held up by one slow port, must go idle after a stall, must report a role's bug,
must refuse ports it cannot watch, and no mode may send a letter twice across a switch; at a stop,
a task or a device's opener still running at the deadline is named in ``stuck``, and let go
without leaking what it opens later."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sim.config import FlightConfig, PortSpec, apply_overrides
from sim.loop import FlightLoop
from sim.ports.aio import EventLoopWorker
from sim.ports.events import EventLog
from sim.ports.mailbox import Mailbox
from sim.ports.portset import PortSet
from sim.ports.roles import LinkPort, TelemetryPort
from sim.ports.transport import open_transport
from sim.session import flight_session
from tests.conftest import heli
from tests.test_port_errors import WAIT_S, join_io_threads, pty_pair, request_arrives
from tests.test_ports import ROOT, state, virtual


def started(portset: PortSet, *endpoints) -> None:
    portset.open(start=False)
    for endpoint in endpoints:
        endpoint.wait_ready(time.monotonic() + 10.0)
    portset.start()


@pytest.mark.realtime
def test_a_far_end_that_stops_reading_does_not_hold_up_the_other_ports():
    events = EventLog()
    telemetry, ground = virtual(TelemetryPort, "gcs", [], events)
    link, device = virtual(LinkPort, "link", ["--latency-ms", "5"], events)
    portset = PortSet([telemetry, link], events, "asyncio")
    started(portset, ground, device)
    try:
        replies = portset.inboxes[link.name]
        first = replies.wait_newer(0, 10.0)
        assert first is not None

        def replies_in(seconds: float) -> int:
            """The link's replies while telemetry is pushed for ``seconds``."""
            start, end = replies.latest().seq, time.monotonic() + seconds
            while time.monotonic() < end:
                portset.push_outputs({telemetry.name: [state(0)] * 20})
                replies.wait_newer(replies.latest().seq, 0.01)  # paces the pushes by the link's replies
            return replies.latest().seq - start

        reading = replies_in(0.75)  # the reference: the ground station reads, same loop, same load
        ground.pause_far_end()  # the ground station stops reading: its pty fills, then the port's buffer
        stalled = replies_in(1.5)
        assert telemetry.stats.frames_dropped > 0 and telemetry.state == "backpressured"
        # the link, served by the same event loop, kept answering all along: at the rate it answered
        # while nothing was stuck (twice the time: twice the replies; more than half of that)
        assert stalled > reading > 0, (stalled, reading)
        ground.resume_far_end()
        portset.push_outputs({telemetry.name: [state(0)]})
        assert events.wait_for("port_ok", 5.0) is not None
    finally:
        portset.close()
    assert not portset.stuck_threads


def _cpu_ticks(native_id: int) -> int:
    """User plus system CPU time of one thread of this process, in clock ticks."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until true or the deadline: for states that have no event to wait on
    (how full a kernel buffer is)."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            return False
        tick.wait(0.002)
    return True


def test_after_a_far_end_catches_up_the_event_loop_goes_idle(caplog):
    events = EventLog()
    telemetry, ground = virtual(TelemetryPort, "gcs", [], events)
    portset = PortSet([telemetry], events, "asyncio")
    started(portset, ground)
    try:
        ground.pause_far_end()
        portset.push_outputs({telemetry.name: [state(i % 8) for i in range(400)]})  # ~40 KB: more than a pty holds
        # the pty is full and the port holds the rest, waiting to write it
        assert wait_until(lambda: telemetry.stats.frames_out == 400 and telemetry.tx_waiting > 0)
        ground.resume_far_end()
        assert wait_until(lambda: telemetry.tx_waiting == 0)  # the rest went out
        (loop_thread,) = [t for t in threading.enumerate() if t.name == "io:asyncio"]
        before = _cpu_ticks(loop_thread.native_id)
        threading.Event().wait(0.5)  # the window measured: nothing to do in it but read the far end
        spent = _cpu_ticks(loop_thread.native_id) - before
    finally:
        portset.close()
    assert telemetry.stats.write_timeouts == 0 and telemetry.stats.frames_dropped == 0
    (gcs,) = ground.far_end_summaries
    assert gcs["errors"] == 0 and gcs["rx_sequence_gaps"] == 0  # every frame arrived, whole
    assert spent <= 10, f"the event loop used {spent * 10} ms of CPU in 0.5 s with nothing to do"
    assert not [r for r in caplog.records if r.name == "asyncio"], "the event loop logged errors"


class BrokenLink(LinkPort):
    async def _exchange(self, letter):
        raise ValueError("a bug in a role")


def test_a_bug_in_a_role_is_reported_as_an_event(caplog):
    events = EventLog()
    broken, device = virtual(BrokenLink, "link", ["--latency-ms", "5"], events)
    portset = PortSet([broken], events, "asyncio")
    started(portset, device)
    try:
        error = events.wait_for("io_error", 5.0)
    finally:
        portset.close()
    assert error is not None and "ValueError('a bug in a role')" in error.detail
    # the port catches it: counted, reported, and the port goes on (tests/test_port_errors.py)
    assert any("port link-test: an exchange raised ValueError" in r.getMessage() for r in caplog.records)
    assert broken.summary()["io_errors"] >= 1 and broken.summary()["state"] == "ok"


def test_ports_without_a_file_descriptor_refuse_the_asyncio_mode():
    result = subprocess.run([sys.executable, "-m", "sim", "fly", "--headless", "--duration", "0.2", "--io", "asyncio",
                             "--no-ports", "--rc-out", "loop://"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "I/O mode asyncio watches file descriptors and rc-out (loop://) has none" in result.stderr

    def ask_for_asyncio(loop: FlightLoop) -> None:
        if loop.ticks == 1:  # the second tick: every flight has one, however few a busy machine allows
            loop.command("toggle_asyncio")

    config = apply_overrides(FlightConfig(), heli="trex450", start="hover", duration_s=0.2)
    config = replace(config, ports=(PortSpec(role="rc-out", url="loop://"),))
    with flight_session(config, heli("trex450").config, before_tick=ask_for_asyncio) as loop:
        loop.run()
    summary = loop.summary()
    assert [e["kind"] for e in summary["events"] if e["kind"].startswith("mode_")] == ["mode_refused"]
    assert summary["io_mode_final"] == "threaded"


def test_no_mode_sends_a_letter_again_after_a_switch():
    events = EventLog()
    telemetry, ground = virtual(TelemetryPort, "gcs", [], events)
    portset = PortSet([telemetry], events, "blocking")
    started(portset, ground)
    try:
        portset.push_outputs({telemetry.name: [state(0)]})  # sent inline, once
        for mode in ("threaded", "asyncio", "threaded", "blocking", "asyncio", "blocking"):
            portset.switch(mode)  # the I/O threads of each mode start and stop with nothing new to send
    finally:
        portset.close()
    (far,) = ground.far_end_summaries
    assert telemetry.stats.frames_out == 1 and far["frames_in"] == 1


def test_the_asyncio_thread_and_its_helpers_are_gone_after_close():
    events = EventLog()
    link, device = virtual(LinkPort, "link", ["--latency-ms", "5"], events)
    portset = PortSet([link], events, "asyncio")
    started(portset, device)
    try:
        assert portset.inboxes[link.name].wait_newer(0, 10.0) is not None
        assert {t.name for t in threading.enumerate()} >= {"io:asyncio"}
    finally:
        portset.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("io:")]
    assert link.state == "closed" and link.line is None and link.backend is None


# --- what does not end by the stop's deadline


def worker_for(port) -> EventLoopWorker:
    return EventLoopWorker([port], {port.name: Mailbox()}, {port.name: Mailbox()}, EventLog())


def blocking_settings(port) -> tuple:
    """What an event loop changes on a port's transport while it serves it: the timeouts and whether
    the fd blocks."""
    transport = port.transport
    return transport.timeout, transport.write_timeout, os.get_blocking(transport.fileno())


def test_a_task_still_in_its_exchange_at_the_deadline_is_named_stuck_and_cancelled():
    """``stop`` lets each task end its exchange until just before the deadline; a link still
    waiting for its reply (a 5 s reply timeout, its device silent) is named in ``stuck`` and
    cancelled, so the thread ends without waiting out the reply timeout, and the port is given
    back as it was lent (its read quantum, its write timeout, its fd's blocking mode)."""
    events = EventLog()
    with pty_pair() as (master, path):
        link = LinkPort("link0", lambda: open_transport(path), events, url=path, reply_timeout_s=5.0)
        link.open()
        lent = blocking_settings(link)
        worker = worker_for(link)
        try:
            worker.start()
            assert request_arrives(master)  # the exchange is under way: no reply will come
            worker.stop(0.5)
            join_io_threads()
            given_back = blocking_settings(link)
        finally:
            link.close()
    assert "link0" in worker.stuck
    assert link.stats.timeouts == 0  # cancelled: a wait run on to the reply timeout counts one
    assert link.line is None and link.backend is None and given_back == lent


class SlowToComeBack:
    """A port's opener: a pty of its own at first (``unplug`` closes its far end: the port is lost),
    then the pty at ``path``; every open after the first waits for ``release``, as a device that
    takes longer to come back than a stop waits (a USB adapter enumerating again).  The wait stands
    in for that device (none is slow for just as long as a test needs); the opens are real, and what
    each returned is kept to be checked.  ``close`` lets go of what is left."""

    def __init__(self):
        self.master: int | None
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.opened: list = []
        self.reopening = threading.Event()
        self.release = threading.Event()

    def unplug(self) -> None:
        """The port's reads fail (EIO) from now on: it is lost, and reopened."""
        assert self.master is not None
        os.close(self.master)
        self.master = None

    def close(self) -> None:
        self.release.set()
        if self.master is not None:
            os.close(self.master)
        os.close(self.slave)

    def __call__(self):
        if self.opened:
            self.reopening.set()
            self.release.wait(WAIT_S)
        transport = open_transport(self.path)
        self.opened.append(transport)
        return transport


def test_an_opener_still_opening_at_the_deadline_is_named_stuck_and_what_it_opens_then_is_closed(monkeypatch):
    """A lost device is reopened in an ``io:asyncio-open`` thread; one still opening at the stop's
    deadline is named in ``stuck`` (with the task that waited for it, cancelled), the thread ends
    without it, and the device it opens once the event loop has gone is closed, not left open."""
    monkeypatch.setattr("sim.ports.port.RECONNECT_INTERVAL_S", 0.0)  # a lost device is reopened at once
    device = SlowToComeBack()
    link = LinkPort("link0", device, EventLog(), url="pty", reply_timeout_s=5.0)
    link.open()
    worker = worker_for(link)
    try:
        worker.start()
        assert request_arrives(device.master)
        device.unplug()
        assert device.reopening.wait(WAIT_S)
        with pty_pair() as (_master, path):  # the device comes back on a new pty, after the deadline
            device.path = path
            worker.stop(0.3)
            for thread in threading.enumerate():
                if thread.name == "io:asyncio":  # it waits for the opener until the deadline, then ends
                    thread.join(WAIT_S)
            stuck = list(worker.stuck)
            device.release.set()
            join_io_threads()  # the opener, done now
            left = (link.transport, link.state)
    finally:
        device.close()
        link.close()
    assert "io:asyncio-open" in stuck and "link0" in stuck
    (late,) = device.opened[1:]
    assert not late.is_open  # opened once the event loop had gone: closed
    assert left == (None, "disconnected")  # the port did not take it: still lost, as the stop found it
