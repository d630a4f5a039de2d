"""A crafted or damaged flight log is one line naming the file and the field, exit status 2: never a
traceback, a hang, or a replay of something that is not a flight (issue 11, section 5).

Every case starts from a small valid log flown here, changes one thing, and runs the real
``heli-sim replay`` on it (a child process, with a timeout); hypothesis then mutates the header's
values, the events and the tick rows, and the reader and the replay raise nothing but ``LogError``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import FlightConfig, apply_overrides
from sim.errors import LogError
from sim.log.format import FRAME_DTYPE, TICK_DTYPE, NpyAppender
from sim.log.reader import read_log
from sim.log.replay import Replay
from sim.log.summary import replay_summary
from sim.loop import FlightLoop, ManualClock
from sim.report import format_summary
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import run_command_forked

ROOT = Path(__file__).resolve().parent.parent
REPLAY_TIMEOUT_S = 60  # a generous deadline: the cases end in about a second, a hang never does
FLEET = 2


def _toggle_at_tick_20(loop: FlightLoop) -> None:
    if loop.ticks == 20:
        loop.command("toggle_io")  # an event in events.jsonl


@pytest.fixture(scope="module")
def base_log(tmp_path_factory) -> Path:
    """A small valid log: 2 vehicles in hover, 0.2 s (101 ticks), one mode switch."""
    path = tmp_path_factory.mktemp("base") / "flight.hslog"
    config = apply_overrides(FlightConfig(ports=()), duration_s=0.2, fleet=FLEET, start="hover")
    with flight_session(config, heli("xcell60").config, clock=ManualClock(), before_tick=_toggle_at_tick_20,
                        log_path=str(path)) as loop:  # fmt: skip
        loop.run()
    log = read_log(str(path))
    assert log.tick_count == 101 and len(log.events) == 1 and log.status["status"] == "complete"
    return path


def copy_log(base: Path, where: Path) -> Path:
    target = where / "crafted.hslog"
    shutil.copytree(base, target)
    return target


def edit_header(log: Path, change: Callable[[dict], None]) -> None:
    header = json.loads((log / "header.json").read_text())
    change(header)
    (log / "header.json").write_text(json.dumps(header))


def edit_rows(log: Path, name: str, dtype: np.dtype, change: Callable[[np.ndarray], None]) -> None:
    rows = np.load(log / name)
    change(rows)
    (log / name).unlink()
    appender = NpyAppender(str(log / name), dtype)
    appender.append(rows)
    appender.close()


def set_key(key: str, value) -> Callable[[dict], None]:
    return lambda header: header.__setitem__(key, value)


def replay_command(log: Path, *options: str, fresh: bool = False) -> subprocess.CompletedProcess:
    """``heli-sim replay --headless LOG OPTIONS`` in its own process: forked (no interpreter to start),
    or with ``fresh`` a new ``python -m sim``."""
    args = ["replay", "--headless", str(log), *options]
    if not fresh:
        return run_command_forked(args, cwd=ROOT, timeout_s=REPLAY_TIMEOUT_S)
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=REPLAY_TIMEOUT_S)  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess, file: Path, *fragments: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"heli-sim replay: error: {file}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""  # nothing replayed
    return lines[0]


# --- the header


@pytest.mark.parametrize("value", ["abc", 0, -1, 1e30, [1], None, 1.5, True])
def test_a_header_fleet_that_is_no_fleet_is_named(base_log, tmp_path, value):
    log = copy_log(base_log, tmp_path)
    edit_header(log, set_key("fleet", value))
    line = assert_one_line(replay_command(log), log / "header.json", '"fleet"')
    assert "expected a whole number of vehicles" in line


def test_a_header_fleet_that_disagrees_with_the_recorded_flight_is_named(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    edit_header(log, set_key("fleet", 3))
    assert_one_line(replay_command(log), log / "header.json", '"fleet" = 3', "flight.flight.fleet = 2")
    edit_header(log, lambda h: (h.__setitem__("fleet", 2), h["flight"]["flight"].__setitem__("fleet", 1)))
    assert_one_line(replay_command(log), log / "header.json", '"fleet" = 2', "flight.flight.fleet = 1")


@pytest.mark.parametrize("value", [5, "xcell60", [1], None])
def test_a_heli_of_the_wrong_type_is_named(base_log, tmp_path, value):
    log = copy_log(base_log, tmp_path)
    edit_header(log, set_key("heli", value))
    assert_one_line(replay_command(log), log / "header.json", '"heli"', "expected an object")


def test_a_recorded_helicopter_value_goes_through_the_config_checks(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    edit_header(log, lambda h: h["heli"]["main_rotor"].__setitem__("radius_m", "big"))
    assert_one_line(replay_command(log), log / "header.json", "main_rotor.radius_m", "'big'")


@pytest.mark.parametrize("value", [0, -7, True, "1", 1.0])
def test_a_format_version_that_is_no_version_is_named(base_log, tmp_path, value):
    log = copy_log(base_log, tmp_path)
    edit_header(log, set_key("format_version", value))
    assert_one_line(replay_command(log), log / "header.json", '"format_version"')


def test_arrays_nested_100000_deep_are_refused_before_parsing(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    (log / "header.json").write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line(replay_command(log), log / "header.json", "nested 100000 deep")


def test_a_5001_digit_integer_is_named_by_its_field(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    text = (log / "header.json").read_text()
    assert '"fleet": 2' in text
    (log / "header.json").write_text(text.replace('"fleet": 2', '"fleet": ' + "9" * 5001))
    assert_one_line(replay_command(log), log / "header.json", '"fleet" = <an integer of 5001 digits>')


def test_a_header_of_a_gigabyte_is_refused_unread(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    with open(log / "header.json", "r+b") as handle:
        handle.truncate(1 << 30)  # sparse: reading it whole would take a gigabyte of memory
    assert_one_line(replay_command(log), log / "header.json", "1,073,741,824 bytes", "at most")


# --- events.jsonl


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("5", "expected an event object"),
        ('{"t_s": 0.1, "detail": "no kind"}', 'the event has no "kind"'),
        ('{"t_s": 0.1, "kind": 5, "detail": ""}', '"kind" = 5'),
        ('{"t_s": "soon", "kind": "pause", "detail": ""}', '"t_s"'),
        ('{"t_s": NaN, "kind": "pause", "detail": ""}', "NaN"),
        ("[" * 50 + "]" * 50, "nested 50 deep"),
    ],
)
def test_an_event_line_that_is_no_event_is_named(base_log, tmp_path, line, fragment):
    log = copy_log(base_log, tmp_path)
    (log / "events.jsonl").write_text(line + "\n")
    assert_one_line(replay_command(log), log / "events.jsonl", "events.jsonl:1:", fragment)


# --- ticks.npy


def test_a_tick_of_two_billion_steps_is_refused_not_replayed(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    edit_rows(log, "ticks.npy", TICK_DTYPE, lambda rows: rows["steps"].__setitem__(slice(20, 22), 2**31 - 1))
    assert_one_line(replay_command(log), log / "ticks.npy", '"steps" = 2147483647', "0 to 1000 physics steps")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("steps", -1, '"steps" = -1'),
        ("steps", 3, '"sim_time_s"'),  # one step more than the recorded simulated time took
        ("sim_time_s", 0.5, '"sim_time_s" = 0.5'),
        ("t_s", np.nan, '"t_s" = nan'),
        ("t_s", -1.0, '"t_s" = -1.0'),
        ("lateness_s", np.inf, '"lateness_s" = inf'),
        ("missed", -3, '"missed" = -3'),
        ("io_mode", 9, '"io_mode" = 9'),
        ("flags", 0, '"flags" = 0'),  # neither controlled nor paused
        ("flags", 2 | 4, '"flags" = 6'),  # both
        ("flags", 2 | 64, '"flags" = 66'),  # an unknown bit
        ("dt_control_s", -0.002, '"dt_control_s" = -0.002'),
        ("dt_control_s", 1e300, '"dt_control_s" = 1e+300'),
        ("tick", 1, "tick numbers that increase"),
        ("ch1", np.nan, '"ch1" = nan: expected microseconds from 0 to 65535'),
        ("ch16", 1e300, '"ch16" = 1e+300'),
        ("ch3", -5.0, '"ch3" = -5.0'),
    ],
)
def test_a_tick_value_out_of_its_range_is_named(base_log, tmp_path, column, value, fragment):
    log = copy_log(base_log, tmp_path)
    tick = 30

    def change(rows: np.ndarray) -> None:
        rows[column][tick * FLEET : (tick + 1) * FLEET] = value  # every vehicle of the tick alike

    edit_rows(log, "ticks.npy", TICK_DTYPE, change)
    with pytest.raises(LogError) as caught:
        read_log(str(log))
    message = str(caught.value)
    assert message.startswith(f"{log / 'ticks.npy'}: tick row ") and fragment in message, message


def test_ticks_that_disagree_between_vehicles_or_are_out_of_order_are_named(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    edit_rows(log, "ticks.npy", TICK_DTYPE, lambda rows: rows["steps"].__setitem__(41, 0))  # vehicle 1 of tick 20
    with pytest.raises(LogError, match=r'"steps" = 2: expected the same value for every vehicle of a tick'):
        read_log(str(log))
    log = copy_log(base_log, tmp_path / "order")
    edit_rows(log, "ticks.npy", TICK_DTYPE, lambda rows: rows["vehicle"].__setitem__(slice(40, 42), [1, 0]))
    with pytest.raises(LogError, match="rows are not grouped tick by tick for 2 vehicles"):
        read_log(str(log))
    log = copy_log(base_log, tmp_path / "fresh")
    edit_rows(log, "ticks.npy", TICK_DTYPE, lambda rows: rows["fresh"].view(np.uint8).__setitem__(7, 7))
    with pytest.raises(LogError, match='"fresh" is not true or false'):
        read_log(str(log))


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [("port", 7, '"port" = 7'), ("direction", 2, '"direction" = 2'), ("count", 17, '"count" = 17'),
     ("t_s", np.inf, '"t_s" = inf'), ("size", -5, '"size" = -5')],
)  # fmt: skip
def test_a_frame_row_out_of_its_range_is_named(base_log, tmp_path, column, value, fragment):
    log = copy_log(base_log, tmp_path)
    frames = np.zeros(3, FRAME_DTYPE)
    frames["port"] = 255  # a port the writer did not know: allowed
    frames[column][1] = value
    (log / "frames.npy").unlink()
    appender = NpyAppender(str(log / "frames.npy"), FRAME_DTYPE)
    appender.append(frames)
    appender.close()
    status = json.loads((log / "status.json").read_text())
    (log / "status.json").write_text(json.dumps(status | {"frames": 3}))
    with pytest.raises(LogError) as caught:
        read_log(str(log))
    assert str(caught.value).startswith(f"{log / 'frames.npy'}: row 1: {fragment}"), str(caught.value)


# --- status.json, and the files that are not files


def test_a_status_that_does_not_match_the_log_is_named(base_log, tmp_path):
    log = copy_log(base_log, tmp_path)
    status = json.loads((log / "status.json").read_text())
    (log / "status.json").write_text(json.dumps(status | {"ticks": 99}))
    with pytest.raises(LogError, match=r'status.json: "ticks" = 99 but the log holds 101'):
        read_log(str(log))
    (log / "status.json").write_text(json.dumps(status | {"status": "done"}))
    with pytest.raises(LogError, match=r'status.json: "status" = \'done\': expected one of writing, complete'):
        read_log(str(log))


def test_fifos_devices_pickles_and_truncated_files_are_named_without_blocking(base_log, tmp_path):
    cases = {}
    log = copy_log(base_log, tmp_path / "fifo")
    (log / "ticks.npy").unlink()
    os.mkfifo(log / "ticks.npy")  # nobody writes it: a blocking open or read would never return
    cases["fifo"] = (log, log / "ticks.npy", "is a FIFO")
    log = copy_log(base_log, tmp_path / "device")
    (log / "header.json").unlink()
    (log / "header.json").symlink_to("/dev/zero")  # endless
    cases["device"] = (log, log / "header.json", "is a device")
    log = copy_log(base_log, tmp_path / "pickle")
    (log / "ticks.npy").unlink()
    np.save(log / "ticks.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases["pickle"] = (log, log / "ticks.npy", "its columns are not those of a format-1 ticks.npy")
    log = copy_log(base_log, tmp_path / "truncated")
    os.truncate(log / "ticks.npy", (log / "ticks.npy").stat().st_size - 100)
    cases["truncated"] = (log, log / "ticks.npy", "truncated: its header counts 202 rows, the file holds 201")
    for offset in (10, 20, 70, 120):  # one byte of the NPY header flipped: a header that does not parse
        log = copy_log(base_log, tmp_path / f"flipped{offset}")
        data = bytearray((log / "ticks.npy").read_bytes())
        data[offset] ^= 0xFF
        (log / "ticks.npy").write_bytes(bytes(data))
        cases[f"flipped{offset}"] = (log, log / "ticks.npy", "not an NPY array file")
    for log, file, fragment in cases.values():
        assert_one_line(replay_command(log), file, fragment)


# --- hypothesis: whatever the header, events or ticks hold, nothing but LogError


def _paths(value, prefix=()):
    """Every key path into a JSON value (the value itself first)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def replays_or_log_error(log_path: str, ticks: int = 101) -> None:
    """Read the log, replay up to ``ticks`` of it and sum it up: LogError is the only way to fail."""
    try:
        replay = Replay(read_log(log_path))
    except LogError:
        return
    for _ in range(min(ticks, replay.count)):
        replay.step()
    format_summary(replay_summary(replay, 1.0))  # what replay prints: events, ports, segments


@FUZZ
@given(data=st.data())
def test_any_header_value_is_a_log_error_or_a_replay(base_log, data):
    header = json.loads((base_log / "header.json").read_text())
    paths = [p for p in _paths(header) if p]
    # half the time a field of the header itself or of [flight] (most paths lead into the helicopter)
    shallow = [p for p in paths if len(p) == 1 or p[:2] == ("flight", "flight")]
    path = data.draw(st.sampled_from(shallow) | st.sampled_from(paths), label="path")
    delete = data.draw(st.booleans(), label="delete")
    value = None if delete else data.draw(JSON_VALUES, label="value")
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with tempfile.TemporaryDirectory() as folder:
        log = copy_log(base_log, Path(folder))
        (log / "header.json").write_text(json.dumps(header))  # NaN and Infinity too, as Python writes them
        replays_or_log_error(str(log), ticks=5)


@FUZZ
@given(lines=st.lists(JSON_VALUES.map(json.dumps) | st.text(max_size=30), max_size=4))
def test_any_events_file_is_a_log_error_or_a_replay(base_log, lines):
    with tempfile.TemporaryDirectory() as folder:
        log = copy_log(base_log, Path(folder))
        (log / "events.jsonl").write_text("".join(line.replace("\n", " ") + "\n" for line in lines))
        replays_or_log_error(str(log), ticks=1)


TICK_NUMBERS = (
    st.integers(min_value=-(2**31), max_value=2**31 - 1)
    | st.floats(width=64)
    | st.sampled_from([0, 1, 2, 255, 1e308, -0.0])
)


@FUZZ
@given(
    column=st.sampled_from([name for name in TICK_DTYPE.names]),
    row=st.integers(min_value=0, max_value=FLEET * 101 - 1),
    value=TICK_NUMBERS,
)
def test_any_tick_value_is_a_log_error_or_a_replay(base_log, column, row, value):
    with tempfile.TemporaryDirectory() as folder:
        log = copy_log(base_log, Path(folder))

        def change(rows: np.ndarray) -> None:
            with np.errstate(all="ignore"):
                try:
                    rows[column][row] = value
                except (OverflowError, ValueError):  # does not fit the column: a value the file cannot hold
                    rows[column][row] = 0

        edit_rows(log, "ticks.npy", TICK_DTYPE, change)
        replays_or_log_error(str(log))
