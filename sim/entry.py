"""The ``heli-sim`` command's first code (the console script and ``python -m sim`` start here).

SIGINT and SIGTERM are handled before anything else is imported (``sim.stopping``), so a signal
during the imports, the argument parsing or the loading of a configuration ends the command with
130 or 143 and no traceback.  Running out of memory, file descriptors or processes while starting
is one line and status 2.  Once the command has its status, the output is flushed and a late
signal exits at once; so does the command itself when a signal stopped it (everything written
and closed by then), without the interpreter's shutdown.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import sys

from sim import stopping

TYPE_CHECKING = False  # typing would load a dozen modules before the handlers are in place
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["main", "out_of_resources"]

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
# errno -> what ran out, and the limit to look at
_EXHAUSTED = {
    errno.EMFILE: ("too many open files", "the open-file limit, ulimit -n"),
    errno.ENFILE: ("the system's table of open files is full", "the system's file-max"),
    errno.EAGAIN: (
        "no more processes or threads can be started",
        "the limits on processes (ulimit -u) and memory (ulimit -v)",
    ),
    errno.ENOMEM: ("out of memory", "the memory limit, ulimit -v"),
}


# how the dynamic loader says a library found no memory to be mapped into (an ImportError)
_LOADER_OUT_OF_MEMORY = ("failed to map segment from shared object", "cannot allocate memory")


def out_of_resources(error: BaseException) -> str | None:
    """One line saying which resource ran out (and the limit to raise), or None if ``error`` is
    not the exhaustion of one: ``MemoryError``, ``OSError`` EMFILE / ENFILE / EAGAIN / ENOMEM, a
    thread that could not start, a compiled module the loader found no memory for.  The error's
    notes (``add_note``) say what was being done."""
    if isinstance(error, MemoryError) or (
        isinstance(error, ImportError) and any(text in str(error).lower() for text in _LOADER_OUT_OF_MEMORY)
    ):
        what, limit = _EXHAUSTED[errno.ENOMEM]
    elif isinstance(error, OSError) and error.errno in _EXHAUSTED:
        what, limit = _EXHAUSTED[error.errno]
    elif isinstance(error, RuntimeError) and str(error) == "can't start new thread":
        what, limit = _EXHAUSTED[errno.EAGAIN]
    else:
        return None
    doing = "; ".join(getattr(error, "__notes__", ()))
    said = f" ({error})" if isinstance(error, MemoryError) and str(error) else ""  # Python's own says nothing
    return f"{what}{said}{f' while {doing}' if doing else ''}: raise {limit}, or free some, and try again"


# address space heli-sim maps whatever the command: the imports (numpy with one OpenBLAS thread,
# ~85 MiB), and OpenBLAS's buffer at the first matrix product (32 MiB), with some headroom
_MIN_ADDRESS_SPACE = 160 << 20


def _fit_memory_limit() -> None:
    """Under an address-space limit (``ulimit -v``), numpy's OpenBLAS reserves a buffer per thread
    (as it loads, and at the first matrix product), and ends the process (status 1, its own
    message) when the limit refuses one.  So: one BLAS thread (heli-sim's arrays are far too small
    to gain from more), and a check that what every command maps will fit (``MemoryError`` if not:
    one line, status 2)."""
    import mmap
    import resource

    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        mmap.mmap(-1, _MIN_ADDRESS_SPACE).close()  # reserved, never touched: no memory is used
    except OSError as error:
        raise MemoryError(f"heli-sim needs {_MIN_ADDRESS_SPACE >> 20} MiB of address space") from error


def _internal_error() -> int:
    """An unexpected exception (a bug in heli-sim): its traceback on stderr; status 1."""
    import traceback

    traceback.print_exc()
    return EXIT_INTERNAL


def _exit_status(exiting: SystemExit) -> int:
    """The status a ``SystemExit`` asks for, as the interpreter would give it (a message: printed, 1)."""
    if exiting.code is None or isinstance(exiting.code, int):
        return exiting.code or 0
    sys.stderr.write(f"{exiting.code}\n")
    return 1


FOREGROUND_ENV = "HELI_SIM_FOREGROUND"  # set by ``make fly``: take the terminal's Ctrl-C for ourselves


class _Foreground:
    """With ``HELI_SIM_FOREGROUND=1`` and a terminal, heli-sim runs as its own process group in the
    terminal's foreground for its whole run, and gives the terminal back at the end.  Under ``make
    fly`` the terminal's Ctrl-C then reaches heli-sim (and what it started in its group) only: the
    flight ends in order, and make, which never saw the signal, ends quietly with its status
    instead of adding its own "Interrupt" line.  Without the variable, or without a terminal,
    nothing changes."""

    def __init__(self) -> None:
        self.terminal: int | None = None
        self.previous_group = 0

    def take(self) -> None:
        if os.environ.get(FOREGROUND_ENV) != "1":
            return
        try:
            if not os.isatty(0) or os.tcgetpgrp(0) != os.getpgrp():
                return  # no terminal, or not in its foreground (a background job): leave it alone
            self.previous_group = os.getpgrp()
            os.setpgid(0, 0)
            self.terminal = 0
            self._hand_to(self.terminal, os.getpgrp())
            import signal

            # Ctrl-Z would stop this group while make, which the shell sees, still runs: nothing could
            # bring it back to the foreground.  So Ctrl-Z does nothing here (Ctrl-C ends the flight).
            signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        except OSError:
            self.terminal = None

    def give_back(self) -> None:
        if self.terminal is not None:
            # the group gone (make ended): the shell takes its terminal back itself
            with contextlib.suppress(OSError):
                self._hand_to(self.terminal, self.previous_group)
            self.terminal = None

    def _hand_to(self, terminal: int, group: int) -> None:
        import signal

        ignored = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not set it otherwise
        try:
            os.tcsetpgrp(terminal, group)
        finally:
            signal.signal(signal.SIGTTOU, ignored)


def main() -> NoReturn:
    """Run ``heli-sim`` with ``sys.argv`` and exit with its status (``os._exit``: see the end)."""
    stopping.install_startup_handlers()
    foreground = _Foreground()
    foreground.take()
    try:
        _fit_memory_limit()
        from sim.cli import main as cli_main

        status = cli_main()
    except stopping.Stopped as stopped:
        status = stopped.status
    except SystemExit as exiting:  # argparse's usage errors, --help, --version: its status, the same way out
        status = _exit_status(exiting)
    except (MemoryError, OSError, RuntimeError, ImportError) as error:  # importing; sim.cli's main: the rest
        stop = stopping.stop_in(error)  # a signal while importing, wrapped by an import hook
        line = None if stop is not None else out_of_resources(error)
        if stop is not None:
            status = stop.status
        elif line is not None:
            sys.stderr.write(f"heli-sim: error: {line}\n")
            status = EXIT_BAD_INPUT
        else:
            status = _internal_error()
    except BaseException as error:  # a bug: its traceback, status 1 (a late signal cannot garble it)
        stop = stopping.stop_in(error)  # or a signal wrapped into something else while importing
        status = stop.status if stop is not None else _internal_error()
    stopping.install_exit_handlers()  # the output is flushed; a signal from now on exits with its status
    # Everything is written and closed.  The interpreter's own shutdown (unloading numpy, pygame,
    # pymavlink...) takes up to half a second of a busy machine, and part way through it puts the
    # default signal handlers back: a SIGTERM then would end the process as "killed" (-15) after
    # all.  So: the exit functions registered with atexit (logging's flush, multiprocessing's), the
    # output flushed, and out, with the handlers above in place to the end.
    atexit._run_exitfuncs()
    stopping.install_exit_handlers()
    foreground.give_back()
    os._exit(status)
