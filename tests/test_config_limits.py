"""Hostile configuration through the real ``heli-sim`` command: every value is checked once, by one
schema, the same way on the command line, in flight files, helicopter files and pilot scripts,
and config inputs are regular files under a size cap, parsed with depth and key limits.

Each case runs the command in its own process, through its real entry point, with a timeout and
a memory limit, and expects exit status 2 and exactly one line on stderr naming the option or
key, the value and what was expected; never a traceback, a hang, or memory eaten without end.
Most run in a forked copy of the test process (``tests.helpers.run_command_forked``: no new
interpreter to start); the issue's own examples also run as a fresh ``python -m sim``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from sim.config import configs_dir
from tests.helpers import run_command_forked

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60.0
EXIT_BAD_INPUT = 2
MEMORY_LIMIT_BYTES = 1 << 30  # a child that tries to swallow /dev/zero dies at this instead of taking the machine


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def heli_sim(*args: str, timeout_s: float = TIMEOUT_S, fresh: bool = False) -> subprocess.CompletedProcess:
    """``heli-sim ARGS`` in a forked process, or with ``fresh`` a new ``python -m sim``."""
    if not fresh:
        return run_command_forked(args, cwd=REPO, timeout_s=timeout_s, memory_limit_bytes=MEMORY_LIMIT_BYTES)
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=_limit_memory,
    )


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one short line on stderr naming ``fragments``, no traceback; returns the line."""
    context = f"exit {result.returncode}\nstderr:\n{result.stderr[:3000]}\nstdout:\n{result.stdout[:3000]}"
    assert "Traceback" not in result.stderr, context
    assert result.returncode == EXIT_BAD_INPUT, context
    lines = result.stderr.splitlines()
    assert len(lines) == 1, context
    assert 0 < len(lines[0]) < 1000, context  # one line a person can read, not the bad value echoed whole
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from: {lines[0]}"
    return lines[0]


def shipped_heli() -> dict:
    return tomllib.loads((configs_dir() / "xcell60.toml").read_text())


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


FLY = ("fly", "--headless", "--quiet", "--duration", "0.2")


# --- the examples, on the command line -----------------------------------------------------


@pytest.mark.parametrize("value", ["1e-6", "1e-300", "0", "nan", "inf", "1e300", "fast"])
def test_physics_step_out_of_range(value):
    line = assert_bad_input(heli_sim(*FLY, "--physics-dt", value), "--physics-dt", value)
    assert "0.0001" in line or "a number" in line


def test_physics_step_refused_with_its_reason():
    result = heli_sim(*FLY, "--physics-dt", "1e-6", fresh=True)
    line = assert_bad_input(result, "--physics-dt", "1e-6", "from 0.0001 to 0.005 s")
    assert "real time" in line  # the reason, not just the numbers


def test_physics_step_too_long_for_the_helicopter():
    # in range for the schema, and one loop period long, but the X-Cell's landing gear needs <= 3.5 ms
    result = heli_sim(*FLY, "--loop-hz", "200", "--physics-dt", "0.005")
    assert_bad_input(result, "physics_dt_s", "0.005", "xcell60", "landing gear")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12", "-5", "ten"])
def test_link_latency_out_of_range(value):
    # "=": argparse takes -inf for an option; the NaN also through a fresh interpreter
    result = heli_sim(*FLY, "--link", "virtual", f"--link-latency={value}", fresh=value == "nan")
    assert_bad_input(result, "--link-latency", value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--fleet", "0"),
        ("--fleet", "100001"),
        ("--fleet", "1e3"),
        ("--fleet", "9" * 5000),  # more digits than int() converts
        ("--duration", "nan"),
        ("--duration", "inf"),
        ("--duration", "-1"),
        ("--duration", "1e300"),
        ("--loop-hz", "nan"),
        ("--loop-hz", "1e9"),
        ("--heli", "a" * 5000),
        ("--heli", "bad\x1bname"),
        ("--controller", "not a module"),
        ("--pilot", "script:"),
        ("--rc", "x" * 5000),
        ("--servo", "tab\there"),
    ],
)
def test_fly_options_are_checked_by_the_schema(option, value):
    line = assert_bad_input(heli_sim(*FLY, option, value), option)
    assert value[:20] in line or "..." in line or "\\" in line  # the value, shortened or escaped


def test_print_config_loads_back_the_same(tmp_path):
    """Command-line values go through the flight file's schema, so what they print is a flight file."""
    first = heli_sim(
        "fly", "--link", "virtual", "virtual", "--fleet", "2", "--link-latency", "250.5", "--loop-hz", "400",
        "--physics-dt", "0.0005", "--servo-protocol", "hsf", "--print-config",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    path = write(tmp_path, "printed.toml", first.stdout)
    assert tomllib.loads(first.stdout)["ports"][-1]["latency_ms"] == 250.5
    second = heli_sim("fly", "--config", str(path), "--print-config")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["trim", "--heli", "x" * 5000], ["--heli", "too long"]),
        (["trim", "--heli", "x" * 3000], ["unknown helicopter", "..."]),
        (["bench", "soak", "--duration", "nan"], ["--duration", "nan"]),
        (["bench", "soak", "--duration", "inf"], ["--duration", "inf"]),
        (["bench", "soak", "--duration", "-5"], ["--duration", "-5"]),
        (["bench", "soak", "--duration", "1e300"], ["--duration", "1e300"]),
        (["calibrate", "--rc", "virtual", "--seconds", "nan"], ["--seconds", "nan"]),
        (["calibrate", "--rc", "virtual", "--seconds", "inf"], ["--seconds", "inf"]),
        (["calibrate", "--rc", "virtual", "--seconds", "-1"], ["--seconds", "-1"]),
        (["calibrate", "--rc", "virtual", "--channel-map", "1,2,3,4,5,99"], ["--channel-map", "99", "from 1 to 16"]),
        (["calibrate", "--rc", "virtual", "--channel-map", "1,2,3,4,5," + "9" * 5000], ["--channel-map"]),
        (["calibrate", "--rc", "virtual", "--channel-map", "1,1,3,4,5,6"], ["--channel-map", "share"]),
        (["calibrate", "--rc", "virtual", "--reverse", "throttle"], ["--reverse", "throttle"]),
        (["device", "link", "--port", "loop://", "--latency-ms", "nan"], ["--latency-ms", "nan"]),
        (["device", "link", "--port", "loop://", "--latency-ms", "1e12"], ["--latency-ms", "1e12"]),
        (["device", "transmitter", "--port", "loop://", "--rate-hz", "inf"], ["--rate-hz", "inf"]),
        (["device", "transmitter", "--port", "loop://", "--fleet", "0"], ["--fleet", "0"]),
        (["device", "transmitter", "--port", "loop://", "--fleet", "-3"], ["--fleet", "-3"]),
        (["device", "servo", "--port", "loop://", "--baud", "-5"], ["--baud", "-5"]),
        (["device", "servo", "--port", "loop://", "--baud", "1e9"], ["--baud", "1e9"]),
        (["device", "servo", "--port", "loop://", "--protocol", "x" * 3000], ["--protocol"]),
        (["device", "servo", "--fd", "-1"], ["--fd", "-1"]),
        (["device", "servo", "--fd", "99999999999"], ["--fd"]),
        (["vports", "0"], ["0", "from 1 to 64"]),
        (["vports", "nan"], ["nan"]),
        (["vports", "1e9"], ["1e9"]),
        (["tour", "--step", "z" * 5000], ["--step"]),
        (["tour", "--screenshot", "/tmp/" + "d" * 5000], ["--screenshot", "too long"]),
        (["vports", "1", "--link-dir", "/tmp/" + "d" * 5000], ["--link-dir", "too long"]),
        (["device", "servo", "--port", "p\tq"], ["--port", "control characters"]),
    ],
    ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else None,
)
def test_other_subcommands_check_their_options(args, fragments):
    assert_bad_input(heli_sim(*args), *fragments)


# --- helicopter files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "command"),
    [
        *[
            (section, key, value, command)
            for section, key, value in (
                ("drive", "max_power_w", 1e300),
                ("main_rotor", "polar_inertia_kg_m2", 1e-300),
                ("contact", "skid_depth_m", 1e300),
                ("main_rotor", "hub_stiffness_nm_per_rad", 1e300),
            )
            for command in ("trim", "fly")
        ],
        ("mass", "mass_kg", 10**400, "trim"),  # an integer no float holds
        ("mass", "inertia_xx_kg_m2", float("inf"), "trim"),
        ("servos", "time_constant_s", float("nan"), "trim"),
    ],
)
def test_helicopter_values_out_of_range(tmp_path, section, key, value, command):
    table = shipped_heli()
    table[section][key] = value
    path = write(tmp_path, "heli.toml", tomli_w.dumps(table))
    args = ["trim", "--heli", str(path)] if command == "trim" else [*FLY, "--heli", str(path)]
    line = assert_bad_input(heli_sim(*args), str(path), f"{section}.{key}", "out of range", "expected")
    assert ":" in line.split("expected", 1)[1]  # the reason for the range follows the numbers


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({("mass", "inertia_xx_kg_m2"): 1e-5}, ["radius of gyration", "inertia_xx_kg_m2"]),
        ({("main_rotor", "polar_inertia_kg_m2"): 5e-6, ("drive", "max_power_w"): 20000.0}, ["polar_inertia_kg_m2"]),
        ({("main_rotor", "chord_m"): 0.004, ("main_rotor", "radius_m"): 1.5}, ["solidity"]),
        ({("main_rotor", "nominal_speed_rpm"): 8000.0}, ["tip speed"]),
        ({("empennage", "fin_area_m2"): 0.2, ("tail_rotor", "radius_m"): 0.05}, ["fin_area_m2", "wake"]),
        ({("contact", "skid_front_x_m"): -0.3}, ["skid_front_x_m", "skid_rear_x_m"]),
    ],
    ids=["gyration", "rotor-energy", "solidity", "tip-speed", "fin-blockage", "skids"],
)
def test_helicopter_combinations_that_cannot_fly(tmp_path, changes, fragments):
    """Each value in range, together impossible (they would divide by almost nothing or blow up)."""
    table = shipped_heli()
    for (section, key), value in changes.items():
        table[section][key] = value
    path = write(tmp_path, "heli.toml", tomli_w.dumps(table))
    assert_bad_input(heli_sim("trim", "--heli", str(path)), str(path), *fragments)


def test_a_huge_helicopter_name_in_a_flight_file(tmp_path):
    path = write(tmp_path, "flight.toml", tomli_w.dumps({"flight": {"heli": "h" * 100_000}}))
    assert_bad_input(heli_sim(*FLY, "--config", str(path)), str(path), "flight.heli", "too long")


def test_a_10_mb_flight_file(tmp_path):
    path = write(tmp_path, "flight.toml", '[flight]\nheli = "' + "h" * 10_000_000 + '"\n')
    assert_bad_input(heli_sim(*FLY, "--config", str(path)), str(path), "1 MiB")


def test_helicopter_path_that_is_not_a_regular_file(tmp_path):
    assert_bad_input(heli_sim("trim", "--heli", str(tmp_path)), str(tmp_path), "directory")
    assert_bad_input(heli_sim("trim", "--heli", "/dev/urandom"), "/dev/urandom", "character device")


# --- TOML that attacks the parser, as each kind of config input ------------------------------------

BOMBS = {
    "nested-arrays": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "nested-inline-tables": "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    "dotted-key": "a" + ".a" * 50_000 + " = 1\n",
    "dotted-header": "[" + "a." * 50_000 + "a]\n",
    "long-key": "k" * 100_000 + " = 1\n",
    "huge-integer": "x = " + "9" * 5000 + "\n",
    "not-utf8": b"\xff\xfe[flight]\n",
}


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name in list(BOMBS)[:3] for kind in ("flight", "heli", "script")]
    + [(name, "flight") for name in list(BOMBS)[3:]],
)
def test_toml_bombs(tmp_path, name, kind):
    path = write(tmp_path, "bomb.toml", BOMBS[name])
    option = {"flight": ["--config", str(path)], "heli": ["--heli", str(path)], "script": ["--pilot", f"script:{path}"]}
    assert_bad_input(heli_sim(*FLY, *option[kind], timeout_s=30.0), str(path))


@pytest.mark.parametrize(
    "option", [["--config", "/dev/zero"], ["--heli", "/dev/urandom"], ["--pilot", "script:/dev/zero"]]
)
def test_endless_devices_are_not_read(option):
    result = heli_sim(*FLY, *option, timeout_s=30.0, fresh=option[0] == "--config")
    assert_bad_input(result, option[1].removeprefix("script:"), "device")


def test_a_named_pipe_is_not_waited_on(tmp_path):
    fifo = tmp_path / "flight.toml"
    os.mkfifo(fifo)  # nobody ever writes: an open for reading would block for ever
    assert_bad_input(heli_sim(*FLY, "--config", str(fifo), timeout_s=30.0), str(fifo), "named pipe")


# --- pilot scripts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[[at]]\nt = inf\n", ["at[0].t", "inf", "finite"]),
        ("[[at]]\nt = 1e300\n", ["at[0].t", "1e+300"]),
        ("[[at]]\nt = 0\nroll = nan\n", ["at[0].roll", "nan"]),
        ("[[at]]\nt = 0\npitch = -1e300\n", ["at[0].pitch", "from 800 to 2200 us"]),
        ("[[at]]\nt = 2\n[[at]]\nt = 1\n", ["at[1].t", "order"]),
        ("at = []\n", ["at", "none"]),
    ],
)
def test_bad_pilot_scripts(tmp_path, text, fragments):
    path = write(tmp_path, "script.toml", text)
    assert_bad_input(heli_sim(*FLY, "--pilot", f"script:{path}"), str(path), *fragments)


def test_a_catch_up_cap_shorter_than_a_loop_period_is_refused():
    from heli.errors import ConfigError
    from sim.config import FlightSettings

    with pytest.raises(ConfigError, match=r"catchup_limit_s = 1e-300 s is shorter than a loop period"):
        FlightSettings(catchup_limit_s=1e-300)
    FlightSettings(catchup_limit_s=0.002)  # one period at 500 Hz: fine
