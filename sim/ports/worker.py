"""The I/O thread of one port: it does the port's blocking calls so that the loop never does.

Owned by a ``PortSet``: ``start()`` it, ``stop(timeout)`` it.  Stopping sets a flag, wakes the
mailbox wait, cancels the port's blocking read or write, and joins against one deadline; a
thread that would not stop is reported (``stop`` returns False), never silently abandoned.
``daemon=True`` only keeps a wedged thread from holding the interpreter open after a crash.

The port's ``exchange`` never raises an ``Exception`` (a bug in a role is counted and reported
by the port); anything else that ends the thread (a bug here, a ``BaseException`` from a role)
is logged and kept in ``error``, which the owner reads every tick and reports.  The thread also
ends, quietly, once its port has failed (the port has reported why).
"""

from __future__ import annotations

import logging
import threading
import time

from sim.ports.mailbox import Mailbox
from sim.ports.port import Port

__all__ = ["PortWorker"]

log = logging.getLogger(__name__)

_WAIT_QUANTUM_S = 0.05  # how often an idle output thread re-checks its stop flag and reads its far end
_FLUSH_QUANTUM_S = 0.005  # ... and how often while bytes wait for the far end to take them


class PortWorker:
    """Thread ``io:<port name>``: takes letters from ``outbox``, posts results to ``inbox``."""

    def __init__(self, port: Port, outbox: Mailbox, inbox: Mailbox):
        self.port = port
        self.outbox = outbox
        self.inbox = inbox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"io:{port.name}", daemon=True)
        self.error: BaseException | None = None  # what ended the thread early; the owner reads and reports it
        self.error_reported = False

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        """Ask the thread to end after its current exchange (returns at once; ``stop`` waits)."""
        self._stop.set()
        self.outbox.wake()

    def stop(self, timeout_s: float = 1.0) -> bool:
        """Ask the thread to finish its current exchange and end; True if it did within the timeout."""
        self.request_stop()
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive():
            self.port.cancel()
            self._thread.join(min(0.02, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
        return not self._thread.is_alive()

    def _run(self) -> None:
        port, outbox, inbox, stop = self.port, self.outbox, self.inbox, self._stop
        try:
            while not stop.is_set() and port.state != "failed":
                if port.waits_for_new_letter:
                    # newer than any letter an exchange took, in this mode or before a switch; none
                    # within the quantum: an exchange without one reads what the far end sent
                    quantum_s = _FLUSH_QUANTUM_S if port.tx_waiting else _WAIT_QUANTUM_S
                    letter = outbox.wait_newer(port.letter_seen, quantum_s, abort=stop)
                    if stop.is_set():
                        continue
                else:
                    letter = outbox.latest()
                result = port.exchange(letter)
                if result is not None:
                    inbox.put(result, time.monotonic())
                elif port.resting and not port.waits_for_new_letter:
                    # a lost reader, or one whose exchange raised: wait a little before the next
                    # reconnect attempt or retry, stoppably
                    stop.wait(_WAIT_QUANTUM_S)
        except BaseException as error:  # kept for the owner to report; the thread must not die silently
            self.error = error
            log.error("io:%s ended by %r", port.name, error)
            log.info("io:%s: where %r was raised", port.name, error, exc_info=error)  # heli-sim -v shows it
