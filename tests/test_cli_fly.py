"""``heli-sim fly``, ``trim`` and ``bench`` as a user runs them: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SIGNAL_ALLOWANCE_S, StderrLines, exit_seconds, flight_shutdown_s

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _end_started_flights():
    """A test that fails half-way must not leave its flight flying (and loading the machine)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def start_flight(*args: str, verbose: bool = False) -> tuple[subprocess.Popen, StderrLines]:
    """Start ``fly`` and wait until it says it is flying."""
    command = heli_sim(*(["-v"] if verbose else []), "fly", *args)
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _started.append(proc)
    lines = StderrLines(proc)
    lines.wait_for("heli-sim: flying")
    return proc, lines


def stop_with(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    """Send ``sig``; return (exit status, stdout)."""
    proc.send_signal(sig)
    out, _err = proc.communicate(timeout=10)
    return proc.returncode, out.decode()


@pytest.mark.realtime
def test_headless_flight_writes_the_stats_contract(tmp_path):
    stats = tmp_path / "run.json"
    result = subprocess.run(heli_sim("fly", "--headless", "--heli", "trex450", "--duration", "1", "--stats-json",
                                     str(stats)), cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["duration_s"] == pytest.approx(1.0, abs=0.01)  # simulated time
    assert summary["loop_hz"] == 500 and summary["physics_dt_s"] == 0.001
    (segment,) = summary["segments"]
    # every deadline of the flight was ticked or counted missed (how many of each is the machine's)
    deadlines = segment["t_end_s"] * summary["loop_hz"]
    assert segment["ticks"] + segment["missed_deadlines"] == pytest.approx(deadlines, abs=2)
    # the period in ms: never shorter than the loop's 2 ms, its median no longer than the mean this run had
    mean_period_ms = 1e3 * segment["t_end_s"] / segment["ticks"]
    assert 0.9 * 2.0 <= segment["period_ms"]["p50"] <= 1.1 * mean_period_ms
    assert segment["lateness_us"]["p50"] is not None and segment["lateness_us"]["p50"] >= 0
    assert summary["vehicles"][0]["crashed"] is False
    assert 0.0 < summary["startup_s"] < 60.0  # from the process's start to its first tick
    assert "segment (s)" in result.stdout and "lateness us" in result.stdout  # the readable table


@pytest.mark.realtime
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_flight_as_promptly_as_it_ends_on_its_own_with_the_summary_written(tmp_path, sig, status):
    # the reference: the same flight ending at its --duration, how long it takes to shut down here, now
    reference = tmp_path / "reference.json"
    command = heli_sim("fly", "--headless", "--duration", "0.5", "--stats-json", str(reference))
    reference_s = flight_shutdown_s(command, reference, cwd=ROOT)
    stats = tmp_path / "run.json"
    proc, _lines = start_flight("--headless", "--stats-json", str(stats))
    seconds, out = exit_seconds(proc, sig)
    assert proc.returncode == status
    assert seconds < reference_s + SIGNAL_ALLOWANCE_S, (seconds, reference_s)  # on an idle machine: well under 1 s
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == signal.Signals(sig).name
    assert "ticks" in out


def test_sigusr1_toggles_the_io_mode_live(tmp_path):
    stats = tmp_path / "run.json"
    proc, lines = start_flight("--headless", "--stats-json", str(stats), verbose=True)
    proc.send_signal(signal.SIGUSR1)
    lines.wait_for("mode_switch: threaded -> blocking")
    proc.send_signal(signal.SIGUSR1)
    lines.wait_for("mode_switch: blocking -> threaded")
    code, _out = stop_with(proc, signal.SIGINT)
    summary = json.loads(stats.read_text())
    assert code == 130
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "blocking", "threaded"]
    assert summary["io_mode_final"] == "threaded"
    switches = [e["detail"] for e in summary["events"] if e["kind"] == "mode_switch"]
    assert switches == ["threaded -> blocking", "blocking -> threaded"]


def test_sigusr2_switches_to_asyncio_and_sigusr1_to_blocking_and_back(tmp_path):
    stats = tmp_path / "run.json"
    proc, lines = start_flight("--headless", "--stats-json", str(stats), verbose=True)
    for sig, switch in ((signal.SIGUSR2, "threaded -> asyncio"), (signal.SIGUSR1, "asyncio -> blocking"),
                        (signal.SIGUSR1, "blocking -> asyncio"), (signal.SIGUSR2, "asyncio -> threaded")):  # fmt: skip
        proc.send_signal(sig)
        lines.wait_for(f"mode_switch: {switch}")
    code, _out = stop_with(proc, signal.SIGINT)
    summary = json.loads(stats.read_text())
    assert code == 130
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "asyncio", "blocking", "asyncio", "threaded"]


def test_script_pilot_flies_the_timeline(tmp_path):
    script = tmp_path / "spool.toml"
    script.write_text("[[at]]\nt = 0.0\ncollective = 1500\narm = 2000\nmode = 1500\n")
    stats = tmp_path / "run.json"
    result = subprocess.run(heli_sim("fly", "--headless", "--quiet", "--duration", "2", "--pilot", f"script:{script}",
                                     "--stats-json", str(stats)), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    vehicle = json.loads(stats.read_text())["vehicles"][0]
    assert vehicle["rotor_speed_rpm"] > 500  # armed: the governor spools up (past 500 rpm at 1.6 s of flight)
    assert vehicle["max_altitude_m"] < 0.5  # flat pitch: it stays on the ground


def test_fleet_and_hover_start(tmp_path):
    stats = tmp_path / "run.json"
    result = subprocess.run(heli_sim("fly", "--headless", "--quiet", "--duration", "1", "--fleet", "3", "--start",
                                     "hover", "--stats-json", str(stats)), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    vehicles = json.loads(stats.read_text())["vehicles"]
    assert [v["id"] for v in vehicles] == [0, 1, 2]
    assert all(v["min_altitude_m"] > 4.5 for v in vehicles)


def test_bench_step_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(heli_sim("bench", "step", "--quick", "--json", str(out)), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert {"cpu", "cores", "python"} <= set(report["machine"])
    metrics = {r["metric"]: r for r in report["results"]}
    assert {"single_step_us", "batch_vehicle_steps_per_s"} <= set(metrics)
    # the limits the figures are measured against, in the same run
    assert metrics["batch_numpy_floor_vehicle_steps_per_s"]["value"] > 0
    assert metrics["batch_share_of_numpy_floor"]["unit"] == "x"
    assert all(set(r) == {"bench", "metric", "value", "unit"} for r in report["results"])
    assert metrics["single_step_us"]["value"] > 0 and metrics["batch_vehicle_steps_per_s"]["unit"] == "1/s"


# ``heli-sim bench gil --quick`` with shorter flights, its rows as JSON lines, from a child process (the
# command line's --json is the same for every bench: test_bench_step_json)
_BENCH_GIL = """
import json, sys
from sim.bench.gil import bench_gil
for row in bench_gil(quick=True, flight_s=float(sys.argv[1])):
    print(json.dumps(row.to_dict()))
"""


def bench_gil_rows(flight_s: float) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", _BENCH_GIL, str(flight_s)], cwd=ROOT, capture_output=True,
                            text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert rows and all(set(r) == {"bench", "metric", "value", "unit"} for r in rows)
    return rows


@pytest.mark.realtime
def test_bench_gil_reports_the_seeds_experiments_and_the_helper_flights():
    metrics = {r["metric"]: r["value"] for r in bench_gil_rows(0.5)}
    assert metrics["factorize_2_serial_s"] > 0 and metrics["wait_5x100ms_serial_s"] >= 0.5  # five 0.1 s waits
    # the waits overlap in threads: judged against the serial waits measured in the same run
    assert metrics["wait_5x100ms_threads_s"] < metrics["wait_5x100ms_serial_s"] / 2
    for kind in ("threads", "processes"):  # the ratios are of the times reported
        ratio = metrics[f"factorize_2_{kind}_s"] / metrics["factorize_2_serial_s"]
        assert metrics[f"factorize_{kind}_vs_serial"] == pytest.approx(ratio, abs=0.01)
    for mode in ("off", "thread", "process"):  # each flight measured (the figures themselves are the machine's)
        assert metrics[f"helper_{mode}_lateness_p50_us"] > 0 and metrics[f"helper_{mode}_missed_per_s"] >= 0


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "heli-sim"
    assert script.exists()
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ})  # fmt: skip
    assert result.returncode == 0 and "fly" in result.stdout


def test_ctrl_c_in_make_fly_ends_the_flight_in_order_and_make_quietly(tmp_path):
    """``make fly`` on a terminal: the flight takes the terminal's foreground, so Ctrl-C reaches it and
    not make; the flight ends with its summary, and make with status 0 and no "Interrupt" line."""
    import pty
    import select
    import time

    stamp = ROOT / ".venv" / ".installed-stamp"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.skip("make fly would install .venv first (run through make test)")
    stats = tmp_path / "run.json"
    pid, fd = pty.fork()
    if pid == 0:  # the child: make on the terminal, as a person types it
        os.execvp("make", ["make", "-s", "-C", str(ROOT), "fly", f"ARGS=--headless --no-ports --stats-json {stats}"])
    out, sent, deadline = b"", False, time.monotonic() + 60.0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the terminal's far end closed: everything on it has ended
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b" ticks " in out:  # the live status line: the loop is ticking
                os.write(fd, b"\x03")  # Ctrl-C, typed
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    text = out.decode(errors="replace")
    assert sent, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "ended: SIGINT" in text and "Interrupt" not in text, text
    assert json.loads(stats.read_text())["stop_reason"] == "SIGINT"
