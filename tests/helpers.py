"""Helpers for tests that drive real processes: read their output with deadlines, never sleep."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections.abc import Iterator

__all__ = ["PipeLines", "StderrLines", "running"]

DEFAULT_TIMEOUT_S = 30.0


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
