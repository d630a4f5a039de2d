"""Helpers for tests that drive real processes: read their output with deadlines, never sleep."""

from __future__ import annotations

import os
import selectors
import subprocess
import time

__all__ = ["StderrLines"]

DEFAULT_TIMEOUT_S = 30.0


class StderrLines:
    """Lines of a child's stderr, read from the raw pipe with a deadline (no sleeping, no read-ahead)."""

    def __init__(self, proc: subprocess.Popen):
        self.fd = proc.stderr.fileno()
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
                    raise AssertionError(f"no line with {text!r} on stderr within {timeout_s} s: {self.seen}")
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise AssertionError(f"stderr closed before a line with {text!r}: {self.seen}")
                self.pending += chunk
