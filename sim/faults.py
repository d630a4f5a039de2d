"""Fault injection: the ``[[faults]]`` of a flight file, and the view's fault keys, applied on time.

The loop calls ``FaultInjector.on_tick`` once a tick with the simulated flight time
(``FlightLoop.flight_time_s``: the physics' seconds since the flight started, which a busy
machine does not stretch, a pause stops and a reset does not set back).  A fault whose window
has opened is applied, one whose window has closed is cleared, and each change is recorded as a
``fault_on`` / ``fault_off`` event.  A key toggles a preset fault on or off by hand.  Faults act
where the hardware would fail:

- on the wire (``sim.ports.faults.LineFaults``): byte loss and corruption, RC silence, reply
  latency, baud pacing, unplugging (the port is lost, then found again when plugged back);
- on the far end: ``backpressure`` stops the emulated device (SIGSTOP), so it reads nothing
  and the simulator's writes fill the pty and time out (SIGCONT resumes it);
- in the loop: ``loop_delay`` stalls the tick (a slow computation, a GC pause).

What they cause is then counted where it would be on real hardware: decode errors, timeouts,
write timeouts, disconnects, failsafe, missed deadlines.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.config import FaultSpec
from sim.ports.faults import LineFaults

__all__ = ["KEY_PRESETS", "FaultInjector"]

log = logging.getLogger(__name__)

# the view's fault keys: each turns on a fault kind with its default settings, on the first port
# of the first of these roles the flight has
KEY_PRESETS: dict[str, tuple[str, ...]] = {
    "rc_silence": ("rc-in",),
    "byte_loss": ("rc-in",),
    "corrupt": ("rc-in",),
    "unplug": ("servo",),
    "backpressure": ("servo",),
    "latency": ("link", "servo"),
    "pace": ("servo",),
    "loop_delay": ("loop",),
}


@dataclass
class _Active:
    spec: FaultSpec
    start_s: float
    by_key: bool = False
    end_s: float | None = None


@dataclass
class FaultInjector:
    """Owns every port's ``LineFaults`` and applies the flight's faults as time passes."""

    specs: tuple[FaultSpec, ...]
    line_faults: dict[str, LineFaults]  # port name -> its line's faults
    endpoints: dict[str, Any]  # port name -> VirtualEndpoint (for backpressure)
    roles: dict[str, str]  # port name -> role
    seed: int = 0
    active: list[_Active] = field(default_factory=list)
    history: list[_Active] = field(default_factory=list)
    loop_delay_s: float = 0.0
    _next_delay_t: float = 0.0
    _pending: list[FaultSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        for index, name in enumerate(sorted(self.line_faults)):
            self.line_faults[name].rng = np.random.default_rng([self.seed, index])  # per port, repeatable
        self._pending = sorted(self.specs, key=lambda s: s.start_s)

    # --- the loop's calls
    def on_tick(self, t_s: float, record) -> float:
        """Open and close windows at ``t_s`` (simulated seconds of flight); returns the stall due now (s)."""
        # in the order they were due: a tick late enough to pass a window's end and the next one's
        # start (a loaded machine) still closes the first before it opens the second
        while True:
            ends = [(e.start_s + e.spec.duration_s, e) for e in self.active if not e.by_key and e.spec.duration_s]
            end_s, ending = min(ends, key=lambda pair: pair[0], default=(math.inf, None))
            start_s = self._pending[0].start_s if self._pending else math.inf
            if min(end_s, start_s) > t_s:
                break
            if ending is not None and end_s <= start_s:
                self._turn_off(ending, t_s, record)
            else:
                self._turn_on(self._pending.pop(0), t_s, record)
        if not self.loop_delay_s:
            return 0.0
        if t_s >= self._next_delay_t:
            every = next((e.spec.every_s for e in self.active if e.spec.kind == "loop_delay"), 0.0)
            self._next_delay_t = t_s + every
            return self.loop_delay_s
        return 0.0

    def toggle(self, kind: str, t_s: float, record) -> str:
        """A fault key at ``t_s`` (simulated seconds of flight): the preset ``kind`` on (or off, if a key
        turned it on); returns what happened."""
        for entry in self.active:
            if entry.by_key and entry.spec.kind == kind:
                self._turn_off(entry, t_s, record)
                return f"{entry.spec.describe()}: off"
        roles = KEY_PRESETS[kind]
        ports = sorted(self.roles.items())
        candidates = [name for role in roles for name, port_role in ports if port_role == role]
        target = "" if roles == ("loop",) else next(iter(candidates), None)
        if target is None:
            return f"no {' or '.join(roles)} port in this flight for the {kind} fault"
        if kind == "backpressure" and target not in self.endpoints:
            return f"{target} is not a virtual port: its far end cannot be stopped"
        spec = FaultSpec(kind=kind, port=target, start_s=t_s)
        self._turn_on(spec, t_s, record, by_key=True)
        return f"{spec.describe()}: on"

    def active_on(self, target: str) -> list[str]:
        """The faults active on ``target`` (a port's name, or "loop") now, in a few words each."""
        return [entry.spec.short for entry in self.active if entry.spec.target == target]

    def close(self) -> None:
        """Resume any stopped far end (so it can be shut down in order) and clear the lines."""
        for entry in list(self.active):
            if entry.spec.kind == "backpressure":
                self._far_end(entry.spec.target, stopped=False)
        self.active.clear()
        self._apply()

    def summary(self) -> list[dict]:
        return [
            {"kind": e.spec.kind, "target": e.spec.target, "what": e.spec.describe(), "start_s": round(e.start_s, 3),
             "end_s": None if e.end_s is None else round(e.end_s, 3), "by_key": e.by_key}
            for e in self.history
        ]  # fmt: skip

    # --- applying
    def _turn_on(self, spec: FaultSpec, t_s: float, record, by_key: bool = False) -> None:
        entry = _Active(spec, t_s, by_key)
        self.active.append(entry)
        self.history.append(entry)
        if spec.kind == "backpressure":
            self._far_end(spec.target, stopped=True)
        self._apply()
        record("fault_on", spec.describe())

    def _turn_off(self, entry: _Active, t_s: float, record) -> None:
        self.active.remove(entry)
        entry.end_s = t_s
        if entry.spec.kind == "backpressure" and not any(
            e.spec.kind == "backpressure" and e.spec.target == entry.spec.target for e in self.active
        ):
            self._far_end(entry.spec.target, stopped=False)
        self._apply()
        record("fault_off", entry.spec.describe())

    def _apply(self) -> None:
        """Every line's faults from the active set (faults on one port add up; rates take the highest)."""
        # per line, LineFaults' values by name: rates, seconds, a baud rate, and True for a flag set
        fresh: dict[str, dict[str, float]] = {name: {} for name in self.line_faults}
        delay = 0.0
        for entry in self.active:
            spec = entry.spec
            if spec.kind == "loop_delay":
                delay = max(delay, spec.delay_ms / 1e3)
                continue
            line = fresh.get(spec.target)
            if line is None:
                continue
            if spec.kind in ("byte_loss", "corrupt", "packet_loss"):  # packet_loss: the fc link's datagrams
                prefix = "corrupt" if spec.kind == "corrupt" else "loss"
                for direction in ("in", "out") if spec.direction == "both" else (spec.direction,):
                    key = f"{prefix}_{direction}"
                    line[key] = max(line.get(key, 0.0), spec.rate)
            elif spec.kind == "rc_silence":
                line["silent_in"] = True
            elif spec.kind == "latency":
                line["latency_s"] = line.get("latency_s", 0.0) + spec.latency_ms / 1e3
            elif spec.kind == "pace":
                line["pace_baud"] = min(line.get("pace_baud", spec.baud), spec.baud)
            elif spec.kind == "unplug":
                line["unplugged"] = True
        for name, faults in self.line_faults.items():
            settings = fresh[name]
            faults.loss_in, faults.loss_out = settings.get("loss_in", 0.0), settings.get("loss_out", 0.0)
            faults.corrupt_in, faults.corrupt_out = settings.get("corrupt_in", 0.0), settings.get("corrupt_out", 0.0)
            faults.silent_in, faults.latency_s = bool(settings.get("silent_in", False)), settings.get("latency_s", 0.0)
            faults.pace_baud = int(settings.get("pace_baud", 0))
            faults.unplugged = bool(settings.get("unplugged", False))
        if delay and not self.loop_delay_s:
            self._next_delay_t = 0.0  # the first stall comes at once
        self.loop_delay_s = delay

    def _far_end(self, name: str, stopped: bool) -> None:
        endpoint = self.endpoints.get(name)
        if endpoint is not None:
            endpoint.pause_far_end() if stopped else endpoint.resume_far_end()
