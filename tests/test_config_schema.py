"""One schema per value, as properties over every field of every config dataclass.

The tests walk the dataclasses' fields and their metadata (``heli.params.quantity``), so a field
added tomorrow is covered without a new test: every number has a finite range, every helicopter
parameter says why its range is what it is, any out-of-range or mistyped value is a one-line
``ConfigError`` (never another exception) whether it comes from a file's table or an option's
text, ``--print-config`` output loads back to the same configuration, and the TOML pre-scan
refuses what would break the parser while accepting what the parser reads.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from heli.control import ControllerParams
from heli.dynamics import FlightModel
from heli.errors import ConfigError, TrimError
from heli.initial import ground_state, hover_state
from heli.params import (
    MAX_RATE_STEP_PRODUCT,
    Contact,
    Drive,
    Empennage,
    Environment,
    Fuselage,
    HeliParams,
    MainRotor,
    MassProperties,
    Servos,
    TailRotor,
    step_rates_per_s,
)
from heli.state import ActuatorCommand
from heli.trim import solve_hover_trim
from sim.config import (
    MAX_PHYSICS_DT_S,
    ChannelMap,
    FaultSpec,
    FlightConfig,
    FlightSettings,
    HeliConfig,
    JoystickMap,
    PortSpec,
    check_physics_step,
    configs_dir,
    load_heli,
)
from sim.config_input import MAX_KEY_PARTS, MAX_NESTING, parse_toml
from sim.dataclass_io import build, parse_text, to_table
from sim.pilots import ScriptEntry
from sim.ports.codecs import ROLE_PROTOCOLS

HELI_TABLES = (MassProperties, MainRotor, TailRotor, Empennage, Fuselage, Drive, Servos, Contact)
XCELL = tomllib.loads((configs_dir() / "xcell60.toml").read_text())
BASELINES: dict[type, dict] = {
    **{cls: XCELL[name] for name, cls in zip(
        ("mass", "main_rotor", "tail_rotor", "empennage", "fuselage", "drive", "servos", "contact"), HELI_TABLES,
        strict=True,
    )},
    ControllerParams: {},
    FlightSettings: {},
    ChannelMap: {},
    Environment: {},
    JoystickMap: {},
    PortSpec: {"role": "link"},
    FaultSpec: {"kind": "loop_delay"},
    ScriptEntry: {"t": 0.0},
}  # fmt: skip


def _base(hint: Any) -> Any:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    return hint


def _scalar(hint: Any) -> Any:
    hint = _base(hint)
    return typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint


def numeric_fields() -> list[tuple[type, str]]:
    out = []
    for cls in BASELINES:
        hints = typing.get_type_hints(cls)
        out += [(cls, f.name) for f in dataclasses.fields(cls) if _scalar(hints[f.name]) in (int, float)]
    return out


NUMERIC = numeric_fields()
IDS = [f"{cls.__name__}.{name}" for cls, name in NUMERIC]


def meta_of(cls: type, name: str) -> typing.Mapping[str, Any]:
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


def bounds(meta: typing.Mapping[str, Any]) -> tuple[float, float]:
    low = meta["ge"] if meta.get("ge") is not None else meta["gt"]
    high = meta["le"] if meta.get("le") is not None else meta["lt"]
    return low, high


# --- the schema is complete ----------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=IDS)
def test_every_number_has_a_finite_range(cls, name):
    meta = meta_of(cls, name)
    if meta.get("choices"):
        return
    low, high = bounds(meta)
    assert low is not None and high is not None, f"{cls.__name__}.{name} needs both bounds"
    assert math.isfinite(low) and math.isfinite(high) and low < high


@pytest.mark.parametrize("cls", [*HELI_TABLES, Environment], ids=lambda c: c.__name__)
def test_every_helicopter_parameter_says_why_its_range_is_what_it_is(cls):
    for f in dataclasses.fields(cls):
        if not f.metadata.get("choices"):
            assert f.metadata.get("why"), f"{cls.__name__}.{f.name}: no reason for its range"


def test_the_shipped_configurations_are_inside_the_schema():
    for name in ("xcell60", "trex450", "trex700"):
        load_heli(name)  # raises if any value or combination is refused
    for name in ("example-flight", "seed-demo", "faults"):
        build(FlightConfig, tomllib.loads((configs_dir() / f"{name}.toml").read_text()), source=name)


# --- out-of-range and mistyped values: always a one-line ConfigError ------------------------------


def bad_values(cls: type, name: str) -> st.SearchStrategy:
    meta = meta_of(cls, name)
    hint = _scalar(typing.get_type_hints(cls)[name])
    wrong_type = st.one_of(
        st.text(max_size=30), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )  # fmt: skip
    huge = st.integers(min_value=30, max_value=5000).flatmap(
        lambda digits: st.sampled_from([10**digits, -(10**digits)])
    )
    options = [wrong_type, huge, st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308])]
    if hint is int:
        options.append(st.floats(allow_nan=False).filter(lambda v: not v.is_integer()))
    if meta.get("choices"):
        options.append(st.integers().filter(lambda v: v not in meta["choices"]))
    else:
        low, high = bounds(meta)
        exclusive_low, exclusive_high = meta.get("gt") is not None, meta.get("lt") is not None
        if hint is int:
            options += [st.integers(max_value=int(low) - 1), st.integers(min_value=int(high) + 1)]
        else:
            below = st.floats(max_value=low, exclude_max=not exclusive_low, allow_nan=False, allow_infinity=False)
            above = st.floats(min_value=high, exclude_min=not exclusive_high, allow_nan=False, allow_infinity=False)
            options += [below, above]
    return st.one_of(*options)


def assert_one_line_config_error(call, *args, **kwargs) -> str:
    try:
        call(*args, **kwargs)
    except ConfigError as error:
        message = str(error)
    else:
        raise AssertionError(f"accepted: {args} {kwargs}")
    assert message and "\n" not in message and len(message) < 1000, message
    return message


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=IDS)
def test_bad_values_in_a_table_are_refused(cls, name):
    hint = _base(typing.get_type_hints(cls)[name])

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bad=bad_values(cls, name), as_item=st.booleans())
    def check(bad, as_item):
        table = dict(BASELINES[cls])
        if typing.get_origin(hint) is tuple and as_item:
            default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
            table[name] = [bad, *list(default)[1:]]
        else:
            table[name] = bad
        message = assert_one_line_config_error(build, cls, table, source="test.toml")
        assert name in message

    check()


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=IDS)
def test_bad_values_as_option_text_are_refused(cls, name):
    hint = _base(typing.get_type_hints(cls)[name])
    if typing.get_origin(hint) is tuple:
        return  # no option carries a list

    @settings(max_examples=15, deadline=None)
    @given(bad=bad_values(cls, name))
    def check(bad):
        if isinstance(bad, int) and not isinstance(bad, bool) and bad.bit_length() > 10_000:
            text = ("-" if bad < 0 else "") + "9" * 5000  # str() refuses integers this long; argv does not
        else:
            text = bad if isinstance(bad, str) else str(bad)
        try:
            value = parse_text(cls, name, text)
        except ConfigError as error:
            assert "\n" not in str(error) and len(str(error)) < 1000
            return
        # the text spelled a good value (a bool as "True" is refused, a string may read as a number)
        assert isinstance(value, int | float) and math.isfinite(value)
        parse_text(cls, name, repr(value))

    check()


# --- valid configurations: --print-config output loads back the same ----------------------------


def valid_scalar(hint: Any, meta: typing.Mapping[str, Any]) -> st.SearchStrategy:
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    if hint is bool:
        return st.booleans()
    if hint is str:
        safe = st.characters(blacklist_categories=("Cc", "Cs"))
        return st.text(alphabet=safe, max_size=min(meta.get("max_chars") or 64, 40))
    low, high = bounds(meta)
    if hint is int:
        return st.integers(int(low), int(high))
    return st.floats(low, high, exclude_min=meta.get("gt") is not None, exclude_max=meta.get("lt") is not None)


def valid_table(cls: type, **fixed: st.SearchStrategy) -> st.SearchStrategy:
    """A table for ``cls`` with some fields drawn in range (the others left to their defaults)."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        hint = _base(hints[f.name])
        if f.name in fixed:
            fields[f.name] = fixed[f.name]
        elif typing.get_origin(hint) is tuple or dataclasses.is_dataclass(hint) or f.metadata.get("pattern"):
            continue
        else:
            fields[f.name] = valid_scalar(hint, f.metadata)
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def flight_configs(draw) -> dict:
    loop_hz = draw(st.floats(10.0, 5000.0))
    physics_dt = draw(st.floats(1e-4, min(MAX_PHYSICS_DT_S, 1.0 / loop_hz)))
    settings_table = draw(
        valid_table(
            FlightSettings,
            loop_hz=st.just(loop_hz),
            physics_dt_s=st.just(physics_dt),
            catchup_limit_s=st.floats(1.0 / loop_hz, min(60.0, 100_000 * physics_dt)),
            pilot=st.sampled_from(["hover", "keyboard", "script:a b/ü.toml"]),
            controller=st.sampled_from(["", "pkg.module:fly"]),
            fleet=st.integers(1, 8),
        )
    )
    channels = draw(st.permutations(range(1, 17)))[:6]
    rc = draw(valid_table(ChannelMap, reversed=st.lists(st.sampled_from(["roll", "yaw"]), unique=True)))
    rc.update(zip(("roll", "pitch", "collective", "yaw", "arm", "mode"), channels, strict=False))
    for stick in ("roll", "pitch", "collective", "yaw"):
        if draw(st.booleans()):
            rc[f"{stick}_us"] = sorted(draw(st.lists(st.floats(500, 2500), min_size=3, max_size=3, unique=True)))
    axes = draw(st.permutations(range(32)))[:4]
    joystick = dict(zip(("roll_axis", "pitch_axis", "collective_axis", "yaw_axis"), axes, strict=False))
    # (buttons clear of the gamepad preset's rescue button, 3, which "auto" may pick)
    joystick.update(arm_button=draw(st.integers(4, 31)), mode_button=draw(st.integers(32, 63)))
    joystick["deadband"] = draw(st.floats(0.0, 0.5))
    table = {"flight": settings_table, "rc": rc, "environment": draw(valid_table(Environment)), "joystick": joystick}
    if draw(st.booleans()):
        fleet = settings_table.get("fleet", 1)
        ports = []
        for index, role in enumerate(draw(st.lists(st.sampled_from(["servo", "link", "telemetry"]), max_size=4))):
            port = draw(valid_table(PortSpec, role=st.just(role), protocol=st.sampled_from(ROLE_PROTOCOLS[role][0])))
            port.update(name=f"port{index}", vehicle=draw(st.integers(0, fleet - 1)))
            ports.append(port)
        table["ports"] = ports
    if draw(st.booleans()):
        table["faults"] = [draw(valid_table(FaultSpec, kind=st.just("loop_delay"), port=st.just("")))]
    return table


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(table=flight_configs())
def test_print_config_output_loads_back_the_same(table):
    try:
        config = build(FlightConfig, table, source="generated")
    except ConfigError:
        assume(False)  # a combination the checks between fields refuse: not a valid configuration
        raise
    printed = config.to_toml()
    assert build(FlightConfig, parse_toml(printed.encode(), "printed.toml"), source="printed") == config


# --- the TOML pre-scan: refuses what breaks the parser, accepts what the parser reads ------------

TOML_PIECES = st.sampled_from(
    ["[", "]", "{", "}", "=", ",", ".", "\n", " ", "a", "1", "1.5", '"', "'", '"""', "'''", "#", "\\", "x = "]
)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(TOML_PIECES, max_size=300), repeat=st.integers(1, 60))
def test_any_text_is_a_table_or_a_one_line_error(pieces, repeat):
    text = "".join(pieces) * repeat
    try:
        result = parse_toml(text.encode(), "fuzz.toml")
    except ConfigError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(result, dict)


TOML_VALUES = st.recursive(
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=10), st.booleans()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, list | dict):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((depth(child) for child in children), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.text(min_size=1, max_size=12), TOML_VALUES, max_size=6))
def test_whatever_fits_the_limits_parses_as_tomllib_does(document):
    assume(depth(document) < MAX_NESTING)
    text = tomli_w.dumps(document)
    assert parse_toml(text.encode(), "doc.toml") == tomllib.loads(text)


@pytest.mark.parametrize("parts", [MAX_KEY_PARTS, MAX_KEY_PARTS + 1])
def test_the_key_limit_is_where_it_says(parts):
    text = ".".join(["k"] * parts) + " = 1\n"
    if parts <= MAX_KEY_PARTS:
        assert parse_toml(text.encode(), "keys.toml")
    else:
        with pytest.raises(ConfigError, match="parts"):
            parse_toml(text.encode(), "keys.toml")


@pytest.mark.parametrize("levels", [MAX_NESTING, MAX_NESTING + 1])
def test_the_nesting_limit_is_where_it_says(levels):
    text = "x = " + "[" * levels + "]" * levels + "\n"
    if levels <= MAX_NESTING:
        assert parse_toml(text.encode(), "deep.toml")
    else:
        with pytest.raises(ConfigError, match="nested"):
            parse_toml(text.encode(), "deep.toml")


# --- helicopters in range: loaded, or refused with one line; never a crash ------------------------


SECTIONS = dict(
    zip(
        ("mass", "main_rotor", "tail_rotor", "empennage", "fuselage", "drive", "servos", "contact"),
        HELI_TABLES,
        strict=True,
    )
)
HELI_FIELDS = [(section, f) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


@st.composite
def helicopter_tables(draw) -> dict:
    """A shipped helicopter with one to four parameters drawn anywhere in their ranges."""
    name = draw(st.sampled_from(["xcell60", "trex450", "trex700"]))
    table = tomllib.loads((configs_dir() / f"{name}.toml").read_text())
    table.pop("controller")
    for section, f in draw(st.lists(st.sampled_from(HELI_FIELDS), min_size=1, max_size=4, unique=True)):
        hint = typing.get_type_hints(SECTIONS[section])[f.name]
        table[section][f.name] = draw(valid_scalar(hint, f.metadata))
    return table


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=helicopter_tables())
def test_helicopters_in_range_load_or_are_refused_in_one_line(table):
    try:
        params = build(HeliParams, table, source="drawn.toml")
    except ConfigError as error:
        assert "\n" not in str(error)
        event("refused")
        return
    event("loaded")
    model = FlightModel.build(params)
    constants = [v for v in vars(model).values() if isinstance(v, float)]
    assert all(math.isfinite(v) for v in constants)
    rates = step_rates_per_s(params)
    assert all(math.isfinite(rate) and rate >= 0.0 for rate in rates.values()) and max(rates.values()) > 0.0
    try:
        trim = solve_hover_trim(model)
    except TrimError as error:
        assert "\n" not in str(error)
        return
    assert all(math.isfinite(v) for v in trim.contract().values())


def fly_open_loop(heli: HeliConfig, dt_s: float) -> np.ndarray:
    """Spool up on the ground at full throttle for 2 s, then hold the trimmed hover for 2 s."""
    model = FlightModel.build(heli.params)
    state = ground_state(model, 1)
    spool = ActuatorCommand(np.array([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    for _ in range(round(2.0 / dt_s)):
        state = state.__class__(model_step(model, state, spool, dt_s))
    trim = solve_hover_trim(model)
    hover = hover_state(model, trim, 1)
    command = ActuatorCommand(np.array([[*hover.packed[0, 18:22], trim.throttle]]))
    for _ in range(round(2.0 / dt_s)):
        hover = hover.__class__(model_step(model, hover, command, dt_s))
    return np.concatenate([state.packed, hover.packed])


def model_step(model, state, command, dt_s):
    from heli.dynamics import step

    return step(model, state, command, dt_s).packed


@pytest.mark.parametrize("name", ["xcell60", "trex450", "trex700"])
def test_the_longest_step_the_check_allows_flies(name):
    """The physics-step check is not permissive for the shipped helicopters: at the longest step it
    allows (and at 1 ms) they spool up on the ground and hover without blowing up."""
    heli = load_heli(name)
    longest = MAX_RATE_STEP_PRODUCT / max(step_rates_per_s(heli.params).values())
    config = FlightConfig(flight=FlightSettings(physics_dt_s=min(longest, 0.002), loop_hz=10.0))
    check_physics_step(heli, config)
    with pytest.raises(ConfigError, match="too long"):
        check_physics_step(heli, FlightConfig(flight=FlightSettings(physics_dt_s=longest * 1.01, loop_hz=10.0)))
    for dt_s in (0.001, longest):
        assert np.all(np.isfinite(fly_open_loop(heli, dt_s))), f"{name} blew up at {dt_s} s"


def test_the_config_round_trip_keeps_the_heli_table():
    heli = load_heli("trex700")
    table = {**to_table(heli.params), "controller": to_table(heli.controller)}
    from sim.config import heli_from_table

    again = heli_from_table(tomllib.loads(tomli_w.dumps(table)), "again")
    assert again.params == heli.params and again.controller == heli.controller


def test_one_protocol_table_feeds_the_config_and_the_command_line():
    """The codecs' table (``sim.ports.codecs``) is the one list of protocols: the flight file's
    choices, each role's defaults and the --*-protocol options all come from it."""
    from sim.cli import build_parser
    from sim.dataclass_io import field_meta
    from sim.ports.codecs import PROTOCOLS, ROLE_PROTOCOLS, make_codec, protocols_for

    assert field_meta(PortSpec, "protocol")["choices"] == ("", *PROTOCOLS)
    for role, (spoken, real, virtual) in ROLE_PROTOCOLS.items():
        assert spoken == protocols_for(role) and {real, virtual} <= set(spoken)
        assert all(role in make_codec(name).roles for name in spoken)
    fly = build_parser(["fly"])._subparsers._group_actions[0].choices["fly"]
    options = {action.dest: action.choices for action in fly._actions}
    for option, role in (("rc_protocol", "rc-in"), ("rc_out_protocol", "rc-out"), ("servo_protocol", "servo"),
                         ("telemetry_protocol", "telemetry")):  # fmt: skip
        assert tuple(options[option]) == protocols_for(role)


def test_every_port_role_is_one_class_one_protocol_row_and_one_outgoing_rule():
    from sim.config import PORT_ROLES
    from sim.ports.codecs import ROLE_PROTOCOLS
    from sim.ports.roles import ROLES
    from sim.wiring import PortIO

    assert set(ROLES) == set(ROLE_PROTOCOLS) == set(PORT_ROLES) == set(PortIO._OUTGOING)
    assert all(cls.role == role and cls.device for role, cls in ROLES.items())
    from sim.cli.device import _BUILDERS  # heli-sim device KIND: every role's far end is one of them

    assert {cls.device for cls in ROLES.values()} <= set(_BUILDERS)


def test_one_table_of_pilots_gives_the_schema_and_who_sits_at_the_sticks():
    from sim.config import PILOT_KINDS, pilot_kind

    for spec, transmitter in (("hover", False), ("hover:12.5", False), ("keyboard", True), ("joystick", True),
                              ("joystick:3", True), ("script:up.toml", False)):  # fmt: skip
        assert parse_text(FlightSettings, "pilot", spec) == spec
        assert pilot_kind(spec).transmitter is transmitter
        assert FlightSettings(pilot=spec).pilot_is_transmitter is transmitter
    for bad in ("hover:", "keyboard:1", "script", "joystick:x", "autopilot"):
        with pytest.raises(ConfigError, match="hover\\[:SECONDS\\], keyboard, joystick\\[:N\\] or script:FILE"):
            parse_text(FlightSettings, "pilot", bad)
    assert list(PILOT_KINDS) == ["hover", "keyboard", "joystick", "script"]
