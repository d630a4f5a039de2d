"""A CPU-bound helper to show the GIL at work: the seed's factorisation, in a thread or a process.

In a thread, the helper holds the GIL while it computes and lets go only every switch interval
(5 ms): the loop, which needs the GIL to run its Python code after each sleep, wakes late even in
threaded mode.  In a process it has its own interpreter and GIL: the loop is left alone (the
machine has two cores).  ``CpuHelper`` owns whichever is running and stops it on request or
on ``close`` (the thread is joined; the process is terminated and reaped).
"""

from __future__ import annotations

import subprocess
import sys
import threading

__all__ = ["CpuHelper", "burn", "factorize"]

_CHUNK_START = 10**12 + 39  # numbers with large prime factors: trial division takes a while
_STOP_TIMEOUT_S = 1.0


def factorize(n: int) -> list[int]:
    """Prime factors of ``n`` by trial division: pure Python, CPU-bound, GIL-holding."""
    factors = []
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1 if d == 2 else 2
    if n > 1:
        factors.append(n)
    return factors


def burn(stop: threading.Event | None = None) -> None:
    """Factorise one number after another until ``stop`` is set (forever without one)."""
    n = _CHUNK_START
    while stop is None or not stop.is_set():
        factorize(n % 10**7 + 10**6)  # microseconds each: the stop flag is seen promptly
        n += 1


class CpuHelper:
    """Off, a thread, or a process; ``set_mode`` switches, ``close`` stops whatever runs."""

    def __init__(self) -> None:
        self.mode = "off"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None

    def set_mode(self, mode: str) -> None:
        if mode not in ("off", "thread", "process"):
            raise ValueError(f"CPU helper mode must be off, thread or process, got {mode!r}")
        if mode == self.mode:
            return
        self._stop_running()
        if mode == "thread":
            self._stop = threading.Event()
            self._thread = threading.Thread(target=burn, args=(self._stop,), name="cpu-helper", daemon=True)
            self._thread.start()
        elif mode == "process":
            self._process = subprocess.Popen(  # -P: the working directory is not on its sys.path
                [sys.executable, "-P", "-c", "from sim.cpu_helper import burn; burn()"],
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        self.mode = mode

    def _stop_running(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(_STOP_TIMEOUT_S)
            self._process = None
        self.mode = "off"

    def close(self) -> None:
        self._stop_running()
