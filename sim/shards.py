"""A fleet's physics split across worker processes (or threads), on shared-memory numpy blocks.

The lesson of the seed applied to the simulator's own work: stepping thousands of helicopters is
computation, so threads do not make it faster (numpy lets go of the GIL inside each large
operation, but every operation's Python around it needs the GIL), and processes do.  Each
worker owns a contiguous range of vehicles ("a shard") in two shared-memory blocks (its
states, column-major as the kernel keeps them, and its commands); the owner writes the commands,
tells every worker to step, and waits for each to say it is done (lock-step, a pipe per worker).
A shard of more than ``SCALAR_BATCH_LIMIT`` vehicles steps through the same numpy kernel as the
whole fleet would, element by element, so the fleet's states are bit for bit the single process's.

``ShardedFleet`` owns its workers: ``close`` ends them (stdin closed, then SIGTERM, SIGKILL) and
unlinks the blocks.  A worker that dies is found at the next step (its pipe ends, or it does not
answer within ``timeout_s``): ``WorkerDied`` names it.  Workers run in safe-path mode (``-P``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import shared_memory

import numpy as np

from heli.dynamics import FlightModel, steps
from heli.errors import HeliSimError
from heli.params import Environment
from heli.state import COMMAND_SIZE, STATE_SIZE, ActuatorCommand, VehicleState
from sim.config import HeliConfig, heli_table
from sim.dataclass_io import to_table
from sim.view.shared import start_resource_tracker

__all__ = ["ShardedFleet", "ThreadedFleet", "WorkerDied", "shard_ranges"]

_STEP_TIMEOUT_S = 30.0  # one step of a shard of 100,000 vehicles takes well under a second
_STOP_WAIT_S = 1.0


class WorkerDied(HeliSimError, RuntimeError):
    """A worker process ended or stopped answering: which one, and how."""


def shard_ranges(count: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (start, end) ranges covering ``count`` vehicles, sizes within one."""
    bounds = np.linspace(0, count, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


class _Block:
    """A (rows, columns) float64 array in shared memory this process created (and unlinks)."""

    def __init__(self, rows: int, columns: int):
        self.shm = shared_memory.SharedMemory(create=True, size=max(8, rows * columns * 8))
        self.array = np.ndarray((rows, columns), dtype=np.float64, buffer=self.shm.buf)

    def close(self) -> None:
        del self.array
        self.shm.close()
        self.shm.unlink()


class ShardedFleet:
    """N vehicles of one helicopter stepped by ``workers`` processes, each on its own shard."""

    def __init__(
        self,
        heli: HeliConfig,
        state: VehicleState,
        workers: int,
        environment: Environment | None = None,
        timeout_s: float = _STEP_TIMEOUT_S,
    ):
        start_resource_tracker()  # in safe-path mode, before any block exists
        # the worker builds the same FlightModel from the same tables (one JSON line on its stdin)
        model_line = json.dumps({"heli": heli_table(heli), "environment": to_table(environment or Environment())})
        self.count = state.count
        self.timeout_s = timeout_s
        self.ranges = shard_ranges(self.count, workers)
        self._states: list[_Block] = []
        self._commands: list[_Block] = []
        self._workers: list[subprocess.Popen] = []
        try:
            for start, end in self.ranges:
                states, commands = _Block(STATE_SIZE, end - start), _Block(COMMAND_SIZE, end - start)
                self._states.append(states)
                self._commands.append(commands)
                states.array[:] = state.packed[start:end].T
                command_line = [sys.executable, "-P", "-m", "sim.shard_worker", states.shm.name, commands.shm.name,
                                str(end - start)]  # fmt: skip
                worker = subprocess.Popen(command_line, stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0)
                self._workers.append(worker)
                worker.stdin.write(model_line.encode() + b"\n")
                worker.stdin.flush()
            for index, worker in enumerate(self._workers):  # ready: imports done, model built (off the clock)
                self._await(index, worker, b"ready\n")
        except BaseException:
            self.close()
            raise

    def step(
        self, command: ActuatorCommand, dt_s: float, count: int = 1, state: VehicleState | None = None
    ) -> VehicleState:
        """Every shard ``count`` steps on, in its own process, holding ``command``, from ``state`` (None:
        where the last step left it); the fleet after."""
        for index, (start, end) in enumerate(self.ranges):
            self._commands[index].array[:] = command.packed[start:end].T
            if state is not None:
                self._states[index].array[:] = state.packed[start:end].T
        order = f"{dt_s!r} {count}\n".encode()
        for index, worker in enumerate(self._workers):
            try:
                worker.stdin.write(order)
                worker.stdin.flush()
            except (BrokenPipeError, OSError):
                raise WorkerDied(self._died(index, "its pipe closed")) from None
        for index, worker in enumerate(self._workers):
            self._await(index, worker)
        return VehicleState(np.concatenate([block.array.T for block in self._states]))

    def _await(self, index: int, worker: subprocess.Popen, expected: bytes = b"ok\n") -> None:
        readable, _, _ = select.select([worker.stdout], [], [], self.timeout_s)
        if not readable:
            raise WorkerDied(self._died(index, f"no answer in {self.timeout_s:g} s"))
        answer = os.read(worker.stdout.fileno(), 256)
        if answer != expected:
            raise WorkerDied(self._died(index, f"it answered {answer[:80]!r}"))

    def _died(self, index: int, how: str) -> str:
        start, end = self.ranges[index]
        code = self._workers[index].poll()
        ended = f", exit status {code}" if code is not None else ""
        return f"fleet worker {index} (vehicles {start}-{end - 1}, pid {self._workers[index].pid}): {how}{ended}"

    def close(self) -> None:
        """End every worker (stdin closed, then SIGTERM and SIGKILL) and free the blocks."""
        for worker in self._workers:
            with contextlib.suppress(OSError):  # a worker already gone
                worker.stdin.close()
        for worker in self._workers:
            try:
                worker.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(_STOP_WAIT_S)
            worker.stdout.close()
        self._workers = []
        for block in self._states + self._commands:
            block.close()
        self._states, self._commands = [], []

    def __enter__(self) -> ShardedFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadedFleet:
    """The same sharding with threads in this process: what the GIL leaves of it (for the benchmark)."""

    def __init__(self, model: FlightModel, state: VehicleState, workers: int):
        self.model = model
        self.ranges = shard_ranges(state.count, workers)
        self.shards = [VehicleState(np.asfortranarray(state.packed[a:b])) for a, b in self.ranges]
        self._pool = ThreadPoolExecutor(max_workers=len(self.ranges), thread_name_prefix="fleet")

    def step(self, command: ActuatorCommand, dt_s: float, count: int = 1) -> VehicleState:
        def run(index: int) -> VehicleState:
            a, b = self.ranges[index]
            return steps(self.model, self.shards[index], ActuatorCommand(command.packed[a:b]), dt_s, count)

        self.shards = list(self._pool.map(run, range(len(self.ranges))))
        return VehicleState(np.concatenate([s.packed for s in self.shards]))

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ThreadedFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
