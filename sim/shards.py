"""A fleet's physics and control split across worker processes (or threads), on shared-memory numpy blocks.

The lesson of the seed applied to the simulator's own work: stepping thousands of helicopters is
computation, so threads do not make it faster (numpy lets go of the GIL inside each large
operation, but every operation's Python around it needs the GIL), and processes do.  Each
worker owns a contiguous range of vehicles ("a shard") in shared-memory blocks, column-major as
the kernels keep them: its states and commands and, when it runs the built-in controller too
(``FleetController``), its controller states and pilot inputs.  The owner writes what changed on
its side (only what it replaced since the last exchange: identity tells), tells every worker what
to do with a line on its pipe, and waits for each to say it is done (lock-step).  A tick is two
orders: ``start_control`` sends the controller cycle without waiting (the workers compute it while
the loop goes on, until something needs the command), and ``step`` collects it and steps the physics.  A shard of more
than ``SCALAR_BATCH_LIMIT`` vehicles runs through the same numpy kernels as the whole fleet would,
element by element, so the fleet's states are bit for bit the single process's.

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import IO

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
from heli.errors import HeliSimError
from heli.params import Environment
from heli.state import COMMAND_SIZE, STATE_SIZE, ActuatorCommand, VehicleState
from sim.config import HeliConfig, heli_table
from sim.dataclass_io import to_table
from sim.view.shared import start_resource_tracker

__all__ = ["FleetController", "ShardedFleet", "ThreadedFleet", "WorkerDied", "shard_ranges"]

_STEP_TIMEOUT_S = 30.0  # one step of a shard of 100,000 vehicles takes well under a second
_STOP_WAIT_S = 1.0


class WorkerDied(HeliSimError, RuntimeError):
    """A worker process ended or stopped answering: which one, and how."""


def shard_ranges(count: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (start, end) ranges covering ``count`` vehicles, sizes within one."""
    bounds = np.linspace(0, count, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


@dataclass(frozen=True)
class FleetController:
    """The built-in controller, run by the workers too: its gains, the hover collective its height
    holding starts from (the owner's trim), and the controller states the fleet starts with."""

    params: ControllerParams
    hover_collective_rad: float
    state: ControllerState


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
    """N vehicles of one helicopter stepped (and, with a ``FleetController``, controlled) by
    ``workers`` processes, each on its own shard."""

    def __init__(
        self,
        heli: HeliConfig,
        state: VehicleState,
        workers: int,
        environment: Environment | None = None,
        timeout_s: float = _STEP_TIMEOUT_S,
        controller: FleetController | None = None,
        kernel: str = "numpy",
    ):
        start_resource_tracker()  # in safe-path mode, before any block exists
        # the worker builds the same FlightModel (and controller) from the same tables: one JSON line on its stdin
        tables: dict = {
            "heli": heli_table(heli), "environment": to_table(environment or Environment()), "kernel": kernel,
        }  # fmt: skip
        if controller is not None:
            tables["controller"] = {"params": to_table(controller.params),
                                    "hover_collective_rad": controller.hover_collective_rad}  # fmt: skip
        model_line = json.dumps(tables)
        self.count = state.count
        self.timeout_s = timeout_s
        self.controls = controller is not None
        self.ranges = shard_ranges(self.count, workers)
        self._blocks: dict[str, list[_Block]] = {"states": [], "commands": [], "controllers": [], "pilots": []}
        self._workers: list[subprocess.Popen[bytes]] = []
        self._pipes: list[tuple[IO[bytes], IO[bytes]]] = []  # per worker: its stdin and stdout
        self._answers: list[bytes] = []  # per worker: what it said that is not read yet (a partial line)
        # the last arrays exchanged, by identity: what the workers' blocks hold (the owner writes only others)
        self._last_state: VehicleState | None = state
        self._last_command: ActuatorCommand | None = None
        self._last_controller: ControllerState | None = None if controller is None else controller.state
        self._control_sent = False
        sizes = {"states": STATE_SIZE, "commands": COMMAND_SIZE}
        if controller is not None:
            sizes |= {"controllers": CONTROL_STATE_SIZE, "pilots": PILOT_INPUT_SIZE}
        try:
            for start, end in self.ranges:
                names = []
                for kind, size in sizes.items():
                    block = _Block(size, end - start)
                    self._blocks[kind].append(block)
                    names.append(block.shm.name)
                self._blocks["states"][-1].array[:] = state.packed[start:end].T
                if controller is not None:
                    self._blocks["controllers"][-1].array[:] = controller.state.packed[start:end].T
                command_line = [sys.executable, "-P", "-m", "sim.shard_worker", str(end - start), *names]
                worker = subprocess.Popen(command_line, stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0)
                assert worker.stdin is not None and worker.stdout is not None  # both piped
                self._workers.append(worker)
                self._pipes.append((worker.stdin, worker.stdout))
                self._answers.append(b"")
                worker.stdin.write(model_line.encode() + b"\n")
                worker.stdin.flush()
            for index in range(len(self._workers)):  # ready: imports done, model built (off the clock)
                self._await(index, b"ready")
        except BaseException:
            self.close()
            raise

    def step(
        self, command: ActuatorCommand, dt_s: float, count: int = 1, state: VehicleState | None = None
    ) -> VehicleState:
        """Every shard ``count`` steps on, in its own process, holding ``command``, from ``state`` (None:
        where the last step left it); the fleet after.  A controller cycle sent and not yet collected
        is collected first (``finish_control``)."""
        if self._control_sent:
            self.finish_control()
        self._write_command(command)
        if state is not None:
            self._write_state(state)
        self._order(f"s {dt_s!r} {count}")
        for index in range(len(self._workers)):
            self._await(index, b"ok")
        stepped = VehicleState(self._gather("states"))
        self._last_state = stepped
        return stepped

    def start_control(self, pilot: PilotInput, dt_s: float, state: VehicleState, controller: ControllerState) -> None:
        """Send one controller cycle of ``dt_s`` seconds on ``pilot``, for vehicles in ``state`` with
        controllers in ``controller``, and return at once: the workers compute it while the owner goes
        on.  ``finish_control`` (or the next ``step``) collects it."""
        if not self.controls:
            raise RuntimeError("this fleet's workers were started without a controller")
        if self._control_sent:
            self.finish_control()
        self._write_state(state)
        if controller is not self._last_controller:
            self._write("controllers", controller.packed)
            self._last_controller = controller
        self._write("pilots", pilot.packed)
        self._order(f"c {dt_s!r}")
        self._control_sent = True

    def finish_control(self) -> tuple[ControllerState, ActuatorCommand]:
        """The controller states and actuator commands of the cycle ``start_control`` sent."""
        if not self._control_sent:
            raise RuntimeError("finish_control without start_control")
        self._control_sent = False
        for index in range(len(self._workers)):
            self._await(index, b"c")
        controller = ControllerState(self._gather("controllers"))
        command = ActuatorCommand(self._gather("commands"))
        self._last_controller, self._last_command = controller, command
        return controller, command

    def set_params(self, params: ControllerParams) -> None:
        """Fly the workers' controllers with these gains from the next cycle on (a ground station's)."""
        if self._control_sent:
            self.finish_control()
        self._order("p " + json.dumps(to_table(params)))
        for index in range(len(self._workers)):
            self._await(index, b"p")

    def _gather(self, kind: str) -> np.ndarray:
        """The fleet's rows of one kind, copied out of the blocks: (N, columns), column-major as the
        blocks (and the kernels) keep them, so the copy is a plain one."""
        return np.concatenate([block.array for block in self._blocks[kind]], axis=1).T

    def _write_state(self, state: VehicleState) -> None:
        if state is not self._last_state:
            self._write("states", state.packed)
            self._last_state = state

    def _write_command(self, command: ActuatorCommand) -> None:
        if command is not self._last_command:
            self._write("commands", command.packed)
            self._last_command = command

    def _write(self, kind: str, packed: np.ndarray) -> None:
        for block, (start, end) in zip(self._blocks[kind], self.ranges, strict=True):
            block.array[:] = packed[start:end].T

    def _order(self, line: str) -> None:
        order = line.encode() + b"\n"
        for index, (stdin, _) in enumerate(self._pipes):
            try:
                stdin.write(order)
                stdin.flush()
            except (BrokenPipeError, OSError):
                raise WorkerDied(self._died(index, "its pipe closed")) from None

    def _await(self, index: int, expected: bytes) -> None:
        """Read worker ``index``'s next answer line; ``WorkerDied`` unless it is ``expected`` in time."""
        pending = self._answers[index]
        _, stdout = self._pipes[index]
        while b"\n" not in pending:
            readable, _, _ = select.select([stdout], [], [], self.timeout_s)
            if not readable:
                raise WorkerDied(self._died(index, f"no answer in {self.timeout_s:g} s"))
            more = os.read(stdout.fileno(), 4096)
            if not more:
                raise WorkerDied(self._died(index, "its pipe closed"))
            pending += more
        answer, _, self._answers[index] = pending.partition(b"\n")
        if answer != expected:
            raise WorkerDied(self._died(index, f"it answered {answer[:120]!r}"))

    def _died(self, index: int, how: str) -> str:
        start, end = self.ranges[index]
        with contextlib.suppress(subprocess.TimeoutExpired):  # a worker that just ended: its status
            self._workers[index].wait(0.2)
        code = self._workers[index].poll()
        ended = f", exit status {code}" if code is not None else ""
        return f"fleet worker {index} (vehicles {start}-{end - 1}, pid {self._workers[index].pid}): {how}{ended}"

    def close(self) -> None:
        """End every worker (stdin closed, then SIGTERM and SIGKILL) and free the blocks."""
        for stdin, _ in self._pipes:
            with contextlib.suppress(OSError):  # a worker already gone
                stdin.close()
        for worker, (_, stdout) in zip(self._workers, self._pipes, strict=True):
            try:
                worker.wait(_STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(_STOP_WAIT_S)
            stdout.close()
        self._workers = []
        self._pipes = []
        for blocks in self._blocks.values():
            for block in blocks:
                block.close()
            blocks.clear()

    def __enter__(self) -> ShardedFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadedFleet:
    """The same sharding with threads in this process: what the GIL leaves of it (the benchmark's
    and the tour's comparison).  The same interface as ``ShardedFleet``, so a ``Flight`` can fly on
    it (``Flight.start_workers(..., threads=True)``): the same kernels on the same slices, so the
    same bits."""

    def __init__(self, model: FlightModel, state: VehicleState, workers: int,
                 controller: FleetController | None = None):  # fmt: skip
        self.model = model
        self.count = state.count
        self.ranges = shard_ranges(state.count, workers)
        self.shards = [VehicleState(np.asfortranarray(state.packed[a:b])) for a, b in self.ranges]
        self.controls = controller is not None
        self._hover_collective_rad = 0.0 if controller is None else controller.hover_collective_rad
        self._constants = None if controller is None else self._build(controller.params)
        # the cycle's futures, sent and not collected
        self._control: list[Future[tuple[ControllerState, ActuatorCommand]]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=len(self.ranges), thread_name_prefix="fleet")

    def _build(self, params: ControllerParams) -> ControllerConstants:
        return ControllerConstants.build(params, self.model, self._hover_collective_rad)

    def step(
        self, command: ActuatorCommand, dt_s: float, count: int = 1, state: VehicleState | None = None
    ) -> VehicleState:
        if self._control is not None:
            self.finish_control()
        if state is not None:
            self.shards = [VehicleState(np.asfortranarray(state.packed[a:b])) for a, b in self.ranges]

        def run(index: int) -> VehicleState:
            a, b = self.ranges[index]
            return steps(self.model, self.shards[index], ActuatorCommand(command.packed[a:b]), dt_s, count)

        self.shards = list(self._pool.map(run, range(len(self.ranges))))
        return VehicleState(np.concatenate([s.packed for s in self.shards]))

    def start_control(self, pilot: PilotInput, dt_s: float, state: VehicleState, controller: ControllerState) -> None:
        if self._constants is None:
            raise RuntimeError("this fleet was made without a controller")
        if self._control is not None:
            self.finish_control()
        self._control = [
            self._pool.submit(control, self._constants, ControllerState(controller.packed[a:b]),
                              PilotInput(pilot.packed[a:b]), VehicleState(state.packed[a:b]), dt_s)
            for a, b in self.ranges
        ]  # fmt: skip

    def finish_control(self) -> tuple[ControllerState, ActuatorCommand]:
        futures, self._control = self._control, None
        if futures is None:
            raise RuntimeError("finish_control without start_control")
        results = [future.result() for future in futures]
        return (ControllerState(np.concatenate([r[0].packed for r in results])),
                ActuatorCommand(np.concatenate([r[1].packed for r in results])))  # fmt: skip

    def set_params(self, params: ControllerParams) -> None:
        if self._control is not None:
            self.finish_control()
        self._constants = self._build(params)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ThreadedFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
