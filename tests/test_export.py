"""``heli-sim export``: a real flight log exported through the command, read back by the tools'
own parsers (``csv``, pandas where installed, pymavlink's tlog reader) and checked against the log."""

from __future__ import annotations

import calendar
import csv
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from heli.trim import quaternion_from_euler
from sim.config import FlightConfig, HomePosition, apply_overrides
from sim.log.export_controller import CONTROLLER_COLUMNS, TERM_COLUMNS, WIND_COLUMNS
from sim.log.export_csv import EULER_COLUMNS, log_column_names
from sim.log.export_tlog import RATES_HZ
from sim.log.format import STATUS_FILE, TICK_DTYPE, status_bytes
from sim.log.reader import FlightLog, read_log
from sim.log.replay import Replay
from sim.loop import ManualClock
from sim.protocols.geo import ned_to_geodetic
from sim.session import flight_session
from tests.conftest import heli
from tests.helpers import running

ROOT = Path(__file__).resolve().parent.parent
HOME = HomePosition(latitude_deg=47.3769, longitude_deg=8.5417, altitude_m=408.0)
DURATION_S = 2.5
FLEET = 2


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(heli_sim("export", *args), cwd=ROOT, capture_output=True, text=True, timeout=120)


def logged_flight(path: Path, duration_s: float, fleet: int) -> FlightLog:
    """A hovering flight on a hand-driven clock, in process (no ports), logged to ``path``."""
    config = apply_overrides(FlightConfig(ports=()), duration_s=duration_s, fleet=fleet, start="hover")
    config = replace(config, home=HOME)
    with flight_session(config, heli("xcell60").config, clock=ManualClock(), log_path=str(path)) as loop:
        loop.run()
    return read_log(str(path))


@pytest.fixture(scope="module")
def flight(tmp_path_factory) -> FlightLog:
    return logged_flight(tmp_path_factory.mktemp("export") / "flight.hslog", DURATION_S, FLEET)


# --- CSV


@pytest.fixture(scope="module")
def csv_rows(flight) -> tuple[list[str], list[dict[str, str]], Path]:
    output = Path(flight.path).with_name("table.csv")
    result = export(flight.path, "--format", "csv", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.startswith(f"heli-sim export: wrote {output}: ")
    with output.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    return list(reader.fieldnames), rows, output


def test_csv_has_a_row_per_tick_and_vehicle_and_every_column_with_units(flight, csv_rows):
    header, rows, _ = csv_rows
    assert len(rows) == flight.tick_count * flight.fleet == len(flight.ticks) > 0
    assert header[:2] == ["time_s", "vehicle"]
    renamed = log_column_names()
    assert set(renamed) == set(TICK_DTYPE.names) - {"vehicle"}  # every tick column of the log
    assert header[2 : 2 + len(renamed) + 3] == [
        *list(renamed.values())[: list(renamed).index("q_z") + 1],
        *EULER_COLUMNS,
        *list(renamed.values())[list(renamed).index("q_z") + 1 :],
    ]
    tail = [*CONTROLLER_COLUMNS, *TERM_COLUMNS, *WIND_COLUMNS]
    assert header[-len(tail) :] == tail
    assert len(header) == len(set(header))
    for name in ("ch1_us", "cmd_servo_0_throw", "cmd_throttle_frac", "north_m", "p_rad_s", "wall_time_s"):
        assert name in header


def test_csv_values_are_the_logs(flight, csv_rows):
    _, rows, _ = csv_rows
    ticks = flight.ticks
    for i in (0, 1, len(rows) // 2, len(rows) - 1):
        row = rows[i]
        assert int(row["vehicle"]) == ticks["vehicle"][i] == i % FLEET
        assert int(row["tick"]) == ticks["tick"][i]
        # no reset in this flight: the export's time is the log's simulated time, bit for bit
        assert float(row["time_s"]) == float(row["sim_time_s"]) == ticks["sim_time_s"][i]
        assert float(row["wall_time_s"]) == ticks["t_s"][i]
        assert int(row["fresh"]) == int(ticks["fresh"][i])
        for log_name in ("ch3", "cmd_servo_tail", "north_m", "down_m", "q_x", "rotor_rad_s", "throttle_state"):
            csv_name = log_column_names()[log_name]
            assert float(row[csv_name]) == ticks[log_name][i], csv_name
    times = [float(row["time_s"]) for row in rows]
    assert times == sorted(times) and times[-1] == pytest.approx(DURATION_S, abs=0.01)


def test_csv_euler_angles_are_the_quaternions_in_zyx_degrees(csv_rows):
    _, rows, _ = csv_rows
    for row in rows[:: len(rows) // 7]:
        roll, pitch, yaw = (math.radians(float(row[name])) for name in EULER_COLUMNS)
        rebuilt = np.array(quaternion_from_euler(roll, pitch, yaw))
        logged = np.array([float(row[name]) for name in ("q_w", "q_x", "q_y", "q_z")])
        assert min(np.abs(rebuilt - logged).max(), np.abs(rebuilt + logged).max()) < 1e-9
    # a hovering single-rotor helicopter leans into its tail rotor's thrust: a few degrees of roll
    assert 0.5 < abs(float(rows[0]["roll_deg"])) < 10.0


def test_csv_controller_columns_are_the_replayed_controllers_state(flight, csv_rows):
    _, rows, _ = csv_rows
    replay = Replay(flight)
    replay.run()
    assert replay.difference is None
    for vehicle, state in enumerate(replay.flight.controller.packed):
        row = rows[-FLEET + vehicle]
        assert [float(row[name]) for name in CONTROLLER_COLUMNS] == state.tolist()
    hovering = rows[len(rows) // 2]
    assert float(hovering["ctl_governor_state_code"]) == 2.0  # active
    assert float(hovering["ctl_governor_setpoint_rad_s"]) > 100.0


def test_csv_has_the_controllers_setpoints_and_terms_of_each_cycle(flight, csv_rows):
    """The hover pilot flies in angle mode: the roll-rate setpoint is self-level's, the gain times
    the angle still to go (judged on the attitude the cycle saw: the previous row's)."""
    _, rows, _ = csv_rows
    level_gain = Replay(flight).flight.constants.level_gain
    checked = 0
    for before, row in zip(rows[len(rows) // 2 :: FLEET], rows[len(rows) // 2 + FLEET :: FLEET], strict=False):
        if float(row["ctl_flight_mode_code"]) != 1.0 or int(row["physics_steps"]) == 0:
            continue
        to_go = float(row["ctl_target_roll_rad"]) - math.radians(float(before["roll_deg"]))
        assert float(row["ctl_sp_roll_rate_rad_s"]) == pytest.approx(level_gain * to_go, abs=0.02)
        checked += 1
    assert checked > 10
    for name in TERM_COLUMNS:  # every term is there, a number on every row the replay followed
        assert all(row[name] != "" and math.isfinite(float(row[name])) for row in rows), name


def test_csv_opens_in_pandas(flight, csv_rows):
    pd = pytest.importorskip("pandas")
    header, _, output = csv_rows
    table = pd.read_csv(output)
    assert table.shape == (len(flight.ticks), len(header))
    assert all(np.issubdtype(dtype, np.number) for dtype in table.dtypes)
    assert np.array_equal(table["down_m"].to_numpy(), flight.ticks["down_m"])


def test_csv_without_replay_holds_only_the_log(flight, tmp_path):
    output = tmp_path / "plain.csv"
    result = export(flight.path, "--format", "csv", "--output", str(output), "--no-replay", "--quiet")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stderr
    with output.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert not [name for name in header if name.startswith("ctl_")] and "roll_deg" in header


# --- tlog


@pytest.fixture(scope="module")
def tlog_messages(flight) -> list:
    from pymavlink import mavutil

    output = Path(flight.path).with_name("telemetry.tlog")
    result = export(flight.path, "--format", "tlog", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"heli-sim export: the tlog holds vehicle 0 of {FLEET}: one MAVLink system\n"
    connection = mavutil.mavlink_connection(str(output))
    messages = []
    try:
        while (message := connection.recv_match(blocking=False)) is not None:
            messages.append(message)
    finally:
        connection.close()
    return messages


def test_tlog_holds_each_message_at_its_rate(tlog_messages):
    counts = Counter(message.get_type() for message in tlog_messages)
    assert set(counts) == set(RATES_HZ)
    for name, rate in RATES_HZ.items():
        # one at the start, then one per period to the end of the flight (give or take the last)
        assert abs(counts[name] - (math.floor(DURATION_S * rate) + 1)) <= 1, (name, counts[name])


def test_tlog_is_one_helicopter_in_one_sequence(tlog_messages):
    from pymavlink.dialects.v20 import common as mavlink2

    assert {(m.get_srcSystem(), m.get_srcComponent()) for m in tlog_messages} == {(1, 1)}
    sequence = [m.get_seq() for m in tlog_messages]
    assert all((b - a) % 256 == 1 for a, b in itertools.pairwise(sequence))  # nothing lost
    heartbeats = [m for m in tlog_messages if m.get_type() == "HEARTBEAT"]
    assert {m.type for m in heartbeats} == {mavlink2.MAV_TYPE_HELICOPTER}
    assert all(m.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED for m in heartbeats[1:])  # the governor runs


def test_tlog_timestamps_start_with_the_flight_and_increase(flight, tlog_messages):
    start = calendar.timegm(time.strptime(flight.header["created_utc"], "%Y-%m-%dT%H:%M:%SZ"))
    stamps = [m._timestamp for m in tlog_messages]
    assert stamps == sorted(stamps)
    assert stamps[0] == pytest.approx(start, abs=1e-5)
    assert stamps[-1] == pytest.approx(start + DURATION_S, abs=0.05)
    for name in RATES_HZ:
        own = [m._timestamp for m in tlog_messages if m.get_type() == name]
        assert all(b > a for a, b in itertools.pairwise(own)), name
    for message in tlog_messages:  # the receive time is the simulated time since the start
        if hasattr(message, "time_boot_ms"):
            assert message._timestamp - start == pytest.approx(message.time_boot_ms / 1000.0, abs=0.0011)


def _vehicle0_row(flight: FlightLog, time_boot_ms: int) -> np.void:
    rows = flight.ticks[:: flight.fleet]
    return rows[int(np.argmin(np.abs(rows["sim_time_s"] * 1000.0 - time_boot_ms)))]


def test_tlog_positions_are_the_logs_through_the_home_position(flight, tlog_messages):
    positions = [m for m in tlog_messages if m.get_type() == "GLOBAL_POSITION_INT"]
    assert positions
    for message in positions:
        row = _vehicle0_row(flight, message.time_boot_ms)
        lat, lon, alt = ned_to_geodetic(row["north_m"], row["east_m"], row["down_m"], HOME.latitude_deg,
                                        HOME.longitude_deg, HOME.altitude_m)  # fmt: skip
        assert message.lat == round(lat * 1e7) and message.lon == round(lon * 1e7)
        assert message.alt == round(alt * 1000.0) and message.relative_alt == round(-row["down_m"] * 1000.0)
        # and near enough home: within a metre of it, 1e-5 degrees
        assert abs(message.lat / 1e7 - HOME.latitude_deg) < 1e-5 and abs(message.lon / 1e7 - HOME.longitude_deg) < 1e-5
    for message in (m for m in tlog_messages if m.get_type() == "LOCAL_POSITION_NED"):
        row = _vehicle0_row(flight, message.time_boot_ms)
        assert (message.x, message.y, message.z) == pytest.approx((row["north_m"], row["east_m"], row["down_m"]))


def test_tlog_attitude_and_servos_are_the_logs(flight, tlog_messages):
    for message in (m for m in tlog_messages if m.get_type() == "ATTITUDE"):
        row = _vehicle0_row(flight, message.time_boot_ms)
        rebuilt = np.array(quaternion_from_euler(message.roll, message.pitch, message.yaw))
        logged = np.array([row["q_w"], row["q_x"], row["q_y"], row["q_z"]])
        assert min(np.abs(rebuilt - logged).max(), np.abs(rebuilt + logged).max()) < 1e-6
    for message in (m for m in tlog_messages if m.get_type() == "SERVO_OUTPUT_RAW"):
        row = _vehicle0_row(flight, message.time_usec // 1000)
        assert message.servo1_raw == round(1500.0 + 500.0 * row["cmd_servo_0"])
        assert message.servo4_raw == round(1500.0 + 500.0 * row["cmd_servo_tail"])
        assert message.servo5_raw == round(1000.0 + 1000.0 * row["cmd_throttle"])


# --- output files, bad input, incomplete logs, Ctrl-C


def test_the_default_output_is_next_to_the_log_and_never_written_over(flight, tmp_path):
    log = tmp_path / "short.hslog"
    log.symlink_to(flight.path, target_is_directory=True)
    first = export(str(log), "--format", "tlog", "--quiet")
    assert first.returncode == 0, first.stderr
    written = tmp_path / "short.tlog"
    before = written.read_bytes()
    assert before
    again = export(str(log), "--format", "tlog")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (f"heli-sim export: error: --output {written}: already exists; add --force to replace it, "
                            "or name another file with --output\n")  # fmt: skip
    assert written.read_bytes() == before
    forced = export(str(log), "--format", "tlog", "--force", "--quiet")
    assert forced.returncode == 0 and written.read_bytes() == before  # the same log, the same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.hslog", "short.tlog"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("{nolog}", "--format", "csv"), "heli-sim export: error: {nolog}: no header.json, so not a flight log; "),
        (("{log}", "--format", "xlsx"), "heli-sim export: error: argument --format: invalid choice: 'xlsx'"),
        (("{log}",), "heli-sim export: error: the following arguments are required: --format"),
        (("{log}", "--format", "csv", "--output", "{folder}"), "heli-sim export: error: --output {folder}: is a"),
    ],
)
def test_bad_input_is_one_line_and_status_2(flight, tmp_path, args, expected):
    (tmp_path / "not-a-log").mkdir()
    names = {"nolog": str(tmp_path / "not-a-log"), "log": flight.path, "folder": str(tmp_path)}
    result = export(*(arg.format(**names) for arg in args))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(expected.format(**names)), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-log"]


def test_an_incomplete_log_exports_what_it_has_and_says_so(flight, tmp_path):
    log = tmp_path / "killed.hslog"
    log.mkdir()
    for name in os.listdir(flight.path):
        (log / name).write_bytes((Path(flight.path) / name).read_bytes())
    status = json.loads((log / STATUS_FILE).read_text())
    (log / STATUS_FILE).write_bytes(status_bytes({**status, "status": "writing"}))  # as a SIGKILL leaves it
    output = tmp_path / "killed.csv"
    result = export(str(log), "--format", "csv", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "heli-sim export: the log is incomplete (its writer never finished: the flight was killed, the machine "
        f"stopped, or it is still flying): it holds {flight.tick_count} ticks, the flight's first "
        f"{flight.ticks['sim_time_s'][-1]:.3f} s; exported those\n"
    )
    with output.open(newline="") as handle:
        assert sum(1 for _ in handle) == len(flight.ticks) + 1


@pytest.mark.realtime  # it judges how soon the export stops: not in the niced compute stream
def test_ctrl_c_stops_an_export_at_once_and_leaves_no_file(tmp_path):
    log = logged_flight(tmp_path / "long.hslog", 6.0, 8)  # ~24,000 rows: seconds of replaying and writing
    output = tmp_path / "long.csv"
    with running(heli_sim("export", log.path, "--format", "csv", "--output", str(output)), cwd=ROOT) as proc:
        deadline = time.monotonic() + 60.0
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # writing has begun
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took_s = time.monotonic() - sent
    assert proc.returncode == 130, err
    # stopped part way (status 130, not 0; no file), and at once (heli-sim promises a second; some slack for load)
    assert err == b"" and out == b"" and took_s < 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.hslog"]
