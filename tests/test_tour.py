"""``heli-sim tour`` headless, end to end: every step measures on this machine, and the verdict
it gives follows from the figures it reports (the lesson: threads no faster for computation,
processes faster on two cores; blocking period growing with the number of slow devices, threaded
and asyncio not; a helper thread hurting the loop, a helper process not).  Whether this machine,
now, bears the lesson out is its own business (a busy machine may not): the tests check that the
tour says what it measured, not what it measured.
"""

from __future__ import annotations

import json
import os
import pty
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygame
import pytest

from sim.bench.tour import (
    CPU_PROCESSES_AT_MOST,
    CPU_THREADS_AT_LEAST,
    DEVICES_BLOCKING_SHARE,
    DEVICES_PERIOD_AT_MOST_MS,
    FLEET_PROCESSES_AT_LEAST,
    FLEET_THREADS_AT_MOST,
    HELPER_HURTS,
    HELPER_SPARED,
)
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


TOUR_TIMEOUT_S = 300  # a whole quick tour on a busy machine (idle: about half a minute)


@dataclass(frozen=True)
class TerminalTour:
    """What a quick tour of every step, run in a terminal, showed (``text``: its words, wrapped
    lines joined) and reported (``report``: its --json); its last step was measured twice."""

    text: str
    report: dict


@pytest.fixture(scope="module")
def quick_tour(tmp_path_factory) -> TerminalTour:
    """One quick tour of every step in a terminal (a pty): Enter after the first three steps, then r
    and Enter (the last step measured again), then Enter; run once for the tests that read it."""
    report = tmp_path_factory.mktemp("tour") / "tour.json"
    controller, terminal = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen([sys.executable, "-m", "sim", "tour", "--quick", "--json", str(report)], cwd=ROOT,
                               stdin=terminal, stdout=terminal, stderr=terminal, env=environment)  # fmt: skip
    os.close(terminal)
    seen = b""

    def wait_for(text: bytes, count: int) -> None:
        nonlocal seen
        deadline = time.monotonic() + TOUR_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(controller, selectors.EVENT_READ)
            while seen.count(text) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and selector.select(remaining), f"no {text!r} in {seen[-400:]!r}"
                seen += os.read(controller, 4096)

    try:
        for step in (1, 2, 3):
            wait_for(b"[Enter] next step", step)
            os.write(controller, b"\n")
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
    return TerminalTour(" ".join(seen.decode(errors="replace").split()), json.loads(report.read_text()))


def lesson_holds(step: str, figures: dict[str, float]) -> bool:
    """The lesson's rule for ``step``, applied to the figures the tour reported (with the GIL)."""
    if not figures.get("gil", 1.0):
        return True  # a free-threaded interpreter: the tour says what happens there, no rule to hold
    if step == "cpu":
        workers = min(2, int(figures["cores"]))
        return figures["threads_vs_serial"] > CPU_THREADS_AT_LEAST and (
            workers < 2 or figures["processes_vs_serial"] < CPU_PROCESSES_AT_MOST
        )
    if step == "devices":
        counts = sorted(int(key.rsplit("_n", 1)[1]) for key in figures if key.startswith("blocking_period_ms_n"))
        return all(figures[f"blocking_period_ms_n{n}"] >= DEVICES_BLOCKING_SHARE * n * 100.0 for n in counts) and all(
            figures[f"{mode}_period_ms_n{n}"] <= DEVICES_PERIOD_AT_MOST_MS
            for n in counts
            for mode in ("threaded", "asyncio")
        )
    if step == "fleet":
        return figures["threads_speedup"] <= FLEET_THREADS_AT_MOST and (
            figures["cores"] < 2 or figures["processes_speedup"] >= FLEET_PROCESSES_AT_LEAST
        )
    assert step == "helper"
    return (
        figures["thread_p99_us"] > HELPER_HURTS * figures["off_p99_us"]
        and figures["process_p99_us"] <= HELPER_SPARED * figures["off_p99_us"]
    )


@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_the_tour_measures_every_step(quick_tour):
    steps = {s["step"]: s for s in quick_tour.report["steps"]}
    assert list(steps) == ["cpu", "devices", "helper", "fleet"]
    cpu = steps["cpu"]["figures"]
    assert cpu["serial_s"] > 0 and cpu["threads_s"] > 0 and cpu["processes_s"] > 0 and cpu["cores"] == os.cpu_count()
    devices = steps["devices"]["figures"]
    for n in (1, 3):  # blocking: the waits in turn, at least (a busy machine only adds to them)
        assert devices[f"blocking_period_ms_n{n}"] >= n * 100.0
        assert devices[f"threaded_period_ms_n{n}"] > 0 and devices[f"asyncio_period_ms_n{n}"] > 0
    helper = steps["helper"]["figures"]
    for mode in ("off", "thread", "process"):
        assert helper[f"{mode}_p50_us"] > 0 and helper[f"{mode}_missed_per_s"] >= 0
    fleet = steps["fleet"]["figures"]
    for kind in ("in_process", "threads", "processes"):
        assert fleet[f"{kind}_vehicle_steps_per_s"] > 0
    assert fleet["threads_speedup"] > 0 and fleet["processes_speedup"] > 0


@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_each_verdict_follows_from_the_figures_the_tour_reports(quick_tour):
    for step in quick_tour.report["steps"]:
        assert step["as_the_lesson_says"] is lesson_holds(step["step"], step["figures"]), step
        # the text says what the report says: the verdict, marked as the lesson says or not
        mark = "as the lesson says" if step["as_the_lesson_says"] else "NOT as the lesson says, on this machine"
        assert f"-> {step['verdict']} ({mark})." in quick_tour.text, step["step"]
    assert quick_tour.text.count("-> ") == 5  # four steps, the last measured twice


@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_in_the_terminal_enter_advances_and_r_measures_the_step_again(quick_tour):
    text = quick_tour.text
    assert [text.count(f"== {n}. ") for n in (1, 2, 3, 4)] == [1, 1, 1, 2] and text.count("measuring...") == 5
    assert text.count("[Enter] next step") == 3 and text.count("[Enter] finish") == 2
    assert text.index("== 1. CPU-bound") < text.index("== 2. Slow serial devices") < text.index("== 3. A CPU-bound")
    assert text.index("== 3. A CPU-bound") < text.index("== 4. The simulator's own work")


def test_a_bad_step_is_named():
    result = tour("--step", "7")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--step '7': expected one of cpu, devices, helper, fleet or 1-4" in result.stderr


@pytest.mark.timeout(TOUR_TIMEOUT_S)  # flights shown in the view, which a busy machine starves
def test_each_flight_of_a_step_can_be_watched_in_the_view_with_its_caption(tmp_path):
    result = tour("--quick", "--step", "helper", "--screenshot", str(tmp_path), "--json", str(tmp_path / "tour.json"))
    assert result.returncode == 0, result.stderr
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert shots == ["helper-cpu-helper-off.png", "helper-cpu-helper-process.png", "helper-cpu-helper-thread.png",
                     "helper-result.png"]  # fmt: skip
    for name in shots[:-1]:
        for colour in (CAPTION_EDGE, HELP_KEY):  # the caption's frame and its "now:" line
            assert has_colour(tmp_path / name, colour), (name, colour)
    report = json.loads((tmp_path / "tour.json").read_text())
    (step,) = report["steps"]
    # the result card: the step's title, and its verdict in green if as the lesson says, else orange
    verdict = (96, 220, 128) if step["as_the_lesson_says"] else (255, 170, 64)
    for colour in (CAPTION_TITLE, verdict):
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


@pytest.mark.timeout(TOUR_TIMEOUT_S)  # a whole step measured, on a machine that may be busy
def test_the_steps_asked_for_run_and_in_a_window_the_tour_waits_for_a_key_and_esc_ends_it(tmp_path):
    report = tmp_path / "tour.json"
    result = tour("--quick", "--step", "cpu", "--step", "helper", "--json", str(report),
                  DISPLAY=":heli-sim-test", SDL_VIDEODRIVER="dummy", HELI_SIM_VIEW_SCRIPT="0.3:escape")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "== 1. CPU-bound work" in result.stdout and "Slow serial devices" not in result.stdout  # --step
    assert "ended from the view" in result.stdout and "== 2." not in result.stdout  # Esc on the first card
    assert [s["step"] for s in json.loads(report.read_text())["steps"]] == ["cpu"]


def test_screenshots_need_the_view_and_a_folder(tmp_path):
    result = tour("--headless", "--screenshot", str(tmp_path))
    assert result.returncode == 2 and "--screenshot needs the view" in result.stderr
    result = tour("--screenshot", str(tmp_path / "missing"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--screenshot" in result.stderr
    assert "missing" in result.stderr and "existing folder" in result.stderr


@pytest.mark.parametrize(
    ("figures", "holds", "says"),
    [
        ({"off": 100.0, "thread": 10_000.0, "process": 4_900.0}, False, "delayed the loop too"),  # 49x off: not spared
        ({"off": 100.0, "thread": 110.0, "process": 100.0}, False, "hardly delayed"),
        ({"off": 100.0, "thread": 10_000.0, "process": 150.0}, True, "left the loop as it was"),
    ],
)
def test_the_helper_steps_sentences_follow_its_figures(monkeypatch, figures, holds, says):
    """Stubbed measurements: each sentence states what its own figures say, and the mark agrees."""
    import sim.bench.tour

    monkeypatch.setattr(
        sim.bench.tour, "fly_with_helper", lambda mode, seconds, view=None: (0.0, figures[mode] / 1e6, 0)
    )
    outcome = sim.bench.tour._helper(True)
    assert outcome.as_the_lesson_says is holds is lesson_holds("helper", outcome.figures)
    assert says in outcome.verdict


def test_the_devices_step_with_no_period_measured_is_not_as_the_lesson_says(monkeypatch):
    import sim.bench.tour

    class NoPeriod:
        def quantile(self, q):
            return None

    def fly(links, mode, duration, fleet, view=None):
        segment = type("Segment", (), {"period": NoPeriod()})()
        return type("Loop", (), {"segments": [segment]})()

    monkeypatch.setattr(sim.bench.tour, "fly_with_ports", fly)
    outcome = sim.bench.tour._devices(True)
    assert not outcome.as_the_lesson_says and "no tick period was measured" in outcome.verdict
