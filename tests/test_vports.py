"""``heli-sim vports`` and ``PtyBridge``: pty pairs carry every byte value both ways, bound what a stalled
reader costs, drop what nobody is there to read, do not spin when idle, and end promptly on signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial

from sim.cli import main
from sim.ports.bridge import PENDING_LIMIT_BYTES, REATTACH_POLL_S, PtyBridge
from tests.helpers import SIGNAL_ALLOWANCE_S, PipeLines, running

STARTUP_TIMEOUT_S = 30.0
IO_TIMEOUT_S = 5.0
PAIR_LINE = re.compile(r"^pair (\d+): (\S+) <-> (\S+)$")
# every byte value, then the ones a cooked tty would mangle (NUL, LF, CR, ^C, XON, XOFF, 0xFF) repeated
PAYLOAD = bytes(range(256)) + bytes([0x00, 0x0A, 0x0D, 0x03, 0x11, 0x13, 0xFF]) * 20


def read_exactly(port: serial.Serial, size: int, timeout_s: float = IO_TIMEOUT_S) -> bytes:
    """Up to ``size`` bytes from ``port``, reading until all arrived or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    got = bytearray()
    while len(got) < size and time.monotonic() < deadline:
        got += port.read(size - len(got))  # blocks up to the port's timeout (1 s)
    return bytes(got)


def open_port(path: str) -> serial.Serial:
    return serial.Serial(path, baudrate=420000, timeout=1.0, write_timeout=1.0)


class VportsProcess:
    """``python -m sim vports ...`` as a child; ``pairs`` are the (A, B) paths it printed."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim", "vports", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = PipeLines(self.proc.stdout.fileno())
        self.stdout.wait_for("Ctrl-C", STARTUP_TIMEOUT_S)
        lines = self.stdout.seen
        self.pairs = [match.group(2, 3) for line in lines if (match := PAIR_LINE.match(line))]

    def end(self, sig: int) -> float:
        """Send ``sig``; seconds until the process had exited (waits at most 10 s)."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10.0)
        return time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10.0)


@pytest.fixture
def vports():
    child = VportsProcess("2")
    try:
        yield child
    finally:
        child.close()


def test_pairs_carry_every_byte_value_both_ways(vports):
    assert len(vports.pairs) == 2
    assert len({path for pair in vports.pairs for path in pair}) == 4
    for a_path, b_path in vports.pairs:
        with open_port(a_path) as a, open_port(b_path) as b:
            for writer, reader in ((a, b), (b, a)):
                writer.write(PAYLOAD)
                assert read_exactly(reader, len(PAYLOAD)) == PAYLOAD
            assert a.in_waiting == 0 and b.in_waiting == 0  # no echo, no CR/LF translation


def test_a_20_kib_burst_arrives_complete_and_in_order(vports):
    burst = bytes(range(256)) * 80  # 20 KiB
    (a_path, b_path), _ = vports.pairs
    with open_port(a_path) as a, open_port(b_path) as b:
        a.write(burst)  # nobody reads B meanwhile: the kernel buffers and the bridge's pending hold it
        assert read_exactly(b, len(burst)) == burst


@pytest.mark.realtime
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_it_promptly_with_a_program_attached_and_removes_the_links(sig, tmp_path: Path):
    reference = VportsProcess("2")  # the same, nobody attached: how long it takes to end here, now
    try:
        reference_s = reference.end(sig)
    finally:
        reference.close()
    child = VportsProcess("2", "--link-dir", str(tmp_path))
    try:
        links = sorted(tmp_path.iterdir())
        assert [link.name for link in links] == ["vport0a", "vport0b", "vport1a", "vport1b"]
        assert [os.readlink(link) for link in links] == [path for pair in child.pairs for path in pair]
        assert any(f"{tmp_path}/vport0a <-> {tmp_path}/vport0b" in line for line in child.stdout.seen)
        with open_port(str(tmp_path / "vport0a")):  # a program still attached must not delay the end
            elapsed = child.end(sig)
    finally:
        child.close()
    status = 128 + sig  # 130 or 143, as every heli-sim command ends on a signal
    assert child.proc.returncode == status and reference.proc.returncode == status
    assert elapsed < reference_s + SIGNAL_ALLOWANCE_S, f"exited {elapsed:.3f} s after the signal ({reference_s:.3f} s)"
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["vports", "0"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:  # refused by the option's type, as the count is
        main(["vports", "--link-dir", str(tmp_path / "missing")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "expected a whole number of pairs" in err[0] and "not an existing folder" in err[1]


# In-process: PtyBridge itself, driven by a thread this test owns or by run(deadline) in the test's thread.


class BridgeThread:
    """``bridge.run()`` in a named thread; ``stop()`` ends and joins it against a deadline."""

    def __init__(self, bridge: PtyBridge):
        self.bridge = bridge
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test:pty-bridge", daemon=True)

    def _run(self) -> None:
        try:
            self.bridge.run()
        except BaseException as error:
            self.error = error
            raise

    def __enter__(self) -> BridgeThread:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bridge.stop()
        self.thread.join(timeout=2.0)
        assert not self.thread.is_alive(), "the bridge thread did not stop within 2 s"
        assert self.error is None


def test_bridge_in_process_carries_bytes_both_ways():
    with PtyBridge(1) as bridge:
        pair = bridge.paths[0]
        with BridgeThread(bridge), open_port(pair.a) as a, open_port(pair.b) as b:
            a.write(PAYLOAD)
            assert read_exactly(b, len(PAYLOAD)) == PAYLOAD
            b.write(PAYLOAD[::-1])
            assert read_exactly(a, len(PAYLOAD)) == PAYLOAD[::-1]
        stats = bridge.stats[0]
        assert stats.a_to_b.forwarded == stats.b_to_a.forwarded == len(PAYLOAD)
        assert stats.a_to_b.dropped == stats.b_to_a.dropped == 0


def test_a_stalled_reader_costs_bounded_memory_keeps_the_newest_bytes_and_no_cpu():
    # unique 4-byte counters, so any window of the stream is recognisable
    stream = b"".join(i.to_bytes(4, "big") for i in range(64 * 1024))  # 256 KiB, far more than fits
    with PtyBridge(1) as bridge:
        pair = bridge.paths[0]
        with BridgeThread(bridge) as runner, open_port(pair.a) as a, open_port(pair.b) as b:
            a.write(stream)  # completes: the bridge drains A however slow B is
            cpu_before = time.process_time()
            runner.thread.join(timeout=0.3)  # a measuring window: the bridge has nothing to do but wait for B
            idle_cpu_s = time.process_time() - cpu_before
            got = bytearray()
            deadline = time.monotonic() + IO_TIMEOUT_S
            while not got.endswith(stream[-4096:]) and time.monotonic() < deadline:
                got += b.read(max(1, b.in_waiting))
        stats = bridge.stats[0].a_to_b
    assert got.endswith(stream[-4096:]), "the newest bytes must arrive"
    assert got[:4096] == stream[:4096]  # what the kernel took before the stall
    assert stats.dropped_overflow > 0 and stats.dropped_unattached == 0
    assert len(got) == stats.forwarded == len(stream) - stats.dropped_overflow
    assert len(got) <= 2 * PENDING_LIMIT_BYTES  # the kernel's ~20 KiB plus at most the bridge's limit
    assert idle_cpu_s < 0.1, f"{idle_cpu_s:.3f} s CPU in a 0.3 s window with a stalled reader"


class StepClock:
    """A fake monotonic clock that moves one re-check period each time it is read: a deadline becomes a number
    of loop turns, whatever the machine's load (the bridge reads the clock once per turn)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += REATTACH_POLL_S
        return self.now

    def turns(self, count: int) -> float:
        return self.now + (count + 0.5) * REATTACH_POLL_S


def test_bytes_for_an_end_nobody_has_open_are_dropped_not_kept_for_later():
    clock = StepClock()
    with PtyBridge(1, clock=clock) as bridge:
        pair = bridge.paths[0]
        with open_port(pair.a) as a:
            a.write(b"stale frame")
            bridge.run(deadline=clock.turns(3))  # this thread drives the bridge: it sees A open, B not
            with open_port(pair.b) as b:
                assert b.in_waiting == 0
                a.write(b"fresh frame")
                bridge.run(deadline=clock.turns(3))
                assert read_exactly(b, 11) == b"fresh frame"
        stats = bridge.stats[0].a_to_b
        assert (stats.dropped_unattached, stats.forwarded) == (len(b"stale frame"), len(b"fresh frame"))


def test_an_idle_bridge_with_nobody_attached_does_not_spin():
    with PtyBridge(2) as bridge:
        cpu_before = time.process_time()
        bridge.run(deadline=time.monotonic() + 0.5)
        idle_cpu_s = time.process_time() - cpu_before
    assert idle_cpu_s < 0.1, f"{idle_cpu_s:.3f} s CPU in 0.5 s"
    assert bridge.wakeups <= 0.5 / REATTACH_POLL_S + 5  # one re-check per REATTACH_POLL_S, no busy loop


def test_close_releases_every_fd_and_stop_before_run_returns_at_once(tmp_path: Path):
    fds_before = set(os.listdir("/proc/self/fd"))
    bridge = PtyBridge(3, link_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 6
    bridge.stop()
    bridge.run()  # no deadline: returns only because stop() came first
    assert bridge.wakeups == 0  # at once: not a single turn of its loop (counted, not timed)
    bridge.close()
    bridge.close()
    assert list(tmp_path.iterdir()) == []
    assert set(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_device_emulator_serving_a_port_ends_on_a_signal_with_its_status(vports, sig):
    """``heli-sim device`` on one end of a pair: a signal ends it with 130 or 143 and its summary."""
    (a_path, _b_path), _ = vports.pairs
    with running([sys.executable, "-m", "sim", "device", "link", "--port", a_path], stdin=subprocess.DEVNULL) as proc:
        PipeLines(proc.stderr.fileno()).wait_for("serving", STARTUP_TIMEOUT_S)
        proc.send_signal(sig)
        out, _err = proc.communicate(timeout=10.0)
    assert proc.returncode == 128 + sig
    assert '"ended"' in out.decode()
