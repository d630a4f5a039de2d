"""The vehicle kernels compiled to machine code with numba: the same source, a third backend.

``heli.dynamics`` and ``heli.control`` are written once over a math namespace ``xp``
(``heli.ops``): Python floats for a few vehicles, numpy columns for a batch.  Both pay the
interpreter: a float operation costs tens of nanoseconds, a numpy call about a microsecond
whatever its size, and a step is some 600 of either.  Here numba compiles those very functions
(copies of them whose ``xp`` is a numba type for ``heli.ops.ScalarMath`` and whose calls go to
each other's compiled copies) into one loop over the vehicles, so a vehicle-step is a few
hundred machine instructions.  The floats are the same IEEE operations in the same order (no
fast-math, no fused multiply-add), so the results equal the other backends' (the tests hold
them to 1e-12).

numba is optional (``pip install 'heli-sim[fast]'``).  Compiling takes some 15-40 s on first use
(the kernels are inlined into the loops, so what depends on the constants alone is worked out once
per call); the machine code is cached on disk (under the user's cache folder, in a folder named
after a hash of the kernels' source and numba's version, so an edited kernel is never run stale),
and loads in well under a second after that.  The loops over the vehicles are generated (each
column read by name, the constants rebuilt from one flat array) as a module in that folder, so
numba can cache them too.

Entry points: ``available()``, ``compiled_kernels()`` -> ``CompiledKernels`` with ``steps`` and
``control``, equal in meaning to ``heli.dynamics.steps`` / ``step`` and ``heli.control.control``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import types
import warnings
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from heli import control as control_module
from heli import dynamics, ground, mixer, rotor
from heli.control import CONTROL_STATE_SIZE, PILOT_INPUT_SIZE, ControllerConstants, ControllerState, PilotInput
from heli.dynamics import FlightModel
from heli.errors import ConfigError
from heli.ground import ContactConstants, contact_loads
from heli.mixer import SwashGeometry
from heli.ops import SCALAR, ScalarMath
from heli.state import COMMAND_SIZE, STATE_SIZE, ActuatorCommand, StateIndex, VehicleState
from sim import hover_kernel as hover_module
from sim import rc as rc_module
from sim.hover_kernel import HOVER_STATE_SIZE, VEHICLE_COLUMNS, HoverConstants
from sim.rc import StickDecoding

__all__ = ["CompiledKernels", "KernelUnavailableError", "available", "compiled_kernels", "is_cached"]

log = logging.getLogger(__name__)

# the kernel functions, by the global name the others call them by
_PHYSICS = (
    dynamics.rotation_matrix, dynamics.air_loads, dynamics.motor_current, dynamics.drive_torque, dynamics.rotate,
    dynamics.quaternion_step, dynamics._servo_follow, dynamics._step_kernel, rotor.blade_element_thrust,
    rotor.stall_limited, rotor.profile_torque_coeff, rotor.axial_inflow, rotor.induced_inflow_target, mixer.unmix,
    ground.contact_loads,
)  # fmt: skip
_CONTROL = (control_module._control_kernel, control_module._rate_pid, control_module.governor_pi,
            control_module._stick_curve, mixer.mix)  # fmt: skip
_PILOT = (hover_module.hover_kernel,)
_DECODE = (rc_module.decode_kernel, rc_module._stick)
_COLUMNS_ONLY = ("pilot", "decode")  # kinds with a columns loop alone: the frames come 100 times a second
# inlined into the loops, so that what depends on the constants alone is worked out once per call;
# not the ground contact (a large body, run for vehicles near the ground only)
_NOT_INLINED = ("contact_loads", "_contact_near")
_NOT_KERNEL_FIELDS = ("params", "env", "vehicles")  # descriptive fields the kernels never read


class KernelUnavailableError(ConfigError):
    """The compiled kernels were asked for where numba is not installed."""


def available() -> bool:
    """Whether numba imports here (the compiled kernels can be built)."""
    try:
        import numba  # noqa: F401 (only whether it imports)
    except ImportError:
        return False
    return True


# --- the stand-ins for the two helpers whose Python versions look at the backend


def _contact_near(xp: Any, m: Any, near: Any, rot: tuple, pd: Any, vel: tuple, rates: tuple, omega: Any) -> tuple:
    """Per vehicle there is nothing to select: the contact model of the one vehicle."""
    return contact_loads(xp, m.contact, rot, pd, vel, rates, omega)  # (the compiled copy: _jit_family)


def _no_contact(xp: Any, m: Any, near: Any, rot: tuple, pd: Any, vel: tuple, rates: tuple, omega: Any) -> tuple:
    """The airborne kernel's: no contact model at all, so that the loop over a fleet has no call in
    it and compiles to vector instructions; the vehicles near the ground are stepped again, after
    it, with the whole kernel (so this value is never used)."""
    return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0


def _exp(x: float) -> float:
    return math.exp(x)


# --- the parameter sets as flat float arrays, rebuilt as namedtuples inside the compiled code


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How one dataclass of kernel constants is laid out in a flat float64 array."""

    builder_source: str  # an expression of ``p`` (the array) that rebuilds it as namedtuples
    size: int


def _kernel_tuple(cls: type) -> type:
    """The namedtuple the compiled code sees for a dataclass of constants: its kernel fields, in
    order.  Defined here, by name, so that the disk cache can find the type again."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_KERNEL_FIELDS]
    # (a checker knows a namedtuple's fields only from literals; these are the dataclass's)
    tuple_cls = namedtuple(f"Kernel{cls.__name__}", names)  # type: ignore[misc]
    tuple_cls.__module__ = __name__
    return tuple_cls


KernelFlightModel = _kernel_tuple(FlightModel)
KernelSwashGeometry = _kernel_tuple(SwashGeometry)
KernelContactConstants = _kernel_tuple(ContactConstants)
KernelControllerConstants = _kernel_tuple(ControllerConstants)
KernelHoverConstants = _kernel_tuple(HoverConstants)
KernelStickDecoding = _kernel_tuple(StickDecoding)
_KERNEL_TUPLES: dict[type, str] = {
    cls: tuple_cls.__name__
    for cls, tuple_cls in (
        (FlightModel, KernelFlightModel),
        (SwashGeometry, KernelSwashGeometry),
        (ContactConstants, KernelContactConstants),
        (ControllerConstants, KernelControllerConstants),
        (HoverConstants, KernelHoverConstants),
        (StickDecoding, KernelStickDecoding),
    )
}


def _flatten(value: Any, out: list[float]) -> None:
    if dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            if item.name not in _NOT_KERNEL_FIELDS:
                _flatten(getattr(value, item.name), out)
    elif isinstance(value, tuple):
        for element in value:
            _flatten(element, out)
    else:
        out.append(float(value))  # bools as 1.0 / 0.0


def _layout_of(value: Any) -> _Layout:
    position = 0

    def expression(item: Any) -> str:
        nonlocal position
        if dataclasses.is_dataclass(item):
            names = [f.name for f in dataclasses.fields(item) if f.name not in _NOT_KERNEL_FIELDS]
            return f"{_KERNEL_TUPLES[type(item)]}(" + ", ".join(expression(getattr(item, n)) for n in names) + ")"
        if isinstance(item, tuple):
            return "(" + "".join(f"{expression(element)}, " for element in item) + ")"
        index, position = position, position + 1
        return f"(p[{index}] != 0.0)" if isinstance(item, bool) else f"p[{index}]"

    source = expression(value)
    return _Layout(source, position)


def flat_constants(value: Any) -> np.ndarray:
    """``value`` (a ``FlightModel`` or unstacked ``ControllerConstants``) as its flat float array."""
    out: list[float] = []
    _flatten(value, out)
    return np.array(out, dtype=np.float64)


def _sized(flat: np.ndarray, size: int, value: Any) -> np.ndarray:
    if flat.size != size:
        raise ValueError(f"{type(value).__name__} has {flat.size} constants; the compiled kernel was built for {size}")
    return flat


# --- compiling


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _constant_text(value: Any) -> str:
    """A constant of compiled code as text that is the same in every process (sets sorted: their
    order follows the string hashes, which differ from process to process)."""
    if isinstance(value, types.CodeType):
        return f"<code {value.co_name}>"  # (its own fingerprint is taken too)
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(_constant_text(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "(" + ",".join(_constant_text(v) for v in value) + ")"
    return repr(value)


def _code_fingerprint(code: types.CodeType) -> bytes:
    """What a code object does, as bytes that are the same in every process (``marshal`` is not: it
    flags objects by their reference counts)."""
    parts = [code.co_code.hex(), _constant_text(code.co_consts), " ".join(code.co_names), " ".join(code.co_varnames)]
    return "|".join(parts).encode()


@functools.cache
def _kernel_source_hash(numba_version: str) -> str:
    """A hash of what numba compiles, as this process has it: the code of every kernel function and
    of this module's own parts that shape the compiled code, the plain values (numbers, tuples,
    strings) they read from their modules, and the kernel constants' fields.  Taken from the
    functions in memory, not their files: a file saved after the import is not what this process
    compiles (its machine code would be cached under the new file's hash)."""
    digest = hashlib.sha256(f"{numba_version} {sys.version}".encode())
    own = (_register_math_type, _loops_source, _layout_of, _flatten, _jit_family, _kernel_tuple)
    for function in (*_PHYSICS, *_CONTROL, *_PILOT, *_DECODE, _contact_near, _no_contact, _exp, *own):
        for code in _code_objects(function.__code__):
            digest.update(_code_fingerprint(code))
            for name in code.co_names:
                value = function.__globals__.get(name)
                # a module's constants (named in capitals), not its state (this module's _registered)
                if name.lstrip("_").isupper() and isinstance(value, (bool, int, float, str, tuple)):
                    digest.update(f"{name}={value!r};".encode())
    for cls in _KERNEL_TUPLES:
        digest.update(" ".join(f.name for f in dataclasses.fields(cls)).encode())
    return digest.hexdigest()[:16]


def _cache_dir(numba_version: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "heli-sim" / "numba" / _kernel_source_hash(numba_version)


def _writable_cache_dir(numba_version: str) -> Path:
    """``_cache_dir``, made if need be; where it cannot be written (no home folder, a read-only one: numba
    writes its index even to load), a temporary folder of this process's, said once: the kernels are
    compiled each run then."""
    folder = _cache_dir(numba_version)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError as error:
        temporary = Path(tempfile.mkdtemp(prefix="heli-sim-numba-"))
        atexit.register(shutil.rmtree, temporary, ignore_errors=True)
        log.warning(
            "the compiled kernels' cache folder %s cannot be written (%s): compiling into %s for this run only "
            "(set XDG_CACHE_HOME to a folder you can write, to keep them)",
            folder, error.strerror or error, temporary,
        )  # fmt: skip
        return temporary


@contextlib.contextmanager
def _kernel_cache_dir(numba: Any, folder: Path) -> Iterator[None]:
    """numba's cache folder, while functions are jitted, is ``folder``; the user's after."""
    users = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(folder)  # read as each function is jitted
    try:
        yield
    finally:
        numba.config.CACHE_DIR = users


_registered = False


def _register_math_type(numba: Any) -> None:
    """Teach numba ``heli.ops.ScalarMath`` (once per process): an empty value whose methods are the
    scalar maths, inlined."""
    global _registered
    if _registered:
        return
    _registered = True
    from numba.core import types as nt
    from numba.core.imputils import lower_constant
    from numba.extending import NativeValue, models, overload_method, register_model, typeof_impl, unbox

    class KernelMathType(nt.Dummy):
        def __init__(self) -> None:
            super().__init__(name="KernelMath")

    # found by name when the disk cache unpickles a signature
    KernelMathType.__module__, KernelMathType.__qualname__ = __name__, "KernelMathType"
    globals()["KernelMathType"] = KernelMathType
    math_type = KernelMathType()
    typeof_impl.register(ScalarMath)(lambda value, context: math_type)
    register_model(KernelMathType)(models.OpaqueModel)
    unbox(KernelMathType)(lambda typ, obj, c: NativeValue(c.context.get_dummy_value()))
    lower_constant(KernelMathType)(lambda context, builder, typ, value: context.get_dummy_value())

    def method(name: str, implementation: Any) -> None:
        # numba wants the typing function's parameters to be the implementation's
        parameters = ", ".join(inspect.signature(implementation).parameters)
        scope = {"implementation": implementation}
        exec(f"def typing({parameters}):\n    return implementation", scope)  # (our own text)
        overload_method(KernelMathType, name, inline="always")(scope["typing"])

    method("sqrt", lambda self, x: math.sqrt(x))
    method("abs", lambda self, x: abs(x))
    method("sin", lambda self, x: math.sin(x))
    method("cos", lambda self, x: math.cos(x))
    method("exp", lambda self, x: math.exp(x))
    method("atan", lambda self, x: math.atan(x))
    method("atan2", lambda self, y, x: math.atan2(y, x))
    method("asin", lambda self, x: math.asin(x))
    method("minimum", lambda self, a, b: a if a < b else b)
    method("maximum", lambda self, a, b: a if a > b else b)
    method("clip", lambda self, x, lo, hi: lo if x < lo else (hi if x > hi else x))
    method("where", lambda self, condition, a, b: a if condition else b)
    method("any", lambda self, condition: bool(condition))


def _jit_family(numba: Any, variant: str, functions: tuple, replacements: dict) -> dict:
    """Compiled copies of ``functions`` (and ``replacements``, by the name they replace), each
    calling the others' compiled copies; ``variant`` names them apart in the disk cache."""
    by_name = {f.__name__: f for f in functions} | replacements
    scopes, copies = {}, {}
    for name, function in by_name.items():
        scope = dict(function.__globals__)
        copy = types.FunctionType(
            function.__code__, scope, function.__name__, function.__defaults__, function.__closure__
        )
        copy.__qualname__ = f"compiled_{variant}.{function.__qualname__}"
        scopes[name] = scope
        inline = "never" if name in _NOT_INLINED else "always"
        copies[name] = numba.njit(copy, cache=True, error_model="numpy", inline=inline)
    for scope in scopes.values():
        scope.update(copies)
    return copies


# --- the loops over the vehicles: generated as a module in the cache folder (so numba can cache them
# too), with the constants rebuilt from their flat array once per call and the columns read by name.
# Two loops each: ``rows`` over (size, N) arrays, one vehicle after the other (few vehicles: one
# argument per array keeps the call short), and ``columns`` with every column its own argument, which
# LLVM turns into vector instructions, several vehicles at once (many vehicles).

_HOVERING_ROW = (
    np.eye(1, STATE_SIZE, StateIndex.index("qw"))[0] - 10.0 * np.eye(1, STATE_SIZE, StateIndex.index("pd"))[0]
)  # 10 m up
_WARM_UP_PILOT = HoverConstants(5.0, 1.0, 12.0, 1000.0, 1.0, 100.0, 5.0, 3.0, math.inf, 0.5, 8.0, False)
_FLAT_KEPT = 8  # flat constants kept for this many models and controllers (the latest ones)
_PILOT_CHANNELS = 5  # the hover pilot's channels: collective, pitch, roll, yaw, arm (sim.hover_kernel)
_DECODED_CHANNELS = ("roll", "pitch", "yaw", "collective", "arm", "hold", "mode")  # sim.rc.decode_kernel's
COLUMNS_FROM = 48  # vehicles: from here on, the vectorised loops (bench step: the crossover is ~20-40)


def _loops_source(kind: str, layout: _Layout) -> str:
    """The text of the module holding the loops over the vehicles for ``kind`` (physics, control, the
    hover pilot or the decoding of its frames)."""
    lines = [
        f'"""Written by sim.compiled: the {kind} loops over the vehicles (rewritten as the kernels change)."""',
        "",
        "from sim.compiled import " + ", ".join(_KERNEL_TUPLES.values()),
        "",
        "kernel = airborne = xp = None  # set by sim.compiled before the first call",
        "",
    ]

    def read(array: str, size: int) -> str:
        return "(" + "".join(f"{array}[{c}, i], " for c in range(size)) + ")"

    def write(array: str, values: str, size: int, indent: str) -> list[str]:
        return [f"{indent}{array}[{c}, i] = {values}[{c}]" for c in range(size)]

    def read_columns(prefix: str, size: int) -> str:
        return "(" + "".join(f"{prefix}{c}[i], " for c in range(size)) + ")"

    def write_columns(prefix: str, values: str, size: int, indent: str) -> list[str]:
        return [f"{indent}{prefix}{c}[i] = {values}[{c}]" for c in range(size)]

    def names(prefix: str, size: int) -> str:
        return ", ".join(f"{prefix}{c}" for c in range(size))

    if kind == "physics":
        step_columns = [
            f"        x = {read_columns('s', STATE_SIZE)}",
            f"        c = {read_columns('c', COMMAND_SIZE)}",
            "        y = {kernel}(xp, m, x, c, dt, (wind_n[i], wind_e[i], wind_d[i]))",
            *write_columns("o", "y", STATE_SIZE, "        "),
        ]
        lines += [
            "def rows(p, state, command, wind, dt, count, out):",
            f"    m = {layout.builder_source}",
            "    per_vehicle_wind = wind.shape[1] > 1",
            "    for i in range(state.shape[1]):",
            "        j = i if per_vehicle_wind else 0",
            "        air = (wind[0, j], wind[1, j], wind[2, j])",
            f"        x = {read('state', STATE_SIZE)}",
            f"        c = {read('command', COMMAND_SIZE)}",
            "        for _ in range(count):",
            "            x = kernel(xp, m, x, c, dt, air)",
            *write("out", "x", STATE_SIZE, "        "),
            "",
            "",
            f"def columns(p, wind_n, wind_e, wind_d, dt, {names('s', STATE_SIZE)}, {names('c', COMMAND_SIZE)}, "
            f"{names('o', STATE_SIZE)}):",
            f"    m = {layout.builder_source}",
            "    for i in range(s0.shape[0]):  # every vehicle as if in the air: vector instructions",
            *[line.format(kernel="airborne") for line in step_columns],
            "    for i in range(s0.shape[0]):  # those near the ground again, with the contact model",
            f"        if s{StateIndex.index('pd')}[i] > -m.contact.reach_m:  # as the kernel decides it",
            *["    " + line.format(kernel="kernel") for line in step_columns],
        ]
    elif kind == "decode":
        channels = ", ".join(_DECODED_CHANNELS)
        lines += [
            f"def columns(p, {channels}, fresh, {names('o', PILOT_INPUT_SIZE)}):",
            f"    d = {layout.builder_source}",
            "    for i in range(fresh.shape[0]):",
            "        out = kernel(xp, d, (" + "".join(f"{name}[i], " for name in _DECODED_CHANNELS) + "), fresh[i])",
            *write_columns("o", "out", PILOT_INPUT_SIZE, "        "),
        ]
    elif kind == "pilot":
        vehicle = "(" + "".join(f"v{c}[i], " for c in VEHICLE_COLUMNS) + ")"
        lines += [
            f"def columns(p, t, dt, {names('s', HOVER_STATE_SIZE)}, {names('v', STATE_SIZE)}, "
            f"{names('n', HOVER_STATE_SIZE)}, {names('o', _PILOT_CHANNELS)}):",
            f"    c = {layout.builder_source}",
            "    for i in range(s0.shape[0]):",
            f"        s = {read_columns('s', HOVER_STATE_SIZE)}",
            f"        new, out = kernel(xp, c, s, {vehicle}, t, dt)",
            *write_columns("n", "new", HOVER_STATE_SIZE, "        "),
            *write_columns("o", "out", _PILOT_CHANNELS, "        "),
        ]
    else:
        cycle = [
            f"        cs = {read('state', CONTROL_STATE_SIZE)}",
            f"        ps = {read('pilot', PILOT_INPUT_SIZE)}",
            f"        vs = {read('vehicles', STATE_SIZE)}",
            "        new, out = kernel(xp, k, cs, ps, vs, dt, None)",
            *write("new_state", "new", CONTROL_STATE_SIZE, "        "),
            *write("command", "out", COMMAND_SIZE, "        "),
        ]
        shared = layout.builder_source.replace("p[", "p[0, ")
        each = layout.builder_source.replace("p[", "p[i, ")
        lines += [
            "def rows(p, state, pilot, vehicles, dt, new_state, command):",
            "    if p.shape[0] > 1:  # each vehicle its own gains",
            "        for i in range(vehicles.shape[1]):",
            f"            k = {each}",
            *[line.replace("        ", "            ", 1) for line in cycle],
            "        return",
            f"    k = {shared}",
            "    for i in range(vehicles.shape[1]):",
            *cycle,
            "",
            "",
            f"def columns(p, dt, {names('cs', CONTROL_STATE_SIZE)}, {names('ps', PILOT_INPUT_SIZE)}, "
            f"{names('vs', STATE_SIZE)}, {names('n', CONTROL_STATE_SIZE)}, {names('a', COMMAND_SIZE)}):",
            f"    k = {shared}",
            "    for i in range(vs0.shape[0]):",
            f"        cs = {read_columns('cs', CONTROL_STATE_SIZE)}",
            f"        ps = {read_columns('ps', PILOT_INPUT_SIZE)}",
            f"        vs = {read_columns('vs', STATE_SIZE)}",
            "        new, out = kernel(xp, k, cs, ps, vs, dt, None)",
            *write_columns("n", "new", CONTROL_STATE_SIZE, "        "),
            *write_columns("a", "out", COMMAND_SIZE, "        "),
        ]
    return "\n".join(lines) + "\n"


def _import_loops(folder: Path, kind: str, source: str) -> types.ModuleType:
    """The generated module, written into ``folder`` unless it is there already."""
    path = folder / f"{kind}_loops.py"
    if not path.exists() or path.read_text() != source:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        temporary.replace(path)  # atomic: a process compiling beside this one reads one whole text
    name = f"heli_sim_{kind}_loops_{folder.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the generated module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def _no_alias_pipeline(numba: Any) -> type:
    """numba's compiler, telling LLVM that no two array arguments share memory (true of the columns
    loops: each column is its own array).  Without it LLVM would have to check every pair of
    columns at run time before it used vector instructions, and it gives up: too many checks."""
    from numba.core.compiler import CompilerBase, DefaultPassBuilder

    class NoAliasCompiler(CompilerBase):
        def define_pipelines(self) -> list:
            self.state.flags.noalias = True
            return [DefaultPassBuilder.define_nopython_pipeline(self.state)]

    return NoAliasCompiler


def _columns(packed: np.ndarray) -> np.ndarray:
    """An ``(N, size)`` array as its ``(size, N)`` columns, contiguous (no copy for the arrays this
    module makes) and read-only, always: numba compiles the loops once per argument type."""
    columns = np.ascontiguousarray(packed.T)
    columns.flags.writeable = False
    return columns


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class CompiledKernels:
    """The physics step and the controller cycle, compiled (module doc); use the process's one,
    ``compiled_kernels()``.  ``build_s``: the seconds spent compiling, or loading the cached
    machine code, so far."""

    def __init__(self) -> None:
        import numba

        started = time.perf_counter()
        self._numba = numba
        self._folder = _writable_cache_dir(numba.__version__)
        _register_math_type(numba)
        with _kernel_cache_dir(numba, self._folder):
            physics = _jit_family(numba, "physics", _PHYSICS, {"_contact_near": _contact_near})
            airborne = _jit_family(numba, "airborne", _PHYSICS, {"_contact_near": _no_contact})
            control = _jit_family(numba, "control", _CONTROL, {"_exp": _exp})
            pilot = _jit_family(numba, "pilot", _PILOT, {})
            decode = _jit_family(numba, "decode", _DECODE, {})
        self._kernels = {
            "physics": {"kernel": physics["_step_kernel"], "airborne": airborne["_step_kernel"]},
            "control": {"kernel": control["_control_kernel"]},
            "pilot": {"kernel": pilot["hover_kernel"]},
            "decode": {"kernel": decode["decode_kernel"]},
        }
        self._loops: dict[str, tuple[int, Any, Any]] = {}
        self._flat: dict[int, tuple[Any, np.ndarray]] = {}
        self._called: set[tuple[str, str]] = set()  # loops called once: numba compiled them, or loaded them, then
        self.build_s = time.perf_counter() - started

    def _loop(self, kind: str, template: Any) -> tuple[int, Any, Any]:
        """(constants' size, rows loop, columns loop) for ``kind``; made on first use (numba compiles
        each, or loads it from the disk cache, on its first call); ``_COLUMNS_ONLY`` kinds have no rows loop."""
        if kind not in self._loops:
            started = time.perf_counter()
            layout = _layout_of(template)
            module = _import_loops(self._folder, kind, _loops_source(kind, layout))
            for name, kernel in self._kernels[kind].items():
                setattr(module, name, kernel)
            vars(module)["xp"] = SCALAR  # the math namespace of the kernels the loops call
            jit = self._numba.njit
            with _kernel_cache_dir(self._numba, self._folder):
                rows = (
                    jit(module.rows, cache=True, error_model="numpy", boundscheck=False)
                    if kind not in _COLUMNS_ONLY
                    else None
                )
                columns = jit(module.columns, cache=True, error_model="numpy", boundscheck=False,
                              pipeline_class=_no_alias_pipeline(self._numba))  # fmt: skip
            self._loops[kind] = (layout.size, rows, columns)
            self.build_s += time.perf_counter() - started
        return self._loops[kind]

    def warm_up(self, model: FlightModel, constants: ControllerConstants | None) -> float:
        """Compile every loop (or load it from the disk cache) now, not in a flight's first tick: each
        called once on a few hovering vehicles, results dropped (the controller's, given its constants).
        Returns the seconds it took."""
        started = time.perf_counter()
        for count in (1, COLUMNS_FROM):
            vehicles = VehicleState(np.tile(_HOVERING_ROW, (count, 1)))
            command = ActuatorCommand(np.zeros((count, COMMAND_SIZE)))
            self.steps(model, vehicles, command, 0.001)
            if constants is not None:
                pilot = PilotInput.centred(count)
                self.control(constants, ControllerState.initial(count), pilot, vehicles, 0.002)
        self.hover(_WARM_UP_PILOT, np.zeros((HOVER_STATE_SIZE, 1)), VehicleState(_HOVERING_ROW[None, :]), 1.0, 0.01)
        stick = (1000.0, 1500.0, 2000.0, 1.0)
        self.decode(StickDecoding(stick, stick, stick, stick), [np.full(1, 1500.0)] * 7, np.ones(1))
        return time.perf_counter() - started

    def _flat_array(self, value: Any, size: int) -> np.ndarray:
        """The flat constants of a model or controller (one row per vehicle when stacked), kept per object."""
        known = self._flat.get(id(value))
        if known is None or known[0] is not value:  # (an id is reused only once its object is gone)
            each = getattr(value, "vehicles", None) or (value,)
            known = (value, np.array([_sized(flat_constants(v), size, v) for v in each]))
            if len(self._flat) >= _FLAT_KEPT:  # (a ground station's new gains each time: not kept forever)
                del self._flat[next(iter(self._flat))]
            self._flat[id(value)] = known
        return known[1]

    def _call(self, kind: str, loop_name: str, loop: Any, *arguments: Any) -> None:
        first = (kind, loop_name) not in self._called
        self._called.add((kind, loop_name))
        if not first:
            loop(*arguments)
            return
        started = time.perf_counter()  # numba compiles the loop (or loads it from the cache) on this call
        with warnings.catch_warnings():
            # numba's own pedantic check, about its inlining of the maths (not a problem of the code)
            warnings.simplefilter("ignore", self._numba.NumbaIRAssumptionWarning)
            loop(*arguments)
        self.build_s += time.perf_counter() - started

    def steps(
        self,
        model: FlightModel,
        state: VehicleState,
        command: ActuatorCommand,
        dt_s: float,
        count: int = 1,
        wind_ned: np.ndarray | None = None,
    ) -> VehicleState:
        """``count`` physics steps of ``state`` holding ``command`` (``heli.dynamics.steps``);
        ``wind_ned`` an (N, 3) wind per vehicle, held for the ``count`` steps (default: the model's
        steady wind; with one step, ``heli.dynamics.step``)."""
        vehicles = state.count
        if command.packed.shape[0] != vehicles:
            raise ValueError(f"command has {command.packed.shape[0]} rows for {vehicles} vehicles")
        if wind_ned is not None and np.shape(wind_ned) != (vehicles, 3):
            raise ValueError(f"wind has shape {np.shape(wind_ned)} for {vehicles} vehicles; expected ({vehicles}, 3)")
        size, rows, columns = self._loop("physics", model)
        flat = self._flat_array(model, size)[0]
        commands = _columns(command.packed)
        if vehicles < COLUMNS_FROM or count == 0:
            if wind_ned is None:
                wind = np.array(model.wind_ned, dtype=np.float64).reshape(3, 1)  # one wind for all
            else:
                wind = np.ascontiguousarray(np.asarray(wind_ned, dtype=np.float64).T)
            out = np.empty((STATE_SIZE, vehicles))
            self._call("physics", "rows", rows, flat, _columns(state.packed), commands, wind, dt_s, int(count), out)
            return VehicleState(out.T)
        wind = np.empty((3, vehicles))
        wind[:] = np.array(model.wind_ned).reshape(3, 1) if wind_ned is None else np.asarray(wind_ned).T
        state_columns = _columns(state.packed)
        for _ in range(count):  # one call per step: a call never writes an array it reads (no aliasing)
            out = np.empty((STATE_SIZE, vehicles))
            self._call("physics", "columns", columns, flat, *wind, dt_s, *state_columns, *commands, *out)
            state_columns = _read_only(out)
        return VehicleState(state_columns.T)

    def control(
        self,
        constants: ControllerConstants,
        state: ControllerState,
        pilot: PilotInput,
        vehicles: VehicleState,
        dt_s: float,
    ) -> tuple[ControllerState, ActuatorCommand]:
        """One controller cycle, as ``heli.control.control``."""
        count = vehicles.count
        if state.packed.shape[0] != count or pilot.packed.shape[0] != count:
            raise ValueError(f"controller state, pilot input and vehicles disagree on N (vehicles: {count})")
        size, rows, columns = self._loop("control", constants.vehicles[0] if constants.vehicles else constants)
        flat = self._flat_array(constants, size)
        if flat.shape[0] not in (1, count):
            raise ValueError(f"constants for {flat.shape[0]} vehicles (stacked), {count} vehicles to control")
        new_state = np.empty((CONTROL_STATE_SIZE, count))
        command = np.empty((COMMAND_SIZE, count))
        inputs = (_columns(state.packed), _columns(pilot.packed), _columns(vehicles.packed))
        if count < COLUMNS_FROM or flat.shape[0] > 1:  # (each vehicle its own gains: the rows loop)
            self._call("control", "rows", rows, flat, *inputs, dt_s, new_state, command)
        else:
            self._call("control", "columns", columns, flat, dt_s, *inputs[0], *inputs[1], *inputs[2], *new_state,
                       *command)  # fmt: skip
        return ControllerState(new_state.T), ActuatorCommand(command.T)

    def hover(
        self, constants: HoverConstants, state: np.ndarray, vehicles: VehicleState, t_s: float, dt_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame of the hover pilot (``sim.hover_kernel``) for every vehicle: ``state`` its
        (``HOVER_STATE_SIZE``, N) columns; returns the new columns and the (5, N) channels."""
        count = vehicles.count
        if state.shape != (HOVER_STATE_SIZE, count):
            raise ValueError(f"hover pilot state of shape {state.shape} for {count} vehicles")
        size, _rows, columns = self._loop("pilot", constants)
        flat = self._flat_array(constants, size)[0]
        new_state = np.empty((HOVER_STATE_SIZE, count))
        channels = np.empty((_PILOT_CHANNELS, count))
        self._call("pilot", "columns", columns, flat, float(t_s), float(dt_s), *_columns(state.T),
                   *_columns(vehicles.packed), *new_state, *channels)  # fmt: skip
        return new_state, channels

    def decode(self, decoding: StickDecoding, channels: list[np.ndarray], fresh: np.ndarray) -> np.ndarray:
        """``sim.rc.decode_kernel`` for every vehicle: ``channels`` the (N,) columns of
        ``_DECODED_CHANNELS``, ``fresh`` 1.0 or 0.0 per vehicle; returns the (7, N) ``PilotInput`` columns."""
        size, _rows, columns = self._loop("decode", decoding)
        flat = self._flat_array(decoding, size)[0]
        out = np.empty((PILOT_INPUT_SIZE, fresh.shape[0]))
        inputs = [_read_only(np.ascontiguousarray(column, dtype=np.float64)) for column in (*channels, fresh)]
        self._call("decode", "columns", columns, flat, *inputs, *out)
        return out


def is_cached() -> bool:
    """Whether the compiled kernels of this source and numba are on disk (so ``compiled_kernels()``
    loads them in about a second instead of compiling them)."""
    if not available():
        return False
    from importlib.metadata import version

    folder = _cache_dir(version("numba"))
    indexes = {path.name.split("-")[0] for path in folder.glob("*/*_loops.*.nbi")}
    loops = {f"{kind}_loops.{loop}" for kind in ("physics", "control") for loop in ("rows", "columns")}
    return loops | {"pilot_loops.columns", "decode_loops.columns"} <= indexes


@functools.cache
def compiled_kernels() -> CompiledKernels:
    """The compiled kernels of this process (built, or loaded from the disk cache, on first use);
    ``KernelUnavailableError`` without numba."""
    if not available():
        raise KernelUnavailableError(
            "the compiled kernels need numba, which is not installed here; expected it installed: "
            "pip install 'heli-sim[fast]'"
        )
    return CompiledKernels()


def main() -> int:
    """``python -m sim.compiled``: compile the kernels now (or find them cached); ``make test`` runs it
    first, so no test waits for the compiler."""
    if not available():
        sys.stdout.write("compiled kernels: numba is not installed (pip install 'heli-sim[fast]')\n")
        return 0
    from heli.trim import solve_hover_trim
    from sim.config import load_heli

    heli = load_heli("xcell60")
    model = FlightModel.build(heli.params)
    constants = ControllerConstants.build(heli.controller, model, math.radians(solve_hover_trim(model).collective_deg))
    cached = is_cached()
    seconds = compiled_kernels().warm_up(model, constants)
    sys.stdout.write(f"compiled kernels: {'loaded from the cache' if cached else 'compiled'} in {seconds:.1f} s\n")
    return 0


if __name__ == "__main__":
    # run as sim.compiled, not as this __main__ copy of it: the numba type registered for the kernels'
    # maths must live where the disk cache's pickles name it (sim.compiled.KernelMathType)
    from sim.compiled import main as main_of_the_module

    sys.exit(main_of_the_module())
