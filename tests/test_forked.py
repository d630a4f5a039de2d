"""Device emulators forked from the simulator (``sim.ports.forked``): fast, alone with their own
descriptors, in their own process group, and a new interpreter instead wherever a fork is not safe."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sim.ports import forked
from sim.ports.forked import PROCESS_NAME, ForkedEmulator, can_fork
from sim.ports.virtual import VirtualEndpoint

WAIT_S = 30.0


def _descriptors(pid: int) -> list[str]:
    return sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))


def test_an_emulator_is_a_fork_that_keeps_only_its_own_descriptors_and_serves_its_port():
    assert can_fork()  # (the suite runs no thread between tests: the leak fixture sees to it)
    endpoint = VirtualEndpoint("servo", [])
    transport = endpoint.open()
    try:
        emulator = endpoint.emulator
        assert emulator is not None and isinstance(emulator.proc, ForkedEmulator)
        started = time.monotonic()
        emulator.wait_ready(started + WAIT_S)
        pid = emulator.pid
        assert Path(f"/proc/{pid}/comm").read_text().strip() == PROCESS_NAME  # ps shows what it is
        assert os.getpgid(pid) == pid  # its own process group: a terminal's Ctrl-C is the simulator's
        # stdin (/dev/null), its output pipe, the simulator's stderr, its end of the pty, and what it opened
        # itself to wait on that end (an epoll): nothing of the simulator's (its own pty end, other ports)
        stderr = os.readlink("/proc/self/fd/2")
        kept = [target for target in _descriptors(pid) if target not in (stderr, "anon_inode:[eventpoll]")]
        assert len(kept) == 3 and "/dev/null" in kept and "/dev/ptmx" in kept and kept[-1].startswith("pipe:")
        transport.write(b"\x00")  # it reads what the port sends (a byte of no frame: counted, not fatal)
    finally:
        transport.close()
        endpoint.close()
    (summary,) = endpoint.far_end_summaries  # it saw the hang-up, answered with its summary and ended
    assert summary["ended"] and emulator.proc.returncode == 0


def test_with_another_thread_running_the_emulator_is_a_new_interpreter():
    """A thread that might hold a lock at the fork: no fork, a new interpreter (as before forks)."""
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(WAIT_S,), name="holds-a-lock")
    other.start()
    endpoint = VirtualEndpoint("servo", [])
    try:
        transport = endpoint.open()
        assert not can_fork() and isinstance(endpoint.emulator.proc, subprocess.Popen)
        endpoint.emulator.wait_ready(time.monotonic() + WAIT_S)
        transport.close()
    finally:
        endpoint.close()
        release.set()
        other.join(WAIT_S)
    assert endpoint.far_end_summaries


@pytest.mark.parametrize("turned_off", ["module", "environment"])
def test_forks_can_be_turned_off(monkeypatch, turned_off):
    if turned_off == "module":
        monkeypatch.setattr(forked, "USE_FORK", False)
    else:
        monkeypatch.setenv("HELI_SIM_FORK_EMULATORS", "0")
    assert not can_fork()


def test_a_forked_emulator_is_waited_for_killed_and_reaped_as_a_process():
    """``wait`` with a timeout, ``kill`` and the exit status, as ``subprocess.Popen`` gives them."""
    master, slave = os.openpty()
    try:
        emulator = ForkedEmulator(["device", "servo", "--fd", str(master)], (master,))
        assert emulator.stdout.readline() == b"ready\n"
        with pytest.raises(subprocess.TimeoutExpired):
            emulator.wait(0.05)  # it serves: it has not ended
        emulator.kill()
        assert emulator.wait(WAIT_S) == -9 and emulator.poll() == -9
        emulator.kill()  # reaped: no signal to a pid another process may have now
    finally:
        emulator.stdout.close()
        os.close(master)
        os.close(slave)


def test_a_forked_emulator_ignores_the_simulators_io_toggles():
    """SIGUSR1 / SIGUSR2 toggle the simulator's I/O mode; ``pkill -f`` finds the forks too (they keep
    the simulator's command line): they must not end a far end."""
    master, slave = os.openpty()
    emulator = ForkedEmulator(["device", "servo", "--fd", str(master)], (master,))
    try:
        assert emulator.stdout.readline() == b"ready\n"
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            emulator.send_signal(signum)
        with pytest.raises(subprocess.TimeoutExpired):
            emulator.wait(0.2)  # still serving
        emulator.terminate()
        assert emulator.wait(WAIT_S) == 143  # ended by the signal it is meant to answer, in its own way
    finally:
        emulator.kill()
        emulator.stdout.close()
        os.close(master)
        os.close(slave)


def test_a_fork_the_system_refuses_for_memory_starts_a_new_interpreter_instead(monkeypatch):
    """A large simulator on a system with strict overcommit may not be copied (fork: ENOMEM) where a
    small new interpreter still starts (no real device can make fork fail: os.fork stands in)."""

    def no_memory() -> int:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_memory)
    endpoint = VirtualEndpoint("servo", [])
    try:
        transport = endpoint.open()
        assert isinstance(endpoint.emulator.proc, subprocess.Popen)
        endpoint.emulator.wait_ready(time.monotonic() + WAIT_S)
        transport.close()
    finally:
        endpoint.close()
    assert endpoint.far_end_summaries
