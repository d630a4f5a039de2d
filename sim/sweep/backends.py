"""Where a sweep's batches fly: local worker processes (the default) or a Ray cluster.

Both hand each batch to ``run_batch`` as it is and give back (flight number, metrics) pairs as
batches finish (``on_done`` is told after each); the rows do not depend on the backend, the
number of workers or the order batches finish in.

``local``: a pool of forked worker processes (one per core by default), so that nothing is
imported again and nothing from the working directory; they ignore SIGINT (the terminal sends
it to the whole group) and are ended by the sweep when it stops.  ``ray``: the batches are Ray
tasks (``pip install 'heli-sim[cluster]'``), on a running cluster (``--ray-address``) or on a
Ray instance started here for the sweep; every node needs heli-sim installed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sim import stopping
from sim.errors import ConfigError, HeliSimError
from sim.sweep.batch import run_batch
from sim.sweep.plan import Batch

__all__ = ["BACKENDS", "BatchFailed", "check_ray_address", "run_batches"]

BACKENDS = ("local", "ray")
Rows = list[tuple[int, dict[str, Any]]]
_RAY_HINT = "the ray backend needs Ray: pip install 'heli-sim[cluster]'"
_POLL_S = 0.1


class BatchFailed(HeliSimError, RuntimeError):
    """A batch could not be flown: its worker died, or the flight raised (which flights, and why)."""


def run_batches(batches: tuple[Batch, ...], backend: str, workers: int, on_done: Callable[[Batch, Rows], None],
                ray_address: str | None = None) -> None:  # fmt: skip
    """Fly every batch on ``backend`` with ``workers`` processes (Ray: CPUs of a local instance)."""
    if backend == "local":
        _local(batches, workers, on_done)
    elif backend == "ray":
        _ray(batches, workers, on_done, ray_address)
    else:
        raise ConfigError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _flights(batch: Batch) -> str:
    first, last = batch.flights[0], batch.flights[-1]
    return f"flight {first}" if len(batch.flights) == 1 else f"flights {first}-{last}"


def _local(batches: tuple[Batch, ...], workers: int, on_done: Callable[[Batch, Rows], None]) -> None:
    if workers <= 1 or len(batches) == 1:  # no pool to start for one batch or one worker
        for batch in batches:
            on_done(batch, run_batch(batch))
        return
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(min(workers, len(batches)), mp_context=context, initializer=_ignore_interrupts)
    try:
        futures = {pool.submit(run_batch, batch): batch for batch in batches}
        for future in as_completed(futures):
            batch = futures[future]
            try:
                rows = future.result()
            except BrokenProcessPool:  # a worker was killed, or died: the pool cannot go on
                raise BatchFailed(f"{_flights(batch)}: a worker process ended before it was flown (killed, or "
                                  "out of memory?)") from None  # fmt: skip
            on_done(batch, rows)
    finally:  # (done, stopped, or failed: the workers end now, whatever they are flying)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


_CONNECT_TIMEOUT_S = 5.0


def _end_descendants() -> None:
    """SIGKILL every process this one started, and theirs (Linux's /proc): what a Ray instance stopped
    half-way through its start leaves, which would otherwise linger for a minute or more."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry))
    pending, found = [os.getpid()], []
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _signal_behind(error: BaseException) -> int | None:
    """The signal a stop during Ray's start-up came as: ours (``Stopped``), or Ray's handler's."""
    if isinstance(error, stopping.Stopped):
        return error.signum
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(error, SystemExit) and error.code in (signal.SIGINT, signal.SIGTERM):
        return int(error.code)
    return None


def check_ray_address(address: str) -> None:
    """A cluster's address that nothing answers at is one line now, not Ray's endless retries."""
    if address == "auto" or address.startswith(("ray://", "local")):
        return  # Ray finds it, or speaks another protocol
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT (a Ray cluster's head, usually port 6379)")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"--ray-address {address}: nothing answers there ({reason}); expected a running Ray "
                          "cluster's head (ray start --head)") from None  # fmt: skip


def _ray(batches: tuple[Batch, ...], workers: int, on_done: Callable[[Batch, Rows], None],
         address: str | None) -> None:  # fmt: skip
    try:
        import ray
        from ray.exceptions import RayError, RayTaskError
    except ImportError:
        raise ConfigError(_RAY_HINT) from None
    started_here = not ray.is_initialized()
    with tempfile.TemporaryDirectory(prefix="heli-sim-sweep-") as empty:
        if started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
            if address:
                options["address"] = address
            else:
                options["num_cpus"] = workers or os.cpu_count() or 1
            # Ray puts the driver's working directory on its workers' path unless the job has a working
            # directory of its own: an empty one, so that nothing there (a json.py) is imported by them
            options["runtime_env"] = {"working_dir": empty}
            handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
            try:
                ray.init(**options)
            except BaseException as error:  # a stop (or a failure) half-way through the start: what started ends
                if ray.is_initialized():
                    ray.shutdown()
                _end_descendants()  # a half-started instance: its processes, and the agents they started
                signum = _signal_behind(error)  # Ray's own handler turns a signal into SystemExit(signal)
                if signum is not None:
                    raise stopping.stopped(signum) from None
                raise
            finally:
                for number, handler in handlers.items():  # Ray's own would end the process at once, rows unwritten
                    signal.signal(number, handler)
        pending: dict[Any, Batch] = {}
        try:
            remote = ray.remote(max_retries=0)(run_batch)
            pending = {remote.remote(batch): batch for batch in batches}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)  # a stop is seen between waits
                for ref in done:
                    batch = pending.pop(ref)
                    try:
                        rows = ray.get(ref)
                    except RayTaskError as error:  # the flight raised: the error it raised
                        cause = error.cause
                        if isinstance(cause, HeliSimError):
                            raise cause from None
                        raise BatchFailed(f"{_flights(batch)} failed on Ray: {type(cause).__name__}: {cause}") from None
                    except RayError as error:
                        reason = str(error).splitlines()[0]
                        raise BatchFailed(f"{_flights(batch)}: {type(error).__name__}: {reason}") from None
                    on_done(batch, rows)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
