"""Helpers for tests that drive real processes (read their output with deadlines, never sleep),
and for real-time judgements made against a reference measured in the same test.

How a real-time test judges (the suite must hold on a busy machine): never against a fixed
wall-clock window, always against something measured in the same test under the same load.

- ``LoopTiming`` and ``assert_keeps_time_like``: a flight's loop timing against the same flight
  without the stimulus (a slow device, a hung board), flown in the same test.
- ``flight_shutdown_s`` and ``SIGNAL_ALLOWANCE_S``: how long a process takes to end after a signal,
  against how long the same process takes to shut down when it ends on its own.
- Counts of frames are compared with what the far end reports it sent in the same run, never
  with a count expected in a wall-clock window; key presses and faults act at simulated times.

Tests that judge wall-clock timing are marked ``@pytest.mark.realtime``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SIGNAL_ALLOWANCE_S",
    "LoopTiming",
    "PipeLines",
    "StderrLines",
    "assert_keeps_time_like",
    "exit_seconds",
    "flight_shutdown_s",
    "run_command_forked",
    "running",
]

DEFAULT_TIMEOUT_S = 30.0
# what a signal may add to the shutdown of the same process ending on its own, measured in the same
# test: noticing the signal (a tick, or an interrupted wait) and anything a signal does differently.
# A stop that waits for a slow device, a catch-up or a flush would add a second or more.
SIGNAL_ALLOWANCE_S = 0.5


class PipeLines:
    """Lines of a pipe (a child's stdout or stderr), read from the raw fd with a deadline.

    No sleeping, and no read-ahead: ``readline()`` on a text pipe would buffer lines that
    ``select`` then no longer sees.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = b""
        self.seen: list[str] = []

    def wait_for(self, text: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self.pending:
                    line, self.pending = self.pending.split(b"\n", 1)
                    self.seen.append(line.decode())
                    if text in self.seen[-1]:
                        return self.seen[-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise AssertionError(f"no line with {text!r} within {timeout_s} s: {self.seen}")
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"the pipe closed before a line with {text!r}: {self.seen}")
                self.pending += chunk


class StderrLines(PipeLines):
    """``PipeLines`` of a child's stderr."""

    def __init__(self, proc: subprocess.Popen):
        super().__init__(proc.stderr.fileno())


@contextlib.contextmanager
def running(command: list[str], **kwargs) -> Iterator[subprocess.Popen]:
    """A child process (stdout and stderr piped) that is killed and reaped on the way out, so a
    failing test never leaves it running."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def exit_seconds(proc: subprocess.Popen, sig: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[float, str]:
    """Send ``sig`` to ``proc``; the seconds until it had exited, and what it wrote on its standard output."""
    sent = time.monotonic()
    proc.send_signal(sig)
    out, _err = proc.communicate(timeout=timeout_s)
    seconds = time.monotonic() - sent
    return seconds, out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def flight_shutdown_s(command: list[str], stats_json: Path, **kwargs: Any) -> float:
    """How long a ``fly`` that ends on its own (``command`` has ``--duration`` and ``--stats-json
    stats_json``, not ``--quiet``) takes to shut down once its loop has stopped: from its
    ``heli-sim: flying`` line (printed as the loop starts) to its exit, less the loop's own run
    (the last segment's end, wall-clock seconds from the loop's start).  The reference for a test
    that stops the same flight with a signal."""
    with running(command, **kwargs) as proc:
        StderrLines(proc).wait_for("heli-sim: flying")
        flying = time.monotonic()
        proc.communicate(timeout=DEFAULT_TIMEOUT_S)
        exited = time.monotonic()
    assert proc.returncode == 0, f"the reference flight ended with status {proc.returncode}"
    loop_s = json.loads(stats_json.read_text())["segments"][-1]["t_end_s"]
    return exited - flying - loop_s


@dataclass(frozen=True)
class LoopTiming:
    """A loop's timing over its segments: ticks, missed deadlines, the median period, the worst lateness (s)."""

    ticks: int
    missed: int
    period_p50_s: float
    lateness_max_s: float

    @classmethod
    def of(cls, segments: Iterable[Any]) -> LoopTiming:
        """From ``FlightLoop.segments`` (``sim.stats.Segment``); the median period is the ticks-weighted
        median of the segments' medians (one segment in most tests)."""
        segments = [s for s in segments if s.ticks]
        return cls(
            ticks=sum(s.ticks for s in segments),
            missed=sum(s.missed_deadlines for s in segments),
            period_p50_s=_weighted_median([(s.period.quantile(0.5) or 0.0, s.ticks) for s in segments]),
            lateness_max_s=max((s.lateness.max for s in segments), default=0.0),
        )

    @classmethod
    def of_log(cls, ticks: Any) -> LoopTiming:
        """From a flight log's tick rows of one vehicle (``sim.log.format.TICK_DTYPE``: ``t_s`` is when
        the loop woke, ``lateness_s`` and ``missed`` its timing), e.g. the ticks inside a fault's window."""
        woke = np.asarray(ticks["t_s"], dtype=float)
        periods = np.diff(woke)
        return cls(
            ticks=len(woke),
            missed=int(np.sum(ticks["missed"])),
            period_p50_s=float(np.median(periods)) if len(periods) else 0.0,
            lateness_max_s=float(np.max(ticks["lateness_s"])) if len(woke) else 0.0,
        )

    @property
    def missed_per_tick(self) -> float:
        return self.missed / max(self.ticks, 1)


def _weighted_median(pairs: list[tuple[float, int]]) -> float:
    half, seen = sum(weight for _, weight in pairs) / 2, 0
    for value, weight in sorted(pairs):
        seen += weight
        if seen >= half:
            return value
    return 0.0


def assert_keeps_time_like(measured: LoopTiming, reference: LoopTiming, stall_s: float) -> None:
    """The loop kept its schedule with a stimulus that, waited for, would stall a tick by ``stall_s``,
    as well as it did without it (``reference``: the same flight, same test, same load).

    One-sided, with margins scaled by the stimulus, not by the machine: a busy machine's bursts
    (a reference flown in a bad second can be worse than the flight it is compared with) stay
    far below a stall, and a loop that waits for the stimulus even once shows it whole.

    - worst lateness: less than the reference's plus half of ``stall_s`` (one wait adds all of it);
    - median period: less than the reference's plus a quarter of ``stall_s`` (waiting every tick
      makes the period ``stall_s``);
    - missed deadlines: at most one more per tick than the reference's (waiting every tick misses
      ``stall_s`` / period of them per tick).
    """
    what = f"with the stimulus {measured}, without it {reference}"
    assert measured.lateness_max_s < reference.lateness_max_s + stall_s / 2, what
    assert measured.period_p50_s < reference.period_p50_s + stall_s / 4, what
    assert measured.missed_per_tick < reference.missed_per_tick + 1.0, what


def run_command_forked(
    args: Iterable[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit_bytes: int | None = None,
) -> subprocess.CompletedProcess:
    """``heli-sim ARGS`` in a forked copy of this process: a real process with its own file
    descriptors, signals and exit status, through the command's real entry point
    (``sim.entry.main``), without paying for a new interpreter and its imports (0.3 s each).

    For the many bad-input cases; tests about the interpreter's start itself (safe path, a signal
    during the imports) start a real ``python -m sim`` instead.  This process must have no other
    thread running when it forks (pytest's own have none).  Output goes to temporary files (no
    pipe to fill); a child still running at ``timeout_s`` is killed and ``TimeoutExpired`` raised.
    """
    import atexit
    import logging
    import resource
    import sys
    import tempfile

    args = list(args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - flushed by the entry point
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                if memory_limit_bytes is not None:
                    resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
                if cwd is not None:
                    os.chdir(cwd)
                if env is not None:
                    os.environ.clear()
                    os.environ.update(env)
                logging.root.handlers.clear()  # pytest's capture handlers: the command sets up its own
                atexit._clear()  # pytest's exit functions (its temporary folders' clean-up) are not the child's
                sys.argv = ["heli-sim", *args]
                from sim.entry import main

                main()
            except BaseException:  # whatever it was, the traceback shows on stderr
                import traceback

                traceback.print_exc()
                sys.stderr.flush()
            os._exit(1)
        deadline = time.monotonic() + timeout_s
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(["heli-sim", *args], timeout_s)
            time.sleep(0.005)  # no event for a child's exit without a thread or a signal handler: polled
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return subprocess.CompletedProcess(["heli-sim", *args], os.waitstatus_to_exitcode(status), stdout, stderr)
