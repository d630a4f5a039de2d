"""A sweep file read into flights and batches: what each flight varies, and which fly together.

    [sweep]                      # how the flights are drawn and grouped
    name = "roll gain in turbulence"
    flight = "base.toml"         # optional base flight file (relative to the sweep file)
    samples = 0                  # random draws per grid point ([random]); 0: the grid alone
    seed = 1                     # of the draws
    batch_size = 50              # most flights in one batch (a fleet), batches of even sizes

    [flight]                     # over the base file: any [flight] key (heli, duration_s, pilot ...)
    [environment]                # ... and any [environment] key

    [grid]                       # every combination of these values
    "controller.roll_p_s" = [0.008, 0.012, 0.016]
    "environment.turbulence" = ["light", "moderate"]

    [random]                     # drawn per flight: uniform, normal, integers (both ends in), choice
    "environment.wind_north_m_s" = { uniform = [-3.0, 3.0] }

A parameter is ``flight.KEY``, ``environment.KEY`` or ``controller.KEY`` (the helicopter's
controller gains); ``heli`` is short for ``flight.heli``.  Each flight is one helicopter, headless,
without ports, and must end (``duration_s`` > 0).  Flights that differ only in ``controller.*``
values fly as one batch, unless their air moves (turbulence, gusts): each such flight flies alone,
in its own seeded air, as ``heli-sim fly`` would fly it, so that flights that differ in gains meet
the same gusts.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from heli.control import ControllerParams
from heli.params import Environment, quantity
from sim.config import FlightConfig, FlightSettings, heli_table, load_flight, load_heli, load_toml, pilot_kind
from sim.dataclass_io import build, to_table
from sim.errors import ConfigError

__all__ = ["Batch", "SweepPlan", "SweepSettings", "read_sweep"]

MAX_FLIGHTS = 100_000
_LARGEST_DRAW = 1e15  # a distribution's bounds: beyond, no configuration value means anything (and int64 ends)
DISTRIBUTIONS = ("uniform", "normal", "integers", "choice")
_SECTIONS = {"flight": FlightSettings, "environment": Environment, "controller": ControllerParams}
# [flight] keys a sweep decides itself: one helicopter per flight, no ports, no real time
_FIXED = {"fleet": "each flight is one helicopter (flights fly together in batches on their own)",
          "workers": "batches run in worker processes already (heli-sim sweep --workers)",
          "io": "a sweep's flights have no ports"}  # fmt: skip


@dataclass(frozen=True)
class SweepSettings:
    """The ``[sweep]`` table."""

    name: str = quantity("-", default="", doc="what the sweep is for (the table's title)")
    flight: str = quantity("-", default="", doc="base flight file, relative to the sweep file (empty: the defaults)")
    samples: int = quantity(
        "draws", ge=0, le=MAX_FLIGHTS, default=0, doc="random draws ([random]) per grid point; 0: the grid alone"
    )
    seed: int = quantity("-", ge=0, le=2**63 - 1, default=1, doc="seed of the random draws")
    batch_size: int = quantity(
        "flights", ge=1, le=100_000, default=50, doc="most flights flown together as one batch (a fleet)",
        why="a batch is a fleet: its cost per vehicle falls to a few thousand vehicles; smaller batches keep "
        "every worker busy; the rows depend on it in their last digits (the kernels' paths), on nothing else",
    )  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """Flights flown together: one fleet, each vehicle one flight with its own gains.  Plain data
    (tables), so it travels to a worker process or a cluster node as it is."""

    flights: tuple[int, ...]  # the flights' numbers in the sweep
    heli: dict[str, Any]  # the helicopter (heli_table)
    config: dict[str, Any]  # the FlightConfig, fleet = len(flights), no ports
    controllers: tuple[dict[str, Any], ...]  # each flight's ControllerParams


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep flies: the parameters varied (the rows' first columns), each flight's values
    for them, and the batches."""

    name: str
    parameters: tuple[str, ...]  # the grid's, then the random draws'
    grid: tuple[str, ...]
    values: tuple[dict[str, Any], ...]  # per flight, in the sweep's order
    batches: tuple[Batch, ...]

    @property
    def flights(self) -> int:
        return len(self.values)


def read_sweep(path: str | Path) -> SweepPlan:
    """The sweep file at ``path``; ``ConfigError`` (one line: where, what was expected) if it is wrong."""
    where = str(path)
    table = load_toml(path, what="sweep file")
    if "sweep" not in table and ("main_rotor" in table or "ports" in table or "at" in table):
        kind = "a helicopter file" if "main_rotor" in table else "a pilot script" if "at" in table else "a flight file"
        raise ConfigError(f"{where}: {kind}, not a sweep file (no [sweep] table): heli-sim configs lists the sweeps")
    unknown = set(table) - {"sweep", "flight", "environment", "grid", "random"}
    if unknown:
        raise ConfigError(f"{where}: unknown table [{sorted(unknown)[0]}] (expected sweep, flight, environment, "
                          "grid, random)")  # fmt: skip
    settings = build(SweepSettings, table.get("sweep", {}), source=where, path="sweep")
    base = load_flight(Path(path).parent / settings.flight if settings.flight else None)
    base_tables = {"flight": to_table(base.flight), "environment": to_table(base.environment)}
    for section in ("flight", "environment"):
        base_tables[section].update(_table(table, section, where))
    grid = _parameters(_table(table, "grid", where), where, "grid", _grid_values)
    random = _parameters(_table(table, "random", where), where, "random", _distribution)
    if settings.samples and not random:
        raise ConfigError(f"{where}: sweep.samples = {settings.samples} but [random] draws nothing: expected 0, or "
                          "parameters in [random]")  # fmt: skip
    if random and not settings.samples:
        raise ConfigError(f"{where}: [random] draws {len(random)} parameter(s) but sweep.samples = 0: expected the "
                          "number of draws per grid point")  # fmt: skip
    both = set(grid) & set(random)
    if both:
        raise ConfigError(f"{where}: {sorted(both)[0]!r} is in both [grid] and [random]: expected one of them")
    count = math.prod(len(v) for v in grid.values()) * max(1, settings.samples)
    if count > MAX_FLIGHTS:
        raise ConfigError(f"{where}: {count:,} flights: expected at most {MAX_FLIGHTS:,}")
    rng = np.random.default_rng(settings.seed)
    values: list[dict[str, Any]] = []
    for point in itertools.product(*grid.values()):
        for _ in range(max(1, settings.samples)):
            drawn = {key: draw(rng) for key, draw in random.items()}
            values.append({**dict(zip(grid, point, strict=True)), **drawn})
    if base.fc.enabled:
        raise ConfigError(f"{where}: the base flight has firmware in the loop ([fc] protocol = {base.fc.protocol!r}): "
                          "a sweep flies heli-sim's own controller; expected no [fc]")  # fmt: skip
    made: dict[str, tuple[str, bool, Any]] = {}  # the flights' configurations, by their values other than gains
    flights = [_flight(base, base_tables, v, f"{where}: flight {i}", made) for i, v in enumerate(values)]
    return SweepPlan(settings.name or Path(path).stem, (*grid, *random), tuple(grid), tuple(values),
                     _batches(flights, settings.batch_size))  # fmt: skip


def _table(table: dict, name: str, where: str) -> dict[str, Any]:
    section = table.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: {name} must be a table ([{name}]), not {type(section).__name__}")
    return section


def _parameters(section: dict[str, Any], where: str, name: str, parse) -> dict[str, Any]:
    """One section's parameters, by their full names (``heli`` and ``flight.heli`` are one)."""
    parsed: dict[str, Any] = {}
    for key, value in section.items():
        full = _parameter(key, where, name)
        if full in parsed:
            raise ConfigError(f"{where}: [{name}] names {full!r} twice (heli is flight.heli): expected it once")
        parsed[full] = parse(value, key, where)
    return parsed


def _parameter(key: str, where: str, section: str) -> str:
    """``key`` as ``section.field`` (``heli``: ``flight.heli``), checked against the configuration."""
    full = "flight.heli" if key == "heli" else key
    prefix, _, name = full.partition(".")
    known = [f"{p}.{f.name}" for p, cls in _SECTIONS.items() for f in fields(cls)]
    if prefix not in _SECTIONS or name not in {f.name for f in fields(_SECTIONS[prefix])}:
        from difflib import get_close_matches

        close = get_close_matches(full, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else " (expected flight.KEY, environment.KEY or controller.KEY)"
        raise ConfigError(f"{where}: [{section}] {key!r}: no such parameter{hint}")
    if prefix == "flight" and name in _FIXED:
        raise ConfigError(f"{where}: [{section}] {key!r} cannot be swept: {_FIXED[name]}")
    return full


def _grid_values(value: Any, key: str, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: [grid] {key!r} = {value!r}: expected a list of values, such as [1.0, 2.0]")
    return value


def _distribution(value: Any, key: str, where: str):
    """A draw function for one [random] parameter."""
    shape = "one of { uniform = [LOW, HIGH] }, { normal = [MEAN, SD] }, { integers = [LOW, HIGH] }, " \
            "{ choice = [A, B, ...] }"  # fmt: skip
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: [random] {key!r} = {value!r}: expected {shape}")
    kind, args = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: [random] {key!r}: choice needs a list of values")
        return lambda rng: args[int(rng.integers(len(args)))]
    numeric = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in args)  # fmt: skip
    if not numeric:
        raise ConfigError(f"{where}: [random] {key!r}: {kind} needs two finite numbers, got {args!r}")
    low, high = args
    if not all(abs(a) <= _LARGEST_DRAW for a in args):
        raise ConfigError(f"{where}: [random] {key!r}: {kind} = {args!r}: expected numbers within +-{_LARGEST_DRAW:g}")
    if kind == "uniform":
        if high < low:
            raise ConfigError(f"{where}: [random] {key!r}: uniform = [{low}, {high}]: expected LOW <= HIGH")
        return lambda rng: float(rng.uniform(low, high))
    if kind == "normal":
        if high < 0:
            raise ConfigError(f"{where}: [random] {key!r}: normal = [{low}, {high}]: expected SD >= 0")
        return lambda rng: float(rng.normal(low, high))
    if int(low) != low or int(high) != high or high < low:
        raise ConfigError(f"{where}: [random] {key!r}: integers = [{low}, {high}]: expected whole LOW <= HIGH")
    return lambda rng: int(rng.integers(int(low), int(high) + 1))


def _flight(base: FlightConfig, base_tables: dict, values: dict[str, Any], where: str,
            made: dict[str, tuple[str, bool, Any]]) -> tuple[str, Any, dict]:  # fmt: skip
    """One flight: (the batch key, its FlightConfig and helicopter, its controller table).  Flights
    with the same values other than gains share one configuration (``made``), built and checked once."""
    controller = {k.partition(".")[2]: v for k, v in values.items() if k.startswith("controller.")}
    others = json.dumps({k: v for k, v in values.items() if not k.startswith("controller.")}, sort_keys=True)
    if others not in made:
        try:
            made[others] = _configuration(base, base_tables, values, where)
        except ConfigError as error:
            raise _placed(error, where) from None
    key, alone, (config, heli) = made[others]
    if alone:  # in moving air each flight flies alone, in its own air
        key = f"{key}#{where}"
    try:
        gains = build(ControllerParams, {**to_table(heli.controller), **controller}, source=where, path="controller")
    except ConfigError as error:
        raise _placed(error, where) from None
    return key, (config, heli), to_table(gains)


def _placed(error: ConfigError, where: str) -> ConfigError:
    """``error`` with the sweep file and flight in front, if it does not say where already."""
    text = str(error)
    return error if text.startswith(where.split(":")[0]) else ConfigError(f"{where}: {text}")


def _configuration(base: FlightConfig, base_tables: dict, values: dict[str, Any], where: str) -> tuple[str, bool, Any]:
    tables = {name: dict(table) for name, table in base_tables.items()}
    for key, value in values.items():
        prefix, _, name = key.partition(".")
        if prefix != "controller":
            tables[prefix][name] = value
    settings = build(FlightSettings, tables["flight"], source=where, path="flight")
    environment = build(Environment, tables["environment"], source=where, path="environment")
    if settings.duration_s <= 0:
        raise ConfigError(f"{where}: flight.duration_s = {settings.duration_s:g} (0: not set): a sweep's flights must "
                          "end: expected more than 0 s, in [flight] or [grid]")  # fmt: skip
    for name in ("fleet", "workers"):
        if getattr(settings, name) != getattr(FlightSettings(), name):
            raise ConfigError(f"{where}: flight.{name} = {getattr(settings, name)}: {_FIXED[name]}; expected it unset")
    if pilot_kind(settings.pilot).transmitter:  # someone at the sticks
        raise ConfigError(f"{where}: flight.pilot = {settings.pilot!r}: a sweep has no one at the sticks; "
                          "expected hover[:SECONDS] or script:FILE")  # fmt: skip
    if settings.pilot.startswith("script:"):  # read by each batch where it flies: by its whole path
        script = Path(settings.pilot.removeprefix("script:"))
        if not script.is_file():
            raise ConfigError(f"{where}: flight.pilot = {settings.pilot!r}: no such file (a path from the working "
                              "directory, the same on every node of a cluster)")  # fmt: skip
        settings = replace(settings, pilot=f"script:{script.resolve()}")
    config = replace(base, flight=settings, environment=environment, ports=())  # (its faults checked again)
    heli = load_heli(settings.heli)
    alone = environment.moves_the_air or any(fault.kind == "gust" for fault in base.faults)
    key = json.dumps([to_table(config), heli_table(heli)], sort_keys=True, default=str)
    return key, alone, (config, heli)


def _batches(flights: list[tuple[str, Any, dict]], size: int) -> tuple[Batch, ...]:
    """Flights with the same key, in the sweep's order, in as few batches of at most ``size`` as
    there can be, of sizes within one of each other (so that the workers finish together)."""
    groups: dict[str, list[int]] = {}
    for index, (key, _, _) in enumerate(flights):
        groups.setdefault(key, []).append(index)
    batches = []
    for members in groups.values():
        parts = -(-len(members) // size)
        bounds = [round(i * len(members) / parts) for i in range(parts + 1)]
        for start, end in itertools.pairwise(bounds):
            chosen = members[start:end]
            config, heli = flights[chosen[0]][1]
            fleet = replace(config, flight=replace(config.flight, fleet=len(chosen)))
            batches.append(Batch(tuple(chosen), heli_table(heli), to_table(fleet),
                                 tuple(flights[i][2] for i in chosen)))  # fmt: skip
    return tuple(batches)
