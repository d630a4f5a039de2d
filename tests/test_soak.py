"""``heli-sim bench soak``: the seed demo with faults and toggles loses and repeats no frame it
was not told to lose, and Ctrl-C ends it early with the figures so far."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sim.bench_soak import SoakPlan, soak_faults
from sim.config import FAULT_KINDS
from tests.helpers import StderrLines, running

ROOT = Path(__file__).resolve().parent.parent


def test_a_long_soak_injects_every_kind_of_fault_in_turn():
    plan = SoakPlan(600.0)
    faults = soak_faults(plan)
    assert {f.kind for f in faults} == set(FAULT_KINDS)
    starts = [f.start_s for f in faults]
    assert starts == sorted(starts) and set(np.diff(starts)) == {plan.fault_every_s}
    assert all(f.start_s + f.duration_s <= plan.duration_s for f in faults)


def test_a_short_soak_loses_nothing_it_was_not_told_to_lose(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "sim", "bench", "soak", "--duration", "20", "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    figures = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    assert figures["frames_lost"] == 0 and figures["frames_duplicated"] == 0, figures
    assert figures["toggles"] >= 5 and figures["faults_injected"] == 3  # threaded, blocking and asyncio flown
    assert {"missed_deadlines_threaded", "missed_deadlines_blocking", "missed_deadlines_asyncio"} <= set(figures)
    assert figures["frames_lost_to_faults"] > 0  # the byte loss on the RC line
    assert figures["disconnects"] == figures["reconnects"] == 1  # link0 unplugged and back
    assert figures["decode_errors"] > 0 and figures["frames_in"] > 1000
    assert figures["rss_end_mib"] > 0 and "rss_growth_mib_per_hour" in figures
    assert "frames_lost" in result.stdout


def test_ctrl_c_ends_a_soak_early_with_its_figures(tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "sim", "bench", "soak", "--json", str(out)]
    with running(command, cwd=ROOT) as proc:
        StderrLines(proc).wait_for("soak: the seed demo for 600 s", timeout_s=60)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        status = proc.wait(timeout=10)
        stopped_s = time.monotonic() - sent
    assert status == 130
    assert stopped_s < 1.0
    figures = {r["metric"]: r["value"] for r in json.loads(out.read_text())["results"]}
    assert figures["interrupted_by_signal"] == signal.SIGINT and figures["frames_lost"] == 0
