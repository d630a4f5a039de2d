"""``heli-sim tour`` headless, end to end: every step measures on this machine, and its verdicts
match the lesson (threads no faster for computation, processes faster on two cores; blocking
period growing with the number of slow devices, threaded and asyncio not; a helper thread hurting the loop,
a helper process not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame

from sim.view.render import CAPTION_EDGE, HELP_KEY

ROOT = Path(__file__).resolve().parent.parent


def tour(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "sim", "tour", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL, env=env)  # fmt: skip


def test_the_tour_measures_every_step_and_the_verdicts_match_the_lesson(tmp_path):
    report = tmp_path / "tour.json"
    result = tour("--quick", "--json", str(report))
    assert result.returncode == 0, result.stderr
    steps = {s["step"]: s for s in json.loads(report.read_text())["steps"]}
    assert list(steps) == ["cpu", "devices", "helper"]
    assert all(s["as_the_lesson_says"] for s in steps.values()), {k: s["figures"] for k, s in steps.items()}
    cpu = steps["cpu"]["figures"]
    assert cpu["threads_vs_serial"] > 0.85
    if (os.cpu_count() or 1) >= 2:
        assert cpu["processes_vs_serial"] < 0.8
    devices = steps["devices"]["figures"]
    assert devices["blocking_period_ms_n3"] > 2.5 * devices["blocking_period_ms_n1"]
    assert devices["threaded_period_ms_n3"] < 5.0
    assert devices["asyncio_period_ms_n3"] < 5.0
    helper = steps["helper"]["figures"]
    assert helper["thread_p99_us"] > 3 * helper["off_p99_us"] and helper["process_p99_us"] < helper["thread_p99_us"]
    assert " ".join(result.stdout.split()).count("(as the lesson says)") == 3  # the text wraps


def test_one_step_can_be_run_again_and_a_bad_step_is_named(tmp_path):
    result = tour("--quick", "--step", "devices")
    assert result.returncode == 0, result.stderr
    assert "== 1. Slow serial devices" in result.stdout and "CPU-bound" not in result.stdout
    result = tour("--step", "7")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--step '7': expected one of cpu, devices, helper or 1-3" in result.stderr


def test_each_flight_of_a_step_can_be_watched_in_the_view_with_its_caption(tmp_path):
    result = tour("--quick", "--step", "helper", "--screenshot", str(tmp_path))
    assert result.returncode == 0, result.stderr
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert shots == ["helper-cpu-helper-off.png", "helper-cpu-helper-process.png", "helper-cpu-helper-thread.png"]
    for name in shots:
        image = pygame.surfarray.array3d(pygame.image.load(str(tmp_path / name))).reshape(-1, 3).astype(int)
        for colour in (CAPTION_EDGE, HELP_KEY):  # the caption's frame and its "now:" line
            assert (np.abs(image - colour).sum(axis=1) <= 6).sum() > 100, (name, colour)


def test_screenshots_need_the_view_and_a_folder(tmp_path):
    result = tour("--headless", "--screenshot", str(tmp_path))
    assert result.returncode == 2 and "--screenshot needs the view" in result.stderr
    result = tour("--screenshot", str(tmp_path / "missing"))
    assert result.returncode == 2 and "expected an existing folder" in result.stderr
