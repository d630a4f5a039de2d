"""Device emulators started as forks of the simulator: a copy of a process that has imported heli-sim
already starts in milliseconds, where a new interpreter spends a fifth of a second of a core on its
imports (three emulators on two cores: most of a flight's start-up).

A fork is taken only where it is safe: on a system that has ``fork``, from the main thread of a
process that runs no other thread (a thread holding a lock at the fork would leave the copy's lock
held forever).  Otherwise, and when ``USE_FORK`` is off (or ``HELI_SIM_FORK_EMULATORS=0`` is in the
environment), the emulator is a new interpreter (``subprocess.Popen``), as before.  Either way it is
one process per port, in a process group of its own, its output on a pipe the simulator reads, and
``ForkedEmulator`` answers as much of ``Popen`` as ``sim.ports.virtual.EmulatorProcess`` uses.

The child keeps only the descriptors it is given (its pty's end, the output pipe, stdin from
/dev/null, the simulator's stderr), drops the simulator's state that would act in it (its stop
handling, its exit functions: it ends with ``os._exit``), and runs ``heli-sim device`` with the
arguments a new interpreter would have had.  It imports nothing from the working directory: the
directory's entry is taken out of ``sys.path`` first (and what it runs was imported by the
simulator before the fork).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any

__all__ = ["PROCESS_NAME", "USE_FORK", "ForkedEmulator", "can_fork", "start_emulator"]

USE_FORK = True  # off: every emulator a new interpreter (so is HELI_SIM_FORK_EMULATORS=0 in the environment)
# a forked emulator's name in ps and /proc/PID/comm (not "heli-sim ...": `pkill heli-sim` means the simulator)
PROCESS_NAME = "sim-device"
_PR_SET_NAME = 15  # prctl(2)
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_WAIT_SLICE_S = 0.01  # where the system has no process descriptors to wait on: how often wait() looks


def can_fork() -> bool:
    """Whether an emulator may be forked here and now (the module doc)."""
    return (
        USE_FORK
        and os.environ.get("HELI_SIM_FORK_EMULATORS", "1") != "0"
        and hasattr(os, "fork")
        and threading.current_thread() is threading.main_thread()
        and threading.active_count() == 1
    )


def start_emulator(argv: list[str], pass_fds: tuple[int, ...]) -> Any:
    """``heli-sim device ARGV...``: a fork where it is safe (``ForkedEmulator``), else a new interpreter
    (``subprocess.Popen``); stdout a pipe, stdin /dev/null, its own process group, ``pass_fds`` kept."""
    if can_fork():
        try:
            return ForkedEmulator(argv, pass_fds)
        except OSError as error:  # a large simulator the system cannot copy (strict overcommit): a new one
            if error.errno not in (errno.ENOMEM, errno.EAGAIN):
                raise
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "sim", *argv],  # -P: not from the working directory
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        # its own process group, so a terminal's Ctrl-C reaches the simulator only (which ends it in
        # order); the same session, so it shares the simulator's scheduler autogroup and its lower
        # niceness counts against the loop (in a session of its own it would not)
        process_group=0,
    )


class ForkedEmulator:
    """An emulator forked from this process; the part of ``subprocess.Popen`` that the emulator's
    owner uses: ``pid``, ``stdout``, ``returncode``, ``poll``, ``wait``, ``send_signal``, ``kill``."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...]):
        import sim.cli.device  # noqa: F401 (imported here once, so that the copies need not import it)

        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice, by the copy too
            with contextlib.suppress(Exception):
                stream.flush()
        self.args = argv
        self.returncode: int | None = None
        # a stop signal (its handler raises) must not land between the fork and the moment this object
        # knows the child: it would be left running unowned.  Held back over that stretch, it is
        # delivered on the way out, when there is a child to end; the copy takes its own handlers first
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            read_end, write_end = os.pipe()
            try:
                pid = os.fork()
            except BaseException:
                os.close(read_end)
                os.close(write_end)
                raise
            if pid == 0:  # the copy
                _run_in_child(argv, write_end, pass_fds, held)  # never returns
            os.close(write_end)
            self.pid = pid
            self.stdout: IO[bytes] = os.fdopen(read_end, "rb", buffering=0)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler set to ignore): its status is lost
                self.returncode = -1
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status, once it has ended; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        descriptor = _process_descriptor(self.pid)
        try:
            while self.poll() is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
                if descriptor is not None:  # readable once it has ended (poll: any descriptor number)
                    waiter = select.poll()
                    waiter.register(descriptor, select.POLLIN)
                    waiter.poll(None if remaining is None else max(0, math.ceil(remaining * 1000)))
                else:
                    time.sleep(_WAIT_SLICE_S if remaining is None else min(_WAIT_SLICE_S, remaining))
        finally:
            if descriptor is not None:
                os.close(descriptor)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # once reaped, its pid may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _process_descriptor(pid: int) -> int | None:
    """A descriptor that becomes readable when process ``pid`` ends (Linux 5.3+), or None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:  # an older kernel, or the process gone and reaped
        return None


def _run_in_child(argv: list[str], output: int, keep: tuple[int, ...], mask: set) -> None:
    """In the fork: become ``heli-sim device ARGV`` with only its own descriptors, and end with its status."""
    status = 1
    try:
        _name_process(PROCESS_NAME)
        os.setpgid(0, 0)  # its own process group (as Popen's process_group=0)
        os.dup2(output, 1)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        _close_all_but({0, 1, 2, *keep})
        for signum in (signal.SIGTSTP, signal.SIGTTOU, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)  # the simulator's own uses of them
        for signum in (signal.SIGUSR1, signal.SIGUSR2):  # the simulator's I/O toggles: meant for it, not for this
            signal.signal(signum, signal.SIG_IGN)  # copy (whose command line is the simulator's: pkill -f finds both)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        here = os.getcwd()
        sys.path[:] = [entry for entry in sys.path if entry not in ("", ".", here)]
        from sim import stopping
        from sim.cli import main as cli_main

        stopping.reset_in_new_process()
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # its stop signals, held since the fork, come now
            status = cli_main(argv)
        except stopping.Stopped as stopped:
            status = stopped.status
        except SystemExit as exiting:
            status = exiting.code if isinstance(exiting.code, int) else 1
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # no handler may take it back into the caller's code
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(status)


def _name_process(name: str) -> None:
    """The name ``ps``, ``top`` and /proc/PID/comm show for this process (Linux; 15 bytes at most):
    its command line stays the simulator's, which a fork cannot change."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _close_all_but(keep: set[int]) -> None:
    start = 0
    for fd in sorted(keep):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, max(start + 1, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536))
