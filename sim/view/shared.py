"""The snapshot in shared memory: a fixed float64 layout and a text area behind a sequence lock.

Writer (the simulator, one thread): ``begin`` makes the sequence counter odd, the fields are
written, ``end`` makes it even.  Reader (the view process): copies the whole buffer and keeps
the copy only if the counter was even and unchanged across the copy; otherwise it tries again
(and, after a few tries, keeps its previous snapshot: the view never blocks the simulator and
the simulator never waits for the view).

Layout (float64 slots, ``BlockLayout`` names the offsets): scalars, vehicle 0's 16 channels, up to
``MAX_VEHICLES`` vehicles x ``VEHICLE_FIELDS``, up to ``MAX_PORTS`` ports x ``PORT_FIELDS``, the
period/lateness/mode history ring, per-mode tick, missed and histogram counts; then a UTF-8
JSON text area (names, events) with its length.

Shared memory brings multiprocessing's resource tracker along, a ``python -c`` child process:
``start_resource_tracker`` starts it in safe-path mode, so it never imports from the working directory.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from heli.control import FLIGHT_MODES
from heli.layout import Layout, column, columns
from sim.view.snapshot import (
    HISTORY,
    IO_MODES,
    LATENESS_BINS_MS,
    MAX_PORTS,
    MAX_VEHICLES,
    PortView,
    Snapshot,
    VehicleView,
)

__all__ = ["LAYOUT", "SnapshotReader", "SnapshotWriter", "start_resource_tracker"]

# pos 3, vel 3, quat 4, flap 2, rpm, collective, throttle, crashed, armed, failsafe, mode, governor, throttle hold,
# 1 spare, wind 3


class VehicleRow(Layout):
    """One vehicle's row in the snapshot (``heli.layout``): written by ``sim.view.link``, read here."""

    POSITION: slice = columns(("north", "east", "down"), "m, NED")
    VELOCITY: slice = columns(("v_north", "v_east", "v_down"), "m/s, NED")
    ATTITUDE: slice = columns(("qw", "qx", "qy", "qz"), "unit quaternion, body -> NED")
    FLAPPING: slice = columns(("a1", "b1"), "rad")
    ROTOR_RPM: int = column("rotor_rpm", "rpm")
    COLLECTIVE_DEG: int = column("collective_deg", "deg")
    THROTTLE: int = column("throttle", "0..1")
    CRASHED: int = column("crashed", "0/1")
    ARMED: int = column("armed", "0/1: the motor runs")
    FAILSAFE: int = column("failsafe", "0/1")
    MODE: int = column("mode", "an index of VEHICLE_MODES")
    GOVERNOR: int = column("governor", "an index of GOVERNOR_STATES")
    THROTTLE_HOLD: int = column("throttle_hold", "0/1: the pilot holds arm and throttle hold on")
    SPARE: int = column("spare", "unused")
    WIND: slice = columns(("wind_north", "wind_east", "wind_down"), "m/s, NED, at the vehicle")


VEHICLE_FIELDS = VehicleRow.SIZE
PORT_FIELDS = 4  # frames/s, bytes/s, errors, io wait ms
TEXT_BYTES = 16384
# the controller's flight modes by their codes, then one more: real firmware in the loop flies it
# (sim.fc), whose modes are its own
VEHICLE_MODES = (*(FLIGHT_MODES[code] for code in range(len(FLIGHT_MODES))), "firmware")
FIRMWARE_MODE = VEHICLE_MODES.index("firmware")
GOVERNOR_STATES = ("off", "spool-up", "active")
CPU_HELPER = ("off", "thread", "process")
_SCALARS = (
    "sim_time_s", "last_tick_monotonic", "tick", "loop_hz", "io_mode", "paused", "cpu_helper", "sticks_fresh",
    "finished", "vehicles", "ports", "history_head", "history_count", "text_length",
)  # fmt: skip


@dataclass(frozen=True)
class BlockLayout:
    """Offsets (in float64 slots) of each area."""

    scalars: int = 1  # slot 0: the sequence counter
    sticks: int = 1 + len(_SCALARS)
    vehicles: int = 1 + len(_SCALARS) + 16
    ports: int = 1 + len(_SCALARS) + 16 + MAX_VEHICLES * VEHICLE_FIELDS
    history: int = 1 + len(_SCALARS) + 16 + MAX_VEHICLES * VEHICLE_FIELDS + MAX_PORTS * PORT_FIELDS
    by_mode: int = 1 + len(_SCALARS) + 16 + MAX_VEHICLES * VEHICLE_FIELDS + MAX_PORTS * PORT_FIELDS + 3 * HISTORY

    @property
    def floats(self) -> int:
        return self.by_mode + len(IO_MODES) * (2 + len(LATENESS_BINS_MS) + 1)

    @property
    def nbytes(self) -> int:
        return self.floats * 8 + TEXT_BYTES


LAYOUT = BlockLayout()
_CREATED_HERE: set[str] = set()  # segments this process's writers made (and own)
_TRACKER_LOCK = threading.Lock()
_S = {name: LAYOUT.scalars + i for i, name in enumerate(_SCALARS)}
_HIST_BINS = len(LATENESS_BINS_MS) + 1
_MODE_STRIDE = 2 + _HIST_BINS


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if it is not running) in safe-path mode.

    The first shared-memory segment starts it, as ``python -c ...``, which puts the working
    directory first on its ``sys.path`` (a ``json.py`` there would run in it) unless the
    interpreter is in safe-path mode: ``-P`` is passed on from this process's flags, otherwise
    ``PYTHONSAFEPATH=1`` is set in the environment while it starts.  Call it before other threads
    start processes (the flight session does, before the ports open): the environment is the process's.
    """
    with _TRACKER_LOCK:
        running = getattr(resource_tracker._resource_tracker, "_fd", None) is not None
        if running or sys.flags.safe_path or os.environ.get("PYTHONSAFEPATH"):
            resource_tracker.ensure_running()
            return
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            resource_tracker.ensure_running()
        finally:
            del os.environ["PYTHONSAFEPATH"]


class SnapshotWriter:
    """Owns the shared memory (created here, unlinked on ``close``) and writes snapshots into it."""

    def __init__(self) -> None:
        start_resource_tracker()
        self.shm = shared_memory.SharedMemory(create=True, size=LAYOUT.nbytes)
        _CREATED_HERE.add(self.shm.name)
        self.floats = np.ndarray((LAYOUT.floats,), dtype=np.float64, buffer=self.shm.buf)
        self.floats[:] = 0.0
        self.text = np.ndarray((TEXT_BYTES,), dtype=np.uint8, buffer=self.shm.buf, offset=LAYOUT.floats * 8)
        self._text_cache = b""

    @property
    def name(self) -> str:
        return self.shm.name

    def begin(self) -> None:
        self.floats[0] += 1.0  # odd: writing

    def end(self) -> None:
        self.floats[0] += 1.0  # even: consistent

    def set(self, **scalars: float) -> None:
        for key, value in scalars.items():
            self.floats[_S[key]] = value

    def set_text(self, items: dict) -> None:
        data = json.dumps(items, separators=(",", ":")).encode()
        if len(data) > TEXT_BYTES:  # never cut JSON in half: drop the events, say so
            items = {**items, "events": ["(event text too long to show)"]}
            data = json.dumps(items, separators=(",", ":")).encode()[:TEXT_BYTES]
        if data != self._text_cache:
            self.text[: len(data)] = np.frombuffer(data, dtype=np.uint8)
            self.floats[_S["text_length"]] = len(data)
            self._text_cache = data

    def close(self) -> None:
        del self.floats, self.text  # views into the buffer must go before it closes
        self.shm.close()
        self.shm.unlink()
        _CREATED_HERE.discard(self.shm.name)


class SnapshotReader:
    """Attaches to a writer's shared memory by name and reads consistent ``Snapshot`` copies."""

    _TRIES = 20

    def __init__(self, name: str):
        self.shm = shared_memory.SharedMemory(name=name)
        _stop_tracking(self.shm)
        self._raw = np.ndarray((LAYOUT.nbytes,), dtype=np.uint8, buffer=self.shm.buf)
        self.last = Snapshot()

    def read(self) -> Snapshot:
        """The newest consistent snapshot (the previous one if the writer kept it busy)."""
        for _ in range(self._TRIES):
            before = float(np.frombuffer(self._raw[:8].tobytes(), dtype=np.float64)[0])
            if int(before) % 2:
                continue
            copy = self._raw.copy()
            after = float(np.frombuffer(self._raw[:8].tobytes(), dtype=np.float64)[0])
            if before == after:
                self.last = decode(copy)
                return self.last
        return self.last

    def close(self) -> None:
        del self._raw
        self.shm.close()


def _stop_tracking(shm: shared_memory.SharedMemory) -> None:
    """Python < 3.13 registers every attached segment with the resource tracker, which would
    unlink it when this (reading) process exits; the writer owns it, so unregister here (unless
    the writer is in this very process: its registration is the one that must stay)."""
    if shm.name in _CREATED_HERE:
        return

    # the tracker knows the segment by its private name (with the leading slash), which typeshed does not declare
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]


def decode(raw: np.ndarray) -> Snapshot:
    """A ``Snapshot`` from a copied buffer."""
    floats = np.frombuffer(raw[: LAYOUT.floats * 8].tobytes(), dtype=np.float64)
    s = {name: floats[index] for name, index in _S.items()}
    length = int(s["text_length"])
    text = json.loads(raw[LAYOUT.floats * 8 : LAYOUT.floats * 8 + length].tobytes() or b"{}")
    vehicles = []
    for row in floats[LAYOUT.vehicles : LAYOUT.vehicles + int(s["vehicles"]) * VEHICLE_FIELDS].reshape(
        -1, VEHICLE_FIELDS
    ):
        r = row.tolist()
        vehicles.append(
            VehicleView(
                position_ned_m=tuple(r[VehicleRow.POSITION]),
                velocity_ned_m_s=tuple(r[VehicleRow.VELOCITY]),
                attitude_quat=tuple(r[VehicleRow.ATTITUDE]),
                flapping_rad=tuple(r[VehicleRow.FLAPPING]),
                rotor_speed_rpm=r[VehicleRow.ROTOR_RPM],
                collective_deg=r[VehicleRow.COLLECTIVE_DEG],
                throttle=r[VehicleRow.THROTTLE],
                crashed=r[VehicleRow.CRASHED] > 0.5,
                armed=r[VehicleRow.ARMED] > 0.5,
                failsafe=r[VehicleRow.FAILSAFE] > 0.5,
                mode=VEHICLE_MODES[int(r[VehicleRow.MODE]) % len(VEHICLE_MODES)],
                governor=GOVERNOR_STATES[int(r[VehicleRow.GOVERNOR]) % 3],
                wind_ned_m_s=tuple(r[VehicleRow.WIND]),
                throttle_hold=r[VehicleRow.THROTTLE_HOLD] > 0.5,
            )
        )
    ports = []
    meta = text.get("ports", [])
    numbers = floats[LAYOUT.ports : LAYOUT.ports + MAX_PORTS * PORT_FIELDS].reshape(MAX_PORTS, PORT_FIELDS)
    for i, (name, role, protocol, direction, state, *fault) in enumerate(meta[: int(s["ports"])]):
        fps, bps, errors, wait = numbers[i].tolist()
        ports.append(PortView(name, role, protocol, direction, fps, bps, int(errors), wait, state, *fault))
    count, head = int(s["history_count"]), int(s["history_head"])
    ring = floats[LAYOUT.history : LAYOUT.history + 3 * HISTORY].reshape(3, HISTORY)
    order = np.roll(np.arange(HISTORY), -head)[-count:] if count else np.zeros(0, dtype=int)
    by_mode = floats[LAYOUT.by_mode :].reshape(len(IO_MODES), _MODE_STRIDE)
    return Snapshot(
        sim_time_s=s["sim_time_s"],
        last_tick_monotonic=s["last_tick_monotonic"],
        tick=int(s["tick"]),
        loop_hz=s["loop_hz"] or 500.0,
        io_mode=IO_MODES[int(s["io_mode"]) % len(IO_MODES)],
        paused=s["paused"] > 0.5,
        cpu_helper=CPU_HELPER[int(s["cpu_helper"]) % 3],
        heli_name=text.get("heli", ""),
        rc_source=text.get("rc_source", ""),
        sticks_us=tuple(floats[LAYOUT.sticks : LAYOUT.sticks + 16].tolist()),
        sticks_fresh=s["sticks_fresh"] > 0.5,
        vehicles=vehicles,
        period_ms=ring[0, order],
        lateness_ms=ring[1, order],
        history_mode=ring[2, order],
        ticks_by_mode={m: int(by_mode[i, 0]) for i, m in enumerate(IO_MODES)},
        missed_by_mode={m: int(by_mode[i, 1]) for i, m in enumerate(IO_MODES)},
        lateness_hist={m: by_mode[i, 2:].copy() for i, m in enumerate(IO_MODES)},
        ports=ports,
        events=text.get("events", []),
        loop_fault=text.get("loop_fault", ""),
        python=text.get("python", ""),
        caption=list(text.get("caption", [])),
        fc=dict(text.get("fc", {})),
        finished=s["finished"] > 0.5,
    )
