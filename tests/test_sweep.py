"""``heli-sim sweep``: the plan a sweep file makes, batches that give each flight's own numbers,
rows that pandas opens, the same rows on local processes and on Ray, clear errors, and a stop
that keeps the rows already flown."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.errors import ConfigError
from sim.sweep.batch import run_batch
from sim.sweep.metrics import METRICS
from sim.sweep.plan import read_sweep

ROOT = Path(__file__).resolve().parent.parent

GAINS = """
[sweep]
name = "roll P"
samples = {samples}
seed = 7
batch_size = {batch_size}

[flight]
heli = "trex450"
duration_s = {duration}
pilot = "hover:1"
start = "hover"
start_altitude_m = 2.0

[grid]
{grid}
{extra}
"""
ROLL_GAINS = '"controller.roll_p_s" = [0.006, 0.012, 0.03]'


def sweep_file(tmp_path: Path, *, samples: int = 0, batch_size: int = 50, duration: float = 3.0, extra: str = "",
               grid: str = ROLL_GAINS, name: str = "gains.toml") -> Path:  # fmt: skip
    path = tmp_path / name
    path.write_text(GAINS.format(samples=samples, batch_size=batch_size, duration=duration, extra=extra, grid=grid))
    return path


def sweep(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-m", "sim", "sweep", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


def test_a_grid_with_draws_makes_every_combination_in_order_and_gains_fly_together(tmp_path):
    extra = '[random]\n"controller.yaw_p_s" = { uniform = [0.1, 0.2] }\n"flight.start_altitude_m" = { choice = [2.0] }'
    plan = read_sweep(sweep_file(tmp_path, samples=4, batch_size=5, extra=extra))
    assert plan.flights == 12 and plan.parameters == ("controller.roll_p_s", "controller.yaw_p_s",
                                                      "flight.start_altitude_m")  # fmt: skip
    assert [v["controller.roll_p_s"] for v in plan.values] == [0.006] * 4 + [0.012] * 4 + [0.03] * 4
    draws = [v["controller.yaw_p_s"] for v in plan.values]
    assert len(set(draws)) == 12 and all(0.1 <= d <= 0.2 for d in draws)
    assert draws == [v["controller.yaw_p_s"] for v in read_sweep(sweep_file(tmp_path, samples=4, extra=extra)).values]
    # only gains differ: one fleet, cut at batch_size, in the sweep's order
    assert [b.flights for b in plan.batches] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)]  # even sizes
    assert {b.config["flight"]["fleet"] for b in plan.batches} == {4}


def test_flights_in_moving_air_fly_alone_so_that_other_gains_meet_the_same_gusts(tmp_path):
    plan = read_sweep(sweep_file(tmp_path, extra='"environment.turbulence" = ["light"]'))
    assert [b.flights for b in plan.batches] == [(0,), (1,), (2,)]
    seeds = {b.config["environment"]["turbulence_seed"] for b in plan.batches}
    assert len(seeds) == 1  # each flight in the same seeded air


def test_a_flight_in_a_batch_has_the_numbers_it_has_alone(tmp_path):
    together = read_sweep(sweep_file(tmp_path, duration=2.0)).batches
    alone = read_sweep(sweep_file(tmp_path, duration=2.0, batch_size=1)).batches
    assert len(together) == 1 and len(alone) == 3
    batched = dict(run_batch(together[0]))
    for batch in alone:
        ((index, metrics),) = run_batch(batch)
        for key, value in metrics.items():
            if isinstance(value, float):
                assert value == pytest.approx(batched[index][key], rel=1e-9, abs=1e-9, nan_ok=True), key
            else:
                assert value == batched[index][key], key
    assert len({round(m["max_tilt_deg"], 9) for m in batched.values()}) == 3  # the gains did differ


def test_the_metrics_of_a_hover_and_landing_say_what_happened(tmp_path):
    """hover:1 from a hover at 2 m: a second's hold, then down at 0.5 m/s, easing off over the last metre."""
    ((_, metrics),) = run_batch(read_sweep(sweep_file(tmp_path, duration=12.0, batch_size=1)).batches[0])
    assert not metrics["crashed"] and metrics["crash_reason"] == "none" and metrics["failsafe_s"] == 0.0
    assert metrics["flight_s"] == pytest.approx(12.0)
    assert 0.0 < metrics["landing_sink_m_s"] < 0.5  # down on its skids, softly
    assert 1.5 < metrics["max_altitude_m"] < 2.5 and metrics["max_drift_m"] < 1.0
    assert 0.0 <= metrics["rpm_droop_pct"] < 10.0 and metrics["rate_error_rms_deg_s"] > 0.0


def test_rows_go_to_csv_and_parquet_that_pandas_opens_with_a_table_on_the_terminal(tmp_path):
    path = sweep_file(tmp_path, duration=2.0)
    result = sweep(str(path), "--out", str(tmp_path / "rows.csv"), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "sweep 'roll P': 3 flights, 0 crashed" in result.stdout and "roll_p_s" in result.stdout
    assert "sweep: 3/3 flights" in result.stderr  # progress, a line a tenth where stderr is not a terminal
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert list(rows.columns) == ["flight", "controller.roll_p_s", *METRICS]
    assert list(rows["controller.roll_p_s"]) == [0.006, 0.012, 0.03] and not rows["crashed"].any()
    result = sweep(str(path), "--out", str(tmp_path / "rows.parquet"), "--quiet")
    assert result.returncode == 0 and result.stdout == "", result.stderr
    parquet = pd.read_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(parquet.drop(columns="crash_reason"), rows.drop(columns="crash_reason"))
    # polars too, in a process of its own (its thread pool lives as long as the process)
    check = ("import json, sys, polars as pl; frames = [pl.read_csv(sys.argv[1]), pl.read_parquet(sys.argv[2])]; "
             "print(json.dumps([[f.columns, f['max_tilt_deg'].to_list()] for f in frames]))")  # fmt: skip
    read = subprocess.run([sys.executable, "-c", check, str(tmp_path / "rows.csv"), str(tmp_path / "rows.parquet")],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    for columns, tilts in json.loads(read.stdout):
        assert columns == list(rows.columns) and tilts == list(rows["max_tilt_deg"])


def test_ray_gives_the_rows_of_local_processes_and_neither_imports_from_the_working_directory(tmp_path):
    path = sweep_file(tmp_path, duration=1.5, samples=2, batch_size=2,
                      extra='[random]\n"controller.pitch_p_s" = { uniform = [0.01, 0.02] }')  # fmt: skip
    hostile = tmp_path / "cwd"
    hostile.mkdir()
    for module in ("json", "numpy"):  # a worker that imported these would die
        (hostile / f"{module}.py").write_text("raise SystemExit('imported from the working directory')\n")
    local = sweep(str(path), "--out", str(tmp_path / "local.csv"), "--quiet", cwd=hostile)
    assert local.returncode == 0, local.stderr
    ray = sweep(str(path), "--out", str(tmp_path / "ray.csv"), "--backend", "ray", "--workers", "2", "--quiet",
                cwd=hostile)  # fmt: skip
    assert ray.returncode == 0, ray.stderr[-2000:]
    assert (tmp_path / "ray.csv").read_text() == (tmp_path / "local.csv").read_text()
    assert len(pd.read_csv(tmp_path / "ray.csv")) == 6


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('"controller.roll_p" = [1.0]', "'controller.roll_p': no such parameter; did you mean 'controller.roll_p_s'?"),
        ('"flight.fleet" = [2]', "[grid] 'flight.fleet' cannot be swept: each flight is one helicopter"),
        ('"environment.wind_north_m_s" = 3.0', "expected a list of values"),
        ('"flight.pilot" = ["keyboard"]', "a sweep has no one at the sticks"),
        ('"flight.duration_s" = [0.0]', "a sweep's flights must end"),
        ('"controller.roll_p_s" = [5.0]', "controller.roll_p_s = 5"),
        ('[random]\n"controller.yaw_p_s" = { uniform = [0.1, 0.2] }', "but sweep.samples = 0"),
        ('[random]\n"controller.yaw_p_s" = { gauss = [0.1, 0.2] }', "expected one of { uniform"),
        ('"heli" = ["xcell60"]\n"flight.heli" = ["trex450"]', "[grid] names 'flight.heli' twice"),
        ('"flight.workers" = [2]', "cannot be swept: batches run in worker processes already"),
        ('"flight.heli" = ["nosuchheli"]', "flight 0: "),
    ],
)  # fmt: skip
def test_a_bad_sweep_file_is_one_line_naming_what_and_where(tmp_path, extra, expected):
    path = sweep_file(tmp_path, grid="", extra=extra)
    with pytest.raises(ConfigError) as raised:
        read_sweep(path)
    message = str(raised.value)
    assert expected in message and str(path) in message and "\n" not in message, message


def test_draws_without_samples_samples_without_draws_and_huge_bounds_are_refused(tmp_path):
    draws = '[random]\n"controller.yaw_p_s" = { integers = [1e300, 1e300] }'
    cases = ((sweep_file(tmp_path, samples=3, name="a.toml"), "sweep.samples = 3 but [random] draws"),
             (sweep_file(tmp_path, samples=3, extra=draws, name="b.toml"), "expected numbers within"))  # fmt: skip
    for path, expected in cases:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            read_sweep(path)


def test_a_base_flight_with_firmware_in_the_loop_is_refused(tmp_path):
    (tmp_path / "base.toml").write_text('[fc]\nprotocol = "ardupilot-json"\n')
    path = sweep_file(tmp_path)
    path.write_text('[sweep]\nflight = "base.toml"\n' + path.read_text().replace("[sweep]\n", "", 1))
    with pytest.raises(ConfigError, match="a sweep flies heli-sim's own controller"):
        read_sweep(path)


def test_bad_input_on_the_command_line_is_exit_2_and_one_line(tmp_path):
    result = sweep(str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing.toml" in result.stderr
    result = sweep(str(sweep_file(tmp_path)), "--out", str(tmp_path / "rows.xlsx"))
    assert result.returncode == 2 and "expected a name ending in .csv or .parquet" in result.stderr
    with socket.socket() as closed:  # a port nothing listens on: Ray would retry for ever
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    result = sweep(str(sweep_file(tmp_path)), "--backend", "ray", "--ray-address", address)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nothing answers there" in result.stderr


def _sweep_until(path: Path, out: Path, text: bytes) -> tuple[subprocess.Popen, float]:
    """A sweep started on ``path``, once ``text`` is on its stderr: the process and when it appeared."""
    process = subprocess.Popen([sys.executable, "-P", "-m", "sim", "sweep", str(path), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        while text not in seen:
            assert selector.select(deadline - time.monotonic()), seen
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, (seen, process.wait(10))
            seen += chunk
    return process, time.monotonic()


@pytest.mark.realtime
def test_sigterm_mid_sweep_writes_the_rows_flown_and_stops_within_a_second(tmp_path):
    gains = '"controller.yaw_p_s" = [0.1, 0.12, 0.14, 0.16, 0.18]'
    path = sweep_file(tmp_path, duration=1.0, batch_size=1, extra=gains)
    # the reference: the same sweep's own end, from its last flight to its exit, under the same load
    process, last = _sweep_until(path, tmp_path / "all.csv", b"15/15 flights")
    assert process.wait(60) == 0
    reference_s = time.monotonic() - last
    for stream in (process.stdout, process.stderr):
        stream.close()
    process, _ = _sweep_until(path, tmp_path / "rows.csv", b"flights,")  # the first tenth flown: stop it
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    status = process.wait(30)
    waited = time.monotonic() - sent
    rest = process.stderr.read().decode()
    for stream in (process.stdout, process.stderr):
        stream.close()
    assert status == 143 and "Traceback" not in rest, rest
    assert waited < max(1.0, 1.5 * reference_s), (waited, reference_s)
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert 1 <= len(rows) < 15 and "stopped;" in rest and f"{len(rows)} of 15 flights written" in rest
    assert rows["flight"].is_monotonic_increasing


def test_a_worker_killed_mid_sweep_fails_it_with_the_rows_flown_and_a_failed_sweep_keeps_old_rows(tmp_path):
    gains = '"controller.yaw_p_s" = [0.1, 0.12, 0.14, 0.16, 0.18]'
    path = sweep_file(tmp_path, duration=1.0, batch_size=1, extra=gains)
    process, _ = _sweep_until(path, tmp_path / "rows.csv", b"flights,")
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert children, "no worker processes"
    os.kill(int(children[0]), signal.SIGKILL)
    status = process.wait(60)
    rest = process.stderr.read().decode()
    for stream in (process.stdout, process.stderr):
        stream.close()
    assert status == 3 and "Traceback" not in rest, rest
    assert "failed;" in rest and "a worker process ended before it was flown" in rest
    assert 1 <= len(pd.read_csv(tmp_path / "rows.csv")) < 15
    # a sweep that flies nothing leaves the rows of an earlier one as they were
    (tmp_path / "bad.toml").write_text("[[steps]]\nnot = 'a script'\n")
    old = (tmp_path / "rows.csv").read_text()
    failing = sweep_file(tmp_path, name="failing.toml", extra=f'"flight.pilot" = ["script:{tmp_path / "bad.toml"}"]')
    result = sweep(str(failing), "--out", str(tmp_path / "rows.csv"), "--workers", "1")
    assert result.returncode == 2 and "none flown" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "rows.csv").read_text() == old


def _ray_processes(prefix: bytes = b"") -> set[int]:
    """Ray's processes now (with ``prefix``: only those whose command line starts with it)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            ray = command.startswith(b"ray::") or b"raylet" in command or b"gcs_server" in command
            if ray and command.startswith(prefix):
                found.add(int(entry))
    return found


def test_sigterm_while_ray_starts_stops_the_sweep_and_leaves_no_ray_process(tmp_path):
    before = _ray_processes()
    command = [sys.executable, "-P", "-m", "sim", "sweep", str(sweep_file(tmp_path)), "--backend", "ray", "--out",
               str(tmp_path / "rows.csv")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    deadline = time.monotonic() + 120  # Ray half-started: its raylet has started its agents (ray::...)
    while not _ray_processes(b"ray::") - before:
        assert time.monotonic() < deadline and process.poll() is None, "Ray never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    status = process.wait(60)
    rest = process.stderr.read().decode()
    process.stderr.close()
    assert status == 143 and "stopped; 0 of 3 flights written" in rest and "Traceback" not in rest, rest
    assert not (tmp_path / "rows.csv").exists()
    deadline = time.monotonic() + 30  # what Ray started is gone (SIGKILLed: the kernel reaps it at once)
    while _ray_processes() - before:
        assert time.monotonic() < deadline, sorted(_ray_processes() - before)
        time.sleep(0.1)
