"""One worker of a sharded fleet (``sim.shards``): steps its vehicles in shared memory on request.

    python -P -m sim.shard_worker STATE_BLOCK COMMAND_BLOCK COUNT

The first line on stdin is the helicopter and environment as JSON tables (the owner's, so the
model is the same to the bit), answered ``ready``; each line after it, ``DT STEPS``, steps the shard's states
``STEPS`` times by ``DT`` seconds holding its commands, writes them back, and answers ``ok``.
End of input (the owner closed the pipe, or died) ends it.  An error is answered with one line saying what, and ends it.
"""

from __future__ import annotations

import json
import sys
from multiprocessing import shared_memory

import numpy as np

from heli.dynamics import FlightModel, steps
from heli.params import Environment
from heli.state import COMMAND_SIZE, STATE_SIZE, ActuatorCommand, VehicleState
from sim.config import heli_from_table
from sim.dataclass_io import build
from sim.view.shared import _stop_tracking

__all__ = ["main"]


def main(argv: list[str]) -> int:
    state_name, command_name, count = argv[0], argv[1], int(argv[2])
    tables = json.loads(sys.stdin.buffer.readline())
    heli = heli_from_table(tables["heli"], "the fleet's owner")
    model = FlightModel.build(heli.params, build(Environment, tables["environment"], source="the fleet's owner"))
    state_shm = shared_memory.SharedMemory(name=state_name)
    command_shm = shared_memory.SharedMemory(name=command_name)
    for shm in (state_shm, command_shm):
        _stop_tracking(shm)  # the owner unlinks them
    states = np.ndarray((STATE_SIZE, count), dtype=np.float64, buffer=state_shm.buf)
    commands = np.ndarray((COMMAND_SIZE, count), dtype=np.float64, buffer=command_shm.buf)
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    try:
        for line in sys.stdin.buffer:
            try:
                dt_text, steps_text = line.split()
                # views of the blocks, no copies: the kernel reads the column-major states as they lie
                stepped = steps(model, VehicleState(states.T), ActuatorCommand(commands.T), float(dt_text),
                                int(steps_text))  # fmt: skip
                states[:] = stepped.packed.T
            except Exception as error:  # said to the owner, which raises it as WorkerDied
                out.write(f"error: {type(error).__name__}: {error}\n".encode()[:200])
                out.flush()
                return 1
            out.write(b"ok\n")
            out.flush()
    finally:
        del states, commands
        state_shm.close()
        command_shm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
