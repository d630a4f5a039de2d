"""The view as a user meets it: ``heli-sim fly`` with the view process under SDL's dummy video
driver, keys pressed by the view's script (real pygame key events), screenshots checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest

from sim.view.render import BANNER_COLORS, banner_rect
from tests.helpers import StderrLines, running

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 90.0


def fly(*args: str, script: str = "", timeout_s: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "HELI_SIM_VIEW_SCRIPT": script}
    env.pop("DISPLAY", None)  # the view renders off screen here, whatever the test machine has
    env.pop("WAYLAND_DISPLAY", None)
    command = [sys.executable, "-m", "sim", "-v", "fly", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


def pixels(path: Path) -> np.ndarray:
    """The PNG as a (width, height, 3) array."""
    return pygame.surfarray.array3d(pygame.image.load(str(path)))


def dominant_colour(area: np.ndarray) -> tuple[int, int, int]:
    colours, counts = np.unique(area.reshape(-1, 3), axis=0, return_counts=True)
    return tuple(int(c) for c in colours[counts.argmax()])


@pytest.mark.parametrize("mode", ["threaded", "blocking", "asyncio"])
def test_screenshot_is_a_full_view_with_the_banner_of_the_mode(tmp_path, mode):
    shot, stats = tmp_path / "view.png", tmp_path / "run.json"
    result = fly("--duration", "1.5", "--io", mode, "--screenshot", str(shot), "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    image = pixels(shot)
    assert image.shape == (1280, 720, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # a scene, panels and text: not a blank fill
    banner = banner_rect((1280, 720))
    area = image[banner.left : banner.right, banner.top : banner.bottom]
    assert dominant_colour(area) == tuple(BANNER_COLORS[mode])
    for other in {"threaded", "blocking", "asyncio"} - {mode}:
        assert not (area.reshape(-1, 3) == BANNER_COLORS[other]).all(axis=1).any()
    summary = json.loads(stats.read_text())
    kinds = [e["kind"] for e in summary["events"]]
    assert "view_opened" in kinds
    assert any("first frame" in e["detail"] for e in summary["events"])


def test_keys_toggle_the_mode_the_cpu_helper_and_the_camera_and_escape_ends_the_flight(tmp_path):
    stats = tmp_path / "run.json"
    script = "0.3:t,0.6:t,0.9:g,1.2:g,1.5:p,1.8:p,2.1:2,2.4:1,2.6:f1,2.8:escape"
    result = fly("--screenshot", str(tmp_path / "view.png"), "--stats-json", str(stats), script=script)
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "view closed"
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "blocking", "threaded"]
    kinds = ("mode_switch", "cpu_helper", "view")
    toggles = [(e["kind"], e["detail"]) for e in summary["events"] if e["kind"] in kinds]
    toggles = [t for t in toggles if "first frame" not in t[1]]
    assert toggles == [
        ("mode_switch", "threaded -> blocking"),
        ("mode_switch", "blocking -> threaded"),
        ("cpu_helper", "thread"),
        ("cpu_helper", "off"),
        ("cpu_helper", "process"),
        ("cpu_helper", "off"),
        ("view", "camera chase"),
        ("view", "camera pilot"),
        ("view", "help shown"),
    ]
    assert summary["events"][-1]["kind"] == "view_closed"
    assert (tmp_path / "view.png").stat().st_size > 10_000  # the last frame was still saved


def test_i_switches_to_asyncio_and_t_to_blocking_and_back_to_the_mode_it_left(tmp_path):
    stats = tmp_path / "run.json"
    result = fly("--screenshot", str(tmp_path / "view.png"), "--stats-json", str(stats),
                 script="0.3:i,0.6:t,0.9:t,1.2:i,1.5:escape")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "asyncio", "blocking", "asyncio", "threaded"]
    assert all(port["frames_out"] > 0 and port["rx_sequence_gaps"] == 0 for port in summary["ports"])


def test_closing_the_window_ends_the_flight_cleanly(tmp_path):
    stats = tmp_path / "run.json"
    result = fly("--screenshot", str(tmp_path / "view.png"), "--stats-json", str(stats), script="0.5:quit")
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "view closed"
    assert summary["duration_s"] >= 0.5
    assert "segment (s)" in result.stdout  # the summary table, as after any flight


def test_the_keyboard_is_a_crsf_transmitter_on_the_rc_port(tmp_path):
    """E arms: the view's transmitter thread sends CRSF into the RC port, the governor spools up."""
    stats = tmp_path / "run.json"
    result = fly("--pilot", "keyboard", "--screenshot", str(tmp_path / "view.png"), "--stats-json", str(stats),
                 script="0.2:e,0.4:m,0.6:m,3.0:escape")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(stats.read_text())
    assert {"kind": "view", "detail": "transmitter armed"} in [{k: e[k] for k in ("kind", "detail")}
                                                                for e in summary["events"]]  # fmt: skip
    (rc,) = [p for p in summary["ports"] if p["role"] == "rc-in"]
    assert rc["protocol"] == "crsf" and rc["decode_errors"] == 0
    assert rc["frame_rate_hz"] > 100  # 150 Hz from the view, less whatever a busy machine costs
    vehicle = summary["vehicles"][0]
    assert vehicle["rotor_speed_rpm"] > 500  # armed from the keyboard: the governor spools up
    assert vehicle["max_altitude_m"] < 0.5  # collective left at centre (flat pitch): it stays on the ground
    modes = [e["detail"] for e in summary["events"] if e["detail"].startswith("transmitter flight mode")]
    assert modes == ["transmitter flight mode: rescue", "transmitter flight mode: rate"]


def test_killing_the_view_leaves_the_flight_flying_with_an_event(tmp_path):
    stats = tmp_path / "run.json"
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    command = [sys.executable, "-m", "sim", "-v", "fly", "--screenshot", str(tmp_path / "v.png"), "--stats-json",
               str(stats)]  # fmt: skip
    with running(command, cwd=ROOT, env=env) as proc:
        lines = StderrLines(proc)
        lines.wait_for("first frame")
        (opened,) = [line for line in lines.seen if "view_opened: pid" in line]
        view_pid = int(opened.rsplit("pid", 1)[1])
        os.kill(view_pid, signal.SIGKILL)
        lines.wait_for("view_lost")
        proc.send_signal(signal.SIGUSR1)  # the loop still ticks: the switch lands at the next tick
        lines.wait_for("mode_switch: threaded -> blocking")
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 130
    summary = json.loads(stats.read_text())
    assert summary["stop_reason"] == "SIGINT"
    assert [e["kind"] for e in summary["events"]].count("view_lost") == 1
    assert [s["io_mode"] for s in summary["segments"]] == ["threaded", "blocking"]


def test_a_bad_view_script_is_a_one_line_error(tmp_path):
    result = fly("--duration", "1", "--screenshot", str(tmp_path / "v.png"), script="soon:t")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("heli-sim fly: error: ")
    assert "HELI_SIM_VIEW_SCRIPT: 'soon:t' is not SECONDS:KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_view_reports_fps_and_lateness_with_the_view_on_and_off(tmp_path):
    out = tmp_path / "bench.json"
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "sim", "bench", "view", "--quick", "--json", str(out)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = {r["metric"]: r for r in json.loads(out.read_text())["results"]}
    assert metrics["fps"]["unit"] == "1/s" and metrics["fps"]["value"] > 0
    for name in ("view_on", "view_off", "bare_loop"):
        assert metrics[f"{name}_lateness_p50_us"]["value"] > 0 and metrics[f"{name}_lateness_p99_us"]["value"] > 0
    assert metrics["view_process_fps"]["value"] > 0 and 0 < metrics["first_frame_s"]["value"] < 30


def test_a_replay_in_the_view_shows_the_recorded_mode_and_stops_on_escape(tmp_path):
    log_path = tmp_path / "flight.hslog"
    flown = fly("--headless", "--io", "blocking", "--duration", "1.5", "--log", str(log_path))
    assert flown.returncode == 0, flown.stderr
    shot, stats = tmp_path / "replay.png", tmp_path / "replay.json"
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["HELI_SIM_VIEW_SCRIPT"] = "0.5:escape"
    result = subprocess.run([sys.executable, "-m", "sim", "replay", str(log_path), "--screenshot", str(shot),
                             "--stats-json", str(stats)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = pixels(shot)
    banner = banner_rect((1280, 720))
    assert dominant_colour(image[banner.left : banner.right, banner.top : banner.bottom]) == BANNER_COLORS["blocking"]
    summary = json.loads(stats.read_text())["replay"]
    assert summary["identical"] is True
    assert 0 < summary["ticks"] < summary["ticks_in_log"]  # Esc ended it half-way, at the recorded pace


def test_function_keys_inject_faults_and_clear_them(tmp_path):
    stats = tmp_path / "run.json"
    script = "0.4:f2,1.2:f2,1.4:f5,2.0:f5,3.5:escape"
    result = fly("--stats-json", str(stats), "--screenshot", str(tmp_path / "view.png"), script=script)
    assert result.returncode == 0, result.stderr
    events = json.loads(stats.read_text())["events"]
    faults = [(e["kind"], e["detail"]) for e in events if e["kind"].startswith("fault_")]
    assert faults == [
        ("fault_on", "rc-in: no RC frames arrive"),
        ("fault_off", "rc-in: no RC frames arrive"),
        ("fault_on", "servo0: device unplugged"),
        ("fault_off", "servo0: device unplugged"),
    ]
    kinds = [e["kind"] for e in events]
    assert "failsafe_on" in kinds  # the keyboard's frames stopped reaching the receiver
    assert kinds.index("port_lost") < kinds.index("port_back")
