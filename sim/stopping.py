"""SIGINT and SIGTERM from the first line of ``heli-sim`` to its exit: what each one does, and when.

Whenever one of them arrives, ``heli-sim`` ends within a second with status 130 (SIGINT) or 143
(SIGTERM), and never with a traceback.  How depends on what the process holds at that moment:

- **starting** (imports, argument parsing, loading the configuration, building the flight): nothing
  is open that must be closed in order, so the signal raises ``Stopped`` where the main thread is,
  and the entry point returns the status (``install_startup_handlers``, from the entry point's
  first line; also inside ``handling_stops`` until ``owning()``);
- **owning** (``owning()`` was called in a ``handling_stops`` scope, just before ports, device
  emulators, the view or a flight log are opened): the signal is a request.  It is recorded, the
  owner is told (a flight loop stops at its next tick and its blocking waits give up), and every
  long wait watches ``requested()``: the emulators' and the view's start-up, injected delays, the
  physics catch-up.  A wait that gives up before the flight started raises ``Stopped`` from a
  point where the session can close what it opened.  This lasts to the end of the scope, so the
  shutdown and the summary are never cut short, and a second signal changes nothing;
- **stuck** (``escalating()``, around the flight loop): a request the loop has not acted on within
  ``ESCALATE_AFTER_S`` (a tick held by code that never returns, such as a user's controller in an
  endless loop) is raised as ``Stopped`` in the main thread after all, wherever it is; the loop
  ends there and the session closes in order;
- **ending** (the command has its status; ``install_exit_handlers``): the output is flushed, and a
  signal now ends the process at once with its own status.

Signals are the process's, so this state is too (one stop request per ``handling_stops`` scope).
Handlers run in the main thread between bytecodes: they set values and never take a lock.
At import this module loads nothing the interpreter has not loaded already (``_signal``, not
``signal``, which imports ``enum``): the entry point installs the handlers within microseconds.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing itself would load a dozen modules before the handlers are in place
if TYPE_CHECKING:
    import signal as _signal  # the same names, typed (typeshed has no stubs for _signal)
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
else:
    import _signal

__all__ = [
    "ESCALATE_AFTER_S",
    "Interrupted",
    "Stopped",
    "Terminated",
    "check",
    "escalating",
    "handling_stops",
    "install_exit_handlers",
    "install_startup_handlers",
    "owning",
    "requested",
    "requested_at",
    "reset_in_new_process",
    "status_for",
    "stop_in",
    "time_left",
]

SIGINT, SIGTERM = _signal.SIGINT, _signal.SIGTERM
STOP_SIGNALS = (SIGINT, SIGTERM)
_NAMES: dict[int, str] = {SIGINT: "SIGINT", SIGTERM: "SIGTERM"}


class Stopped(BaseException):
    """SIGINT or SIGTERM ended ``heli-sim`` before anything had to be closed in order; ``status``
    is the exit status (128 + the signal's number: 130 or 143).  Not an ``Exception``: no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(_NAMES.get(signum, f"signal {signum}"))
        self.signum = signum
        self.status = status_for(signum)


class Interrupted(Stopped, KeyboardInterrupt):
    """SIGINT (Ctrl-C): also a ``KeyboardInterrupt``, so code that ends early on Ctrl-C still does."""


class Terminated(Stopped):
    """SIGTERM."""


def status_for(signum: int) -> int:
    """The exit status for a stop by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def stopped(signum: int) -> Stopped:
    """The ``Stopped`` exception for ``signum``."""
    return Interrupted(signum) if signum == SIGINT else Terminated(signum)


ESCALATE_AFTER_S = 0.5  # a stop request the flight loop has not acted on by then is raised in the main thread

_requested: int | None = None  # the first stop signal in the current handling_stops scope
_requested_at = 0.0  # when it came (time.monotonic)
_owning = False  # the current scope holds what must be closed in order: signals are requests
_escalating = False  # the watchdog asks the handler to raise the request it has already recorded


def requested() -> int | None:
    """The signal (its number) that asked this process to stop, or None.  Cheap: waits poll it."""
    return _requested


def requested_at() -> float | None:
    """When (``time.monotonic``) the stop was requested, or None."""
    return None if _requested is None else _requested_at


def time_left(budget_s: float) -> float | None:
    """Seconds left of ``budget_s`` counted from the stop request (at least 0), or None without one:
    what a closing step may still wait when heli-sim has to be gone within its second."""
    if _requested is None:
        return None
    return max(0.0, _requested_at + budget_s - time.monotonic())


def stop_in(error: BaseException) -> Stopped | None:
    """The ``Stopped`` behind ``error``, if a signal caused it: Python wraps an exception raised in
    some hooks (a dataclass field's ``__set_name__`` during an import raises ``RuntimeError`` from
    it), so the chain of causes is searched; an extension module's import may even replace it
    (numpy: "PyCapsule_Import could not import module"), so a signal the start-up handler raised
    counts too.  None when no signal is behind it."""
    if _raised_at_startup is not None:
        return stopped(_raised_at_startup)
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        if isinstance(link, Stopped):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def check() -> None:
    """Raise ``Stopped`` if a stop was requested (for waits before anything has started)."""
    if _requested is not None:
        raise stopped(_requested)


def owning() -> None:
    """From now to the end of the current ``handling_stops`` scope, SIGINT and SIGTERM are requests:
    call it just before opening what must be closed in order.  Outside a scope it does nothing."""
    global _owning
    _owning = True


_raised_at_startup: int | None = None  # the signal the start-up handler raised, if it did


def _raise_stopped(signum: int, _frame: object) -> None:
    global _raised_at_startup
    _raised_at_startup = signum
    raise stopped(signum)


def reset_in_new_process() -> None:
    """In a fork of a heli-sim process (``sim.ports.forked``): no stop requested, nothing owned, the
    start-up handlers in place, as in a process that has just started."""
    global _requested, _requested_at, _owning, _escalating, _raised_at_startup
    _requested, _requested_at, _owning, _escalating, _raised_at_startup = None, 0.0, False, False, None
    install_startup_handlers()


def install_startup_handlers() -> None:
    """SIGINT and SIGTERM raise ``Stopped`` wherever the main thread is (main thread only)."""
    for sig in STOP_SIGNALS:
        _signal.signal(sig, _raise_stopped)
    sys.unraisablehook = _quiet_about_stops


def _quiet_about_stops(unraisable: sys.UnraisableHookArgs) -> None:
    """A ``Stopped`` raised where Python cannot pass an exception on (the signal came during a
    weakref callback, such as the import system's module-lock cleanup, or a ``__del__``) is
    printed by Python as "Exception ignored" with a traceback.  The stop itself is not lost: it
    was recorded, and the next check honours it (at the latest, entering ``handling_stops``); so
    that one is not printed, nor anything else that breaks while a stop is under way."""
    exc_type = getattr(unraisable, "exc_type", None)
    if isinstance(exc_type, type) and issubclass(exc_type, Stopped):
        return
    if _raised_at_startup is not None or _requested is not None:
        # what a stop leaves half-built breaks in its __del__ as it is dropped (llvmlite's objects, when
        # Stopped came inside their constructor during a compile): a consequence of the stop, not news
        return
    sys.__unraisablehook__(unraisable)


def handling_stops(on_stop: Callable[[int], None] | None = None) -> AbstractContextManager[None]:
    """A scope in which the first SIGINT or SIGTERM is recorded (``requested()``) and answered:
    by raising ``Stopped`` where the main thread is, until ``owning()``; after it, by calling
    ``on_stop(signum)`` (from the handler: it must take no lock) and leaving the rest to the
    waits that watch ``requested()``.  Later signals change nothing.  The previous handlers and
    state come back on the way out.  Outside the main thread (no signals there) it does nothing."""
    from contextlib import contextmanager

    return contextmanager(_handling_stops)(on_stop)


def _handling_stops(on_stop: Callable[[int], None] | None) -> Iterator[None]:
    global _requested, _owning
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: object) -> None:
        global _requested, _requested_at
        global _escalating
        if _requested is not None:
            if _escalating:  # not a signal: escalating()'s watchdog, the request still not acted on
                _escalating = False
                raise stopped(_requested)
            return  # a second signal: the first is being served, the shutdown goes on in order
        _requested, _requested_at = signum, time.monotonic()
        if not _owning:
            raise stopped(signum)
        if on_stop is not None:
            on_stop(signum)

    outer = (_requested, _owning)
    _requested, _owning = None, False
    previous = {sig: _signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        if _raised_at_startup is not None:  # a start-up signal whose Stopped something swallowed (an
            # "Exception ignored" place: a weakref callback, a __del__): honoured here, before anything opens
            raise stopped(_raised_at_startup)
        yield
    finally:
        for sig, handler in previous.items():
            _signal.signal(sig, handler)
        _requested, _owning = outer


def escalating() -> AbstractContextManager[None]:
    """A scope (the flight loop's run, main thread) that must act on a stop request promptly: a
    request still unanswered ``ESCALATE_AFTER_S`` after it came is raised as ``Stopped`` in the main
    thread, wherever it is (code that never returns, a user's controller in an endless loop, cannot
    hold a stop).  A thread ``stop-watchdog``, owned by the scope, polls for that and is joined at
    its end.  Outside a ``handling_stops`` scope that owns something, it does nothing."""
    from contextlib import contextmanager

    return contextmanager(_escalating_scope)()


def _escalating_scope() -> Iterator[None]:
    import threading

    if not _owning or threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Event()

    def watch() -> None:
        global _escalating
        while not done.wait(0.05):
            if _requested is not None and time.monotonic() - _requested_at >= ESCALATE_AFTER_S:
                _escalating = True
                # a real signal to the main thread: it also ends a blocking call there (a sleep), and
                # the handler, run in the main thread, raises the request
                main = threading.main_thread().ident  # (None only for a thread not started)
                if main is not None:
                    _signal.pthread_kill(main, SIGINT)
                return

    watchdog = threading.Thread(target=watch, name="stop-watchdog", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        watchdog.join()


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError, AttributeError):
            continue  # closed, a pipe nobody reads, a write this handler interrupted, or no stream at all


def _exit_now(signum: int, _frame: object) -> None:
    _flush_output()
    os._exit(status_for(signum))


def install_exit_handlers() -> None:
    """The command is done: from now on a signal exits at once with its status; its output is flushed."""
    for sig in STOP_SIGNALS:
        _signal.signal(sig, _exit_now)
    _flush_output()
