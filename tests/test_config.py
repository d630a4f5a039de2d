"""Configuration loading (``sim.config``, ``sim.dataclass_io``): the shipped helicopters load, and
every bad file is a one-line ``ConfigError`` naming the file, the key path, the value and what
was expected.  Bad files are rewritten copies of ``configs/xcell60.toml``."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import tomli_w

from heli.errors import ConfigError, HeliSimError
from heli.params import Environment
from sim.config import (
    ChannelMap,
    FlightConfig,
    FlightSettings,
    HeliConfig,
    apply_overrides,
    configs_dir,
    heli_names,
    load_flight,
    load_heli,
)
from sim.dataclass_io import build

SHIPPED = ("xcell60", "trex450", "trex700")


@pytest.fixture(scope="module")
def xcell60_table() -> dict:
    """The parsed shipped X-Cell file; tests get a deep copy to modify."""
    return tomllib.loads((configs_dir() / "xcell60.toml").read_text())


@pytest.fixture
def table(xcell60_table) -> dict:
    return copy.deepcopy(xcell60_table)


def write_toml(tmp_path: Path, table: dict, name: str = "heli.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(table))
    return path


def config_error(call, *args, **kwargs) -> str:
    """The message of the ConfigError that ``call`` raises; it must be a single, non-empty line."""
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert message.strip(), "empty error message"
    assert "\n" not in message, f"error message is not one line: {message!r}"
    return message


def assert_mentions(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from error: {message}"


# --- the shipped helicopters -------------------------------------------------------------------


def test_shipped_helicopters_are_listed():
    names = heli_names()
    assert set(SHIPPED) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", heli_names())
def test_every_shipped_helicopter_loads(name):
    config = load_heli(name)
    assert isinstance(config, HeliConfig)
    assert config.params.name == name
    assert Path(config.source).name == f"{name}.toml"


def test_load_by_path_matches_load_by_name():
    by_name = load_heli("trex450")
    by_path = load_heli(str(configs_dir() / "trex450.toml"))
    assert by_path.params == by_name.params
    assert by_path.controller == by_name.controller


def test_rewritten_copy_loads_the_same(tmp_path, table):
    # the baseline for every bad file below: the unmodified rewrite is accepted
    path = write_toml(tmp_path, table)
    rewritten = load_heli(str(path))
    shipped = load_heli("xcell60")
    assert rewritten.params == shipped.params
    assert rewritten.controller == shipped.controller
    assert rewritten.source == str(path)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, HeliSimError)


# --- bad helicopter files ----------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(tmp_path, table):
    table["main_rotor"]["radius_cm"] = table["main_rotor"].pop("radius_m") * 100.0
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "main_rotor.radius_cm", "unknown key", "did you mean 'radius_m'")


def test_unknown_key_next_to_the_right_one(tmp_path, table):
    table["main_rotor"]["radius_cm"] = 77.5
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "main_rotor.radius_cm", "radius_m")


def test_unknown_table_suggests_the_close_one(tmp_path, table):
    table["mainrotor"] = table.pop("main_rotor")
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "mainrotor", "did you mean 'main_rotor'")


def test_unknown_controller_key(tmp_path, table):
    table["controller"]["roll_p"] = 0.01
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "controller.roll_p", "did you mean 'roll_p_s'")


@pytest.mark.parametrize(
    ("section", "key", "value", "fragments"),
    [
        ("main_rotor", "radius_m", "0.775", ("'0.775'", "a number", " m:")),
        ("main_rotor", "radius_m", True, ("True", "a number", " m:")),
        ("mass", "mass_kg", [8.2], ("[8.2]", "a number", " kg:")),
        ("main_rotor", "blade_count", True, ("True", "whole number", "blades")),
        ("main_rotor", "blade_count", 2.5, ("2.5", "whole number", "blades")),
        ("main_rotor", "rotation", 1, ("1", "'cw'", "'ccw'")),
    ],
    ids=["string-for-number", "bool-for-number", "list-for-number", "bool-for-int", "float-for-int", "int-for-str"],
)
def test_wrong_type(tmp_path, table, section, key, value, fragments):
    table[section][key] = value
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), f"{section}.{key}", *fragments)


@pytest.mark.parametrize(
    ("section", "key", "value", "fragments"),
    [
        ("main_rotor", "radius_m", -0.5, ("-0.5", "from 0.05 to 1.5 m", "RC scale")),
        ("main_rotor", "radius_m", 0.0, ("0.0", "from 0.05 to 1.5 m")),
        ("main_rotor", "blade_count", 1, ("1", "from 2 to 8 blades")),
        ("mass", "mass_kg", 150.0, ("150.0", "from 0.05 to 30 kg", "large-scale")),
        ("controller", "roll_p_s", -1.0, ("-1.0", "from 0 to 1")),
        ("main_rotor", "radius_m", float("nan"), ("nan", "a finite number", " m:")),
    ],
    ids=["negative-radius", "zero-radius", "one-blade", "heavy", "negative-gain", "nan"],
)
def test_out_of_range(tmp_path, table, section, key, value, fragments):
    table[section][key] = value
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), f"{section}.{key}", "out of range", *fragments)


def test_missing_required_key(tmp_path, table):
    del table["main_rotor"]["radius_m"]
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "main_rotor.radius_m", "missing", "from 0.05 to 1.5 m")


def test_missing_required_table(tmp_path, table):
    del table["servos"]
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "servos", "missing")


def test_missing_name(tmp_path, table):
    del table["name"]
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "name", "missing")


@pytest.mark.parametrize(
    ("section", "key", "value", "fragments"),
    [
        ("main_rotor", "rotation", "left", ("'left'", "'cw'", "'ccw'")),
        ("drive", "kind", "steam", ("'steam'", "'engine'", "'electric'")),
        ("servos", "swash_type_deg", 90, ("90", "one of 120, 135, 140 deg")),
    ],
    ids=["rotation", "drive-kind", "swash-type"],
)
def test_wrong_choice(tmp_path, table, section, key, value, fragments):
    table[section][key] = value
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), f"{section}.{key}", *fragments)


@pytest.mark.parametrize("section", ["main_rotor", "controller"])
def test_table_given_as_a_value(tmp_path, table, section):
    table[section] = 3
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), section, "expected a table", "3")


def test_checks_between_fields_name_the_file_and_keys(tmp_path, table):
    table["main_rotor"]["polar_inertia_kg_m2"] = 0.275  # in range, but about the whole vehicle's yaw inertia
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "main_rotor.polar_inertia_kg_m2", "mass.inertia_zz_kg_m2")


def test_checks_between_fields_name_the_bad_value(tmp_path, table):
    table["main_rotor"]["polar_inertia_kg_m2"] = 0.275
    path = write_toml(tmp_path, table)
    message = config_error(load_heli, str(path))
    assert_mentions(message, "0.275")


def test_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text((configs_dir() / "xcell60.toml").read_text().replace("[main_rotor]", "[main_rotor", 1))
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "not valid TOML", "line")


def test_file_that_does_not_exist(tmp_path):
    path = tmp_path / "absent.toml"
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path), "no such file")


def test_directory_instead_of_a_file(tmp_path):
    message = config_error(load_heli, str(tmp_path))
    assert_mentions(message, str(tmp_path), "directory")


def test_binary_file(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    message = config_error(load_heli, str(path))
    assert_mentions(message, str(path))


def test_unknown_helicopter_name_lists_the_valid_ones():
    message = config_error(load_heli, "nope")
    assert_mentions(message, "'nope'", *heli_names())


# --- flight files ------------------------------------------------------------------------------


def test_no_flight_file_means_the_defaults():
    assert load_flight(None) == FlightConfig()


def test_partial_flight_file_keeps_the_other_defaults(tmp_path):
    path = write_toml(tmp_path, {"flight": {"fleet": 3}, "rc": {"roll": 2, "pitch": 1}}, "flight.toml")
    config = load_flight(path)
    assert config.flight == FlightSettings(fleet=3)
    assert config.rc == ChannelMap(roll=2, pitch=1)
    assert config.environment == Environment()


@pytest.mark.parametrize("io", ["serial", "THREADED", 3])
def test_flight_bad_io(tmp_path, io):
    path = write_toml(tmp_path, {"flight": {"io": io}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flight.io", repr(io), "'threaded'", "'blocking'", "'asyncio'")


def test_flight_unknown_table(tmp_path):
    path = write_toml(tmp_path, {"flite": {"io": "threaded"}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flite", "did you mean 'flight'")


def test_flight_unknown_key(tmp_path):
    path = write_toml(tmp_path, {"flight": {"fleeet": 2}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flight.fleeet", "did you mean 'fleet'")


def test_flight_table_given_as_a_value(tmp_path):
    path = write_toml(tmp_path, {"flight": 3}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flight", "expected a table")


@pytest.mark.parametrize(
    ("section", "key", "value", "fragments"),
    [
        ("flight", "fleet", 0, ("0", "a whole number from 1 to 100000")),
        ("flight", "loop_hz", 5.0, ("5.0", "from 10 to 5000 Hz")),
        ("flight", "duration_s", -1.0, ("-1.0", "from 0 to 1000000 s")),
        ("rc", "roll", 0, ("0", "from 1 to 16 (channel)")),
        ("environment", "air_density_kg_m3", 5.0, ("5.0", "from 0.4 to 1.6 kg/m^3", "sea level")),
    ],
)
def test_flight_out_of_range(tmp_path, section, key, value, fragments):
    path = write_toml(tmp_path, {section: {key: value}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), f"{section}.{key}", "out of range", *fragments)


def test_flight_step_longer_than_a_loop_period(tmp_path):
    path = write_toml(tmp_path, {"flight": {"loop_hz": 1000.0, "physics_dt_s": 0.002}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flight", "physics_dt_s", "0.002")


def test_flight_unknown_pilot(tmp_path):
    path = write_toml(tmp_path, {"flight": {"pilot": "gamepad"}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "flight", "'gamepad'", "hover", "keyboard", "joystick[:N]", "script:")


def test_flight_file_that_does_not_exist(tmp_path):
    message = config_error(load_flight, tmp_path / "absent.toml")
    assert_mentions(message, str(tmp_path / "absent.toml"), "no such file")


def test_flight_file_malformed(tmp_path):
    path = tmp_path / "flight.toml"
    path.write_text("[flight]\nfleet = \n")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "not valid TOML")


def test_channel_map_rejects_two_functions_on_one_channel():
    message = config_error(ChannelMap, roll=2)
    assert_mentions(message, "channel")
    with pytest.raises(ConfigError):
        ChannelMap(arm=6)  # the mode's channel


def test_channel_map_reordered_is_accepted():
    cmap = ChannelMap(roll=6, pitch=5, collective=4, yaw=3, arm=2, mode=1)
    assert (cmap.roll, cmap.mode) == (6, 1)


def test_flight_file_with_a_shared_channel(tmp_path):
    path = write_toml(tmp_path, {"rc": {"yaw": 3}}, "flight.toml")
    message = config_error(load_flight, path)
    assert_mentions(message, str(path), "rc", "channel")


@pytest.mark.parametrize(
    "config",
    [
        FlightConfig(),
        FlightConfig(
            flight=FlightSettings(heli="trex700", fleet=4, io="asyncio", pilot="script:s.toml", duration_s=2.5),
            rc=ChannelMap(roll=2, pitch=1, arm=7, mode=8),
            environment=Environment(wind_north_m_s=3.0, air_density_kg_m3=1.0),
        ),
    ],
    ids=["defaults", "changed"],
)
def test_to_toml_round_trips(tmp_path, config):
    text = config.to_toml()
    assert "[flight]" in text
    path = tmp_path / "flight.toml"
    path.write_text(text)
    assert load_flight(path) == config


# --- command-line overrides --------------------------------------------------------------------


@pytest.fixture
def file_config(tmp_path) -> FlightConfig:
    table = {
        "flight": {"fleet": 3, "io": "blocking", "loop_hz": 250.0, "physics_dt_s": 0.002},
        "rc": {"roll": 2, "pitch": 1},
        "environment": {"wind_east_m_s": 2.0},
    }
    return load_flight(write_toml(tmp_path, table, "flight.toml"))


def test_overrides_beat_the_file_and_the_file_beats_the_defaults(file_config):
    config = apply_overrides(file_config, fleet=7, io=None, duration_s=2.0, heli=None)
    assert config.flight.fleet == 7  # override
    assert config.flight.io == "blocking"  # file (None means not given)
    assert config.flight.loop_hz == 250.0  # file
    assert config.flight.physics_dt_s == 0.002  # file
    assert config.flight.duration_s == 2.0  # override
    assert config.flight.heli == FlightSettings().heli  # default
    assert config.flight.pilot == FlightSettings().pilot  # default
    assert config.rc == file_config.rc
    assert config.environment == file_config.environment


def test_overrides_all_none_change_nothing(file_config):
    assert apply_overrides(file_config, fleet=None, io=None, pilot=None) == file_config
    assert apply_overrides(file_config) == file_config


def test_override_leaves_the_given_config_alone(file_config):
    before = copy.deepcopy(file_config)
    apply_overrides(file_config, fleet=9)
    assert file_config == before


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"fleet": 0}, ("flight.fleet", "0", "from 1 to 100000")),
        ({"fleet": True}, ("flight.fleet", "True", "whole number")),
        ({"io": "bogus"}, ("flight.io", "'bogus'", "'threaded'")),
        ({"duration_s": -1.0}, ("flight.duration_s", "-1.0", "from 0 to")),
        ({"loop_hz": "fast"}, ("flight.loop_hz", "'fast'", "a number")),
        ({"start": "orbit"}, ("flight.start", "'orbit'", "'ground'", "'hover'")),
        ({"fleat": 2}, ("flight.fleat", "unknown key")),
    ],
    ids=["fleet-0", "fleet-bool", "io", "duration", "loop-hz-str", "start", "unknown"],
)
def test_overrides_are_validated(settings, fragments):
    message = config_error(apply_overrides, FlightConfig(), **settings)
    assert_mentions(message, "command line", *fragments)


def test_override_checked_against_the_file(file_config):
    # the file's 2 ms step is too long for a 1 kHz loop given on the command line
    message = config_error(apply_overrides, file_config, loop_hz=1000.0)
    assert_mentions(message, "physics_dt_s")


# --- the joystick ------------------------------------------------------------------------------


def test_joystick_table_loads_with_its_calibration(tmp_path):
    table = {"joystick": {"roll_axis": 3, "yaw_axis": 0, "inverted": ["yaw"], "collective_range": [-0.8, 0.1, 0.9]}}
    config = load_flight(write_toml(tmp_path, table, "flight.toml"))
    assert config.joystick.roll_axis == 3 and config.joystick.inverted == ("yaw",)
    assert config.joystick.collective_range == (-0.8, 0.1, 0.9)


@pytest.mark.parametrize(
    ("table", "fragments"),
    [
        ({"roll_axis": 1}, ("two sticks share an axis", "roll and pitch are both on axis 1")),
        ({"preset": "edgetx", "arm_axis": 2}, ("a switch shares an axis", "collective and arm are both on axis 2")),
        ({"yaw_axis": 5}, ("mode are both on axis 5", "preset edgetx, auto's pick for a radio")),
        ({"mode_button": 0}, ("arm_button and mode_button are both 0",)),
        ({"inverted": ["throttle"]}, ("joystick.inverted", "'throttle'", "'roll', 'pitch', 'collective', 'yaw'")),
        ({"yaw_range": [0.5, 0.0, 1.0]}, ("joystick.yaw_range", "[low, centre, high]", "increasing")),
        ({"roll_axs": 3}, ("joystick.roll_axs", "unknown key", "roll_axis")),
    ],
)
def test_bad_joystick_tables_are_named(tmp_path, table, fragments):
    path = write_toml(tmp_path, {"joystick": table}, "flight.toml")
    assert_mentions(config_error(load_flight, path), *fragments)


@pytest.mark.parametrize("name", ["example-flight", "seed-demo"])
def test_a_printed_flight_config_loads_back_the_same(name):
    """``--print-config`` output is a flight file (and a flight log's header holds the same table)."""
    config = load_flight(configs_dir() / f"{name}.toml")
    assert build(FlightConfig, tomllib.loads(config.to_toml()), source="printed") == config
