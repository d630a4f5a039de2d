"""One worker of a sharded fleet (``sim.shards``): steps (and controls) its vehicles in shared memory.

    python -P -m sim.shard_worker COUNT STATES COMMANDS [CONTROLLERS PILOTS]

The blocks are named shared-memory segments of ``COUNT`` columns: vehicle states, actuator
commands and, when it runs the controller too, controller states and pilot inputs.  The first
line on stdin is the helicopter, environment and (optional) controller as JSON tables (the
owner's, so the model is the same to the bit), answered ``ready``.  Each line after it is an
order, answered with one line:

- ``s DT STEPS``: the states ``STEPS`` steps of ``DT`` seconds on, holding the commands (``ok``);
- ``c DT``: one controller cycle of ``DT`` seconds: new controller states and commands (``c``);
- ``p TABLE``: the controller's gains from now on, a JSON table of ``ControllerParams`` (``p``).

End of input (the owner closed the pipe, or died) ends it.  An error is answered with one line
saying what, and ends it.
"""

from __future__ import annotations

import json
import sys
from multiprocessing import shared_memory

import numpy as np

from heli.control import (
    CONTROL_STATE_SIZE,
    PILOT_INPUT_SIZE,
    ControllerConstants,
    ControllerParams,
    ControllerState,
    PilotInput,
    control,
)
from heli.dynamics import FlightModel, steps
from heli.params import Environment
from heli.state import COMMAND_SIZE, STATE_SIZE, ActuatorCommand, VehicleState
from sim.config import heli_from_table
from sim.dataclass_io import build
from sim.view.shared import _stop_tracking

__all__ = ["main"]

_OWNER = "the fleet's owner"


def _kernels(kernel: str, model: FlightModel, constants: ControllerConstants | None):
    """(steps, control) of the flight's kernels; compiled ones loaded before the worker says it is ready."""
    if kernel != "compiled":
        return steps, control
    from sim.compiled import compiled_kernels  # (numba: only for a flight that asks for it)

    kernels = compiled_kernels()
    kernels.warm_up(model, constants)  # every loop: one vehicle after the other, and the vectorised one
    return kernels.steps, kernels.control


def main(argv: list[str]) -> int:
    count, names = int(argv[0]), argv[1:]
    tables = json.loads(sys.stdin.buffer.readline())
    heli = heli_from_table(tables["heli"], _OWNER)
    model = FlightModel.build(heli.params, build(Environment, tables["environment"], source=_OWNER))
    controlling = tables.get("controller")
    hover_collective_rad = 0.0 if controlling is None else float(controlling["hover_collective_rad"])
    constants = None
    if controlling is not None:
        params = build(ControllerParams, controlling["params"], source=_OWNER)
        constants = ControllerConstants.build(params, model, hover_collective_rad)
    segments = [shared_memory.SharedMemory(name=name) for name in names]
    for shm in segments:
        _stop_tracking(shm)  # the owner unlinks them
    sizes = (STATE_SIZE, COMMAND_SIZE, CONTROL_STATE_SIZE, PILOT_INPUT_SIZE)  # the last two when controlling
    blocks = [
        np.ndarray((size, count), dtype=np.float64, buffer=shm.buf) for size, shm in zip(sizes, segments, strict=False)
    ]
    states, commands = blocks[0], blocks[1]
    step_kernel, control_kernel = _kernels(tables.get("kernel", "numpy"), model, constants)
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    try:
        for line in sys.stdin.buffer:
            kind, _, rest = line.partition(b" ")
            try:
                # views of the blocks, no copies: the kernels read the column-major arrays as they lie
                if kind == b"s":
                    dt_text, steps_text = rest.split()
                    stepped = step_kernel(model, VehicleState(states.T), ActuatorCommand(commands.T), float(dt_text),
                                    int(steps_text))  # fmt: skip
                    states[:] = stepped.packed.T
                    answer = b"ok\n"
                elif kind == b"c" and constants is not None:
                    controllers, pilots = blocks[2], blocks[3]
                    new_state, command = control_kernel(constants, ControllerState(controllers.T), PilotInput(pilots.T),
                                                 VehicleState(states.T), float(rest))  # fmt: skip
                    controllers[:] = new_state.packed.T
                    commands[:] = command.packed.T
                    answer = b"c\n"
                elif kind == b"p" and constants is not None:
                    params = build(ControllerParams, json.loads(rest), source=_OWNER)
                    constants = ControllerConstants.build(params, model, hover_collective_rad)
                    answer = b"p\n"
                else:
                    raise ValueError(f"unknown order {line[:40]!r}")
            except Exception as error:  # said to the owner, which raises it as WorkerDied
                out.write(f"error: {type(error).__name__}: {error}".encode()[:200] + b"\n")
                out.flush()
                return 1
            out.write(answer)
            out.flush()
    finally:
        del states, commands, blocks
        for shm in segments:
            shm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
