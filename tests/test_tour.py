"""``heli-sim tour`` headless, end to end: every step measures on this machine, and its verdicts
match the lesson (threads no faster for computation, processes faster on two cores; blocking
period growing with the number of slow devices, threaded and asyncio not; a helper thread hurting the loop,
a helper process not)."""

from __future__ import annotations

import json
import os
import pty
import selectors
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygame

from sim.view.card import CHOICES
from sim.view.render import CAPTION_EDGE, CAPTION_TITLE, HELP_KEY

ROOT = Path(__file__).resolve().parent.parent


def tour(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "sim", "tour", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL, env={**environment, **env})  # fmt: skip


def has_colour(path: Path, colour: tuple[int, int, int], pixels: int = 100) -> bool:
    image = pygame.surfarray.array3d(pygame.image.load(str(path))).reshape(-1, 3).astype(int)
    return int((np.abs(image - colour).sum(axis=1) <= 6).sum()) > pixels


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
    assert shots == ["helper-cpu-helper-off.png", "helper-cpu-helper-process.png", "helper-cpu-helper-thread.png",
                     "helper-result.png"]  # fmt: skip
    for name in shots[:-1]:
        for colour in (CAPTION_EDGE, HELP_KEY):  # the caption's frame and its "now:" line
            assert has_colour(tmp_path / name, colour), (name, colour)
    for colour in (CAPTION_TITLE, (96, 220, 128)):  # the result card: the step's title, a verdict as the lesson says
        assert has_colour(tmp_path / "helper-result.png", colour), colour


CARD = {"key": "cpu", "step": "1 of 3", "title": "CPU-bound work", "caption": "Factorising numbers.",
        "lines": ["in 2 threads: 1.08 s (1.01x)"], "verdict": "threads were no faster", "as_the_lesson_says": True,
        "python": "Python 3.11 (GIL)"}  # fmt: skip


def test_the_result_card_answers_the_key_pressed_in_its_window(tmp_path):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    for key, choice in (*CHOICES.items(), ("quit", "stop")):  # "quit": the window is closed
        shot = tmp_path / f"{key}.png"
        result = subprocess.run([sys.executable, "-m", "sim.view.card", "--wait", "--screenshot", str(shot)],
                                input=json.dumps(CARD), capture_output=True, text=True, timeout=60, cwd=ROOT,
                                env={**env, "HELI_SIM_VIEW_SCRIPT": f"0.2:{key}"})  # fmt: skip
        assert result.returncode == 0 and result.stdout == f"{choice}\n", (key, result.stderr)
        assert has_colour(shot, CAPTION_TITLE) and has_colour(shot, HELP_KEY)


def test_with_a_window_the_tour_waits_for_a_key_and_esc_ends_it(tmp_path):
    report = tmp_path / "tour.json"
    result = tour("--quick", "--step", "cpu", "--step", "helper", "--json", str(report),
                  DISPLAY=":heli-sim-test", SDL_VIDEODRIVER="dummy", HELI_SIM_VIEW_SCRIPT="0.3:escape")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ended from the view" in result.stdout and "== 2." not in result.stdout
    assert [s["step"] for s in json.loads(report.read_text())["steps"]] == ["cpu"]


def test_in_the_terminal_enter_advances_and_r_measures_the_step_again():
    controller, terminal = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen([sys.executable, "-m", "sim", "tour", "--quick", "--step", "cpu"], cwd=ROOT,
                               stdin=terminal, stdout=terminal, stderr=terminal, env=environment)  # fmt: skip
    os.close(terminal)
    seen = b""

    def wait_for(text: bytes, count: int) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60.0
        with selectors.DefaultSelector() as selector:
            selector.register(controller, selectors.EVENT_READ)
            while seen.count(text) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and selector.select(remaining), f"no {text!r} in {seen[-400:]!r}"
                seen += os.read(controller, 4096)

    try:
        wait_for(b"[Enter] finish", 1)
        os.write(controller, b"r\n")
        wait_for(b"[Enter] finish", 2)
        os.write(controller, b"\n")
        assert process.wait(60) == 0, seen[-400:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        os.close(controller)
    words = b" ".join(seen.split())  # the text wraps
    assert words.count(b"== 1. CPU-bound") == 2 and words.count(b"measuring...") == 2 and words.count(b"-> ") == 2


def test_screenshots_need_the_view_and_a_folder(tmp_path):
    result = tour("--headless", "--screenshot", str(tmp_path))
    assert result.returncode == 2 and "--screenshot needs the view" in result.stderr
    result = tour("--screenshot", str(tmp_path / "missing"))
    assert result.returncode == 2 and "expected an existing folder" in result.stderr
