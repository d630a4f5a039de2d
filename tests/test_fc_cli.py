"""``heli-sim fly --fc`` as a user runs it: the shipped preset, one-line errors, and a signal that
stops a flight waiting for its firmware, or flying with one, as promptly as any other."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SIGNAL_ALLOWANCE_S, StderrLines, exit_seconds, flight_shutdown_s

ROOT = Path(__file__).resolve().parent.parent


def heli_sim(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(heli_sim(*args), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_fc_takes_the_helicopter_s_shipped_wiring_and_physics_step():
    result = run("fly", "--fc", "ardupilot-json:0.0.0.0", "--heli", "trex700", "--fc-port", "9012", "--print-config")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert 'protocol = "ardupilot-json"' in text and 'host = "0.0.0.0"' in text and "port = 9012" in text
    assert "rc_udp_port = 5511" in text  # ArduPilot's -I1 moves its RC input by the same 10
    assert "physics_dt_s = 0.0008333333333333334" in text  # one step per ArduPilot frame (1200 Hz)
    assert "governor_setpoint = 0.66" in text  # the preset, as its ArduPilot parameter file sets it


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--fc", "bogus"), "expected a firmware (ardupilot-json)"),
        (("--fc", "ardupilot-json", "--fleet", "2"), "flies one helicopter"),
        (("--fc-port", "9100"), "no firmware flies this flight"),
    ],
    ids=["firmware", "fleet", "port-alone"],
)
def test_a_wrong_fc_option_is_one_line_and_status_2(args, says):
    result = run("fly", "--headless", *args)
    assert result.returncode == 2 and says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_port_someone_else_listens_on_is_said_in_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run("fly", "--headless", "--fc", "ardupilot-json", "--fc-port", str(port), "--duration", "1")
    assert result.returncode == 2
    assert f"fc udp:127.0.0.1:{port}: cannot listen" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.realtime
@pytest.mark.parametrize("with_firmware", [False, True], ids=["waiting", "flying"])
def test_a_signal_stops_a_firmware_flight_as_promptly_as_a_flight_ends_on_its_own(tmp_path, with_firmware):
    reference = tmp_path / "reference.json"
    reference_s = flight_shutdown_s(
        heli_sim("fly", "--headless", "--no-ports", "--duration", "0.5", "--stats-json", str(reference)), reference,
        cwd=ROOT,
    )  # fmt: skip
    stats = tmp_path / "run.json"
    proc = subprocess.Popen(
        heli_sim("-v", "fly", "--headless", "--no-ports", "--fc", "ardupilot-json", "--fc-port", "0",
                 "--stats-json", str(stats)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    standin = None
    try:
        lines = StderrLines(proc)
        waiting = lines.wait_for("fc_waiting")
        port = waiting.rsplit(":", 1)[1].strip()
        if with_firmware:
            standin = subprocess.Popen(
                [sys.executable, "-P", "-m", "sim.fc.standin", "--port", port, "--frames", "1000000",
                 "--give-up-s", "0.5"], stdout=subprocess.DEVNULL,
            )  # fmt: skip
            lines.wait_for("fc_connected")
        seconds, _out = exit_seconds(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        if standin is not None:
            standin.wait(timeout=10)
    assert proc.returncode == 143
    assert seconds < reference_s + SIGNAL_ALLOWANCE_S, (seconds, reference_s)
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "SIGTERM"
    assert summary["fc"]["state"] == ("flying" if with_firmware else "waiting")
    assert (summary["fc"]["frames"] > 0) == with_firmware


@pytest.mark.parametrize("firmware_on", ["command line", "flight file"])
def test_a_partial_fc_table_goes_over_the_helicopter_s_preset(tmp_path, firmware_on):
    flight = tmp_path / "second.toml"
    protocol = 'protocol = "ardupilot-json"\n' if firmware_on == "flight file" else ""
    flight.write_text(
        f'[flight]\nheli = "xcell60"\n[fc]\n{protocol}rc_udp_port = 5591\n[fc.sensors]\nrangefinder = true\n'
    )
    extra = ("--fc", "ardupilot-json") if firmware_on == "command line" else ()
    result = run("fly", "--config", str(flight), *extra, "--fc-port", "9092", "--print-config")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "port = 9092" in text and "rc_udp_port = 5591" in text and "rangefinder = true" in text  # the file's
    assert "physics_dt_s = 0.0008333333333333334" in text and "governor_setpoint = 0.66" in text  # the preset's
    assert "1100.0," in text[text.index("tail_us") :][:80]  # the preset's tail wiring (1100..1900 us)
