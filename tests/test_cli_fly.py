"""``heli-sim fly``, ``trim`` and ``bench`` as a user runs them: real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import StderrLines

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


def stop_with(proc: subprocess.Popen, sig: int) -> tuple[int, float, str]:
    """Send ``sig``; return (exit status, seconds to exit, stdout)."""
    sent = time.monotonic()
    proc.send_signal(sig)
    out, _err = proc.communicate(timeout=10)
    return proc.returncode, time.monotonic() - sent, out.decode()


def test_headless_flight_writes_the_stats_contract(tmp_path):
    stats = tmp_path / "run.json"
    result = subprocess.run(heli_sim("fly", "--headless", "--heli", "trex450", "--duration", "2", "--stats-json",
                                     str(stats)), cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert summary["loop_hz"] == 500 and summary["physics_dt_s"] == 0.001
    (segment,) = summary["segments"]
    assert 900 <= segment["ticks"] <= 1002
    assert segment["lateness_us"]["p50"] is not None and segment["period_ms"]["p50"] == pytest.approx(2.0, rel=0.1)
    assert summary["vehicles"][0]["crashed"] is False
    assert "segment (s)" in result.stdout and "lateness us" in result.stdout  # the readable table


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_flight_within_a_second_with_the_summary_written(tmp_path, sig, status):
    stats = tmp_path / "run.json"
    proc, _lines = start_flight("--headless", "--stats-json", str(stats))
    code, seconds, out = stop_with(proc, sig)
    assert code == status
    assert seconds < 1.0
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
    code, _seconds, _out = stop_with(proc, signal.SIGINT)
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
    code, _seconds, _out = stop_with(proc, signal.SIGINT)
    summary = json.loads(stats.read_text())
    assert code == 130
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "asyncio", "blocking", "asyncio", "threaded"]


def test_script_pilot_flies_the_timeline(tmp_path):
    script = tmp_path / "spool.toml"
    script.write_text("[[at]]\nt = 0.0\ncollective = 1500\narm = 2000\nmode = 1500\n")
    stats = tmp_path / "run.json"
    result = subprocess.run(heli_sim("fly", "--headless", "--quiet", "--duration", "3", "--pilot", f"script:{script}",
                                     "--stats-json", str(stats)), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    vehicle = json.loads(stats.read_text())["vehicles"][0]
    assert vehicle["rotor_speed_rpm"] > 500  # armed: the governor spools up
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
    assert all(set(r) == {"bench", "metric", "value", "unit"} for r in report["results"])
    assert metrics["single_step_us"]["value"] > 0 and metrics["batch_vehicle_steps_per_s"]["unit"] == "1/s"


def test_bench_gil_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(heli_sim("bench", "gil", "--quick", "--json", str(out)), cwd=ROOT, capture_output=True,
                            text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    assert metrics["factorize_2_serial_s"] > 0 and metrics["wait_5x100ms_serial_s"] >= 0.5  # five 0.1 s waits
    for mode in ("off", "thread", "process"):
        assert metrics[f"helper_{mode}_lateness_p99_us"] >= metrics[f"helper_{mode}_lateness_p50_us"] > 0


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "heli-sim"
    assert script.exists()
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ})  # fmt: skip
    assert result.returncode == 0 and "fly" in result.stdout
