"""Bad command-line input through the real ``heli-sim`` command (``python -m sim``) in a subprocess:
exit status 2, exactly one line on stderr, no traceback.  And the quick good paths."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

import sim
from tests.helpers import run_command_forked

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60.0
EXIT_BAD_INPUT = 2
TRIM_KEYS = {
    "collective_deg",
    "lateral_cyclic_deg",
    "longitudinal_cyclic_deg",
    "tail_pitch_deg",
    "roll_deg",
    "pitch_deg",
    "rotor_speed_rpm",
    "induced_velocity_m_s",
    "main_rotor_thrust_n",
    "main_rotor_torque_nm",
    "main_rotor_power_w",
    "tail_thrust_n",
}


def heli_sim(*args: str) -> subprocess.CompletedProcess:
    """``heli-sim ARGS`` in its own process through the real entry point (forked: no interpreter start)."""
    return run_command_forked(args, cwd=REPO, timeout_s=TIMEOUT_S)


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str, stdout_empty: bool = True) -> str:
    """Exit 2, one non-empty line on stderr naming ``fragments``, no traceback; returns the line."""
    context = f"exit {result.returncode}\nstderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert "Traceback" not in result.stderr, context
    assert result.returncode == EXIT_BAD_INPUT, context
    lines = result.stderr.splitlines()
    assert len(lines) == 1, context
    line = lines[0]
    assert line.strip(), context
    if stdout_empty:
        assert result.stdout == "", context
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} missing from: {line}"
    return line


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["fly", "--io", "bogus"], ["--io", "'bogus'", "threaded"]),
        (["fly", "--heli", "nope"], ["'nope'", "xcell60", "trex450", "trex700"]),
        (["fly", "--config", "/nonexistent.toml"], ["/nonexistent.toml"]),
        (["fly", "--fleet", "0"], ["fleet", "0"]),
        (["fly", "--fleet", "two"], ["--fleet", "'two'"]),
        (["fly", "--duration", "-1"], ["duration", "-1"]),
        (["fly", "--loop-hz", "1"], ["--loop-hz", "1", "from 10 to 5000 Hz"]),
        (["fly", "--pilot", "script:/nonexistent.toml", "--duration", "1", "--headless"], ["/nonexistent.toml"]),
        (["fly", "--pilot", "gamepad", "--duration", "1", "--headless"], ["'gamepad'", "joystick[:N]"]),
        (
            ["fly", "--pilot", "joystick:99", "--duration", "1", "--headless"],
            ["joystick 99: not found", "heli-sim ports"],
        ),
        (["calibrate", "--joystick", "99", "--seconds", "1"], ["joystick 99: not found"]),
        (["fly", "--pilot", "keyboard", "--headless", "--duration", "1"], ["keyboard"]),
        (["fly", "--stats-json", "/nonexistent-dir/x.json", "--duration", "1", "--headless"], ["/nonexistent-dir"]),
        (["trim"], ["--heli"]),
        (["trim", "--heli", "nope"], ["'nope'", "xcell60"]),
        (["margins", "--heli", "xcell60", "--delay-ms", "500"], ["--delay-ms", "500", "from 0 to 200 ms"]),
        (["fly", "--start-altitude", "0.1", "--headless", "--duration", "1"], ["--start-altitude", "0.5"]),
        (["fly", "--start-altitude", "20", "--headless", "--duration", "1"], ["--start-altitude 20", "--start hover"]),
        (["bench", "nosuchbench"], ["'nosuchbench'"]),
        (["bench", "soak", "--duration", "0"], ["--duration", "0", "positive"]),
        (["nosuchcommand"], ["'nosuchcommand'", "fly", "trim", "bench"]),
        ([], ["COMMAND"]),
        (["fly", "--frobnicate"], ["--frobnicate"]),
        (["fly", "--rc-protocol", "crsf", "--headless", "--duration", "1"], ["hover pilot", "crsf", "script:FILE"]),
        (["fly", "--link-latency", "30", "--headless", "--duration", "1"], ["--link-latency 30", "no link port"]),
        (["fly", "--heli", "configs/seed-demo.toml", "--duration", "1"], ["a flight file", "--config"]),
        (["calibrate", "--rc", "virtual", "--seconds", "1", "--pilot", "script:/dev/zero"], ["/dev/zero"]),
        (["fly", "--rc", "socket://host:99999", "--headless", "--duration", "1"], ["a TCP port from 1 to 65535"]),
    ],
    ids=[
        "fly-io",
        "fly-heli",
        "fly-config-missing",
        "fly-fleet-0",
        "fly-fleet-word",
        "fly-duration-negative",
        "fly-loop-hz-low",
        "fly-script-missing",
        "fly-pilot-unknown",
        "fly-joystick-absent",
        "calibrate-joystick-absent",
        "fly-keyboard-headless",
        "fly-stats-json-no-folder",
        "trim-no-heli",
        "trim-heli",
        "margins-delay-too-long",
        "fly-start-altitude-too-low",
        "fly-start-altitude-on-the-ground",
        "bench-name",
        "bench-soak-duration",
        "unknown-subcommand",
        "no-subcommand",
        "unknown-option",
        "fly-hover-pilot-over-crsf",
        "fly-link-latency-without-link",
        "fly-flight-file-as-heli",
        "calibrate-script-checked-first",
        "fly-socket-port-out-of-range",
    ],
)
def test_bad_input(args, fragments):
    assert_bad_input(heli_sim(*args), *fragments)


def test_config_file_with_a_bad_key(tmp_path):
    path = tmp_path / "flight.toml"
    path.write_text(tomli_w.dumps({"flight": {"fleeet": 2}}))
    assert_bad_input(heli_sim("fly", "--config", str(path), "--duration", "1", "--headless"), str(path), "fleeet")


def test_config_file_malformed(tmp_path):
    path = tmp_path / "flight.toml"
    path.write_text("[flight\nfleet = 2\n")
    assert_bad_input(heli_sim("fly", "--config", str(path), "--duration", "1", "--headless"), str(path))


def test_helicopter_file_with_a_bad_value(tmp_path):
    table = tomllib.loads((REPO / "configs" / "xcell60.toml").read_text())
    table["main_rotor"]["radius_m"] = -0.5
    path = tmp_path / "heli.toml"
    path.write_text(tomli_w.dumps(table))
    assert_bad_input(heli_sim("trim", "--heli", str(path)), str(path), "main_rotor.radius_m", "-0.5")


def test_bad_pilot_script(tmp_path):
    path = tmp_path / "script.toml"
    path.write_text("[[at]]\nt = 0\n[[at]]\nt = 1\n[[at]]\nt = 2\npitch = 2500\n")
    result = heli_sim("fly", "--pilot", f"script:{path}", "--duration", "1", "--headless", "--quiet")
    assert_bad_input(result, str(path), "at[2].pitch", "2500")


def test_stats_json_is_a_directory(tmp_path):
    result = heli_sim("fly", "--stats-json", str(tmp_path), "--duration", "0.2", "--headless", "--quiet")
    assert_bad_input(result, str(tmp_path))


def test_bad_input_writes_nothing_over(tmp_path):
    stats = tmp_path / "run.json"
    stats.write_text("an earlier run's summary\n")
    bad = tmp_path / "flight.toml"
    bad.write_text("[flight]\nfleet = 0\n")
    result = heli_sim("fly", "--config", str(bad), "--stats-json", str(stats), "--log", str(tmp_path / "log"))
    assert_bad_input(result, "fleet")
    assert stats.read_text() == "an earlier run's summary\n"
    assert not (tmp_path / "log").exists()


def test_a_forbidden_port_is_named_with_the_fix(tmp_path):
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        os.chmod(path, 0)
        # root opens anything: without its power to override file permissions it is refused like anyone
        command = [sys.executable, "-m", "sim", "fly", "--headless", "--duration", "1", "--servo", path]
        if os.geteuid() == 0:
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S)
    finally:
        os.close(master)
        os.close(slave)
    assert_bad_input(result, path, "permission denied", "dialout")


def test_bench_json_into_a_missing_folder():
    result = heli_sim("bench", "step", "--quick", "--json", "/nonexistent-dir/x.json")
    assert_bad_input(result, "/nonexistent-dir", stdout_empty=False)  # figures printed before the check are fine


def test_channel_map_the_config_accepts_does_not_crash(tmp_path):
    path = tmp_path / "flight.toml"
    path.write_text(tomli_w.dumps({"rc": {"arm": 17}}))
    result = heli_sim("fly", "--config", str(path), "--duration", "0.2", "--headless", "--quiet")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, EXIT_BAD_INPUT), result.stderr


# --- good paths --------------------------------------------------------------------------------


def test_trim_json():
    result = heli_sim("trim", "--heli", "trex450", "--json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert set(values) == TRIM_KEYS
    assert all(isinstance(v, float | int) and math.isfinite(v) for v in values.values())
    assert values["main_rotor_thrust_n"] > 0.0


def test_margins_json_names_every_loop_with_its_margins():
    result = heli_sim("margins", "--heli", "trex700", "--delay-ms", "50", "--json")
    assert result.returncode == 0, result.stderr
    loops = json.loads(result.stdout)
    names = [(m["axis"], m["loop"]) for m in loops]
    assert names == [("roll", "rate"), ("roll", "angle"), ("pitch", "rate"), ("pitch", "angle"), ("yaw", "rate"),
                     ("rotor speed", "governor")]  # fmt: skip
    assert all(m["gain_margin_db"] is None or m["gain_margin_db"] > 3.0 for m in loops)
    assert all(m["phase_margin_deg"] > 25.0 for m in loops)


def test_print_config_is_toml():
    result = heli_sim("fly", "--print-config")
    assert result.returncode == 0, result.stderr
    assert "[flight]" in result.stdout
    config = tomllib.loads(result.stdout)
    assert config["flight"]["heli"] == "xcell60"
    assert config["flight"]["fleet"] == 1


def test_print_config_shows_file_and_command_line(tmp_path):
    path = tmp_path / "flight.toml"
    path.write_text(tomli_w.dumps({"flight": {"fleet": 2, "io": "asyncio", "heli": "trex700"}}))
    result = heli_sim("fly", "--config", str(path), "--fleet", "5", "--print-config")
    assert result.returncode == 0, result.stderr
    flight = tomllib.loads(result.stdout)["flight"]
    assert flight["fleet"] == 5  # command line beats the file
    assert flight["io"] == "asyncio"  # the file beats the default
    assert flight["heli"] == "trex700"
    assert flight["loop_hz"] == 500.0  # the default


def test_version():
    result = heli_sim("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"heli-sim {sim.__version__}"


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [(["-v", "fly"], True), (["fly", "-v"], True), (["fly", "--verbose"], True), (["fly"], False),
     (["bench", "step", "-v"], True)],
)  # fmt: skip
def test_verbose_before_or_after_the_command(argv, verbose):
    from sim.cli import build_parser

    assert build_parser(argv).parse_args(argv).verbose is verbose


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(10_000.0, "vehicles", "10,000 vehicles"), (3_075_714.0, "1/s", "3.08 M/s"), (362_900.0, "1/s", "362.9 k/s"),
     (9.5, "1/s", "9.5 /s"), (17.73, "us", "17.7 us"), (0.306, "us", "0.306 us"), (0.508, "x", "0.51x"),
     (1234.5, "ms", "1,234 ms"), (576, "calls", "576 calls"), (1.0, "ratio", "1 ratio"), (999.7, "us", "1,000 us"),
     (999_999.0, "1/s", "1.00 M/s"), (math.nan, "us", "n/a us"), (math.inf, "1/s", "n/a 1/s"),
     (1e300, "us", "1e+300 us"), (1.2e-7, "s", "1.20e-07 s")],
)  # fmt: skip
def test_bench_figures_read_as_a_person_writes_them(value, unit, text):
    from sim.cli.bench import format_value

    assert format_value(value, unit) == text


def test_bench_prints_a_table_whose_numbers_line_up(capsys):
    from sim.bench import Result
    from sim.cli.bench import print_table

    print_table([Result("step", "single_step_us", 17.73, "us"), Result("step", "batch_size", 10_000, "vehicles"),
                 Result("step", "single_step_speed_vs_jsbsim", 0.508, "x")])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["single_step_us", "batch_size", "single_step_speed_vs_jsbsim"]
    ends = {line.index(number) + len(number) for line, number in zip(lines, ("17.7", "10,000", "0.51"), strict=True)}
    assert len(ends) == 1  # right-aligned


def test_output_cut_short_by_its_reader_is_141_as_the_shell_says_it():
    """``heli-sim configs | head -1``: the reader goes away; no traceback, and not "an internal error" (1)."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "configs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and err == b""
