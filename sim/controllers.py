"""Which flight controller flies: the built-in flybarless one, or yours (``[flight] controller``).

A controller is a function with the signature of ``heli.control.control``::

    def my_control(constants, state, pilot, vehicles, dt_s) -> tuple[ControllerState, ActuatorCommand]

named as ``"package.module:function"`` (importable from the working directory, or from
``PYTHONPATH``).  It gets the same inputs as the built-in one for all N vehicles at once, and
its command goes to the same servos, physics, log and replay.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from heli.control import ControllerState, control
from heli.errors import ConfigError
from heli.state import ActuatorCommand

__all__ = ["ControlFunction", "load_controller"]

ControlFunction = Callable[..., tuple[ControllerState, ActuatorCommand]]


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
    except ImportError as error:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({error}); is it on PYTHONPATH?") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"{where}: {module_name} has no function {function_name!r}")
    return _checked(function, where)


def _checked(function: ControlFunction, where: str) -> ControlFunction:
    """``function``, with its first answer checked: a wrong shape is named, not a traceback deep in the physics."""
    checked = False

    def call(constants: Any, state: ControllerState, pilot: Any, vehicles: Any, dt_s: float):
        nonlocal checked
        result = function(constants, state, pilot, vehicles, dt_s)
        if not checked:
            ok = (
                isinstance(result, tuple)
                and len(result) == 2
                and isinstance(result[0], ControllerState)
                and isinstance(result[1], ActuatorCommand)
            )
            if not ok or result[1].packed.shape[0] != vehicles.count or not np.isfinite(result[1].packed).all():
                raise ConfigError(
                    f"{where}: must return (ControllerState, ActuatorCommand) with one finite row per vehicle "
                    f"({vehicles.count}); it returned {type(result).__name__}"
                )
            checked = True
        return result

    return call
