"""The limits the step benchmark's figures are measured against, taken on this machine in the same run.

Two reference points tell what a faster kernel would have to change:

* the numpy floor of the batch path: how many numpy operations one physics step makes (counted
  on a live step), times the cost of one elementwise operation per element at the batch size,
  measured on arrays that stay in the cache.  A batch kernel that makes that many operations
  cannot step more vehicles per second than ``1 / (calls x ns per element)``, whatever else is
  done; going past it takes fewer operations per vehicle or a compiled kernel.
* JSBSim's AH-1S Cobra: one ``run()`` of an established C++ flight-dynamics model, where the
  ``jsbsim`` package (``pip install jsbsim``) is installed; a single step of ours is compared
  with it in the same run.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from heli.dynamics import FlightModel, step_columns
from heli.state import ActuatorCommand, VehicleState

__all__ = ["count_kernel_calls", "elementwise_ns_per_element", "jsbsim_run_us"]

log = logging.getLogger(__name__)
_JSBSIM_WARM_STEPS = 120
_JSBSIM_START_FT = 10_000.0  # high enough that the timed steps stay clear of the ground


class _CountingArray(np.ndarray):
    """An array that counts the numpy operations made on it (ufuncs and array functions)."""

    calls: ClassVar[collections.Counter] = collections.Counter()

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _CountingArray.calls[ufunc.__name__] += 1
        plain = [x.view(np.ndarray) if isinstance(x, _CountingArray) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, _CountingArray) else x for x in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        return result.view(_CountingArray) if isinstance(result, np.ndarray) else result

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func.__name__ not in ("clip",):  # np.clip goes on to a ufunc, which counts it once
            _CountingArray.calls[func.__name__] += 1
        plain_types = tuple(np.ndarray if t is _CountingArray else t for t in types)
        return super().__array_function__(func, plain_types, args, kwargs)


def count_kernel_calls(model: FlightModel, state: VehicleState, command: ActuatorCommand, dt_s: float) -> int:
    """The numpy operations one batch physics step makes on ``state`` (at least 2 vehicles)."""
    columns = np.asfortranarray(state.packed).T.view(_CountingArray)
    command_columns = np.ascontiguousarray(command.packed.T).view(_CountingArray)
    _CountingArray.calls = collections.Counter()
    step_columns(model, columns, command_columns, dt_s, model.wind_ned)
    return sum(_CountingArray.calls.values())


def elementwise_ns_per_element(size: int, repeats: int = 7, calls: int = 200) -> float:
    """Nanoseconds per element of one elementwise operation (the mean of a multiply and an add,
    into a preallocated output) on ``size``-element float64 arrays that stay in the cache."""
    a, b, out = np.linspace(0.5, 1.5, size), np.linspace(1.5, 0.5, size), np.empty(size)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls // 2):
            np.multiply(a, b, out=out)
            np.add(a, b, out=out)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / calls / size * 1e9


def jsbsim_run_us(steps: int, repeats: int) -> float | None:
    """Microseconds per ``FGFDMExec.run()`` of JSBSim's AH-1S in free flight, or None when the
    ``jsbsim`` package is not installed or does not run here (the step figures stand without it)."""
    try:
        return _time_jsbsim(steps, repeats)
    except Exception as error:  # a broken install, a missing aircraft: one line, and the figures go on
        log.warning("bench step: JSBSim's AH-1S not timed: %s: %s", type(error).__name__, error)
        return None


def _time_jsbsim(steps: int, repeats: int) -> float | None:
    try:
        import jsbsim
    except ImportError:
        return None
    with _quiet_stdout():  # JSBSim prints a banner and its loading steps on stdout
        jsbsim.FGJSBBase().debug_lvl = 0
        fdm = jsbsim.FGFDMExec(None)
        fdm.set_debug_level(0)
        if not fdm.load_model("ah1s"):
            return None
        fdm["ic/h-sl-ft"] = _JSBSIM_START_FT
        fdm.run_ic()
    for _ in range(_JSBSIM_WARM_STEPS):
        fdm.run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fdm.run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / steps * 1e6


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """File descriptor 1 to /dev/null for a block (a C++ library prints past ``sys.stdout``)."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
