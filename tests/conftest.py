"""Shared fixtures: the shipped helicopters, a guard that fails any test leaking a thread, an
open file descriptor (port, pipe, file) or a child process, and ``exchange`` (a port's exchange
run inline or on an event loop, so the role tests hold for every I/O mode)."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from multiprocessing import resource_tracker

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from heli.dynamics import FlightModel
from heli.trim import TrimResult, solve_hover_trim
from sim.config import HeliConfig, load_heli
from sim.ports.aio import EventLoopWorker

# the tracker that cleans up shared memory (the view's snapshot) is a process with a pipe that lives
# as long as pytest: start it before any test, so no test is blamed for it
resource_tracker.ensure_running()

HELIS = ("xcell60", "trex450", "trex700")
_THREAD_JOIN_S = 1.0


def _open_fds() -> set[str]:
    """This process's open file descriptors, as "fd N -> target" (ttys, pipes, sockets, files)."""
    found = set()
    fd_dir = "/proc/self/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # the descriptor listing the directory itself, gone already
        found.add(f"fd {fd} -> {target}")
    return found


def _children() -> set[int]:
    """Live (not zombie) child processes of this process."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail the test if it leaves a thread running, a file descriptor open or a child alive."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    children_before = _children()
    yield
    leftover = [t for t in threading.enumerate() if t not in threads_before]
    for thread in leftover:
        thread.join(timeout=_THREAD_JOIN_S)
    alive = [t.name for t in leftover if t.is_alive()]
    leaked = sorted(_open_fds() - fds_before)
    children = sorted(_children() - children_before)
    assert not alive, f"test leaked running threads: {alive}"
    assert not leaked, f"test leaked open file descriptors (ports, pipes, files): {leaked}"
    assert not children, f"test leaked child processes: {children}"


@dataclass(frozen=True)
class Heli:
    config: HeliConfig
    model: FlightModel
    trim: TrimResult

    @property
    def name(self) -> str:
        return self.config.params.name


_CACHE: dict[str, Heli] = {}


def heli(name: str) -> Heli:
    """A shipped helicopter with its model and hover trim (built once per session)."""
    if name not in _CACHE:
        config = load_heli(name)
        model = FlightModel.build(config.params)
        _CACHE[name] = Heli(config, model, solve_hover_trim(model))
    return _CACHE[name]


@pytest.fixture(params=HELIS)
def each_heli(request) -> Heli:
    return heli(request.param)


class EventLoopExchange:
    """Runs a port's exchanges on an event loop in the test's thread, through the asyncio mode's
    ``AsyncLine`` (pyserial-asyncio-fast's transport on the real pty or socket)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.backend = EventLoopWorker([], {}, {})  # lends its attach() and in_background(); no thread started

    def __call__(self, port, letter):
        return self.loop.run_until_complete(self._exchange(port, letter))

    async def _exchange(self, port, letter):
        port.backend = self.backend
        if port.line is None and port.transport is not None:
            self.backend.attach(port)
        return await port.exchange_async(letter)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


@pytest.fixture(params=["inline", "asyncio"])
def exchange(request):
    """``exchange(port, letter)``: one exchange, inline (threaded and blocking modes) or on an event loop."""
    if request.param == "inline":
        yield lambda port, letter: port.exchange(letter)
        return
    driver = EventLoopExchange()
    try:
        yield driver
    finally:
        driver.close()


def pytest_collection_modifyitems(config, items):
    """Mark the tests of the compute-only modules ``compute`` (``tests/suite.py`` runs them beside
    the rest, at the lowest priority)."""
    from tests.suite import COMPUTE_MODULES

    for item in items:
        if item.path.name in COMPUTE_MODULES:
            item.add_marker(pytest.mark.compute)
