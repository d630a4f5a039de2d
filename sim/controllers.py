"""Which flight controller flies: the built-in flybarless one, or yours (``[flight] controller``).

A controller is a function with the signature of ``heli.control.control``::

    def my_control(constants, state, pilot, vehicles, dt_s) -> tuple[ControllerState, ActuatorCommand]

named as ``"package.module:function"`` (importable from the working directory, or from
``PYTHONPATH``).  It gets the same inputs as the built-in one for all N vehicles at once, and
its command goes to the same servos, physics, log and replay.

A user's controller is called through ``UserController``, which never lets it break the flight:
whatever goes wrong (an exception of any kind, ``SystemExit`` and ``KeyboardInterrupt``
included, an answer of the wrong type or shape, a non-finite command, a controller slower than
its tick) comes back as a ``ControllerAnswer`` saying what it did and for which vehicles, and
``sim.flight.Flight`` hands those vehicles to the built-in controller in failsafe.  Before the
flight, ``dry_run`` calls it once on the starting state: a controller that cannot fly at all
is bad input (``ConfigError``, one line).

A call that has not returned ``HUNG_AFTER_S`` after it began (an endless loop, a sleep, a wait
on something that never comes) is interrupted there: a ``SIGALRM`` timer, armed around each call
in the main thread, raises inside the controller (again every ``HUNG_REPEAT_S`` should it catch
that), and the call counts as too slow for its tick.  Pure-Python code and blocking calls are
interrupted; a single long C call (one huge numpy operation) only once it returns.

Too slow, the rule: a call overruns when it takes longer than the loop period.  After
``SLOW_CALLS_IN_A_ROW`` overrunning calls in a row, the built-in controller is timed on the same
inputs (best of ``REFERENCE_REPEATS``); the user's controller is judged too slow when even the
fastest of those calls took ``SLOW_REFERENCE_RATIO`` times as long as the built-in.  If it did
not, the machine, not the controller, was slow, and the count starts again.  One slow call (a
garbage collection, a busy machine) is never enough.  The judgement depends on the clock, so the
caller records it (a tick flag in the flight log) and a replay passes it back as ``too_slow``.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from heli.control import CONTROL_STATE_SIZE, ControllerConstants, ControllerState, PilotInput, control
from heli.errors import ConfigError
from heli.state import COMMAND_SIZE, ActuatorCommand, VehicleState
from sim.stopping import Stopped

__all__ = [
    "HUNG_AFTER_S",
    "REFERENCE_REPEATS",
    "SLOW_CALLS_IN_A_ROW",
    "SLOW_REFERENCE_RATIO",
    "ControlFunction",
    "ControllerAnswer",
    "UserController",
    "describe_error",
    "dry_run",
    "load_controller",
]

ControlFunction = Callable[..., tuple[ControllerState, ActuatorCommand]]

SLOW_CALLS_IN_A_ROW = 50  # overrunning calls in a row before the controller's speed is judged (0.1 s at 500 Hz)
SLOW_REFERENCE_RATIO = 10.0  # ... too slow when its fastest call took this many times the built-in's time
REFERENCE_REPEATS = 3  # the built-in is timed this many times, the best counts
HUNG_AFTER_S = 1.0  # a call running this long is interrupted (it cannot be the controller of a real-time loop)
HUNG_REPEAT_S = 0.1  # ... and again this often, should the controller catch the interruption
_DETAIL_CHARS = 160  # an exception's text is cut to this many characters in the one-line message


def load_controller(name: str) -> ControlFunction:
    """The controller ``name`` names ("" for the built-in); ``ConfigError`` in one line if it cannot be used."""
    if not name:
        return control
    where = f"flight.controller = {name!r}"
    module_name, _, function_name = name.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"{where}: expected MODULE:FUNCTION, e.g. my_controller:control")
    if os.getcwd() not in sys.path:  # the installed command does not look here by itself; python -m does
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({error}); is it on PYTHONPATH?") from None
    except SyntaxError as error:  # the module's own text: where, in one line
        place = f"{os.path.basename(error.filename or module_name)}:{error.lineno}"
        raise ConfigError(f"{where}: {module_name!r} does not compile ({error.msg}, {place})") from None
    except Stopped:
        raise
    except BaseException as error:  # anything its import ran raised (SystemExit and KeyboardInterrupt too)
        if is_interrupt(error):
            raise
        raise ConfigError(f"{where}: importing {module_name!r} raised {describe_error(error)}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"{where}: {module_name} has no function {function_name!r}")
    return function


class _Hung(BaseException):
    """Raised inside a user's controller call that has run for ``HUNG_AFTER_S``."""


class _CallDeadline:
    """A ``SIGALRM`` timer around one call (main thread only; elsewhere it does nothing): the call
    is interrupted with ``_Hung`` once it has run ``HUNG_AFTER_S``.  Never raised after the call
    has returned (``active`` is cleared first)."""

    def __init__(self) -> None:
        self.active = False
        self.armed = False

    def __enter__(self) -> _CallDeadline:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self.active = self.armed = True
            signal.setitimer(signal.ITIMER_REAL, HUNG_AFTER_S, HUNG_REPEAT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False
        if self.armed:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, self._previous)

    def _on_alarm(self, _signum: int, _frame: object) -> None:
        if self.active:
            raise _Hung()


@dataclass(frozen=True)
class ControllerAnswer:
    """One call of a user's controller: its answer, or what went wrong.

    ``failure`` (what the controller did, e.g. "raised ValueError('x') (my.py:12)") is set when
    the whole call is unusable; then ``result`` is None.  Otherwise ``result`` is the
    (state, command) pair and ``bad_vehicles`` lists the vehicles whose command or state row is
    not finite (their rows are unusable, the others are good).
    """

    result: tuple[ControllerState, ActuatorCommand] | None
    failure: str | None = None
    bad_vehicles: np.ndarray | None = None  # vehicle indices, int64
    too_slow: bool = False


class UserController:
    """A user's controller function, called so that nothing it does can break the flight.

    ``call`` measures each call (``time.perf_counter``) for the too-slow rule (module doc).
    Main thread only (the one that flies).
    """

    def __init__(self, name: str, function: ControlFunction, period_s: float):
        self.name = name
        self.function = function
        self.period_s = period_s
        self.overruns = 0  # overrunning calls in a row
        self.fastest_overrun_s = math.inf  # the fastest of them
        self.reference_s: float | None = None  # the built-in's time when it was last measured

    def restart(self) -> None:
        """Forget the calls so far (the flight was reset)."""
        self.overruns = 0
        self.fastest_overrun_s = math.inf

    def call(
        self,
        constants: ControllerConstants,
        state: ControllerState,
        pilot: PilotInput,
        vehicles: VehicleState,
        dt_s: float,
        too_slow: bool | None = None,
    ) -> ControllerAnswer:
        """One cycle of the user's controller.  ``too_slow``: None judges its speed by the clock;
        True or False is a judgement made before (a replay), and the clock is not read."""
        if too_slow:  # judged before (a replay): not called, as in flight the answer was not used
            return ControllerAnswer(
                None, "was slower than its tick (judged in flight, as the log records)", too_slow=True
            )
        started = time.perf_counter()
        try:
            with _CallDeadline() if too_slow is None else contextlib.nullcontext():
                result = self.function(constants, state, pilot, vehicles, dt_s)
        except _Hung:
            return ControllerAnswer(None, f"did not return within {HUNG_AFTER_S:g} s: interrupted", too_slow=True)
        except BaseException as error:  # SystemExit and KeyboardInterrupt are the controller's too
            if is_interrupt(error):
                raise
            return ControllerAnswer(None, f"raised {describe_error(error)}")
        elapsed_s = time.perf_counter() - started
        if too_slow is None and self._judge(elapsed_s, constants, pilot, vehicles, dt_s):
            assert self.reference_s is not None  # _judge timed the built-in before judging too slow
            return ControllerAnswer(
                None,
                f"was slower than its tick: {SLOW_CALLS_IN_A_ROW} calls in a row longer than the "
                f"{self.period_s * 1e3:g} ms loop period, the fastest {self.fastest_overrun_s * 1e3:.2f} ms "
                f"(the built-in: {self.reference_s * 1e3:.2f} ms)",
                too_slow=True,
            )
        problem = answer_problem(result, vehicles.count)
        if problem is not None:
            expected = f"expected (ControllerState, ActuatorCommand) with one row per vehicle ({vehicles.count})"
            return ControllerAnswer(None, f"returned {problem}, {expected}")
        state_rows, command_rows = result[0].packed, result[1].packed
        if np.abs(command_rows).max() < math.inf and np.abs(state_rows).max() < math.inf:  # no warning for a NaN
            return ControllerAnswer(result)
        bad_command, bad_state = ~np.isfinite(command_rows).all(axis=1), ~np.isfinite(state_rows).all(axis=1)
        what = [f"a non-finite {name} ({_non_finite(rows)})" for name, rows in
                (("command", command_rows[bad_command]), ("state", state_rows[bad_state])) if rows.size]  # fmt: skip
        return ControllerAnswer(
            result, f"returned {' and '.join(what)}", bad_vehicles=np.flatnonzero(bad_command | bad_state)
        )

    def _judge(
        self, elapsed_s: float, constants: ControllerConstants, pilot: PilotInput, vehicles: VehicleState, dt_s: float
    ) -> bool:
        """The too-slow rule (module doc), after a call that took ``elapsed_s``."""
        if elapsed_s <= self.period_s:
            self.overruns = 0
            self.fastest_overrun_s = math.inf
            return False
        self.overruns += 1
        self.fastest_overrun_s = min(self.fastest_overrun_s, elapsed_s)
        if self.overruns < SLOW_CALLS_IN_A_ROW:
            return False
        self.reference_s = _time_built_in(constants, pilot, vehicles, dt_s)
        if self.fastest_overrun_s >= SLOW_REFERENCE_RATIO * self.reference_s:
            return True
        self.overruns = 0  # the built-in was slow too: the machine was busy, judge again later
        self.fastest_overrun_s = math.inf
        return False


def _time_built_in(constants: ControllerConstants, pilot: PilotInput, vehicles: VehicleState, dt_s: float) -> float:
    """Seconds one cycle of the built-in controller takes on these inputs, now (best of a few)."""
    state = ControllerState.initial(vehicles.count)
    best = math.inf
    for _ in range(REFERENCE_REPEATS):
        started = time.perf_counter()
        control(constants, state, pilot, vehicles, dt_s)
        best = min(best, time.perf_counter() - started)
    return best


def dry_run(
    function: ControlFunction,
    name: str,
    constants: ControllerConstants,
    state: ControllerState,
    vehicles: VehicleState,
    dt_s: float,
) -> None:
    """Call a user's controller once on the starting state; ``ConfigError`` (one line) if it fails."""
    where = f"flight.controller = {name!r}"
    try:
        with _CallDeadline():
            result = function(constants, state, PilotInput.centred(vehicles.count), vehicles, dt_s)
    except _Hung:
        raise ConfigError(
            f"{where}: its first call, on the starting state, did not return within {HUNG_AFTER_S:g} s"
        ) from None
    except BaseException as error:  # whatever it raises, it cannot fly
        if is_interrupt(error):
            raise
        raise ConfigError(f"{where}: its first call, on the starting state, raised {describe_error(error)}") from None
    problem = answer_problem(result, vehicles.count)
    if problem is None and not np.isfinite(result[1].packed).all():
        problem = f"a non-finite command ({_non_finite(result[1].packed)})"
    elif problem is None and not np.isfinite(result[0].packed).all():
        problem = f"a non-finite state ({_non_finite(result[0].packed)})"
    if problem is not None:
        raise ConfigError(
            f"{where}: must return (ControllerState, ActuatorCommand) with one finite row per vehicle "
            f"({vehicles.count}); it returned {problem}"
        )


def answer_problem(result: Any, count: int) -> str | None:
    """What is wrong with a controller's answer for ``count`` vehicles, or None (a right answer).

    Never raises: an answer whose own methods raise while it is looked at (a tuple or array
    subclass of the user's) is a wrong answer like any other."""
    try:
        return _answer_problem(result, count)
    except Exception as error:
        return f"an answer that raised {describe_error(error)} when looked at"


def _answer_problem(result: Any, count: int) -> str | None:
    if type(result) is not tuple or tuple.__len__(result) != 2:
        return f"a tuple of {tuple.__len__(result)}" if type(result) is tuple else type(result).__name__
    state, command = result
    if not (type(state) is ControllerState and type(command) is ActuatorCommand):
        return f"tuple ({type(state).__name__}, {type(command).__name__})"
    # whatever the user's controller put there, checked below
    arrays: dict[str, Any] = {"state": state.__dict__.get("packed"), "command": command.__dict__.get("packed")}
    for what, rows in arrays.items():
        if type(rows) is not np.ndarray or rows.dtype != np.float64:
            kind = f"an array of {rows.dtype}" if type(rows) is np.ndarray else type(rows).__name__
            return f"a {what} holding {kind}, not an array of float64"
    if arrays["state"].shape != (count, CONTROL_STATE_SIZE) or arrays["command"].shape != (count, COMMAND_SIZE):
        return f"a state of shape {arrays['state'].shape} and a command of shape {arrays['command'].shape}"
    return None


def _non_finite(rows: np.ndarray) -> str:
    """The kinds of non-finite values in ``rows``: "nan", "inf, nan", ..."""
    return ", ".join(sorted({repr(float(v)) for v in rows.ravel() if not math.isfinite(v)}))


def describe_error(error: BaseException) -> str:
    """An exception on one line: its repr (cut short) and where in the user's code it was raised."""
    text = repr(error)
    if len(text) > _DETAIL_CHARS:
        text = text[: _DETAIL_CHARS - 3] + "..."
    frames = traceback.extract_tb(error.__traceback__)
    if len(frames) > 1:  # [0] is our call into the controller
        where = frames[-1]
        text += f" ({os.path.basename(where.filename)}:{where.lineno})"
    return text


def is_interrupt(error: BaseException) -> bool:
    """Whether ``error`` may be the user's Ctrl-C (or SIGTERM) rather than the controller's own doing.

    ``sim.stopping`` turns a stop signal into a ``Stopped`` exception, or (while a flight runs,
    in ``heli-sim fly`` and ``replay``) into a request that never raises: there a plain
    ``KeyboardInterrupt`` out of a controller is the controller's.  Only where Python's default
    SIGINT handler is installed can a ``KeyboardInterrupt`` be a Ctrl-C, and then it is taken as one.
    """
    if isinstance(error, Stopped):
        return True
    return isinstance(error, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler
